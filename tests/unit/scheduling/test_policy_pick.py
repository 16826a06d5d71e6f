"""A single replica is chosen by the policy on the fleet's own snapshot with the nodes the
contract's clauses rule out made infeasible (so that its per-node cache carries over): the
choice never lands on one of them, while decisions without the clause share the cache."""

from __future__ import annotations

from stratum.api.v1alpha1.contract import Contract
from stratum.scheduling.contracts import FleetState, Held, WorkloadAsk, place_contract
from stratum.scheduling.policies import make_policy
from stratum.testing.fleets import fleet_node


def ask(contract: dict[str, object]) -> WorkloadAsk:
    return WorkloadAsk("t", 1, Contract.model_validate(contract))


def test_the_policy_never_picks_a_node_a_clause_rules_out() -> None:
    nodes = [
        fleet_node(f"us-{i}", "hgx-h100-80gb", site="us", country="US", jurisdictions=("US",))
        for i in range(4)
    ]
    nodes += [fleet_node(f"eu-{i}", "hgx-h100-80gb", site="eu") for i in range(4)]
    # The US nodes are the tightest fit (7 of 8 GPUs taken): a packing policy wants them.
    held = [Held(f"us-{i}", tuple(range(7))) for i in range(4)] + [Held("eu-0", (0, 1))]
    state = FleetState.build(nodes, held)
    policy = make_policy("stratum", seed=0)
    eu = ask({"compute": {"gpus": 1}, "sovereignty": {"jurisdictions": ["EU"]}})
    anywhere = ask({"compute": {"gpus": 1}})
    for _ in range(12):
        d = place_contract(state, eu, policy=policy)
        assert d.placed and d.bindings[0].node.startswith("eu-")
        state = state.bind("t", d.bindings)
        # Decisions without the clause, on the same policy and lineage, in between.
        assert place_contract(state, anywhere, policy=policy).placed
    taken = {
        n.name: int((state.snapshot.gpu_free[i] == 0).sum())
        for i, n in enumerate(nodes)
        if n.name.startswith("eu-")
    }
    assert sum(taken.values()) == 2 + 12
