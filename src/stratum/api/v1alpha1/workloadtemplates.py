"""WorkloadTemplate: a catalog item that launches Workloads from parameters."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.meta import Resource, Status
from stratum.api.v1alpha1.templates import TemplateSpecBase


class WorkloadTemplateSpec(TemplateSpecBase):
    body: dict[str, Any] = Field(
        description="A Workload spec with {{ parameter }} placeholders, filled from the "
        "launch's parameters."
    )


class WorkloadTemplate(Resource):
    KIND: ClassVar[str] = "WorkloadTemplate"
    PLURAL: ClassVar[str] = "workloadtemplates"
    NAMESPACED: ClassVar[bool] = True
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("wt",)
    kind: Literal["WorkloadTemplate"] = "WorkloadTemplate"
    spec: WorkloadTemplateSpec = Field(
        description="The template version: its version, parameter schema and Workload spec body."
    )
    status: Status = Field(
        default_factory=Status,
        description="Conditions, if any; templates have no status of their own.",
    )
