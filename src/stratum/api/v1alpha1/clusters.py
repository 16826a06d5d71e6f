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
    """A set of identical nodes of one HardwareProfile."""

    name: ObjectName = Field(
        description="Pool name, unique in the cluster: the simulated backend names its nodes "
        "CLUSTER-POOL-001, ...; the kubernetes backend takes nodes labelled "
        "stratum.dev/pool=NAME as this pool's."
    )
    profile: ObjectName = Field(
        description="Name of the HardwareProfile whose topology the pool's nodes have."
    )
    count: int = Field(
        ge=0, le=100_000, description="How many nodes the simulated backend builds for the pool."
    )
    rack_prefix: str | None = Field(
        default=None,
        max_length=40,
        description="Prefix of the rack names the simulated backend gives its nodes (PREFIX1, "
        "PREFIX2, ...); unset: CLUSTER-r.",
    )
    nodes_per_rack: int = Field(
        default=4,
        ge=1,
        le=1024,
        description="Nodes per rack when the simulated backend assigns racks, filled in order.",
    )


class TemplateReference(WireModel):
    """The ClusterTemplate a Cluster is built from, and its parameters."""

    name: ObjectName = Field(description="The template's family label or object name.")
    version: str | None = Field(
        default=None,
        description="Exact version to use; unset: the newest published release.",
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Values for the template's parameters, checked against its schema.",
    )


class ClusterSpec(WireModel):
    site: ObjectName = Field(description="Name of the Site the cluster's nodes are at.")
    backend: BackendName = Field(
        default="simulated",
        description="the registry name of the backend that runs this cluster's nodes "
        "(simulated, or one a plug-in registers)",
    )
    template: TemplateReference | None = Field(
        default=None,
        description="A ClusterTemplate that fills nodePools when these are empty and "
        "backendConfig keys these do not set.",
    )
    node_pools: list[NodePool] = Field(
        default_factory=list,
        description="The cluster's nodes by pool: the simulated backend builds them; backends "
        "that find their nodes (kubernetes, local) take a pool's profile as their hardware.",
    )
    backend_config: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings passed to the backend as they are; which keys it reads is the "
        "backend's (e.g. local: hardwareFrom, nodeName, rack).",
    )
    # None rather than {}: a Cluster without secrets keeps the wire form it always had.
    credentials: dict[CredentialName, str] | None = Field(
        default=None,
        max_length=32,
        description="Secrets the backend needs (a kubeconfig, an agent bootstrap token), by "
        "name. Encrypted at rest; the API shows each as '***:<fingerprint>', and "
        "sending that form back keeps the stored value.",
    )


class ClusterStatus(Status):
    phase: Literal["Pending", "Ready", "Degraded"] | None = Field(
        default=None,
        description="Pending: waiting for its backend or template (see conditions); Ready: "
        "the backend built it and lists its nodes; Degraded: the backend's last sync failed.",
    )
    nodes: int = Field(default=0, description="Nodes the backend lists for the cluster.")
    gpus: int = Field(default=0, description="GPUs on those nodes.")


class Cluster(Resource):
    KIND: ClassVar[str] = "Cluster"
    PLURAL: ClassVar[str] = "clusters"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("cluster",)
    kind: Literal["Cluster"] = "Cluster"
    spec: ClusterSpec = Field(description="The cluster wanted: its site, backend and node pools.")
    status: ClusterStatus = Field(
        default_factory=ClusterStatus,
        description="Its phase and node and GPU counts, as the backend last reported them.",
    )
