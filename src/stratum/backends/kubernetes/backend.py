"""KubernetesBackend: Clusters whose nodes are a Kubernetes cluster's Nodes.

inventory() reads Nodes and ResourceSlices (inventory.py); launch() server-side-applies the
tenant's objects and the workload's anchor, ResourceClaims and Pods (manifests.py); observe()
lists the cluster's Nodes, the Pods and claims Stratum made, checks each claim's allocation
against the devices Stratum bound, and reports runs and nodes; stop() deletes the anchor
(the garbage collector follows its owner references) and, not to wait on it, the pods and
claims by label. The backend keeps no state a restart would miss: what runs is read back
from the cluster's labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from stratum.backends.base import (
    BackendContext,
    ClusterRequest,
    DeviceHealth,
    GpuObservation,
    HostCheck,
    InventoryNode,
    LaunchSpec,
    NodeObservation,
    Observation,
    ReplicaLaunch,
    ReplicaRun,
    RunObservation,
    RunPhase,
)
from stratum.backends.kubernetes.client import KubeClient, KubeError
from stratum.backends.kubernetes.inventory import (
    GPU_DRIVER,
    Device,
    NodeReading,
    device_health,
    read_node,
)
from stratum.backends.kubernetes.manifests import (
    ATTEMPT_LABEL,
    GPUS_ANNOTATION,
    KEY_ANNOTATION,
    MANAGED_BY,
    NODE_ANNOTATION,
    NOT_ENFORCED_ANNOTATION,
    REPLICA_LABEL,
    REPLICAS_ANNOTATION,
    SHARED_GPU_RESOURCE,
    UID_LABEL,
    WORKLOAD_LABEL,
    NodeTarget,
    RenderOptions,
    anchor_name,
    anchor_object,
    dns_label,
    split_key,
    tenant_objects,
    workload_objects,
)
from stratum.core.clock import Clock

log = logging.getLogger("stratum.backends.kubernetes")

KUBECONFIG_CREDENTIAL = "kubeconfig"
VERIFIED = "verified by the cluster's allocation"
DEFAULT_PENDING_TIMEOUT_S = 300.0
APPLY_WORKERS = 8


@dataclass(slots=True)
class _Cluster:
    name: str
    site: str
    client: KubeClient
    nodes: dict[str, NodeReading] = field(default_factory=dict)  # by Stratum node name
    # What inventory read, per node (labels, allocatable, its DRA devices): observe compares
    # and marks the cluster stale when a node comes, goes or changes.
    fingerprints: dict[str, str] = field(default_factory=dict)
    stale: bool = False


def _by_node(slices: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The ResourceSlices of each node, grouped once per read rather than searched per node
    (a pass over every slice for every node is quadratic in the cluster's size)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in slices:
        out[(s.get("spec") or {}).get("nodeName") or ""].append(s)
    return out


def _fingerprint(node: Mapping[str, Any], slices: Mapping[str, list[dict[str, Any]]]) -> str:
    mine = [s.get("spec") for s in slices.get(node["metadata"]["name"], ())]
    facts = {
        "labels": node["metadata"].get("labels") or {},
        "allocatable": (node.get("status") or {}).get("allocatable") or {},
        "slices": sorted(mine, key=lambda s: json.dumps(s, sort_keys=True)),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


@dataclass(slots=True)
class _Run:
    spec: LaunchSpec
    cluster: str
    launched_at: datetime
    running_at: datetime | None = None
    evidence: tuple[str, ...] = ()


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


class KubernetesBackend:
    name = "kubernetes"

    def __init__(self, *, clock: Clock, options: Mapping[str, str] | None = None) -> None:
        opts = dict(options or {})
        self.clock = clock
        self.render_options = RenderOptions(
            device_class=opts.get("deviceClass", "gpu.nvidia.com"),
            driver=opts.get("driver", GPU_DRIVER),
            shared_gpu_resource=opts.get("sharedGpuResource", SHARED_GPU_RESOURCE),
        )
        self.pending_timeout_s = float(opts.get("pendingTimeoutSeconds", DEFAULT_PENDING_TIMEOUT_S))
        self._lock = threading.RLock()
        self._clusters: dict[str, _Cluster] = {}
        self._runs: dict[str, _Run] = {}
        self._tenants_ready: set[tuple[str, str, int, int | None]] = set()

    # -- clusters ----------------------------------------------------------------------
    def _client_for(self, cluster: ClusterRequest) -> KubeClient:
        text = cluster.credentials.get(KUBECONFIG_CREDENTIAL)
        if not text:
            raise KubeError(
                f"cluster {cluster.name}: spec.credentials.{KUBECONFIG_CREDENTIAL} is missing: "
                "a kubernetes cluster needs a kubeconfig to reach its API server"
            )
        known = self._clusters.get(cluster.name)
        if known is not None and getattr(known.client, "_source", None) == text:
            return known.client
        client = KubeClient(text, cluster=cluster.name)
        client._source = text  # type: ignore[attr-defined]  # compared, never logged
        return client

    def inventory(self, cluster: ClusterRequest) -> list[InventoryNode]:
        client = self._client_for(cluster)
        nodes = client.list("Node")
        slices = _slices(client)
        pools = {p.name: p for p in cluster.pools}
        readings: dict[str, NodeReading] = {}
        with self._lock:
            taken = {
                n: c.name
                for c in self._clusters.values()
                if c.name != cluster.name
                for n in c.nodes
            }
        for node in nodes:
            reading = read_node(node, slices, pools, self.render_options.driver)
            if reading.k8s_name in taken:
                raise KubeError(
                    f"cluster {cluster.name}: node {reading.k8s_name} is also a node of "
                    f"cluster {taken[reading.k8s_name]}; node names must be unique"
                )
            readings[reading.k8s_name] = reading
            for note in reading.notes:
                log.info("cluster %s node %s: %s", cluster.name, reading.k8s_name, note)
        grouped = _by_node(slices)
        fingerprints = {n["metadata"]["name"]: _fingerprint(n, grouped) for n in nodes}
        with self._lock:
            old = self._clusters.get(cluster.name)
            if old is not None and old.client is not client:
                old.client.close()
            self._clusters[cluster.name] = _Cluster(
                cluster.name, cluster.site, client, readings, fingerprints
            )
        return [
            InventoryNode(
                name=r.k8s_name,
                cluster=cluster.name,
                site=cluster.site,
                pool=r.pool or "kubernetes",
                profile=r.profile,
                rack=r.rack,
                hardware=r.hardware,
                labels={
                    **r.labels,
                    "stratum.dev/gpu-allocation": "dra" if r.dra else "device-plugin",
                },
            )
            for r in readings.values()
        ]

    def inventory_changed(self, cluster: str) -> bool:
        """A node of the cluster came, went or changed its labels, allocatable or devices
        since the last inventory (seen by observe): the ClusterController reads it again."""
        with self._lock:
            known = self._clusters.get(cluster)
            return known is not None and known.stale

    def forget_cluster(self, cluster: str) -> None:
        with self._lock:
            gone = self._clusters.pop(cluster, None)
            for key in [k for k, r in self._runs.items() if r.cluster == cluster]:
                del self._runs[key]
        if gone is not None:
            gone.client.close()

    def _cluster_of(self, node: str) -> _Cluster:
        with self._lock:
            for c in self._clusters.values():
                if node in c.nodes:
                    return c
        raise KubeError(f"node {node} is in no kubernetes cluster this backend knows")

    def targets(self, cluster: _Cluster, spec: LaunchSpec) -> dict[str, NodeTarget]:
        out = {}
        for r in spec.replicas:
            reading = cluster.nodes.get(r.node)
            if reading is None:
                raise KubeError(f"cluster {cluster.name}: node {r.node} is not in the cluster")
            missing = [g for g in r.gpus if reading.dra and g not in reading.devices]
            if missing:
                raise KubeError(
                    f"cluster {cluster.name}: node {r.node} publishes no DRA device for "
                    f"GPU(s) {missing}"
                )
            out[r.node] = NodeTarget(
                reading.k8s_name, reading.dra, {i: d.uuid for i, d in reading.devices.items()}
            )
        return out

    # -- runs --------------------------------------------------------------------------
    def launch(self, spec: LaunchSpec) -> None:
        if not spec.replicas:
            return
        cluster = self._cluster_of(spec.replicas[0].node)
        client = cluster.client
        namespace, _ = split_key(spec.key)
        targets = self.targets(cluster, spec)
        tenant_key = (cluster.name, namespace, spec.priority, spec.quota_gpus)
        if tenant_key not in self._tenants_ready:
            for obj in tenant_objects(
                namespace, (spec.priority,), spec.quota_gpus, self.render_options
            ):
                client.apply(obj)
            self._tenants_ready.add(tenant_key)
        self._delete_other_attempts(client, spec)
        where = {r.replica: f"{targets[r.node].k8s_name}:{list(r.gpus)}" for r in spec.replicas}
        try:
            anchor = client.apply(anchor_object(spec, where))
            objects = workload_objects(spec, targets, anchor, self.render_options, spec.priority)
            # Claims before the pods that use them; each group applied APPLY_WORKERS at a
            # time (one request at a time made a 100-replica launch take ~10 s).
            for kind in ("ResourceClaim", "Pod"):
                batch = [o for o in objects if o["kind"] == kind]
                with ThreadPoolExecutor(max_workers=APPLY_WORKERS) as pool:
                    list(pool.map(client.apply, batch))  # the first failure is raised
        except KubeError:
            # Half launched: report no run, so the controller launches again (every apply
            # is idempotent: the same names, the same objects). The tenant's objects are
            # applied again too: a namespace deleted under Stratum (404), or still being
            # deleted when it was applied (403), is made anew on the next try.
            with self._lock:
                self._runs.pop(spec.key, None)
            self._tenants_ready.discard(tenant_key)
            raise
        with self._lock:
            current = self._runs.get(spec.key)
            if current is None or (current.spec.uid, current.spec.attempt) != (
                spec.uid,
                spec.attempt,
            ):
                self._runs[spec.key] = _Run(spec, cluster.name, self.clock.now())
        log.info("launched %s attempt %d on cluster %s", spec.key, spec.attempt, cluster.name)

    def _delete_other_attempts(self, client: KubeClient, spec: LaunchSpec) -> None:
        """A relaunch (new attempt or new uid) first removes the old attempt's objects."""
        namespace, name = split_key(spec.key)
        base = {**MANAGED_BY, WORKLOAD_LABEL: dns_label(name)}
        uid = dns_label(spec.uid) if spec.uid else "none"
        stale = f"{_selector(base)},{ATTEMPT_LABEL}!={spec.attempt}"
        stale_uid = f"{_selector(base)},{UID_LABEL}!={uid}"
        for selector in (stale, stale_uid):
            _delete_pods(client, namespace, selector)
            if client.list("ResourceClaim", namespace, selector):
                client.delete_all("ResourceClaim", namespace, selector)

    def stop(self, key: str) -> None:
        namespace, name = split_key(key)
        with self._lock:
            run = self._runs.pop(key, None)
            if run is None or run.cluster not in self._clusters:
                # Nothing this backend launched or found running (observe adopts what it
                # finds in the cluster): no API calls for the many finished workloads.
                return
            clusters = [self._clusters[run.cluster]]
        selector = _selector({**MANAGED_BY, WORKLOAD_LABEL: dns_label(name)})
        for cluster in clusters:
            client = cluster.client
            try:
                client.delete("ConfigMap", namespace, anchor_name(name))
                _delete_pods(client, namespace, selector)
                client.delete_all("ResourceClaim", namespace, selector)
            except KubeError as err:
                if err.status == 404:
                    continue  # no such namespace: nothing ran there
                raise

    def evidence(self, key: str) -> tuple[str, ...]:
        """What the cluster confirmed about the run (its allocation check), for `describe`."""
        with self._lock:
            run = self._runs.get(key)
            return run.evidence if run is not None else ()

    # -- observation -------------------------------------------------------------------
    def observe(self) -> Observation:
        now = self.clock.now()
        nodes: list[NodeObservation] = []
        runs: list[RunObservation] = []
        with self._lock:
            clusters = list(self._clusters.values())
        for cluster in clusters:
            try:
                k8s_nodes = {n["metadata"]["name"]: n for n in cluster.client.list("Node")}
                pods = cluster.client.list("Pod", selector=_selector(MANAGED_BY))
                claims = cluster.client.list("ResourceClaim", selector=_selector(MANAGED_BY))
                slices = _slices(cluster.client)
            except KubeError as err:
                log.warning("%s", err)
                # Unreachable API: its nodes are unknown, their runs unseen (not lost).
                nodes += [_node_obs(r, False) for r in cluster.nodes.values()]
                continue
            grouped = _by_node(slices)
            seen = {name: _fingerprint(n, grouped) for name, n in k8s_nodes.items()}
            if seen != cluster.fingerprints:
                cluster.stale = True
            for reading in cluster.nodes.values():
                node = k8s_nodes.get(reading.k8s_name)
                reachable = node is not None and _ready(node)
                health = device_health(reading, grouped.get(reading.k8s_name, []))
                nodes.append(_node_obs(reading, reachable, health))
            runs += self._observe_runs(cluster, k8s_nodes, pods, claims, now)
        return Observation(at=now, nodes=tuple(nodes), runs=tuple(runs))

    def _observe_runs(
        self,
        cluster: _Cluster,
        k8s_nodes: Mapping[str, Any],
        pods: list[dict[str, Any]],
        claims: list[dict[str, Any]],
        now: datetime,
    ) -> list[RunObservation]:
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pod in pods:
            key = (pod["metadata"].get("annotations") or {}).get(KEY_ANNOTATION)
            if key and not pod["metadata"].get("deletionTimestamp"):
                by_key[key].append(pod)
        claim_by_name = {(c["metadata"]["namespace"], c["metadata"]["name"]): c for c in claims}
        out = []
        with self._lock:
            for key, found in by_key.items():
                if key not in self._runs and _whole(found):
                    # Launched before this process started: adopt it. A run missing pods
                    # (a launch cut short) is not reported, so it is launched again.
                    self._runs[key] = _adopted(key, found, cluster.name, now)
            known = {k: r for k, r in self._runs.items() if r.cluster == cluster.name}
        for key, run in known.items():
            spec = run.spec
            mine = [
                p
                for p in by_key.get(key, [])
                if p["metadata"]["labels"].get(ATTEMPT_LABEL) == str(spec.attempt)
            ]
            phase, message, evidence, replicas = self._run_state(
                cluster, run, mine, claim_by_name, k8s_nodes, now
            )
            with self._lock:
                run.evidence = evidence
                if phase == "Running" and run.running_at is None:
                    run.running_at = now
            out.append(
                RunObservation(
                    key=key,
                    uid=spec.uid,
                    attempt=spec.attempt,
                    phase=phase,
                    message=message,
                    started_at=run.running_at or run.launched_at,
                    finished_at=now if phase in ("Succeeded", "Failed", "Lost") else None,
                    replicas=replicas,
                )
            )
        return out

    def _run_state(
        self,
        cluster: _Cluster,
        run: _Run,
        pods: list[dict[str, Any]],
        claims: Mapping[tuple[str, str], dict[str, Any]],
        k8s_nodes: Mapping[str, Any],
        now: datetime,
    ) -> _RunState:
        spec = run.spec
        namespace, _ = split_key(spec.key)
        gone = sorted(
            {
                r.node
                for r in spec.replicas
                if r.node not in cluster.nodes or cluster.nodes[r.node].k8s_name not in k8s_nodes
            }
        )
        if gone:
            return _RunState("Lost", f"node {', '.join(gone)} left the kubernetes cluster")
        by_replica = {int(p["metadata"]["labels"].get(REPLICA_LABEL, -1)): p for p in pods}
        deleted = [r.replica for r in spec.replicas if r.replica not in by_replica]
        if deleted and run.running_at is not None:
            # Every pod was seen once the run ran, and nothing but Stratum may remove them:
            # a pod gone since (kubectl delete, an eviction, its namespace deleted) is a run
            # lost, not one "being created" for ever.
            return _RunState(
                "Lost",
                f"the pod of replica(s) {', '.join(map(str, deleted))} was deleted from the "
                "cluster, not by Stratum",
            )
        phases: dict[int, str] = {}
        problems: list[str] = []
        evidence: list[str] = []  # what the cluster confirmed, then what it cannot enforce
        unenforced: list[str] = []
        replicas: list[ReplicaRun] = []
        restarts = 0
        for r in spec.replicas:
            pod = by_replica.get(r.replica)
            if pod is None:
                phases[r.replica] = "Missing"
                replicas.append(ReplicaRun(r.replica, r.node, "Starting", message="no pod yet"))
                continue
            status = pod.get("status") or {}
            phases[r.replica] = status.get("phase", "Pending")
            exit_code: int | None = None
            ended = ""
            mine = 0
            for cs in status.get("containerStatuses") or []:
                mine += int(cs.get("restartCount") or 0)
                term = (cs.get("state") or {}).get("terminated")
                if term:
                    exit_code = term.get("exitCode")
                    ended = f"exit code {exit_code} ({term.get('reason', 'Error')})"
                    if phases[r.replica] == "Failed":
                        problems.append(
                            f"replica {r.replica} exited with code {exit_code} "
                            f"({term.get('reason', 'Error')})"
                        )
            restarts += mine
            if phases[r.replica] == "Pending":
                problems.append(f"replica {r.replica} pod Pending: {_pending_reason(pod)}")
            checks: list[HostCheck] = []
            if (pod.get("spec") or {}).get("resourceClaims"):
                reading = cluster.nodes[r.node]
                claim = claims.get((namespace, pod["metadata"]["name"]))
                verdict = _check_allocation(claim, r.gpus, reading.devices)
                if verdict is not None:
                    ok, text = verdict
                    checks.append(HostCheck("compute.gpus", "verified" if ok else "mismatch", text))
                    (evidence if ok else problems).append(f"replica {r.replica}: {text}")
                    if not ok:
                        problem = "contract problem: " + text
                        replicas.append(_replica_run(r, "Failed", exit_code, mine, problem, checks))
                        return _RunState("Failed", problem, tuple(evidence), tuple(replicas))
            for clause, note in _not_enforced(pod).items():
                checks.append(HostCheck(clause, "not-enforceable", note))
                unenforced.append(f"replica {r.replica}: {note}")
            replicas.append(
                _replica_run(
                    r, _PHASES.get(phases[r.replica], "Starting"), exit_code, mine, ended, checks
                )
            )
        evidence += unenforced
        values = set(phases.values())
        extra = f"; {restarts} restart(s)" if restarts else ""
        done = tuple(replicas)
        if "Failed" in values:
            failed = "; ".join(p for p in problems if "exited" in p) + extra
            return _RunState("Failed", failed, (), done)
        if values == {"Succeeded"}:
            return _RunState("Succeeded", "every replica exited with code 0", tuple(evidence), done)
        if values <= {"Running", "Succeeded"} and "Running" in values:
            return _RunState("Running", _summary(evidence) + extra, tuple(evidence), done)
        waited = (now - run.launched_at).total_seconds()
        if problems and waited > self.pending_timeout_s:
            return _RunState(
                "Failed",
                f"contract problem: placed {waited:.0f}s ago, still " + "; ".join(problems),
                tuple(evidence),
                done,
            )
        return _RunState(
            "Starting", "; ".join(problems) or "pods being created", tuple(evidence), done
        )


