"""Cluster credentials at rest over real HTTP, on SQLite and PostgreSQL: the database never
holds the plaintext, no answer shows it, applying again is unchanged, rotation re-seals every
stored value (objects and change feed) under the newest key in one transaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from stratum.client.http import StratumClient
from stratum.core.errors import Forbidden, Invalid
from stratum.core.secrets import Keyring, UnreadableSecret, open_credentials
from stratum.server.secrets import ENV_KEYS
from stratum.testing.harness import AUTH, LiveServer

API = "/apis/stratum.dev/v1alpha1"
OLD, NEW = Keyring.generate_key(), Keyring.generate_key()
SECRET = "tok-9f8e7d6c5b4a-PLAINTEXT"
KUBECONFIG = f"apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user: {{token: {SECRET}}}\n"


def site() -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Site",
        "metadata": {"name": "fra-1"},
        "spec": {"kind": "datacenter", "provider": "equinix", "country": "DE"},
    }


def cluster(name: str = "k8s-fra", **credentials: str) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {
            "site": "fra-1",
            "backend": "kubernetes",
            "credentials": credentials
            or {"kubeconfig": KUBECONFIG, "bootstrapToken": SECRET + "-2"},
        },
    }


def keyed_server(database_url: str, monkeypatch: pytest.MonkeyPatch, keys: str) -> LiveServer:
    """A server on this database whose keys come from $STRATUM_SECRET_KEYS."""
    monkeypatch.setenv(ENV_KEYS, keys)
    return LiveServer(database_url).start()


@pytest.fixture
def server(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    live = keyed_server(database_url, monkeypatch, NEW)
    yield live
    live.stop()


@pytest.fixture
def admin(server: LiveServer) -> Iterator[StratumClient]:
    with StratumClient(server.url, server.token) as c:
        yield c


def raw_bodies(server: LiveServer, database_url: str) -> str:
    """Everything the database holds for objects and the change feed, as stored: on SQLite
    the file's bytes (and its write-ahead log); on PostgreSQL the rows' JSON text."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*")).decode("latin-1")
    with server.app.state.store.engine.connect() as conn:
        rows = (
            conn.execute(
                text("SELECT body::text FROM objects UNION ALL SELECT body::text FROM changes")
            )
            .scalars()
            .all()
        )
    return "\n".join(rows)


def stored(server: LiveServer, table: str = "objects") -> list[dict[str, Any]]:
    """The Cluster bodies of one table, as the store holds them."""
    with server.app.state.store.engine.connect() as conn:
        rows = (
            conn.execute(text(f"SELECT body FROM {table} WHERE kind = 'Cluster'")).scalars().all()
        )
    return [r if isinstance(r, dict) else json.loads(r) for r in rows]


