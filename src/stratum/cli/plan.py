"""`stratum plan -f change.yaml`: what if we add 16 H200 nodes in Frankfurt, or lose a site?"""

from __future__ import annotations

import contextlib
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


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)


def plan(
    filename: Annotated[
        Path,
        typer.Option(
            "--filename",
            "-f",
            help="A FleetChange: add pools, remove sites/clusters/nodes, expected workloads.",
        ),
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
) -> None:
    """Plan a fleet change on a copy of the fleet; nothing on the server changes."""
    from pydantic import ValidationError

    from stratum.cli.resources import _client
    from stratum.core.errors import ApiError
    from stratum.core.validation import causes_from, summarise
    from stratum.scheduling import planning

    document = read_one_document(filename, "a FleetChange")
    try:
        change = planning.FleetChange.model_validate(document)
    except ValidationError as err:
        fail(f"{filename}: {summarise(causes_from(err))}", code=EXIT_USAGE)
    with _client() as client:
        try:
            result = plan_on_fleet(client, change)
        except ApiError as err:
            fail_api(err)
        except ValueError as err:
            fail(f"{filename}: {err}", code=EXIT_USAGE)
    if output == "json":
        print_json(
            {
                "before": vars_of(result.before),
                "after": vars_of(result.after),
                "newlyBound": result.newly_bound,
                "displaced": list(result.displaced),
                "workloads": [
                    {
                        "workload": o.workload,
                        "before": o.before,
                        "after": o.after,
                        "nodesAfter": list(o.nodes_after),
                    }
                    for o in result.outcomes
                ],
            }
        )
        return
    out = console()
    print_table(
        ["", "NODES", "GPUS", "GPU ALLOCATED %", "FRAGMENTED FREE %"],
        [
            [
                label,
                str(f.nodes),
                str(f.gpus),
                f"{f.allocated_gpu_pct:.1f}",
                f"{f.fragmented_free_pct:.1f}",
            ]
            for label, f in (("before", result.before), ("after", result.after))
        ],
    )
    out.print()
    if result.outcomes:
        print_table(
            ["WORKLOAD", "BEFORE", "AFTER"],
            [
                [
                    o.workload,
                    o.before,
                    o.after + (f" ({', '.join(o.nodes_after)})" if o.nodes_after else ""),
                ]
                for o in result.outcomes
            ],
        )
    else:
        out.print("No waiting, displaced or expected workloads.", markup=False)
    out.print(
        f"\n{len(result.newly_bound)} contract(s) would bind only after the change; "
        f"{len(result.displaced)} running workload(s) displaced by it.",
        markup=False,
    )


def plan_on_fleet(client: Any, change: Any) -> Any:
    """Plan `change` on a copy of the fleet the server has now."""
    from stratum.api.v1alpha1 import Policy
    from stratum.core.errors import Forbidden
    from stratum.scheduling import planning

    objects = {m.KIND: client.list(m) for m in planning.FLEET_KINDS if m is not Policy}
    # The platform's policies, as the controllers apply them; a tenant may not read them:
    # then the plan leaves them out, and admission still applies them on the server.
    with contextlib.suppress(Forbidden):
        objects[Policy.KIND] = client.list(Policy)
    return planning.plan_objects(change, objects)


def vars_of(figures: Any) -> dict[str, Any]:
    return {
        "nodes": figures.nodes,
        "gpus": figures.gpus,
        "allocatedGpuPct": figures.allocated_gpu_pct,
        "fragmentedFreePct": figures.fragmented_free_pct,
    }
