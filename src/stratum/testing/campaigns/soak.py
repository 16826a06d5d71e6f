"""Soak: a real `stratum serve` on the simulated demo fleet, fed by a seeded loop of
arrivals (workloads of varied contract shapes), departures (deletes, and jobs that end)
and random faults (gpu-fail, node-down, power-cap, link-degrade, clear), through the API.

Every window it samples the server's RSS and the latency of every API call it made, and
checks the always-invariants on the store; at the end it clears the faults, waits for
the fleet to go quiet and checks the settled invariants. Memory and latency are flat when
their least-squares slopes over the steady part (after the warm-up) stay within bounds.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stratum.client.http import StratumClient
from stratum.server.demo import demo_manifests
from stratum.store.objects import ObjectStore
from stratum.testing.campaigns import checks, fleet
from stratum.testing.campaigns.record import Record, percentile, slope
from stratum.testing.campaigns.servers import ServerProcess, new_admin_token, new_audit_secret

API = "/apis/stratum.dev/v1alpha1"
SIM = "/apis/sim.stratum.dev/v1alpha1"


@dataclass(frozen=True, slots=True)
class SoakSettings:
    seconds: float = 75.0
    seed: int = 1
    speed: float = 120.0
    window_seconds: float = 10.0
    # Share of the run, from the start, left out of the slopes: the store and the caches fill.
    warmup_share: float = 0.25
    max_live: int = 60
    max_faults: int = 4
    # Simulated seconds a job runs before it ends by itself.
    min_duration: float = 600.0
    max_duration: float = 7200.0
    # Pause between steps: arrivals at a few per second, as a busy platform sees.
    step_seconds: float = 0.15
    # Flat: over the steady part, RSS grows by at most this many MiB a minute, and the
    # median latency (relative to a fixed CPU task timed alongside) by at most this share
    # of its mean a minute (least-squares slopes).
    max_rss_slope_mib_per_min: float = 1.0
    max_latency_drift_pct_per_min: float = 0.5


class _Api:
    """An httpx client that times every call and files it under the window it ran in."""

    def __init__(self, url: str, token: str, record: Record) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        self.record = record
        self.latencies: list[float] = []

    def call(self, label: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        self.record.inputs[label] += 1
        began = time.perf_counter()
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            self.record.finding(f"{label}: {method} {path}: the server did not answer: {err}")
            return None
        self.latencies.append(time.perf_counter() - began)
        if response.status_code >= 500:
            self.record.finding(
                f"{label}: {method} {path} answered {response.status_code}: {response.text[:300]}"
            )
        return response

    def close(self) -> None:
        self.http.close()


def run_soak(
    database_url: str,
    home: Path,
    settings: SoakSettings | None = None,
    on_window: Callable[[dict[str, Any]], None] | None = None,
) -> Record:
    """`on_window` hears each window's figures as it closes (a long run's progress)."""
    s = settings or SoakSettings()
    record = Record("soak", s.seed)
    rng = random.Random(s.seed)
    token = new_admin_token()
    server = ServerProcess(
        database_url,
        home,
        "--speed",
        str(s.speed),
        "--seed",
        str(s.seed),
        token=token,
        env={"STRATUM_AUDIT_KEYS": new_audit_secret()},
    ).start()
    began = time.monotonic()
    api = _Api(server.url, token, record)
    windows: list[dict[str, Any]] = []
    try:
        with StratumClient(server.url, token) as client:
            client.apply_list(demo_manifests())
            fleet_map = _wait_for_fleet(client)
            store = ObjectStore.open(database_url)
            try:
                _loop(s, rng, api, store, fleet_map, server, record, windows, began, on_window)
                _finish(s, api, client, store, server, record)
            finally:
                store.close()
    finally:
        api.close()
        code = server.stop()
        record.seconds = time.monotonic() - began
        if code not in (0, -15):
            record.finding(f"the server exited with {code} at the end: {server.read_log()[-2000:]}")
    _figures(s, record, windows)
    return record


def _wait_for_fleet(client: StratumClient, timeout: float = 60.0) -> fleet.FleetMap:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = client.list("Node")
        observed = [n for n in nodes if (n.get("status") or {}).get("gpus")]
        if nodes and len(observed) == len(nodes):
            return fleet.FleetMap.from_nodes(nodes)
        time.sleep(0.5)
    raise RuntimeError("the simulated fleet never showed up")


def _loop(
    s: SoakSettings,
    rng: random.Random,
    api: _Api,
    store: ObjectStore,
    fleet_map: fleet.FleetMap,
    server: ServerProcess,
    record: Record,
    windows: list[dict[str, Any]],
    began: float,
    on_window: Callable[[dict[str, Any]], None] | None,
) -> None:
    live: list[tuple[str, str]] = []  # (namespace, name) the soak made and has not deleted
    faults: list[str] = []
    made = 0
    window_start = time.monotonic()
    end = began + s.seconds
    while time.monotonic() < end:
        action = rng.choices(
            ["arrive", "depart", "fault", "clear", "read"], weights=[45, 25, 8, 7, 15]
        )[0]
        if action == "arrive" and len(live) >= s.max_live:
            action = "depart"
        if action == "fault" and len(faults) >= s.max_faults:
            action = "clear"
        if action == "arrive":
            made += 1
            shape = fleet.draw_shape(rng)
            duration = rng.uniform(s.min_duration, s.max_duration)
            body = fleet.workload(f"soak-{s.seed}-{made:06d}", shape, rng, duration=duration)
            ns = body["metadata"]["namespace"]
            r = api.call(
                f"apply {shape}",
                "PATCH",
                f"{API}/namespaces/{ns}/workloads/{body['metadata']['name']}",
                json=body,
            )
            if r is not None and r.status_code < 300:
                live.append((ns, body["metadata"]["name"]))
        elif action == "depart" and live:
            ns, name = live.pop(rng.randrange(len(live)))
            api.call("delete", "DELETE", f"{API}/namespaces/{ns}/workloads/{name}")
        elif action == "fault":
            body = fleet.fault(rng, fleet_map)
            r = api.call(f"fault {body['kind']}", "POST", f"{SIM}/faults", json=body)
            if r is not None and r.status_code == 201:
                record.faults[body["kind"]] += 1
                faults.append(r.json()["id"])
        elif action == "clear" and faults:
            fault_id = faults.pop(rng.randrange(len(faults)))
            r = api.call("fault clear", "DELETE", f"{SIM}/faults/{fault_id}")
            if r is not None and r.status_code == 200:
                record.survived += 1
        else:
            api.call("list workloads", "GET", f"{API}/workloads", params={"limit": 100})
            api.call("get node", "GET", f"{API}/nodes/{rng.choice(sorted(fleet_map.gpus))}")
        if time.monotonic() - window_start >= s.window_seconds:
            _close_window(api, store, server, record, windows, began, len(live), faults)
            if on_window is not None:
                on_window(windows[-1])
            window_start = time.monotonic()
        time.sleep(s.step_seconds)
    _close_window(api, store, server, record, windows, began, len(live), faults)


def _close_window(
    api: _Api,
    store: ObjectStore,
    server: ServerProcess,
    record: Record,
    windows: list[dict[str, Any]],
    began: float,
    live: int,
    faults: list[str],
) -> None:
    lat = [x * 1000 for x in api.latencies]
    api.latencies = []
    problems = checks.always(store, server.env["STRATUM_AUDIT_KEYS"])
    for p in problems:
        record.violation(f"during the run: {p}")
    if not server.alive:
        record.finding(f"the server died: {server.read_log()[-2000:]}")
        raise RuntimeError("the server died during the soak")
    windows.append(
        {
            "t_s": round(time.monotonic() - began, 1),
            "load1": round(os.getloadavg()[0], 1),
            "calib_ms": round(_calibration_ms(), 1),
            "rss_mib": round(server.rss_mib(), 1),
            "requests": len(lat),
            "p50_ms": round(percentile(lat, 50), 1),
            "p99_ms": round(percentile(lat, 99), 1),
            "max_ms": round(max(lat, default=0.0), 1),
            "live": live,
            "faults": len(faults),
            "always_invariants": "ok" if not problems else f"{len(problems)} broken",
        }
    )


def _finish(
    s: SoakSettings,
    api: _Api,
    client: StratumClient,
    store: ObjectStore,
    server: ServerProcess,
    record: Record,
) -> None:
    """Clear what is left in force, let the fleet go quiet, then check everything."""
    r = api.call("fault clear all", "DELETE", f"{SIM}/faults")
    if r is not None and r.status_code == 200:
        record.survived += len(r.json().get("cleared", []))
    if not checks.wait_quiet(client, timeout=120):
        record.violation("the fleet did not go quiet within 120 s of the last fault")
    for p in checks.settle(
        store,
        audit_secret=server.env["STRATUM_AUDIT_KEYS"],
        server_url=server.url,
        token=server.token,
    ):
        record.violation(f"at the end: {p}")
    verified = client.verify_audit()
    record.figures["audit"] = {k: v for k, v in verified.items() if k != "problems"}
    final = checks.phases(client)
    counts: dict[str, int] = {}
    for phase in final.values():
        counts[str(phase)] = counts.get(str(phase), 0) + 1
    record.figures["final phases"] = counts


def _calibration_ms() -> float:
    """A fixed piece of CPU work, timed: how slow the machine itself is right now, so that
    latency can be judged against it (on a shared machine the load comes and goes)."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        sum(i * i for i in range(100_000))
        best = min(best, (time.perf_counter() - began) * 1000)
    return best


