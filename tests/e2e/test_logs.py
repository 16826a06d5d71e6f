"""`stratum serve --log-format json`: one JSON object per line, and every event the
controllers record is a line naming its object's kind, namespace, name and uid."""

from __future__ import annotations

import json
import time
from pathlib import Path

from stratum.client.http import StratumClient
from stratum.server.demo import demo_manifests
from stratum.testing.harness import ServerProcess, run_cli


def test_serve_writes_json_lines_with_the_object_of_each_event(tmp_path: Path) -> None:
    server = ServerProcess(
        f"sqlite:///{tmp_path / 's.db'}", tmp_path, "--log-format", "json", "--log-level", "info"
    ).start()
    try:
        with StratumClient(server.url, server.token) as client:
            client.apply_list(demo_manifests())
            deadline = time.monotonic() + 30
            bound: list[dict[str, object]] = []
            while time.monotonic() < deadline and not bound:
                lines = [line for line in server.read_log().splitlines() if line.startswith("{")]
                records = [json.loads(line) for line in lines]
                bound = [r for r in records if r.get("reason") == "Bound"]
                time.sleep(0.3)
            uid = client.get("Workload", "llama-finetune", "research")["metadata"]["uid"]
    finally:
        server.stop()
    assert bound, server.read_log()[-2000:]
    mine = [r for r in bound if r["object"]["name"] == "llama-finetune"]  # type: ignore[index]
    assert mine and mine[0]["object"] == {
        "kind": "Workload",
        "namespace": "research",
        "name": "llama-finetune",
        "uid": uid,
    }
    assert mine[0]["logger"] == "stratum.events" and mine[0]["level"] == "info"
    # Every line the server wrote is JSON, uvicorn's included.
    text = [line for line in server.read_log().splitlines() if line.strip()]
    not_json = [line for line in text if not line.startswith("{")]
    assert all(
        "admin token" in line.lower() or line.startswith("Stratum API on") for line in not_json
    ), not_json[:5]


def test_an_unknown_log_format_is_a_usage_error() -> None:
    done = run_cli("serve", "--log-format", "xml", "--no-controllers")
    assert done.returncode == 2 and "--log-format" in done.stderr
