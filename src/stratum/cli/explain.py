"""`stratum explain`: where a workload runs and why, clause by clause, or why it does not;
or, given KIND.field, what that field of the schema means (as `kubectl explain` does)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stratum.cli.kinds import explain_field, resolve
from stratum.cli.output import EXIT_USAGE, console, fail, fail_api
from stratum.cli.resources import HOST_MARKS
from stratum.core.errors import ApiError


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)


def explain(
    target: Annotated[
        str,
        typer.Argument(
            help="KIND NAME (a workload or placement), or KIND[.field.path] for the schema."
        ),
    ],
    name: Annotated[str | None, typer.Argument(help="Object name.")] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", help="Tenant namespace (default: STRATUM_NAMESPACE or config)."
        ),
    ] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", help="Schema: show every nested field.")
    ] = False,
) -> None:
    """Explain where a workload is bound and why (or why not), or document a schema field.

    Examples: `stratum explain workload llama -n research`,
    `stratum explain workload.spec.contract.topology`.
    """
    if name is None:
        explain_field(target, recursive=recursive)
        return
    model = resolve(target)
    if model.KIND not in ("Workload", "Placement"):
        fail(
            f"explain NAME works for workloads and placements; for the schema of "
            f"{model.KIND}, run `stratum explain {model.PLURAL}`",
            code=EXIT_USAGE,
        )
    from stratum.cli.resources import _client, default_namespace

    ns = default_namespace(namespace)
    if not ns:
        fail(f"{model.KIND} is namespaced: pass -n TENANT", code=EXIT_USAGE)
    with _client() as client:
        try:
            if model.KIND == "Placement":
                placement = client.get("Placement", name, ns)
                workload = client.get("Workload", placement["spec"]["workload"], ns)
            else:
                workload = client.get("Workload", name, ns)
                status = workload.get("status") or {}
                placement = (
                    client.get("Placement", status["placement"], ns)
                    if status.get("placement")
                    else None
                )
            sites = _node_sites(client)
        except ApiError as err:
            fail_api(err)
    for line in sentences(workload, placement, sites):
        console().print(line, markup=False)


def _node_sites(client: Any) -> dict[str, str]:
    """Node name → site, when the caller may read nodes (platform roles); else {}."""
    try:
        return {n["metadata"]["name"]: n["spec"].get("site", "") for n in client.list("Node")}
    except ApiError:
        return {}


def sentences(
    workload: dict[str, Any], placement: dict[str, Any] | None, sites: dict[str, str]
) -> list[str]:
    """Plain sentences: the phase, where (nodes, sites, tier), then one line per clause."""
    meta, status = workload["metadata"], workload.get("status") or {}
    who = f"Workload {meta.get('namespace')}/{meta['name']}"
    phase = status.get("phase") or "not yet seen by the scheduler"
    lines: list[str] = []
    if placement is not None and placement["spec"].get("replicas"):
        spec = placement["spec"]
        nodes = list(dict.fromkeys(r["node"] for r in spec["replicas"]))
        where_sites = sorted({sites[n] for n in nodes if sites.get(n)})
        site_text = f" at site {', '.join(where_sites)}" if where_sites else ""
        tier = f", kept within one {spec['tier']}" if spec.get("tier") not in (None, "any") else ""
        lines.append(
            f"{who} is {phase}: bound to {len(nodes)} node{'s' if len(nodes) != 1 else ''} "
            f"({', '.join(nodes)}){site_text}{tier}, by placement "
            f"{placement['metadata']['name']} (attempt {spec.get('attempt', 1)})."
        )
        for r in spec["replicas"]:
            lines.append(f"  replica {r['replica']} on {r['node']}: {_devices(r)}")
        lines.append("Why there, clause by clause:")
        for e in spec.get("evidence", []):
            mark = "holds" if e.get("holds", True) else "DOES NOT HOLD"
            if e.get("host"):
                mark = HOST_MARKS.get(str(e["host"]), str(e["host"]))
            lines.append(f"  {e.get('clause')} {mark}: {e.get('message', '')}")
    else:
        lines.append(f"{who} is {phase} and bound nowhere.")
        if status.get("message"):
            lines.append(f"Why: {status['message']}")
        reasons = status.get("reasons") or []
        if reasons:
            lines.append("Clause by clause, the nodes each one rules out:")
            for r in reasons:
                excluded = int(r.get("excluded", 0))
                count = (
                    f"{excluded} node{'s' if excluded != 1 else ''} ruled out"
                    if excluded
                    else "no node ruled out alone"
                )
                lines.append(f"  {r.get('clause')}: {count}: {r.get('message', '')}")
    for v in status.get("violations", [])[-3:]:
        lines.append(f"Violation at {v.get('at')}: {v.get('clause')}: {v.get('message')}")
    return lines


def _devices(replica: dict[str, Any]) -> str:
    parts = []
    if replica.get("migInstance"):
        parts.append(f"MIG instance {replica['migInstance']}")
    elif replica.get("gpuMilli"):
        parts.append(f"{replica['gpuMilli']} milli-GPU of GPU {replica['gpus']}")
    elif replica.get("gpus"):
        parts.append(f"GPUs {', '.join(str(g) for g in replica['gpus'])}")
    if replica.get("cpuSet"):
        parts.append(f"CPUs {replica['cpuSet']}")
    if replica.get("numaNode") is not None:
        parts.append(f"NUMA node {replica['numaNode']}")
    if replica.get("nic"):
        parts.append(f"NIC {replica['nic']}")
    return ", ".join(parts) or "CPU only"
