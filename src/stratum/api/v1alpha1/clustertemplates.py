"""ClusterTemplate: a catalog item that stamps out Clusters from parameters."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.meta import Resource, Status
from stratum.api.v1alpha1.templates import TemplateSpecBase


class ClusterTemplateSpec(TemplateSpecBase):
    body: dict[str, Any] = Field(
        description="A Cluster spec with {{ parameter }} placeholders; a Cluster referring to "
        "it takes its nodePools when it states none, and its backendConfig keys it does not set."
    )


class ClusterTemplate(Resource):
    KIND: ClassVar[str] = "ClusterTemplate"
    PLURAL: ClassVar[str] = "clustertemplates"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ct",)
    kind: Literal["ClusterTemplate"] = "ClusterTemplate"
    spec: ClusterTemplateSpec = Field(
        description="The template version: its version, parameter schema and Cluster spec body."
    )
    status: Status = Field(
        default_factory=Status,
        description="Conditions, if any; templates have no status of their own.",
    )
