"""The one way a bound contract becomes a LaunchSpec: the workload controller hands it to a
backend, and the agent protocol sends the same spec to the node that runs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stratum.api.v1alpha1 import Placement, Workload
from stratum.backends.base import LaunchSpec, ReplicaLaunch

# How long a simulated run lasts (the simulator's and the demo's work have no real program).
DURATION_ANNOTATION = "sim.stratum.dev/duration-seconds"


def launch_spec(
    workload: Workload,
    placement: Placement,
    *,
    gpu_uuids: Callable[[str, Sequence[int]], tuple[str, ...]] = lambda _node, _gpus: (),
    quota_gpus: int | None = None,
) -> LaunchSpec:
    """Everything the Placement binds and the Workload asks to run. `gpu_uuids(node, gpus)`
    names the bound GPUs where the caller knows the node's discovered hardware."""
    run = workload.spec.run
    duration = workload.metadata.annotations.get(DURATION_ANNOTATION)
    return LaunchSpec(
        key=f"{workload.metadata.namespace or ''}/{workload.metadata.name}",
        uid=workload.metadata.uid or "",
        attempt=placement.spec.attempt,
        replicas=tuple(
            ReplicaLaunch(
                replica=r.replica,
                node=r.node,
                gpus=tuple(r.gpus),
                gpu_milli=r.gpu_milli,
                gpu_uuids=gpu_uuids(r.node, r.gpus),
                mig_instance=r.mig_instance,
                cpu_set=r.cpu_set,
                numa_node=r.numa_node,
                cpu_milli=r.cpu_milli,
                memory_mib=r.memory_mib,
                nic=r.nic,
            )
            for r in placement.spec.replicas
        ),
        workload_type=workload.spec.type,
        image=run.image,
        command=tuple(run.command),
        args=tuple(run.args),
        env=tuple(sorted(run.env.items())),
        working_dir=run.working_dir,
        restart_policy=run.restart_policy,
        mig_profile=workload.spec.contract.compute.mig_profile,
        grace_period_seconds=run.grace_period_seconds,
        duration_seconds=float(duration) if duration else None,
        priority=workload.spec.contract.lifecycle.priority,
        dedicated=placement.spec.dedicated,
        quota_gpus=quota_gpus,
    )