class _RunState(NamedTuple):
    """A run as its pods and claims show it: the phase and its message, what the cluster
    confirmed (evidence), and each replica with its clause checks."""

    phase: RunPhase
    message: str
    evidence: tuple[str, ...] = ()
    replicas: tuple[ReplicaRun, ...] = ()


_PHASES: dict[str, RunPhase] = {
    "Pending": "Starting",
    "Running": "Running",
    "Succeeded": "Succeeded",
    "Failed": "Failed",
}


def _not_enforced(pod: Mapping[str, Any]) -> dict[str, str]:
    """What the pod says the cluster, not Stratum, decides (manifests.not_enforced, kept on
    the pod so that a restarted backend reads the same)."""
    try:
        notes = json.loads((pod["metadata"].get("annotations") or {})[NOT_ENFORCED_ANNOTATION])
    except (KeyError, ValueError):
        return {}
    if not isinstance(notes, dict):
        return {}
    return {str(k): str(v) for k, v in notes.items()}


def _replica_run(
    replica: ReplicaLaunch,
    phase: RunPhase,
    exit_code: int | None,
    restarts: int,
    message: str,
    checks: list[HostCheck],
) -> ReplicaRun:
    return ReplicaRun(
        replica=replica.replica,
        node=replica.node,
        phase=phase,
        exit_code=exit_code,
        restarts=restarts,
        message=message,
        checks=tuple(checks),
    )


