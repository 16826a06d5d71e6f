"""Cluster: a group of nodes on one backend at one site, built from node pools."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from stratum.api.v1alpha1.meta import NamespaceName, ObjectName, Resource, Status, WireModel

# A backend's name in the server's registry (shipped: simulated; planned: local, agent,
# kubernetes, slurm; plug-ins add theirs). A name the server does not run is not refused
# at apply: the Cluster waits, Pending with BackendUnavailable, as for a backend not yet up.
BackendName = NamespaceName
CredentialName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$")]


class NodePool(WireModel):
    name: ObjectName
    profile: ObjectName = Field(description="HardwareProfile name")
    count: int = Field(ge=0, le=100_000)
    rack_prefix: str | None = Field(default=None, max_length=40)
    nodes_per_rack: int = Field(default=4, ge=1, le=1024)


class TemplateReference(WireModel):
    name: ObjectName
    version: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


class ClusterSpec(WireModel):
    site: ObjectName
    backend: BackendName = Field(
        default="simulated",
        description="the registry name of the backend that runs this cluster's nodes "
        "(simulated, or one a plug-in registers)",
    )
    template: TemplateReference | None = None
    node_pools: list[NodePool] = Field(default_factory=list)
    backend_config: dict[str, Any] = Field(default_factory=dict)
    # None rather than {}: a Cluster without secrets keeps the wire form it always had.
    credentials: dict[CredentialName, str] | None = Field(
        default=None,
        max_length=32,
        description="Secrets the backend needs (a kubeconfig, an agent bootstrap token), by "
        "name. Encrypted at rest; the API shows each as '***:<fingerprint>', and "
        "sending that form back keeps the stored value.",
    )


class ClusterStatus(Status):
    phase: Literal["Pending", "Ready", "Degraded", "Unreachable"] | None = None
    nodes: int = 0
    gpus: int = 0


class Cluster(Resource):
    KIND: ClassVar[str] = "Cluster"
    PLURAL: ClassVar[str] = "clusters"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("cluster",)
    kind: Literal["Cluster"] = "Cluster"
    spec: ClusterSpec
    status: ClusterStatus = Field(default_factory=ClusterStatus)
