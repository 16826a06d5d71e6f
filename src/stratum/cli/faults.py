"""`stratum fault`: break the simulated fleet on purpose, one fault or a scripted scenario."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from stratum.cli.output import (
    EXIT_USAGE,
    console,
    fail,
    fail_api,
    print_json,
    print_table,
    read_one_document,
)

app = typer.Typer(help="Inject faults into the simulated fleet.", no_args_is_help=True)

KIND_HELP = "node-down, gpu-fail, link-degrade, power-cap or partition"


def _client() -> Any:
    from stratum.cli.resources import _client as client

    return client()


@app.command("inject")
def inject(
    kind: Annotated[str, typer.Argument(help=KIND_HELP)],
    node: Annotated[
        str | None, typer.Option(help="Node (node-down, gpu-fail, link-degrade).")
    ] = None,
    gpu: Annotated[int | None, typer.Option(help="GPU index (gpu-fail, link-degrade).")] = None,
    site: Annotated[str | None, typer.Option(help="Site (power-cap).")] = None,
    kw: Annotated[float | None, typer.Option(help="Power cap in kW (power-cap).")] = None,
    cluster: Annotated[str | None, typer.Option(help="Cluster (partition).")] = None,
    bandwidth: Annotated[
        float | None,
        typer.Option(
            "--bandwidth",
            "--bandwidth-fraction",
            help="Share of NVLink bandwidth left (link-degrade), 0 <= x < 1.",
        ),
    ] = None,
) -> None:
    """Inject one fault now."""
    from stratum.core.errors import ApiError

    fault: dict[str, Any] = {"kind": kind}
    for key, value in (
        ("node", node),
        ("gpu", gpu),
        ("site", site),
        ("kw", kw),
        ("cluster", cluster),
        ("bandwidthFraction", bandwidth),
    ):
        if value is not None:
            fault[key] = value
    with _client() as client:
        try:
            made = client.inject_fault(fault)
        except ApiError as err:
            fail_api(err)
    console().print(f"fault/{made['id']} injected: {made['description']}", markup=False)


@app.command("list")
def list_faults(
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Faults in force."""
    from stratum.core.errors import ApiError

    with _client() as client:
        try:
            listing = client.faults()
        except ApiError as err:
            fail_api(err)
    if output == "json":
        print_json(listing)
        return
    if not listing["items"]:
        console(stderr=True).print(
            f"No faults in force (simulated clock {listing['simulatedTime']}, "
            f"{listing['speed']:g}x).",
            markup=False,
        )
        return
    print_table(
        ["ID", "KIND", "DESCRIPTION"],
        [[f["id"], f["kind"], f["description"]] for f in listing["items"]],
    )


@app.command("clear")
def clear(
    fault_id: Annotated[str | None, typer.Argument(help="Fault id; none clears all.")] = None,
) -> None:
    """Clear one fault, or every fault."""
    from stratum.core.errors import ApiError

    with _client() as client:
        try:
            cleared = client.clear_faults(fault_id)
        except ApiError as err:
            fail_api(err)
    for f in cleared:
        console().print(f"fault/{f['id']} cleared: {f['description']}", markup=False)


# A scenario's fault keys are the `fault inject` flags' names (the wire's own spelling,
# bandwidthFraction, is accepted too): one vocabulary for the command and the file.
SCENARIO_KEYS = {
    "at": "at",
    "kind": "kind",
    "node": "node",
    "gpu": "gpu",
    "site": "site",
    "kw": "kw",
    "cluster": "cluster",
    "bandwidth": "bandwidthFraction",
    "bandwidth-fraction": "bandwidthFraction",
    "bandwidthFraction": "bandwidthFraction",
}


def scenario_keys(document: Any, source: str) -> Any:
    """The scenario with flag-named keys turned into the wire's; unknown keys exit 2
    naming the allowed ones and the nearest."""
    from stratum.cli.suggest import did_you_mean

    if not isinstance(document, dict) or not isinstance(document.get("faults"), list):
        return document  # parse_scenario says what is expected
    faults = []
    for i, item in enumerate(document["faults"]):
        if not isinstance(item, dict):
            faults.append(item)
            continue
        for key in item:
            if key not in SCENARIO_KEYS:
                allowed = ["at", "kind", "node", "gpu", "site", "kw", "cluster", "bandwidth"]
                fail(
                    f"{source}: faults[{i}]: unknown key {key!r}"
                    f"{did_you_mean(str(key), allowed)}; allowed: {', '.join(allowed)} "
                    "(as the flags of `stratum fault inject`)",
                    code=EXIT_USAGE,
                )
        faults.append({SCENARIO_KEYS[k]: v for k, v in item.items()})
    return {**document, "faults": faults}


@app.command("run")
def run_scenario(
    filename: Annotated[
        Path,
        typer.Option(
            "--filename",
            "-f",
            help="Scenario YAML: faults: [{at: SECONDS, kind: ...}] in simulated seconds.",
        ),
    ],
) -> None:
    """Play a scenario: inject each fault at its simulated time, then return."""
    from stratum.backends.simulated.faults import parse_scenario
    from stratum.core.errors import ApiError

    document = read_one_document(filename, "a mapping with a list under 'faults'")
    try:
        scheduled = parse_scenario(scenario_keys(document, str(filename)), str(filename))
    except ValueError as err:
        fail(str(err), code=EXIT_USAGE)
    out = console()
    with _client() as client:
        try:
            speed = float(client.faults()["speed"])
            began = time.monotonic()
            for item in scheduled:
                wait = item.at_seconds / speed - (time.monotonic() - began)
                if wait > 0:
                    time.sleep(wait)
                made = client.inject_fault(item.fault)
                out.print(
                    f"t+{item.at_seconds:g}s fault/{made['id']} injected: {made['description']}",
                    markup=False,
                )
        except ApiError as err:
            fail_api(err)
