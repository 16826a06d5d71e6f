"""A single replica is chosen by the policy on the fleet's own snapshot with the nodes the
contract's clauses rule out made infeasible (so that its per-node cache carries over): the
choice never lands on one of them, while decisions without the clause share the cache."""

from __future__ import annotations

from stratum.api.v1alpha1.contract import Contract
from stratum.scheduling.contracts import FleetState, Held, WorkloadAsk, place_contract
from stratum.scheduling.policies import make_policy
from stratum.scheduling.policies.reserve import SlotBook
from stratum.scheduling.policies.stratum import StratumPolicy
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


def test_the_policys_slot_book_counts_the_fleet_not_the_rows_a_clause_hides() -> None:
    """The rows a clause rules out are hidden from the policy for one decision only: the
    slots its reserves keep count of (here: 8-GPU requests) are those of the whole fleet as it
    is, whichever nodes the decision that built or refreshed the count could use."""
    nodes = [
        fleet_node(f"us-{i}", "hgx-h100-80gb", site="us", country="US", jurisdictions=("US",))
        for i in range(4)
    ]
    nodes += [fleet_node(f"eu-{i}", "hgx-h100-80gb", site="eu") for i in range(4)]
    state = FleetState.build(nodes, [])
    policy = make_policy("stratum", seed=0)
    assert isinstance(policy, StratumPolicy)
    whole_node = ask({"compute": {"gpus": 8}, "sovereignty": {"jurisdictions": ["EU"]}})
    one = ask({"compute": {"gpus": 1}, "sovereignty": {"jurisdictions": ["EU"]}})
    for contract in (whole_node, one, one):
        d = place_contract(state, contract, policy=policy)
        assert d.placed and d.bindings[0].node.startswith("eu-")
        state = state.bind("t", d.bindings)
    book = policy._book  # what the reserves read: one count per class of the fleet
    assert book is not None
    truth = SlotBook(book.classes, state.snapshot)
    assert book.left(state.snapshot).tolist() == truth.left(state.snapshot).tolist()
