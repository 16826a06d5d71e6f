"""The keyed audit chain and its anchor, and who may grant which token: pure functions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stratum.core import access
from stratum.core.access import Principal, SubjectRoles
from stratum.core.audit import GENESIS, Anchor, AuditKey, record_hash, record_name, verify
from stratum.core.errors import Forbidden, NotFound
from stratum.core.secrets import Keyring

KEY = AuditKey.derive(Keyring.generate_key())
OTHER = AuditKey.derive(Keyring.generate_key())


def chain(n: int, key: AuditKey | None = KEY, start: int = 1, previous: str = GENESIS) -> list[Any]:
    records = []
    for seq in range(start, start + n):
        spec: dict[str, Any] = {
            "sequence": seq,
            "timestamp": "2026-01-01T00:00:00Z",
            "actor": "ada",
            "action": "create",
            "object": {"kind": "Site", "name": f"s{seq}"},
            "sourceAddress": None,
            "beforeDigest": None,
            "afterDigest": None,
            "previousHash": previous,
        }
        if key is not None:
            spec["keyId"] = key.id
        spec["hash"] = previous = record_hash(spec, None if key is None else key.secret)
        records.append({"metadata": {"name": record_name(seq)}, "spec": spec})
    return records


def test_a_keyed_chain_verifies_only_with_its_key() -> None:
    records = chain(3)
    assert verify(records, expected=3, keys=[KEY]).ok
    missing = verify(records, expected=3, keys=[OTHER])
    assert [p.sequence for p in missing.problems] == [1, 2, 3]
    assert "which this server does not hold" in missing.problems[0].message
    # Re-chained by someone without the key: plain hashes under the same keyId.
    forged = copy.deepcopy(records)
    forged[1]["spec"]["actor"] = "mallory"
    previous = forged[0]["spec"]["hash"]
    for r in forged[1:]:
        r["spec"]["previousHash"] = previous
        r["spec"]["hash"] = previous = record_hash(r["spec"])
    assert [p.sequence for p in verify(forged, expected=3, keys=[KEY]).problems] == [2, 3]


def test_records_from_before_the_key_are_noted_and_a_downgrade_is_a_problem() -> None:
    old = chain(2, key=None)
    new = chain(2, start=3, previous=old[-1]["spec"]["hash"])
    result = verify(old + new, expected=4, keys=[KEY])
    assert result.ok and result.unkeyed == 2
    assert "(1..2) were written without an audit key" in result.notes[0]
    stripped = chain(1, key=None, start=5, previous=new[-1]["spec"]["hash"])
    problems = verify(old + new + stripped, expected=5, keys=[KEY]).problems
    assert [p.sequence for p in problems] == [5] and "carries no key" in problems[0].message


def test_the_anchor_catches_truncation_and_rewriting() -> None:
    records = chain(5)
    head = Anchor.sign(5, records[-1]["spec"]["hash"], KEY)
    assert verify(records, expected=5, keys=[KEY], anchor=head).anchored == 5
    truncated = verify(records[:3], expected=3, keys=[KEY], anchor=head)
    assert "the log reached 5" in truncated.problems[0].message
    rewritten = chain(5, key=None)
    assert "not the one the anchor" in str(verify(rewritten, expected=5, keys=[KEY], anchor=head))
    forged = Anchor.sign(5, records[-1]["spec"]["hash"], OTHER)
    assert (
        "not signed" in verify(records, expected=5, keys=[KEY], anchor=forged).problems[0].message
    )
    assert Anchor.from_wire(head.to_wire()) == head
    with pytest.raises(ValueError):
        Anchor.from_wire({"sequence": 1})
    gone = verify(records, expected=5, keys=[KEY], anchor=None, anchor_expected=True)
    assert not gone.ok and "missing" in gone.problems[0].message


def test_token_grants_follow_what_the_issuer_administers() -> None:
    ada = Principal("ada", tenant_roles={"a": "tenant-admin", "c": "member"})
    member_of_a = SubjectRoles(member_roles={"a": "viewer"})
    access.check_token_grant(ada, subject="vic", role="viewer", tenant="a", holds=member_of_a)
    with pytest.raises(Forbidden, match="at most viewer"):
        access.check_token_grant(ada, subject="vic", role="member", tenant="a", holds=member_of_a)
    elsewhere = SubjectRoles(member_roles={"a": "viewer", "b": "tenant-admin"})
    with pytest.raises(Forbidden, match="outside the tenants you administer"):
        access.check_token_grant(ada, subject="bob", role="viewer", tenant="a", holds=elsewhere)
    bound_elsewhere = SubjectRoles(token_tenants=frozenset({"b"}))
    with pytest.raises(Forbidden):
        access.check_token_grant(
            ada, subject="service:ci", role="member", tenant="a", holds=bound_elsewhere
        )
    for subject, holds in (("admin", SubjectRoles()), ("agent-1", SubjectRoles(platform=True))):
        with pytest.raises(Forbidden, match="platform role"):
            access.check_token_grant(ada, subject=subject, role="member", tenant="a", holds=holds)
    with pytest.raises(Forbidden, match="not a member"):
        access.check_token_grant(ada, subject="eve", role="viewer", tenant="a")
    with pytest.raises(Forbidden, match="at most member"):
        access.check_token_grant(ada, subject="ada", role="tenant-admin", tenant="c")
    with pytest.raises(NotFound):
        access.check_token_grant(ada, subject="ada", role="viewer", tenant="b")


def test_only_platform_admins_manage_platform_tokens() -> None:
    impostor = Principal("admin", tenant_roles={"a": "tenant-admin"})

    def manages(**token: Any) -> bool:
        return access.may_manage_token(impostor, **token)

    assert not manages(subject="admin", tenant=None, role="platform-admin", created_by="x")
    assert manages(subject="admin", tenant="a", role="member", created_by="x")
    assert manages(subject="service:ci", tenant="a", role="member", created_by="admin")
    assert not manages(subject="service:ci", tenant="b", role="member", created_by="admin")
    assert not manages(subject="ada", tenant=None, role=None, created_by="admin")
    assert not manages(subject="bob", tenant="a", role="member", created_by="someone")
