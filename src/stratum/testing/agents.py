"""What the agent tests and benchmarks share: a Cluster that admits agents, hardware read
from the discovery fixtures, and the protocol's calls made by hand (as a hostile or a
simulated host would make them)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx

from stratum.backends.local.runtime import LocalRuntime
from stratum.core.clock import SystemClock
from stratum.core.cpulist import parse_cpulist
from stratum.discovery import discover_dir
from stratum.testing.pki import ServingPki, make_serving_pki

API = "stratum.dev/v1alpha1"
T = TypeVar("T")
TIMEOUT = 30.0  # a busy CI machine verifies a new token's secret slowly (scrypt)
# Saved tool outputs of real machines (tests/fixtures/hardware), one per simulated host.
FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "hardware"
HOSTS = {
    "h100": "topo-hgx-h100-8gpu-2socket-no-nic.txt",
    "workstation": "topo-workstation-2gpu-nvlink-bridge-nv2.txt",
    "consumer": "topo-consumer-5gpu-2numa-phb-node.txt",
}


def agent_site(name: str = "edge-1") -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Site",
        "metadata": {"name": name},
        "spec": {"kind": "edge", "provider": "own", "country": "DE", "jurisdictions": ["EU"]},
    }


def agent_cluster(name: str, bootstrap: str, site: str = "edge-1") -> dict[str, Any]:
    """A Cluster of hosts that join by themselves with `bootstrap` (sealed at rest)."""
    return {
        "apiVersion": API,
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"site": site, "backend": "agent", "credentials": {"bootstrapToken": bootstrap}},
    }


def fixture_dir(root: Path, host: str, memory_gib: int = 64) -> Path:
    """A directory holding one host's saved outputs, as `stratum agent --from` reads it:
    the real `nvidia-smi topo -m` of that machine, and a `numactl -H` made to match its
    NUMA layout (the topology output says nothing of memory, and a host without memory
    takes no workload)."""
    where = root / f"hw-{host}"
    where.mkdir(parents=True, exist_ok=True)
    source = FIXTURES / HOSTS[host]
    (where / source.name).write_bytes(source.read_bytes())
    spec = discover_dir(source).profile.spec
    numa = sorted((n.id, n.cpus) for s in spec.sockets for n in s.numa_nodes)
    per_node = memory_gib * 1024 // max(len(numa), 1)
    lines = [f"available: {len(numa)} nodes ({','.join(str(i) for i, _ in numa)})"]
    for node_id, cpus in numa:
        lines.append(
            f"node {node_id} cpus: {' '.join(str(c) for c in sorted(parse_cpulist(cpus)))}"
        )
        lines.append(f"node {node_id} size: {per_node} MB")
        lines.append(f"node {node_id} free: {per_node - 512} MB")
    lines.append("node distances:")
    lines.append("node " + " ".join(f"{i:>3}" for i, _ in numa))
    for i, _ in numa:
        row = " ".join(f"{10 if i == j else 21:>3}" for j, _ in numa)
        lines.append(f"{i:>3}:  {row}")
    (where / "numactl-H.txt").write_text("\n".join(lines) + "\n")
    return where


def fixture_hardware(host: str, root: Path | None = None) -> dict[str, Any]:
    """The hardware `stratum agent --from` reports for one fixture host."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        spec = discover_dir(fixture_dir(root or Path(scratch), host)).profile.spec
        return spec.model_dump(mode="json", by_alias=True)


def join(
    url: str, bootstrap: str, node: str, *, host: str = "workstation", cluster: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"node": node, "hardware": fixture_hardware(host)}
    if cluster is not None:
        body["cluster"] = cluster
    return httpx.post(
        f"{url}/agent/v1/join",
        json=body,
        headers={"Authorization": f"Bearer {bootstrap}"},
        timeout=TIMEOUT,
    )


def report(url: str, token: str, node: str, **fields: Any) -> httpx.Response:
    body: dict[str, Any] = {"node": node, "seq": 1, **fields}
    return httpx.post(
        f"{url}/agent/v1/nodes/{node}/reports",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )


def eventually(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    every: float = 0.25,
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll `check` until it returns something other than None (or False); `what` names
    the expectation in the failure, and `describe` says how things stood then."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.TransportError as err:  # the server may be starting
            last = err
        else:
            if last is not None and last is not False:
                return cast(T, last)
        time.sleep(every)
    state = f"; {describe()}" if describe is not None else ""
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}){state}"
    )


@dataclass
class AgentProcess:
    """`stratum agent` as a child process, inside a network namespace (or not)."""

    name: str
    server_url: str
    bootstrap: str
    hardware_dir: Path
    state_dir: Path
    prefix: tuple[str, ...] = ()
    ca: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.state_dir.parent / f"agent-{self.name}.log"

    def start(self) -> AgentProcess:
        argv = [
            *self.prefix,
            sys.executable,
            "-m",
            "stratum",
            "agent",
            "--server",
            self.server_url,
            "--token",
            self.bootstrap,
            "--from",
            str(self.hardware_dir),
            "--name",
            self.name,
            "--state-dir",
            str(self.state_dir),
            *(("--ca", str(self.ca)) if self.ca is not None else ()),
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        return self

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def runtime(self) -> LocalRuntime:
        """The host's runtime, read from its state directory (as the agent reads it)."""
        return LocalRuntime(self.state_dir, SystemClock())

    def pids(self, key: str) -> dict[int, int]:
        """replica -> pid of `key`'s processes running on this host now."""
        return {
            r.replica: r.pid
            for run in self.runtime().observe_runs()
            if run.key == key
            for r in run.replicas
            if r.pid is not None and r.phase == "Running" and alive(r.pid)
        }

    def stop_runs(self) -> None:
        """Stop every run this host holds (the supervisors outlive the agent)."""
        runtime = self.runtime()
        for run in runtime.observe_runs():
            runtime.stop(run.key)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def make_tls(where: Path, ips: tuple[str, ...] = ("127.0.0.1",)) -> ServingPki:
    """A private certificate authority and a server certificate it signed for `ips`."""
    return make_serving_pki(where, common_name="stratum server", ips=ips)


def node_phase(admin: httpx.Client, name: str) -> str | None:
    """The Node's status.phase, or None while it does not exist."""
    r = admin.get(f"/apis/{API}/nodes/{name}")
    if r.status_code != 200:
        return None
    phase = r.json().get("status", {}).get("phase")
    return str(phase) if phase is not None else None
