"""What the agent tests and benchmarks share: a Cluster that admits agents, hardware read
from the discovery fixtures, and the protocol's calls made by hand (as a hostile or a
simulated host would make them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from stratum.core.cpulist import parse_cpulist
from stratum.discovery import discover_dir

API = "stratum.dev/v1alpha1"
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