def test_plaintext_is_never_in_the_database_nor_in_any_answer(
    server: LiveServer, admin: StratumClient, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[Any] = []
    answers.append(admin.apply_list([site(), cluster()]))
    answers.append(admin.create(cluster("k8s-fra-2")))
    answers.append(admin.apply(cluster("k8s-fra-3"), dry_run=True))
    answers.append(admin.get("Cluster", "k8s-fra"))
    answers.append(admin.list("Cluster"))
    answers.append(admin.replace_status(admin.get("Cluster", "k8s-fra")))
    with httpx.stream(
        "GET", f"{server.url}{API}/clusters?watch=true", headers=AUTH, timeout=5
    ) as response:
        lines = response.iter_lines()
        watched = [json.loads(next(lines)) for _ in range(2)]
    answers.append(watched)
    answers.append(admin.list("AuditRecord"))
    answers.append(admin.delete("Cluster", "k8s-fra-2"))
    # A credential that fails validation is not echoed in the error either.
    bad = cluster("k8s-bad")
    bad["spec"]["credentials"] = {"kubeconfig": 987654321987}
    with pytest.raises(Invalid) as err:
        admin.apply(bad)
    answers.append([err.value.message, [c.message for c in err.value.causes]])

    shown = json.dumps(answers)
    assert SECRET not in shown and "987654321987" not in shown
    got = admin.get("Cluster", "k8s-fra")["spec"]["credentials"]
    keys = Keyring((NEW,))
    assert got == {
        "kubeconfig": f"***:{keys.fingerprint(KUBECONFIG)}",
        "bootstrapToken": f"***:{keys.fingerprint(SECRET + '-2')}",
    }
    assert watched[0]["object"]["spec"]["credentials"]["kubeconfig"].startswith("***:")

    raw = raw_bodies(server, database_url)
    assert "enc:v1:" in raw  # the rows are there, sealed
    assert SECRET not in raw
    assert not [r for r in caplog.records if SECRET in r.getMessage()]
    # The backend's way in: the explicit function, with the server's keys.
    body = next(b for b in stored(server) if b["metadata"]["name"] == "k8s-fra")
    assert open_credentials(server.app.state.objects.keyring, body)["kubeconfig"] == KUBECONFIG


def test_applying_again_is_unchanged_and_redacted_values_round_trip(
    admin: StratumClient, server: LiveServer
) -> None:
    admin.apply_list([site(), cluster()])
    again = admin.apply_list([site(), cluster()])
    assert [r["action"] for r in again] == ["unchanged", "unchanged"]
    before = admin.get("Cluster", "k8s-fra")
    # kubectl-edit style: what GET showed, sent back with another field changed.
    edited = json.loads(json.dumps(before))
    edited["metadata"]["labels"] = {"team": "infra"}
    after = admin.replace(edited)
    assert after["spec"]["credentials"] == before["spec"]["credentials"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    body = next(b for b in stored(server) if b["metadata"]["name"] == "k8s-fra")
    assert open_credentials(server.app.state.objects.keyring, body)["kubeconfig"] == KUBECONFIG
    # A new value is a change; a redacted value that is not the stored one is refused.
    changed = admin.apply(cluster(kubeconfig="new-config", bootstrapToken=SECRET + "-2"))
    assert (
        changed["spec"]["credentials"]["kubeconfig"] != before["spec"]["credentials"]["kubeconfig"]
    )
    assert changed["metadata"]["generation"] == before["metadata"]["generation"] + 1
    with pytest.raises(Invalid, match="redacted form"):
        admin.apply(cluster(kubeconfig="***:0000000000000000"))


def test_rotation_reseals_every_stored_secret_with_the_newest_key(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = keyed_server(database_url, monkeypatch, OLD)
    try:
        with StratumClient(first.url, first.token) as c:
            c.apply_list([site(), cluster(), cluster("k8s-fra-2")])
            c.apply(cluster(kubeconfig="v2", bootstrapToken="t2"))  # history holds v1 too
            c.delete("Cluster", "k8s-fra-2")  # and a deleted object's last body
    finally:
        first.stop()
    second = keyed_server(database_url, monkeypatch, f"{NEW},{OLD}")
    try:
        with StratumClient(second.url, second.token) as c:
            before_rv = c.get("Cluster", "k8s-fra")["metadata"]["resourceVersion"]
            dry = c.rotate_secrets(dry_run=True)
            assert (dry["dryRun"], dry["objects"], dry["secrets"]) == (True, 1, 2)
            assert c.get("Cluster", "k8s-fra")["metadata"]["resourceVersion"] == before_rv
            result = c.rotate_secrets()
            assert (result["objects"], result["secrets"]) == (1, 2)
            assert result["keyId"] == Keyring((NEW,)).key_id
            tenant_token = c.create_token("ada", subject="ada")["token"]
            with (
                StratumClient(second.url, tenant_token) as ada,
                pytest.raises(Forbidden, match="platform admins"),
            ):
                ada.rotate_secrets()
        new_only = Keyring((NEW,))
        objects, history = stored(second), stored(second, "changes")
        assert len(objects) == 1 and len(history) >= 5
        assert open_credentials(new_only, objects[0]) == {
            "kubeconfig": "v2",
            "bootstrapToken": "t2",
        }
        for body in objects + history:  # nothing left that only the old key opens
            assert open_credentials(new_only, body)
            with pytest.raises(UnreadableSecret):
                open_credentials(Keyring((OLD,)), body)
    finally:
        second.stop()
    third = keyed_server(database_url, monkeypatch, NEW)  # the old key retired
    try:
        with StratumClient(third.url, third.token) as c:
            assert (
                c.apply(cluster(kubeconfig="v2", bootstrapToken="t2"))["metadata"][
                    "resourceVersion"
                ]
                == c.get("Cluster", "k8s-fra")["metadata"]["resourceVersion"]
            )
            audit = [r["spec"] for r in c.list("AuditRecord")]
            # create, the v2 apply, the rotation (the unchanged apply above writes none)
            assert [
                a["action"]
                for a in audit
                if a["object"]["kind"] == "Cluster" and a["object"]["name"] == "k8s-fra"
            ] == ["create", "update", "update"]
            assert c.verify_audit()["ok"]
    finally:
        third.stop()


def test_a_server_without_a_key_refuses_credentials_and_serves_the_rest(
    client: StratumClient,
) -> None:
    client.apply_list([site()])
    with pytest.raises(Invalid, match="no secret key.*STRATUM_SECRET_KEYS") as err:
        client.apply(cluster())
    assert err.value.causes[0].field.startswith("spec.credentials.")
    plain = cluster()
    del plain["spec"]["credentials"]
    assert "credentials" not in client.apply(plain)["spec"]
    with pytest.raises(Invalid, match="no secret key to rotate to"):
        client.rotate_secrets()
