"""The policy result cache keys on every path an expression reads, and never on less."""

from typing import Any

from stratum.core.policies import evaluate, read_values

EU = {"spec": {"jurisdictions": ["EU"], "kind": "datacenter"}}
US = {"spec": {"jurisdictions": ["US"], "kind": "cloud"}}
PERSONAL = (
    "!has(workload.spec.contract.sovereignty.dataClassification) || "
    "workload.spec.contract.sovereignty.dataClassification != 'personal' || "
    "'EU' in site.spec.jurisdictions"
)


def wl(classification: str | None, name: str = "w") -> dict[str, Any]:
    sov = {} if classification is None else {"dataClassification": classification}
    return {"metadata": {"name": name}, "spec": {"contract": {"sovereignty": sov}}}


def test_look_alike_workloads_share_a_key_and_different_values_do_not() -> None:
    act = {"workload": wl("personal", "a"), "tenant": {}, "site": US}
    same = {"workload": wl("personal", "b"), "tenant": {}, "site": US}
    other = {"workload": wl("public", "a"), "tenant": {}, "site": US}
    assert read_values(PERSONAL, act) == read_values(PERSONAL, same)
    assert read_values(PERSONAL, act) != read_values(PERSONAL, other)
    assert read_values(PERSONAL, act) != read_values(PERSONAL, {**act, "site": EU})


def test_a_variable_used_whole_is_never_cached() -> None:
    assert read_values("size(workload) > 0", {"workload": {}, "tenant": {}, "site": {}}) is None


def test_cached_results_stay_right_for_every_combination() -> None:
    for _ in range(2):  # the second round is served from the cache
        assert not evaluate(PERSONAL, workload=wl("personal"), tenant={}, site=US).allowed
        assert evaluate(PERSONAL, workload=wl("personal"), tenant={}, site=EU).allowed
        assert evaluate(PERSONAL, workload=wl("public"), tenant={}, site=US).allowed
        assert evaluate(PERSONAL, workload=wl(None), tenant={}, site=US).allowed
    by_name = "workload.metadata.name != 'blocked'"
    assert evaluate(by_name, workload=wl(None, "ok"), tenant={}, site=US).allowed
    assert not evaluate(by_name, workload=wl(None, "blocked"), tenant={}, site=US).allowed
