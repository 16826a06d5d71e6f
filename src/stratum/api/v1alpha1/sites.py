"""Site: a place where compute lives, with the law it sits under and its power and prices."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from stratum.api.v1alpha1.contract import SiteKind
from stratum.api.v1alpha1.meta import Resource, Status, WireModel


class SitePricing(WireModel):
    """What work costs at the site: tenants' usage and budgets are charged at these prices."""

    currency: str = Field(
        default="EUR",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of every price here, e.g. EUR; a budget counts only work "
        "priced in its own currency.",
    )
    gpu_hour: float = Field(
        default=0.0,
        ge=0,
        description="Price of one GPU-hour, for models gpuHourByModel does not list; a gpuMilli "
        "share is charged pro rata, a MIG slice for its compute slices (1g: 1/7, rounded up).",
    )
    gpu_hour_by_model: dict[str, float] = Field(
        default_factory=dict,
        description="Price of one GPU-hour by GPU model (canonical name, e.g. "
        "H100-SXM5-80GB), overriding gpuHour.",
    )
    kwh: float = Field(
        default=0.0,
        ge=0,
        description="Price of one kWh of energy: each GPU-hour is also charged the energy of "
        "its GPU at rated power (the profile's powerW, else the catalog's TDP) at this price.",
    )


class SiteSpec(WireModel):
    kind: SiteKind = Field(
        description="datacenter, cloud or edge; contracts may require one (sovereignty.siteKinds)."
    )
    provider: str = Field(
        min_length=1,
        max_length=63,
        description="Who runs the site (e.g. a cloud or colocation company); contracts may "
        "exclude it (sovereignty.denyProviders).",
    )
    country: str = Field(
        description="ISO 3166-1 alpha-2 code of the country the site is in, e.g. DE; "
        "matched by sovereignty.countries."
    )
    region: str | None = Field(
        default=None, max_length=63, description="Region within the country; informational."
    )
    city: str | None = Field(default=None, max_length=63, description="City; informational.")
    jurisdictions: list[str] = Field(
        default_factory=list,
        description="Legal regimes the site is under, e.g. EU, US, GDPR; a workload's "
        "sovereignty.jurisdictions and a tenant's allowedJurisdictions each need one of them.",
    )
    power_budget_kw: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="Most GPU power the site may have bound, in kW, counted at each bound "
        "GPU's board power limit; the scheduler binds nothing past it. Unset: no limit.",
    )
    pricing: SitePricing = Field(
        default_factory=SitePricing,
        description="Prices that tenants' usage and budgets are charged at.",
    )

    @field_validator("country")
    @classmethod
    def _iso_country(cls, code: str) -> str:
        if len(code) != 2 or not code.isalpha() or not code.isupper():
            raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 code (two capital letters)")
        return code


class SiteStatus(Status):
    nodes: int = Field(default=0, description="Nodes at the site, across its clusters.")
    gpus: int = Field(default=0, description="GPUs on those nodes.")
    power_draw_kw: float = Field(
        default=0.0, description="Power the site draws now, in kW, as its backends report it."
    )


class Site(Resource):
    KIND: ClassVar[str] = "Site"
    PLURAL: ClassVar[str] = "sites"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("site",)
    kind: Literal["Site"] = "Site"
    spec: SiteSpec = Field(
        description="What and where the site is, the law it is under, its power budget and its "
        "prices."
    )
    status: SiteStatus = Field(
        default_factory=SiteStatus,
        description="Node, GPU and power figures, as the backends last reported them.",
    )
