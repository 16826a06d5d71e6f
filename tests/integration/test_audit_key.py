"""The audit chain under a key the database does not hold, and its anchor outside the
store, on SQLite and PostgreSQL: an attacker who can write the database (and knows the
algorithm) edits and re-chains records, or deletes the newest ones and winds the counter
back; `audit verify` catches both. Plus: stores from before the key, and recovering a lost
admin straight from the store."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from stratum.client.http import StratumClient
from stratum.core.audit import record_hash
from stratum.core.secrets import Keyring
from stratum.store.tables import CounterRow, ObjectRow
from stratum.testing.harness import LiveServer, run_cli

KEY = Keyring.generate_key()


def _tenant(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {},
    }


def _keyed(database_url: str, anchor: Path | None) -> LiveServer:
    return LiveServer(database_url, audit_keys=KEY, audit_anchor_file=anchor).start()


@pytest.fixture
def keyed(database_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, StratumClient]]:
    server = _keyed(database_url, tmp_path / "anchor.json")
    client = StratumClient(server.url, server.token)
    yield server, client
    client.close()
    server.stop()


def _write_records(client: StratumClient, n: int) -> dict[str, Any]:
    for i in range(n):
        client.create(_tenant(f"t{i}"))
    return _anchored(client, n)


def _anchored(client: StratumClient, n: int) -> dict[str, Any]:
    """The verification once the anchor has caught up with record n (within a second)."""
    deadline = time.monotonic() + 10
    while True:
        result = client.verify_audit()
        if result["anchoredSequence"] == n or time.monotonic() > deadline:
            assert result["ok"], result
            assert result["anchoredSequence"] == n, result
            return result


def _records(server: LiveServer) -> list[tuple[int, dict[str, Any]]]:
    with server.app.state.store.engine.begin() as conn:
        rows = conn.execute(
            select(ObjectRow.id, ObjectRow.body)
            .where(ObjectRow.kind == "AuditRecord")
            .order_by(ObjectRow.name)
        ).all()
    return [(r.id, dict(r.body)) for r in rows]


def _rechain(server: LiveServer, edit: Any, *, strip_key: bool) -> None:
    """What an attacker with the database (not the key) does: edit, then recompute every
    hash from there on with the published algorithm."""
    previous = None
    with server.app.state.store.engine.begin() as conn:
        for row_id, body in _records(server):
            spec = dict(body["spec"])
            edit(spec)
            if strip_key:
                spec.pop("keyId", None)
            if previous is not None:
                spec["previousHash"] = previous
            spec["hash"] = previous = record_hash(spec)
            conn.execute(
                update(ObjectRow).where(ObjectRow.id == row_id).values(body={**body, "spec": spec})
            )


def test_records_are_keyed_and_an_edited_rechained_record_fails(
    keyed: tuple[LiveServer, StratumClient],
) -> None:
    server, client = keyed
    _write_records(client, 4)
    records = client.list("AuditRecord")
    assert {r["spec"]["keyId"] for r in records} == {records[0]["spec"]["keyId"]}

    def mallory(spec: dict[str, Any]) -> None:
        if spec["sequence"] == 2:
            spec["actor"] = "mallory"

    _rechain(server, mallory, strip_key=False)
    result = client.verify_audit()
    assert not result["ok"]
    assert 2 in [p["sequence"] for p in result["problems"]]
    assert "record 2 was edited" in str(result["problems"])
    assert run_cli("audit", "verify", env={"STRATUM_SERVER": server.url}).returncode == 1


def test_a_chain_rewritten_without_keys_fails_against_the_anchor(
    keyed: tuple[LiveServer, StratumClient],
) -> None:
    server, client = keyed
    _write_records(client, 3)

    def mallory(spec: dict[str, Any]) -> None:
        if spec["sequence"] == 1:
            spec["actor"] = "mallory"

    # Every record rewritten as if written before keys existed: the chain links again.
    _rechain(server, mallory, strip_key=True)
    result = client.verify_audit()
    assert not result["ok"]
    assert "not the one the anchor outside the store signed" in str(result["problems"])
    assert result["unkeyed"] == 3


def test_deleting_the_newest_records_and_the_counter_fails(
    keyed: tuple[LiveServer, StratumClient],
) -> None:
    server, client = keyed
    _write_records(client, 5)
    engine = server.app.state.store.engine
    with engine.begin() as conn:
        conn.execute(
            delete(ObjectRow).where(
                ObjectRow.kind == "AuditRecord",
                ObjectRow.name.in_(["000000000004", "000000000005"]),
            )
        )
        conn.execute(update(CounterRow).where(CounterRow.name == "auditSequence").values(value=3))
    result = client.verify_audit()
    assert not result["ok"], result
    assert result["expected"] == 3 and result["records"] == 3
    assert "record(s) 4..5 missing" in str(result["problems"])
    assert "anchor outside the store says the log reached 5" in str(result["problems"])
    # The anchor stays where it was: the next writes do not paper over the gap.
    client.create(_tenant("later"))
    time.sleep(1.5)
    assert not client.verify_audit()["ok"]
    anchor = (Path(str(server.app.state.settings.audit_anchor_file))).read_text()
    assert '"sequence": 5' in anchor


def test_records_from_before_the_key_are_named_not_failed(
    database_url: str, tmp_path: Path
) -> None:
    old = LiveServer(database_url).start()
    try:
        with StratumClient(old.url, old.token) as client:
            client.create(_tenant("old-1"))
            client.create(_tenant("old-2"))
            unkeyed = client.verify_audit()
            assert unkeyed["ok"] and unkeyed["unkeyed"] == 2
            assert "no anchor" in str(unkeyed["notes"])
    finally:
        old.stop()
    server = _keyed(database_url, tmp_path / "anchor.json")
    try:
        with StratumClient(server.url, server.token) as client:
            client.create(_tenant("new"))
            result = _anchored(client, 3)
            assert result["unkeyed"] == 2
            assert "2 record(s) (1..2) were written without an audit key" in result["notes"][0]
            out = run_cli("audit", "verify", env={"STRATUM_SERVER": server.url})
            assert out.returncode == 0, out.stderr
            assert "anchored at record 3" in out.stdout
            assert "written without an audit key" in out.stderr
    finally:
        server.stop()


def test_a_lost_admin_is_recovered_from_the_store(
    keyed: tuple[LiveServer, StratumClient], database_url: str, tmp_path: Path
) -> None:
    server, client = keyed
    key_file = tmp_path / "audit.key"
    key_file.write_text(KEY + "\n")
    os.chmod(key_file, 0o600)
    token_file = tmp_path / "recovered"
    out = run_cli(
        "admin",
        "recover",
        "--database-url",
        database_url,
        "--audit-key-file",
        str(key_file),
        "--subject",
        "ops",
        "--token-file",
        str(token_file),
        env={"STRATUM_HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    with StratumClient(server.url, token_file.read_text().strip()) as ops:
        who = ops.whoami()
        assert (who["subject"], who["platformRole"]) == ("ops", "platform-admin")
        # The old admin can now go: the recovered one administers.
        assert ops.revoke_token(client.whoami()["tokenId"])["state"] == "revoked"
        records = ops.list("AuditRecord")
        assert records[0]["spec"]["actor"].startswith("system:recovery (run by ")
        # The recovery wrote from another process: the anchor catches up within a second.
        _anchored(ops, len(records))
    again = run_cli(
        "admin", "recover", "--database-url", database_url, "--token-file", str(token_file)
    )
    assert again.returncode == 2 and "exists" in again.stderr
