"""`stratum up`: the whole platform on this machine — an SQLite store in $STRATUM_HOME, the
controllers, a simulated three-site fleet, two tenants, a catalog and running work."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stratum.cli.output import console

if TYPE_CHECKING:
    from stratum.server.main import Startup


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
    from stratum.cli.serve import _settings, start
    from stratum.store.database import stratum_home

    home = stratum_home()
    # The admin token goes to a file the banner names (mode 0600), not among log lines.
    token_file = admin_token_file or home / "admin-token"
    settings = _settings(
        host=host,
        port=port,
        database_url=None,
        controllers=True,
        speed=speed,
        seed=seed,
        backends=None,
        log_level="info",
        log_format=log_format,
    )

    def banner(startup: Startup) -> None:
        out = console(stderr=True)
        base = startup.base_url
        out.print(f"[bold]Stratum is up[/bold] (data in {home})")
        if startup.demo is not None:
            out.print(
                f"  demo fleet: {startup.demo.created} objects created, "
                f"{startup.demo.reused} reused (3 sites, 20 simulated nodes, 2 tenants)"
            )
        out.print(f"  simulated clock: {startup.speed:g}x real time")
        out.print(f"  portal: {base}/  (log in with the admin token)", markup=False)
        out.print(f"  API:  {base}/apis/stratum.dev/v1alpha1    OpenAPI: {base}/docs")
        out.print(f"  admin token: in {token_file} (mode 0600)", markup=False)
        out.print("  try, in another terminal:")
        for example in (
            f"export STRATUM_SERVER={base} STRATUM_TOKEN=$(cat {token_file})",
            "stratum get sites",
            "stratum get workloads -A -o wide",
            "stratum describe workload llama-finetune -n research",
            "stratum get nodes -l stratum.dev/site=fra-1",
            "stratum fault inject gpu-fail --node fra-1-hgx-h100-001 --gpu 3",
            "stratum get events -n research",
        ):
            out.print(f"    {example}", markup=False)

    start(settings, admin_token_file=token_file, log_level="info", announce=banner, demo=True)