def _figures(s: SoakSettings, record: Record, windows: list[dict[str, Any]]) -> None:
    record.figures["windows"] = windows
    steady = [w for w in windows if w["t_s"] >= s.warmup_share * s.seconds]
    if len(steady) < 2:
        steady = windows
    minutes = [w["t_s"] / 60 for w in steady]
    record.figures["rss_slope_mib_per_min"] = round(
        slope(minutes, [w["rss_mib"] for w in steady]), 3
    )
    record.figures["p50_slope_ms_per_min"] = round(slope(minutes, [w["p50_ms"] for w in steady]), 3)
    record.figures["p99_slope_ms_per_min"] = round(slope(minutes, [w["p99_ms"] for w in steady]), 3)
    # Latency judged against the machine: p50 over the calibration time, per window; its
    # slope as a share of its mean, per minute.
    ratio = [w["p50_ms"] / max(w["calib_ms"], 0.1) for w in steady]
    mean = sum(ratio) / len(ratio) if ratio else 0.0
    relative = slope(minutes, ratio) / mean * 100 if mean else 0.0
    record.figures["p50/calibration slope %/min"] = round(relative, 3)
    rss_flat = record.figures["rss_slope_mib_per_min"] <= s.max_rss_slope_mib_per_min
    p50_flat = relative <= s.max_latency_drift_pct_per_min
    record.figures["memory flat"] = (
        f"{'yes' if rss_flat else 'NO'} (bound {s.max_rss_slope_mib_per_min} MiB/min)"
    )
    record.figures["latency flat"] = (
        f"{'yes' if p50_flat else 'NO'} (bound {s.max_latency_drift_pct_per_min} %/min "
        "on p50 relative to the machine's calibration time)"
    )
    if steady:
        record.figures["rss_mib steady first/last/max"] = [
            steady[0]["rss_mib"],
            steady[-1]["rss_mib"],
            max(w["rss_mib"] for w in steady),
        ]
