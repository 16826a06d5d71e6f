"""A newcomer runs `stratum up`, then applies examples/: every example applies on top of the
demo without changing any object the demo seeded (shared names hold the demo's own spec),
and the server-written kinds are refused without changing anything."""

from __future__ import annotations

from pathlib import Path

from stratum.client.http import StratumClient
from stratum.server.main import seed_demo
from stratum.store.objects import ObjectStore
from stratum.testing.harness import LiveServer, run_cli
from tests import EXAMPLES

KINDS = ("Site", "HardwareProfile", "Cluster", "Tenant", "Policy", "ClusterTemplate")


def versions(client: StratumClient) -> dict[str, str]:
    """Every object the demo seeded (and more), by kind/namespace/name: its resourceVersion."""
    found = {}
    for kind in KINDS:
        for o in client.list(kind):
            found[f"{kind}/{o['metadata']['name']}"] = o["metadata"]["resourceVersion"]
    for kind in ("Workload", "WorkloadTemplate"):
        for o in client.list(kind):
            meta = o["metadata"]
            found[f"{kind}/{meta['namespace']}/{meta['name']}"] = meta["resourceVersion"]
    return found


def test_every_example_applies_on_top_of_what_up_seeds(database_url: str, tmp_path: Path) -> None:
    store = ObjectStore.open(database_url)
    try:
        seed_demo(store)  # what `stratum up` applies before it serves
    finally:
        store.close()
    server = LiveServer(database_url).start()
    env = {"STRATUM_SERVER": server.url, "STRATUM_CONFIG": str(tmp_path / "cli.yaml")}
    try:
        with StratumClient(server.url, server.token) as client:
            demo = versions(client)
            applied = run_cli("apply", "-f", str(EXAMPLES), env=env)
            assert applied.returncode == 0, applied.stderr
            lines = applied.stdout.splitlines()
            assert lines and all(line.endswith((" created", " unchanged")) for line in lines), (
                applied.stdout
            )
            for shared in ("site/fra-1", "cluster/fra-1-hgx", "tenant/research"):
                assert f"{shared} unchanged" in lines
            assert "workload/llama-pretrain -n research created" in lines
            assert "cluster/fra-1-pod created" in lines
            after = versions(client)
            assert {k: after[k] for k in demo} == demo, "an example changed the demo"

            for reference in ("contracts-demo.yaml", "placement.yaml"):
                done = run_cli("apply", "-f", str(EXAMPLES / "reference" / reference), env=env)
                assert done.returncode == 0, done.stderr
                assert all(line.endswith(" created") for line in done.stdout.splitlines())
            assert {k: versions(client)[k] for k in demo} == demo

            audit = run_cli(
                "apply", "-f", str(EXAMPLES / "reference" / "auditrecord.yaml"), env=env
            )
            assert audit.returncode == 1
            assert "AuditRecord" in audit.stderr and "written by the server" in audit.stderr
            planned = run_cli(
                "plan", "-f", str(EXAMPLES / "reference" / "fleet-change.yaml"), env=env
            )
            assert planned.returncode == 0, planned.stderr
            assert {k: versions(client)[k] for k in demo} == demo
    finally:
        server.stop()
