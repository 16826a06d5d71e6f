"""Pure governance logic: tokens, roles, CEL policies, quota, budget, sovereignty, audit."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stratum.core import access, governance
from stratum.core.access import Principal
from stratum.core.audit import GENESIS, record_hash, record_name, verify
from stratum.core.errors import Forbidden, Invalid, NotFound
from stratum.core.manifests import load_documents
from stratum.core.policies import compile_expression, evaluate
from stratum.core.tokens import new_token, parse_token, secret_matches
from tests import EXAMPLES


def site(
    name: str,
    kind: str = "datacenter",
    country: str = "DE",
    jurisdictions: tuple[str, ...] = ("EU",),
    price: float = 2.0,
) -> dict[str, Any]:
    return {
        "kind": "Site",
        "metadata": {"name": name},
        "spec": {
            "kind": kind,
            "provider": "p",
            "country": country,
            "jurisdictions": list(jurisdictions),
            "pricing": {"currency": "EUR", "gpuHour": price},
        },
    }


def workload(gpus: int = 1, replicas: int = 1, **contract: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "compute": {"gpus": gpus, "models": []},
        "sovereignty": {"jurisdictions": [], "dataClassification": None},
        "lifecycle": {"preemptible": False, "maxDurationSeconds": None},
        "isolation": "shared",
    }
    for key, value in contract.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return {
        "kind": "Workload",
        "metadata": {"name": "w", "namespace": "t"},
        "spec": {"type": "training", "replicas": replicas, "contract": base},
        "status": {},
    }


def tenant(name: str = "t", **spec: Any) -> dict[str, Any]:
    return {"kind": "Tenant", "metadata": {"name": name}, "spec": spec, "status": {}}


def example_policies() -> list[dict[str, Any]]:
    text = (EXAMPLES / "07-policies.yaml").read_text()
    return [d.data for d in load_documents(text, "07-policies.yaml")]


# -- tokens ------------------------------------------------------------------------------
def test_tokens_are_random_parse_back_and_check_only_their_own_secret() -> None:
    a, b = new_token(), new_token()
    assert a.value != b.value and a.value.startswith("stt_")
    parsed = parse_token(a.value)
    assert parsed is not None and parsed[0] == a.id
    assert secret_matches(parsed[1], a.salt, a.secret_hash)
    assert not secret_matches(parsed[1], b.salt, b.secret_hash)
    assert a.secret_hash != parsed[1] and parsed[1] not in a.secret_hash
    assert parse_token("Bearer nonsense") is None


# -- roles -------------------------------------------------------------------------------
def test_roles_scope_namespaces_and_never_reveal_other_tenants() -> None:
    member = Principal("ada", tenant_roles={"a": "member"})
    viewer = Principal("bob", tenant_roles={"a": "viewer"})
    access.check(member, "write", "Workload", namespaced=True, namespace="a")
    access.check(viewer, "read", "Workload", namespaced=True, namespace="a")
    with pytest.raises(Forbidden, match="viewer"):
        access.check(viewer, "write", "Workload", namespaced=True, namespace="a")
    # Someone else's namespace and no namespace at all read the same.
    with pytest.raises(NotFound) as other:
        access.check(member, "read", "Workload", namespaced=True, namespace="b")
    with pytest.raises(NotFound) as missing:
        access.check(member, "read", "Workload", namespaced=True, namespace="nowhere-b")
    assert other.value.message.replace('"b"', "X") == missing.value.message.replace(
        '"nowhere-b"', "X"
    )
    with pytest.raises(NotFound):
        access.check(member, "read", "Tenant", namespaced=False, name="b")
    with pytest.raises(Forbidden):
        access.check(member, "read", "Node", namespaced=False)
    access.check(member, "read", "Site", namespaced=False)
    with pytest.raises(Forbidden):
        access.check(member, "write", "Placement", namespaced=True, namespace="a")
    assert access.visible_namespaces(member, "Workload") == frozenset({"a"})
    assert access.visible_namespaces(Principal("root", "platform-viewer"), "Workload") is None
    with pytest.raises(Forbidden):
        access.check(Principal("v", "platform-viewer"), "write", "Site", namespaced=False)


def test_roles_come_from_tenant_members_the_stronger_role_wins() -> None:
    tenants = [
        tenant(
            "a",
            members=[{"user": "ada", "role": "viewer"}, {"user": "ada", "role": "tenant-admin"}],
        ),
        tenant("b", members=[{"user": "bob", "role": "member"}]),
    ]
    assert access.tenant_roles_of("ada", tenants) == {"a": "tenant-admin"}


def test_token_grants_never_exceed_the_creator() -> None:
    admin = Principal("root", "platform-admin")
    access.check_token_grant(admin, subject="x", role="platform-admin", tenant=None)
    ta = Principal("ada", tenant_roles={"a": "tenant-admin", "c": "member"})
    access.check_token_grant(ta, subject="service:ci", role="member", tenant="a")
    with pytest.raises(Forbidden):
        access.check_token_grant(ta, subject="service:ci", role="member", tenant="c")
    with pytest.raises(NotFound):
        access.check_token_grant(ta, subject="service:ci", role="member", tenant="b")
    with pytest.raises(Forbidden):
        access.check_token_grant(ta, subject="ada", role="platform-admin", tenant=None)
    with pytest.raises(Forbidden):
        access.check_token_grant(ta, subject="someone-else", role=None, tenant=None)


# -- CEL ---------------------------------------------------------------------------------
def test_a_policy_that_does_not_compile_names_line_and_column() -> None:
    with pytest.raises(Invalid) as err:
        compile_expression("workload.spec.type == 'training' &&\n  site.spec. == 'x'")
    assert "line 2, column" in err.value.message
    assert err.value.causes[0].field == "spec.expression"
    with pytest.raises(Invalid, match="undeclared reference to 'nope'"):
        compile_expression("nope(workload)")


def test_shipped_policies_compile_and_behave_as_described() -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in example_policies()}
    assert len(policies) == 3
    eu, us, edge = site("fra"), site("us", "cloud", "US", ("US",)), site("lyon", "edge", "FR")
    personal = workload(sovereignty={"dataClassification": "personal"})
    expr = policies["personal-data-stays-in-eu"]["expression"]
    assert evaluate(expr, workload=personal, tenant=tenant(), site=eu).allowed
    assert not evaluate(expr, workload=personal, tenant=tenant(), site=us).allowed
    assert evaluate(expr, workload=workload(), tenant=tenant(), site=us).allowed
    expr = policies["no-preemptible-at-the-edge"]["expression"]
    preemptible = workload(lifecycle={"preemptible": True})
    assert not evaluate(expr, workload=preemptible, tenant=tenant(), site=edge).allowed
    assert evaluate(expr, workload=preemptible, tenant=tenant(), site=eu).allowed
    assert evaluate(expr, workload=workload(), tenant=tenant(), site=edge).allowed
    expr = policies["health-eu-on-dedicated-nodes"]["expression"]
    assert not evaluate(expr, workload=workload(), tenant=tenant("health-eu"), site=eu).allowed
    assert evaluate(
        expr, workload=workload(isolation="dedicated-node"), tenant=tenant("health-eu"), site=eu
    ).allowed
    assert evaluate(expr, workload=workload(), tenant=tenant("research"), site=eu).allowed


def test_policies_rule_out_sites_deny_when_none_is_left_and_warn() -> None:
    policies = example_policies()
    eu, us, edge = site("fra"), site("us", "cloud", "US", ("US",)), site("lyon", "edge", "FR")
    personal = workload(sovereignty={"dataClassification": "personal"})
    decision = governance.judge_sites(
        workload=personal, tenant=tenant(), sites=[eu, us], policies=policies
    )
    assert decision.allowed_sites == ["fra"] and not decision.denials
    decision = governance.judge_sites(
        workload=personal, tenant=tenant(), sites=[us], policies=policies
    )
    assert decision.denials and "personal-data-stays-in-eu" in decision.denials[0]
    assert "rules out us" in decision.denials[0]
    preemptible = workload(lifecycle={"preemptible": True})
    decision = governance.judge_sites(
        workload=preemptible, tenant=tenant(), sites=[eu, edge], policies=policies
    )
    assert not decision.denials
    assert decision.warnings == [
        "policy no-preemptible-at-the-edge: preemptible work on "
        "edge sites is discouraged (little spare capacity) "
        "(at lyon)"
    ]
    # Sovereignty in the contract and the tenant's law narrow the sites before policies.
    decision = governance.judge_sites(
        workload=workload(sovereignty={"jurisdictions": ["US"]}),
        tenant=tenant(allowedJurisdictions=["EU"]),
        sites=[eu, us],
        policies=[],
    )
    assert decision.allowed_sites == []
    assert not decision.denials, "no site left by sovereignty is the scheduler's to report"


# -- quota and budget --------------------------------------------------------------------
def test_gpu_demand_counts_whole_fractional_and_mig() -> None:
    assert governance.demand_of(workload(gpus=8, replicas=4)).milli == 32000
    frac = workload()
    frac["spec"]["contract"]["compute"] = {"gpuMilli": 250}
    assert governance.demand_of(frac).milli == 250
    mig = workload()
    mig["spec"]["contract"]["compute"] = {"migProfile": "3g.40gb"}
    assert governance.demand_of(mig).milli == 429


def test_quota_boundary_total_and_per_model() -> None:
    t = tenant(quota={"gpus": 8, "gpusByModel": {"H100": 4}})
    usage = governance.usage_of([workload(gpus=4)])
    assert governance.quota_problems(t, usage, governance.demand_of(workload(gpus=4))) == []
    over = governance.quota_problems(t, usage, governance.demand_of(workload(gpus=5)))
    assert over and "may hold 8 GPUs; it holds 4" in over[0]
    h100 = workload(gpus=4, compute={"models": ["H100"]})
    assert governance.quota_problems(t, governance.Usage(), governance.demand_of(h100)) == []
    h100_5 = workload(gpus=5, compute={"models": ["H100"]})
    assert any(
        "4 H100" in p
        for p in governance.quota_problems(t, governance.Usage(), governance.demand_of(h100_5))
    )
    done = workload(gpus=8)
    done["status"] = {"phase": "Succeeded"}
    assert governance.usage_of([done]).milli == 0


def test_cpu_quota_counts_cores_times_replicas_with_the_contracts_default() -> None:
    t = tenant(quota={"cpuCores": 10})
    eight = workload(replicas=2, compute={"cpuCores": 4})
    assert governance.demand_of(eight).cpu_milli == 8000
    usage = governance.usage_of([eight])
    assert governance.quota_problems(t, usage, governance.demand_of(workload())) == []  # 1 core
    two = governance.demand_of(workload(compute={"cpuCores": 2.5}))
    assert governance.quota_problems(t, usage, two) == [
        "quota: tenant t may use 10 CPU cores; it uses 8 and this workload asks for 2.5"
    ]
    assert governance.usage_of([eight]).as_wire()["cpuCores"] == 8


def test_budget_hard_limit_refuses_soft_limit_warns() -> None:
    t = tenant(budget={"period": "month", "gpuHours": 100, "softLimitPct": 80, "hardLimit": True})
    t["status"] = {"usage": {"gpuHours": 50}}
    assert (
        governance.budget_check(t, projected_hours=10, projected_cost=0) == governance.BudgetCheck()
    )
    warned = governance.budget_check(t, projected_hours=30, projected_cost=0)
    assert warned.refusal is None and warned.warning and "soft limit 80" in warned.warning
    assert governance.budget_check(t, projected_hours=50, projected_cost=0).refusal is None
    refused = governance.budget_check(t, projected_hours=51, projected_cost=0)
    assert refused.refusal and "used 50 of 100 GPU-hours" in refused.refusal
    t["status"]["usage"]["gpuHours"] = 100
    assert governance.budget_check(t, projected_hours=0, projected_cost=0).refusal
    t["spec"]["budget"]["hardLimit"] = False
    soft_only = governance.budget_check(t, projected_hours=0, projected_cost=0)
    assert soft_only.refusal is None and soft_only.warning


def test_money_budget_uses_the_cheapest_allowed_site() -> None:
    w = workload(gpus=2, lifecycle={"maxDurationSeconds": 36000})  # 20 GPU-hours
    cost = governance.cheapest_cost(w, [site("a", price=3.0), site("b", price=2.0)], "EUR")
    assert cost == pytest.approx(40.0)


def test_a_gpu_hour_is_charged_its_energy_at_the_sites_kwh_price() -> None:
    pricing = {"currency": "EUR", "gpuHour": 2.0, "gpuHourByModel": {"L4-24GB": 0.5}, "kwh": 0.2}
    # H100 SXM: 700 W in the catalog, so 0.7 kWh an hour; the profile's board power wins.
    assert governance.gpu_hour_price(pricing, "H100-SXM5-80GB") == pytest.approx(2.0 + 0.14)
    assert governance.gpu_hour_price(pricing, "H100-SXM5-80GB", 500) == pytest.approx(2.1)
    assert governance.gpu_hour_price(pricing, "L4-24GB") == pytest.approx(0.5 + 0.2 * 0.072)
    assert governance.gpu_hour_price(pricing, "no-such-gpu") == 2.0  # power unknown
    assert governance.gpu_hour_price({**pricing, "kwh": 0}, "H100-SXM5-80GB") == 2.0
    # Admission's projected cost: the cheapest allowed model, energy included.
    energy = site("e", price=2.0)
    energy["spec"]["pricing"]["kwh"] = 0.2
    w = workload(gpus=1, lifecycle={"maxDurationSeconds": 3600})
    w["spec"]["contract"]["compute"]["models"] = ["H100-SXM5-80GB"]
    assert governance.cheapest_cost(w, [energy], "EUR") == pytest.approx(2.14)


# -- audit -------------------------------------------------------------------------------
def chain(n: int) -> list[dict[str, Any]]:
    records, previous = [], GENESIS
    for seq in range(1, n + 1):
        spec: dict[str, Any] = {
            "sequence": seq,
            "timestamp": f"2026-01-01T00:00:0{seq}Z",
            "actor": "ada",
            "action": "create",
            "object": {"kind": "Site", "name": f"s{seq}"},
            "sourceAddress": None,
            "beforeDigest": None,
            "afterDigest": f"sha256:{seq}",
            "previousHash": previous,
        }
        spec["hash"] = previous = record_hash(spec)
        records.append({"metadata": {"name": record_name(seq)}, "spec": spec})
    return records


def test_audit_chain_verifies_and_names_edited_and_deleted_records() -> None:
    records = chain(5)
    assert verify(records, expected=5).ok
    edited = copy.deepcopy(records)
    edited[2]["spec"]["actor"] = "mallory"
    problems = verify(edited, expected=5).problems
    assert [p.sequence for p in problems] == [3] and "edited" in problems[0].message
    deleted = records[:1] + records[2:]
    problems = verify(deleted, expected=5).problems
    assert problems[0].sequence == 2 and "missing" in problems[0].message
    tail = verify(records[:4], expected=5).problems
    assert [p.sequence for p in tail] == [5] and "missing" in tail[0].message


def test_sovereignty_that_rules_out_every_site_is_accepted_with_a_warning_saying_so() -> None:
    """Not a refusal (a lawful site may join the fleet later; the scheduler then places it)
    but said at apply, rather than first seen as Rejected."""
    sites = [site("fra", jurisdictions=("EU",)), site("par", country="FR")]
    us_only = workload(sovereignty={"jurisdictions": ["US"]})
    result = governance.judge_sites(workload=us_only, tenant=tenant(), sites=sites, policies=[])
    assert result.allowed_sites == [] and result.denials == []
    assert result.warnings == [
        "no site satisfies the workload's sovereignty (fra: sovereignty.jurisdictions: outside "
        "US (the site is in DE, under EU); par: sovereignty.jurisdictions: outside US (the site "
        "is in FR, under EU)): it stays Rejected until a site that does joins the fleet"
    ]
    eu_tenant = tenant(allowedJurisdictions=["EU"])
    fine = governance.judge_sites(workload=workload(), tenant=eu_tenant, sites=sites, policies=[])
    assert fine.warnings == [] and fine.allowed_sites == ["fra", "par"]
    nowhere = governance.judge_sites(workload=us_only, tenant=tenant(), sites=[], policies=[])
    assert nowhere.warnings == []  # no fleet yet: nothing to say about it


def test_each_gpu_is_held_by_whole_gpus_shares_and_mig_slices_at_most_whole() -> None:
    from stratum.core.demand import allocation_milli, held_by_gpu

    whole = {"gpus": [0, 1]}
    share = {"gpus": [2], "gpuMilli": 250}
    mig = {"gpus": [3], "migInstance": "3g.40gb on GPU 3 slots 0-3"}
    assert [allocation_milli(a) for a in (whole, share, mig)] == [1000, 250, 429]
    held = held_by_gpu([whole, share, share, mig, mig, mig])
    assert held == {0: 1000, 1: 1000, 2: 500, 3: 1000}  # three 3g slices: capped at whole


def test_a_mig_slice_is_charged_its_part_of_the_gpu_not_the_whole() -> None:
    from stratum.core.demand import bound_milli

    assert bound_milli(None, "1g.10gb on GPU 0 slots 6-6") == 143  # 1 of 7 slices, rounded up
    assert bound_milli(None, "7g.80gb on GPU 0 slots 0-7") == 1000
    assert bound_milli(500, None) == 500 and bound_milli(None, None) == 1000