def _summary(evidence: list[str], shown: int = 4) -> str:
    """The evidence in one line: every replica's for a small gang, the first few of a big
    one (`evidence()` keeps them all)."""
    dra = any("allocated" in e for e in evidence)
    listed = evidence if len(evidence) <= shown else [*evidence[:2], f"{len(evidence) - 2} more"]
    text = "; ".join(listed)
    return f"{VERIFIED}: {text}" if dra else text


def _whole(pods: list[dict[str, Any]]) -> bool:
    """Every replica of the newest attempt has its pod."""
    newest = max(int(p["metadata"]["labels"].get(ATTEMPT_LABEL, 0)) for p in pods)
    mine = [p for p in pods if int(p["metadata"]["labels"].get(ATTEMPT_LABEL, 0)) == newest]
    want = (mine[0]["metadata"].get("annotations") or {}).get(REPLICAS_ANNOTATION, "")
    return want.isdigit() and len(mine) == int(want)


def _adopted(key: str, pods: list[dict[str, Any]], cluster: str, now: datetime) -> _Run:
    """The run its pods describe (labels and annotations), for a backend that restarted."""
    newest = max(int(p["metadata"]["labels"].get(ATTEMPT_LABEL, 0)) for p in pods)
    replicas = []
    uid = ""
    for p in pods:
        labels, notes = p["metadata"]["labels"], p["metadata"].get("annotations") or {}
        if int(labels.get(ATTEMPT_LABEL, 0)) != newest:
            continue
        uid = "" if labels.get(UID_LABEL) == "none" else labels.get(UID_LABEL, "")
        gpus = tuple(int(g) for g in notes.get(GPUS_ANNOTATION, "").split(",") if g)
        replicas.append(
            ReplicaLaunch(int(labels.get(REPLICA_LABEL, 0)), notes.get(NODE_ANNOTATION, ""), gpus)
        )
    spec = LaunchSpec(
        key=key,
        uid=uid,
        attempt=newest,
        replicas=tuple(sorted(replicas, key=lambda r: r.replica)),
        workload_type="",
    )
    return _Run(spec, cluster, now)


