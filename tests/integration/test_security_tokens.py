"""Who may mint, see and revoke tokens, over real HTTP on SQLite and PostgreSQL: tokens
only for oneself or for the members of a tenant one administers, never more than the
issuer has nor longer than the issuer's token lives; platform tokens out of tenants'
reach; the last admin kept; revocation ending open watches; the issuer chain in the
audit log; tenants' watches on cluster-scoped kinds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from stratum.client.http import StratumClient
from stratum.core.errors import Conflict, Forbidden, NotFound, Unauthorized
from stratum.testing.harness import LiveServer


def _tenant(name: str, **members: str) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"members": [{"user": u, "role": r} for u, r in members.items()]},
    }


def _workload(name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "training"},
    }


def _site(name: str, provider: str = "p") -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Site",
        "metadata": {"name": name},
        "spec": {"kind": "edge", "provider": provider, "country": "FR"},
    }


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@pytest.fixture
def people(client: StratumClient, live_server: LiveServer) -> Iterator[dict[str, StratumClient]]:
    """Tenant a: ada (tenant-admin), mia (member), vic (viewer), bob (viewer); tenant b:
    bob (tenant-admin). A client for ada, mia and bob."""
    client.apply_list(
        [
            _tenant("a", ada="tenant-admin", mia="member", vic="viewer", bob="viewer"),
            _tenant("b", bob="tenant-admin"),
        ]
    )
    clients = {}
    for user in ("ada", "mia", "bob"):
        made = client.create_token(f"{user}-laptop", subject=user)
        clients[user] = StratumClient(live_server.url, made["token"])
    yield clients
    for c in clients.values():
        c.close()


def test_a_tenant_admin_mints_only_for_its_own_members_within_its_rights(
    people: dict[str, StratumClient], live_server: LiveServer
) -> None:
    ada = people["ada"]
    # bob is tenant-admin of b and a viewer of a: a token for bob, even bound to a, would
    # speak as bob everywhere (b included). That took tenant b over.
    with pytest.raises(Forbidden, match="outside the tenants you administer"):
        ada.create_token("takeover", subject="bob", tenant="a", role="viewer")
    # The platform's own subjects and roles are out of reach.
    with pytest.raises(Forbidden, match="platform role"):
        ada.create_token("root", subject="admin", tenant="a", role="member")
    with pytest.raises(Forbidden, match="platform role"):
        ada.create_token("sys", subject="system:server", tenant="a", role="member")
    for role in ("platform-admin", "platform-viewer", "agent"):
        with pytest.raises(Forbidden, match="only platform admins"):
            ada.create_token("root", role=role)
    with pytest.raises(Forbidden, match="for yourself"):
        ada.create_token("mia", subject="mia")  # unbound: mia's roles everywhere
    # Members of a, at most their own role; service subjects; never a stranger.
    with pytest.raises(Forbidden, match="at most viewer"):
        ada.create_token("vic", subject="vic", tenant="a", role="member")
    assert ada.create_token("vic", subject="vic", tenant="a", role="viewer")["tenant"] == "a"
    assert ada.create_token("mia", subject="mia", tenant="a", role="member")["role"] == "member"
    with pytest.raises(Forbidden, match="not a member of a"):
        ada.create_token("eve", subject="eve", tenant="a", role="viewer")
    assert ada.create_token("ci", service=True, tenant="a", role="member")["subject"] == (
        "service:ci"
    )
    # A member makes tokens for itself, never above its role and never for others.
    mia = people["mia"]
    with pytest.raises(Forbidden, match="at most member"):
        mia.create_token("up", tenant="a", role="tenant-admin")
    with pytest.raises(Forbidden, match="tenant-admin of a"):
        mia.create_token("ci2", service=True, tenant="a", role="viewer")
    assert mia.create_token("ro", tenant="a", role="viewer")["subject"] == "mia"
    # A tenant-admin of b cannot reach into a, nor take b's admin subject from a's side.
    with pytest.raises(Forbidden):
        people["bob"].create_token("ada", subject="ada", tenant="b", role="member")
    # What ada made carries no more than she gave.
    made = ada.create_token("m", subject="mia", tenant="a", role="member")
    with StratumClient(live_server.url, made["token"]) as m:
        assert m.whoami()["tenantRoles"] == {"a": "member"}


def test_a_token_never_outlives_the_token_that_made_it(
    people: dict[str, StratumClient], client: StratumClient, live_server: LiveServer
) -> None:
    short = client.create_token("short", subject="ada", expires_in_seconds=60)
    with StratumClient(live_server.url, short["token"]) as ada:
        forever = ada.create_token("ci", service=True, tenant="a", role="member")
        longer = ada.create_token("ci-2", service=True, tenant="a", expires_in_seconds=86400)
        shorter = ada.create_token("ci-3", service=True, tenant="a", expires_in_seconds=10)
        own = ada.create_token("mine")
    limit = _when(short["expiresAt"])
    assert forever["expiresAt"] is not None and _when(forever["expiresAt"]) <= limit
    assert _when(longer["expiresAt"]) <= limit
    assert _when(own["expiresAt"]) <= limit
    assert _when(shorter["expiresAt"]) < limit  # a shorter life is kept
    # ...and through a second generation.
    with StratumClient(live_server.url, own["token"]) as ada2:
        grandchild = ada2.create_token("again")
    assert _when(grandchild["expiresAt"]) <= limit
    assert grandchild["issuerTokenId"] == own["id"] and own["issuerTokenId"] == short["id"]


def test_a_tenant_token_named_admin_cannot_see_or_revoke_platform_tokens(
    people: dict[str, StratumClient], client: StratumClient, live_server: LiveServer
) -> None:
    bootstrap = client.whoami()["tokenId"]
    second = client.create_token("ops", role="platform-admin")
    # A platform admin may make a tenant token for the subject "admin" (least privilege);
    # it speaks as "admin" in tenant a and nowhere else.
    named_admin = client.create_token("a-admin", subject="admin", tenant="a", role="tenant-admin")
    with StratumClient(live_server.url, named_admin["token"]) as impostor:
        listed = impostor.list_tokens()
        assert all(t["role"] not in ("platform-admin", "agent") for t in listed), listed
        assert bootstrap not in {t["id"] for t in listed}
        for target in (bootstrap, second["id"]):
            with pytest.raises(NotFound):
                impostor.revoke_token(target)
        # Nor the tokens the real admin issued for other people in other tenants.
        bobs = client.create_token("bob-b", subject="bob", tenant="b", role="tenant-admin")
        assert bobs["id"] not in {t["id"] for t in impostor.list_tokens()}
        with pytest.raises(NotFound):
            impostor.revoke_token(bobs["id"])
        # What it does is audited with who issued it.
        impostor.create(_workload("from-impostor", "a"))
    assert client.whoami()["subject"] == "admin"  # the platform is still administered
    record = next(
        r for r in client.list("AuditRecord") if r["spec"]["object"].get("name") == "from-impostor"
    )
    assert record["spec"]["actor"] == "admin"
    assert record["spec"]["token"] == named_admin["id"]
    assert record["spec"]["issuedBy"] == [{"subject": "admin", "token": bootstrap}]
    assert client.verify_audit()["ok"]


def test_a_tenant_admin_sees_and_revokes_what_it_issued_not_its_peers_tokens(
    people: dict[str, StratumClient], client: StratumClient
) -> None:
    ada, bob = people["ada"], people["bob"]
    ci = ada.create_token("ci", service=True, tenant="a", role="member")
    by_admin = client.create_token("ops-a", service=True, tenant="a", role="member")
    ids = {t["id"] for t in ada.list_tokens()}
    assert ci["id"] in ids and by_admin["id"] not in ids
    with pytest.raises(NotFound):
        bob.revoke_token(ci["id"])
    with pytest.raises(NotFound):
        ada.revoke_token(by_admin["id"])
    assert ada.revoke_token(ci["id"])["state"] == "revoked"


def test_the_last_platform_admin_token_cannot_be_revoked(
    client: StratumClient, live_server: LiveServer
) -> None:
    bootstrap = client.whoami()["tokenId"]
    with pytest.raises(Conflict, match="last active platform-admin token") as err:
        client.revoke_token(bootstrap)
    assert "stratum admin recover" in err.value.message
    assert client.whoami()["subject"] == "admin"
    # With a second admin, the first may go; then the second is the last.
    second = client.create_token("ops", subject="ops", role="platform-admin")
    with StratumClient(live_server.url, second["token"]) as ops:
        assert ops.revoke_token(bootstrap)["state"] == "revoked"
        with pytest.raises(Conflict):
            ops.revoke_token(second["id"])
        assert ops.whoami()["platformRole"] == "platform-admin"
        # Nor by revoking the token that made the last one, with what it issued.
        made = ops.create_token("made-by-ops", role="platform-admin")
        with pytest.raises(Conflict):
            ops.revoke_token(second["id"], with_issued=True)
        assert ops.revoke_token(made["id"])["state"] == "revoked"
        # An expired admin token does not count as a second admin.
        brief = ops.create_token("brief", role="platform-admin", expires_in_seconds=1)
        time.sleep(1.2)
        with pytest.raises(Conflict):
            ops.revoke_token(second["id"])
        assert brief["id"]


def test_revoking_a_token_ends_the_watches_it_opened(
    people: dict[str, StratumClient], client: StratumClient, live_server: LiveServer
) -> None:
    made = client.create_token("watcher", subject="mia")
    events: list[dict[str, Any]] = []
    ended = threading.Event()

    def watch() -> None:
        with StratumClient(live_server.url, made["token"]) as mia:
            for event in mia.watch("Workload", namespace="a", timeout=30):
                events.append(event)
        ended.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    time.sleep(0.5)
    client.create(_workload("before", "a"))
    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert events and events[0]["object"]["metadata"]["name"] == "before"
    revoked_at = time.monotonic()
    client.revoke_token(made["id"])
    assert ended.wait(timeout=10), "the watch outlived its token"
    assert time.monotonic() - revoked_at < 5
    assert events[-1]["type"] == "ERROR"
    assert "revoked" in events[-1]["object"]["message"]
    assert events[-1]["object"]["code"] == 401
    with StratumClient(live_server.url, made["token"]) as gone, pytest.raises(Unauthorized):
        gone.whoami()


def test_a_tenant_members_watch_on_cluster_scoped_kinds_delivers_changes(
    people: dict[str, StratumClient], client: StratumClient
) -> None:
    client.create(_site("lyon"))
    mia = people["mia"]
    seen: list[tuple[str, str, str]] = []
    listed = {"Site": threading.Event(), "Tenant": threading.Event()}

    def watch(kind: str, stop: str) -> None:
        for event in mia.watch(kind, timeout=20):
            if event["type"] == "BOOKMARK":
                continue
            obj = event["object"]
            seen.append((event["type"], obj["kind"], obj["metadata"]["name"]))
            listed[kind].set()  # the initial list arrived: what follows is a change
            if (event["type"], obj["metadata"]["name"]) == ("MODIFIED", stop):
                return

    threads = [
        threading.Thread(target=watch, args=("Site", "lyon"), daemon=True),
        threading.Thread(target=watch, args=("Tenant", "a"), daemon=True),
    ]
    for t in threads:
        t.start()
    assert all(e.wait(timeout=10) for e in listed.values())
    site = client.get("Site", "lyon")
    site["spec"]["provider"] = "q"
    client.replace(site)
    client.apply(_tenant("b", bob="tenant-admin", eve="member"))  # not mia's: unseen
    client.apply(
        _tenant("a", ada="tenant-admin", mia="member", vic="viewer", bob="viewer", zoe="viewer")
    )
    for t in threads:
        t.join(timeout=20)
    assert ("MODIFIED", "Site", "lyon") in seen
    assert ("MODIFIED", "Tenant", "a") in seen
    assert not any(name == "b" for _, kind, name in seen if kind == "Tenant")


def test_revoking_with_what_it_issued_ends_a_stolen_tokens_offspring(
    people: dict[str, StratumClient], client: StratumClient, live_server: LiveServer
) -> None:
    stolen = client.create_token("ada-phone", subject="ada")
    with StratumClient(live_server.url, stolen["token"]) as thief:
        ci = thief.create_token("ci", service=True, tenant="a", role="member")
        with StratumClient(live_server.url, ci["token"]) as ci_client:
            again = ci_client.create_token("ci-again", tenant="a", role="member")
    # Revoking the stolen token alone leaves what it made working...
    plain = client.create_token("plain", subject="ada")
    with StratumClient(live_server.url, plain["token"]) as p:
        child = p.create_token("child", service=True, tenant="a", role="viewer")
    client.revoke_token(plain["id"])
    with StratumClient(live_server.url, child["token"]) as c:
        assert c.whoami()["subject"] == "service:child"
    # ...and with what it issued, everything it made and what those made go too.
    result = client.revoke_token(stolen["id"], with_issued=True)
    assert result["state"] == "revoked"
    assert result["alsoRevoked"] == [ci["id"], again["id"]]
    for value in (stolen["token"], ci["token"], again["token"]):
        with StratumClient(live_server.url, value) as gone, pytest.raises(Unauthorized):
            gone.whoami()
    states = {t["id"]: t["state"] for t in client.list_tokens()}
    assert states[ci["id"]] == states[again["id"]] == "revoked"
    assert states[child["id"]] == "active"
