"""`stratum up`: the whole platform on this machine — an SQLite store in $STRATUM_HOME, the
controllers, a simulated three-site fleet, two tenants, a catalog and running work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stratum.cli.output import console, fail


def register(app: typer.Typer) -> None:
    app.command("up")(up)


def up(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8080,
    speed: Annotated[
        float,
        typer.Option(
            help="Simulated time per real second (60: an hour of work takes a minute).",
            min=0.001,
            max=1_000_000,
        ),
    ] = 60.0,
    seed: Annotated[int, typer.Option(help="Seed for simulated telemetry.")] = 0,
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-token-file",
            help="On a new store, write the first admin token here (mode 0600) instead of "
            "printing it; a token already in the file is adopted.",
        ),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option(
            help="text, or json: one JSON object per line, with the object a record is about."
        ),
    ] = "text",
) -> None:
    """Start Stratum with a demo fleet. Run it again on the same home: it reuses the fleet."""
    from stratum.cli.serve import serve
    from stratum.core.errors import ApiError
    from stratum.server.services.objects import ObjectService
    from stratum.store.database import default_database_url, stratum_home
    from stratum.store.objects import ObjectStore
    from stratum.testing.demo import demo_manifests

    url = default_database_url()
    try:
        store = ObjectStore.open(url)
        service = ObjectService(store)
        results = service.apply_documents(demo_manifests())
        store.close()
    except ApiError as err:
        fail(f"could not prepare the demo fleet in {url}: {err.message}", code=3)
    created = sum(r.action == "created" for r in results)
    reused = len(results) - created
    base = f"http://{host}:{port}"
    out = console(stderr=True)
    out.print(f"[bold]Stratum is starting[/bold] (data in {stratum_home()})")
    out.print(
        f"  demo fleet: {created} objects created, {reused} reused "
        "(3 sites, 20 simulated nodes, 2 tenants, 5 workloads)"
    )
    out.print(f"  simulated clock: {speed:g}x real time")
    out.print(f"  API:  {base}/apis/stratum.dev/v1alpha1    OpenAPI: {base}/docs")
    out.print("  try, in another terminal:")
    for example in (
        f"export STRATUM_SERVER={base} STRATUM_TOKEN=<the admin token>",
        "stratum get sites",
        "stratum get workloads -A -o wide",
        "stratum describe workload llama-finetune -n research",
        "stratum get nodes -l stratum.dev/site=fra-1",
        "stratum fault inject gpu-fail --node fra-1-hgx-h100-001 --gpu 3",
        "stratum get events -n research",
    ):
        out.print(f"    {example}", markup=False)
    serve(
        host=host,
        port=port,
        database_url=url,
        controllers=True,
        speed=speed,
        seed=seed,
        admin_token_file=admin_token_file,
        log_format=log_format,
    )