def _delete_pods(client: KubeClient, namespace: str, selector: str) -> None:
    """Delete the selected pods; one whose node has left the cluster is deleted at once
    (no kubelet will ever confirm a graceful end, and it would hold its claim meanwhile)."""
    pods = client.list("Pod", namespace, selector)
    if not pods:
        return
    client.delete_all("Pod", namespace, selector)
    nodes: dict[str, bool] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            continue
        if node not in nodes:
            nodes[node] = client.get("Node", None, node) is not None
        if not nodes[node]:
            client.delete("Pod", namespace, pod["metadata"]["name"], grace_seconds=0)


def _slices(client: KubeClient) -> list[dict[str, Any]]:
    try:
        return client.list("ResourceSlice")
    except KubeError as err:
        if err.status != 404:
            raise
        return []  # resource.k8s.io/v1 not served (before 1.34): device plugin only


def _ready(node: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def _node_obs(
    reading: NodeReading, reachable: bool, health: Mapping[int, DeviceHealth] | None = None
) -> NodeObservation:
    """Kubernetes reports no GPU telemetry (the numbers stay 0). A GPU's health is its DRA
    device's (``device_health``: its driver's taints) on a node that is Ready; it follows
    the node where no device says more (the device plugin), and is Unknown off a node that
    is not Ready."""
    health = health or {}
    gpus = tuple(
        GpuObservation(
            g.index, health.get(g.index, "Healthy") if reachable else "Unknown", 0.0, 0.0, 0.0, 0.0
        )
        for g in reading.hardware.gpus
    )
    return NodeObservation(name=reading.k8s_name, reachable=reachable, gpus=gpus, power_w=0.0)


def _pending_reason(pod: Mapping[str, Any]) -> str:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return f"{c.get('reason', 'Unschedulable')}: {c.get('message', '')}".strip()
    return "waiting for the scheduler or the kubelet"


def _check_allocation(
    claim: Mapping[str, Any] | None, gpus: tuple[int, ...], devices: Mapping[int, Device]
) -> tuple[bool, str] | None:
    """(ok, evidence) once the claim is allocated: the allocated devices against the bound
    ones; None while it is not."""
    if claim is None:
        return None
    allocation = (claim.get("status") or {}).get("allocation")
    if not allocation:
        return None
    results = (allocation.get("devices") or {}).get("results") or []
    got = {(r.get("driver"), r.get("pool"), r.get("device")) for r in results}
    want = {(devices[g].driver, devices[g].pool, devices[g].name) for g in gpus if g in devices}
    names = ", ".join(sorted(f"{p}/{d}" for _, p, d in got))
    if got == want:
        return True, f"claim {claim['metadata']['name']} allocated {names}"
    expected = ", ".join(sorted(f"{p}/{d}" for _, p, d in want))
    return False, (
        f"claim {claim['metadata']['name']} was allocated {names or 'nothing'} "
        f"but Stratum bound {expected}"
    )


def create(context: BackendContext) -> KubernetesBackend:
    """The registry's factory (backends/registry.py)."""
    return KubernetesBackend(clock=context.clock, options=context.options)
