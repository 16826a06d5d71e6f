"""`stratum plan` and the live WorkloadController decide alike: on the same fleet and the
same waiting contracts, the plan's "binds" are exactly the controller's binds, on the same
nodes (quota, policies, fair share, preemption and the batch search included)."""

from __future__ import annotations

import tempfile
from typing import Any

import celpy
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from stratum.core.errors import Forbidden
from stratum.reconcile.world import World
from stratum.scheduling.planning import FleetChange, plan
from stratum.server.demo import demo_manifests
from stratum.store.objects import ObjectStore
from stratum.testing import manifests
from stratum.testing.controlled import ControlledFleet

SEED = 7  # ControlledFleet's controllers run with this seed
# A CEL environment raises the recursion limit when made; the policies do it at placement.
# Done once here, before Hypothesis watches the limit.
celpy.Environment()

contracts = st.one_of(
    st.builds(lambda n: {"compute": {"gpus": n}}, st.sampled_from([1, 2, 4, 8])),
    st.builds(lambda m: {"compute": {"gpuMilli": m}}, st.integers(100, 900)),
    st.builds(
        lambda n, across: {
            "compute": {"gpus": n},
            "topology": {"withinReplica": "nvlink", "acrossReplicas": across},
        },
        st.sampled_from([4, 8]),
        st.sampled_from(["rack", "site", "any"]),
    ),
    st.just({"compute": {"gpus": 1}, "sovereignty": {"dataClassification": "personal"}}),
)
jobs = st.lists(
    st.tuples(
        st.sampled_from(["research", "health-eu"]),
        contracts,
        st.integers(1, 3),  # replicas
        st.sampled_from([0, 10, 100]),  # priority
        st.booleans(),  # preemptible
    ),
    min_size=1,
    max_size=8,
)


def _fleet_without_work() -> list[dict[str, Any]]:
    return [d for d in demo_manifests() if d["kind"] != "Workload"]


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # shrinking a store-backed case takes minutes
    suppress_health_check=[HealthCheck.too_slow],
)
@given(jobs)
def test_plan_and_controller_bind_the_same_contracts_on_the_same_nodes(
    job_list: list[tuple[str, dict[str, Any], int, int, bool]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = ObjectStore.open(f"sqlite:///{tmp}/plan.db")
        try:
            fleet = ControlledFleet(store, seed=SEED)
            fleet.apply(_fleet_without_work())
            fleet.settle(passes=2)
            docs = []
            for i, (tenant, contract, replicas, priority, preemptible) in enumerate(job_list):
                body = {**contract, "lifecycle": {"priority": priority, "preemptible": preemptible}}
                docs.append(
                    manifests.workload(f"job-{i}", tenant, body, replicas=replicas, type="batch")
                )
            applied = set()
            for doc in docs:  # admission may refuse some (quota): those never wait
                try:
                    fleet.apply([doc])
                except Forbidden:
                    continue
                applied.add(f"{doc['metadata']['namespace']}/{doc['metadata']['name']}")
            world = World.read(store)
            predicted = plan(
                FleetChange(),
                nodes=world.nodes.values(),
                sites=world.sites,
                profiles=world.profiles,
                tenants=world.tenants,
                workloads=world.workloads.values(),
                placements=world.placements.values(),
                policies=world.policies,
                seed=SEED,
            )
            fleet.manager.run_once()
            after = World.read(store)
        finally:
            store.close()
    assert applied <= {o.workload for o in predicted.outcomes}
    for outcome in predicted.outcomes:
        wl = after.workloads[outcome.workload]
        bound = wl.status.phase in ("Bound", "Running")
        assert bound == outcome.after.startswith("binds"), (outcome, wl.status.message)
        if bound:
            nodes = tuple(r.node for r in after.placements[outcome.workload].spec.replicas)
            assert nodes == outcome.nodes_after
        else:
            assert wl.status.message == outcome.after
