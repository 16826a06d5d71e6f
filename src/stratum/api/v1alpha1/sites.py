"""Site: a place where compute lives, with the law it sits under and its power and prices."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from stratum.api.v1alpha1.contract import SiteKind
from stratum.api.v1alpha1.meta import Resource, Status, WireModel


class SitePricing(WireModel):
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217")
    gpu_hour: float = Field(default=0.0, ge=0, description="default price of one GPU-hour")
    gpu_hour_by_model: dict[str, float] = Field(default_factory=dict)
    kwh: float = Field(default=0.0, ge=0, description="price of one kWh")


class SiteSpec(WireModel):
    kind: SiteKind
    provider: str = Field(min_length=1, max_length=63)
    country: str = Field(description="ISO 3166-1 alpha-2 code, e.g. DE")
    region: str | None = Field(default=None, max_length=63)
    city: str | None = Field(default=None, max_length=63)
    jurisdictions: list[str] = Field(default_factory=list, description="e.g. EU, US, GDPR")
    power_budget_kw: float | None = Field(default=None, gt=0, le=1_000_000)
    pricing: SitePricing = Field(default_factory=SitePricing)

    @field_validator("country")
    @classmethod
    def _iso_country(cls, code: str) -> str:
        if len(code) != 2 or not code.isalpha() or not code.isupper():
            raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 code (two capital letters)")
        return code


class SiteStatus(Status):
    nodes: int = 0
    gpus: int = 0
    power_draw_kw: float = 0.0


class Site(Resource):
    KIND: ClassVar[str] = "Site"
    PLURAL: ClassVar[str] = "sites"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("site",)
    kind: Literal["Site"] = "Site"
    spec: SiteSpec
    status: SiteStatus = Field(default_factory=SiteStatus)
