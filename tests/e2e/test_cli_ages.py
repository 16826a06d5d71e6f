"""Ages in the CLI are measured on the server's clock: under `stratum up` that clock runs
`--speed` times faster than the wall clock (simulated time), and every timestamp is ahead
of this machine's clock. Measured against the wall clock, every age read `0s`."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import yaml

from stratum.client.http import StratumClient, parse_server_clock
from stratum.testing import manifests
from stratum.testing.harness import ADMIN_TOKEN, ServerProcess, run_cli

SPEED = 3600  # an hour of the server's time per real second


def test_get_shows_ages_on_the_servers_simulated_clock(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 's.db'}", tmp_path, "--speed", str(SPEED))
    server.start()
    try:
        env = {"STRATUM_SERVER": server.url, "STRATUM_CONFIG": str(tmp_path / "cli.yaml")}
        path = tmp_path / "site.yaml"
        path.write_text(yaml.safe_dump(manifests.site("fra")))
        assert run_cli("apply", "-f", str(path), env=env).returncode == 0
        said = httpx.get(f"{server.url}/healthz").headers["stratum-clock"]
        at, rate = parse_server_clock(said) or (None, 0.0)
        assert rate == SPEED and at is not None
        time.sleep(2.5)  # 2.5 h on the server's clock
        out = run_cli("get", "sites", env=env)
        assert out.returncode == 0, out.stderr
        row = next(line for line in out.stdout.splitlines() if line.startswith("fra "))
        age = row.split()[-1]
        assert re.fullmatch(r"[2-9]h", age), out.stdout  # not 0s: the wall clock is behind
        with StratumClient(server.url, ADMIN_TOKEN) as client:
            assert client.server_now() is None  # nothing heard yet
            client.list("Site")
            first = client.server_now()
            time.sleep(0.2)
            later = client.server_now()
        assert first is not None and later is not None
        # carried forward at the server's rate between answers (a watch stream)
        assert (later - first).total_seconds() > 0.2 * SPEED * 0.9
    finally:
        server.stop()


def test_an_unreadable_clock_header_is_ignored() -> None:
    assert parse_server_clock(None) is None
    assert parse_server_clock("yesterday; rate=60") is None
    assert parse_server_clock("2026-12-01T21:00:00; rate=60") is None  # no time zone
    assert parse_server_clock("2026-12-01T21:00:00+00:00; rate=-1") is None
    at_rate = parse_server_clock("2026-12-01T21:00:00+00:00")
    assert at_rate is not None and at_rate[1] == 1.0
