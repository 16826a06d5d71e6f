"""`stratum up`: the whole platform on this machine — an SQLite store in $STRATUM_HOME, the
controllers, a simulated three-site fleet, two tenants, a catalog and running work.

On a terminal it shows what it is doing (preparing the store, seeding the demo, then the
demo's work binding) on one live status line; off a terminal, or with --quiet, only the
banner and the final "demo work running" line."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

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
    log_level: Annotated[
        str,
        typer.Option(help="debug, info, warning or error (info: every event, as a log line)."),
    ] = "warning",
    log_format: Annotated[
        str,
        typer.Option(
            help="text, or json: one JSON object per line, with the object a record is about."
        ),
    ] = "text",
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Also make this host a real node (backend: local): its hardware discovered, "
            "work placed on it run as real processes (docs/runtime.md).",
        ),
    ] = False,
    local_country: Annotated[
        str,
        typer.Option(
            help="With --local: the ISO country code of this host's Site (for sovereignty)."
        ),
    ] = "DE",
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress display (there is none without a terminal)."
        ),
    ] = False,
) -> None:
    """Start Stratum with a demo fleet. Run it again on the same home: it reuses the fleet."""
    from stratum.cli.serve import _settings, start
    from stratum.store.database import stratum_home

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter(
            f"expected debug, info, warning or error, got {log_level!r}", param_hint="--log-level"
        )
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
        backends=["simulated", "local"] if local else None,
        log_level=log_level,
        log_format=log_format,
    )
    this_host = local_host(local_country) if local else []
    err = console(stderr=True)
    live = not quiet and err.is_terminal
    prog = os.environ.get("STRATUM_PROG", "stratum")  # scripts/stratum sets it

    def banner(startup: Startup, stop_progress: Callable[[], None]) -> None:
        stop_progress()
        base = startup.base_url
        err.print(f"[bold]Stratum is up[/bold] (data in {home})")
        if startup.demo is not None:
            err.print(
                f"  demo fleet: {startup.demo.created} objects created, "
                f"{startup.demo.reused} reused (3 sites, 20 simulated nodes, 2 tenants)"
            )
        err.print(f"  simulated clock: {startup.speed:g}x real time")
        err.print(f"  portal: {base}/  (log in with the admin token)", markup=False)
        if local:
            err.print("  this host: a real node of Cluster this-host (backend: local)")
        err.print(f"  API:  {base}/apis/stratum.dev/v1alpha1    OpenAPI: {base}/docs")
        err.print(f"  admin token: in {token_file} (mode 0600)", markup=False)
        err.print("  try, in another terminal:")
        for example in (
            f"export STRATUM_SERVER={base} STRATUM_TOKEN=$(cat {token_file})",
            f"{prog} get workloads -A -o wide",
            f"{prog} explain workload llama-finetune -n research",
            f"{prog} catalog list",
        ):
            err.print(f"    {example}", markup=False)
        threading.Thread(
            target=_watch_demo_work,
            args=(base, token_file, err, live),
            name="up-progress",
            daemon=True,
        ).start()

    status = _StatusLine(err, live, "starting", steps=True).start()
    try:
        start(
            settings,
            admin_token_file=token_file,
            log_level=log_level,
            announce=lambda startup: banner(startup, status.stop),
            demo=True,
            seed=this_host,
            progress=status.update,
        )
    finally:
        status.stop()


class _StatusLine:
    """A rich status line on the terminal (or nothing off it), above which log records still
    print: while it shows, rich swaps sys.stderr for a proxy that prints above the line, and
    the log handlers are pointed at that proxy."""

    def __init__(self, err: Console, live: bool, text: str, *, steps: bool = False) -> None:
        self._err = err
        self._status = err.status(text) if live else None
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []
        # With `steps`, each finished step stays on the screen with its time (a quick step
        # would otherwise never be drawn: the line redraws about ten times a second).
        self._steps = steps
        self._step: tuple[str, float] | None = None

    def start(self) -> _StatusLine:
        if self._status is not None:
            self._status.start()
            for h in logging.getLogger().handlers:
                if isinstance(h, logging.StreamHandler):
                    self._handlers.append((h, h.setStream(sys.stderr)))
        return self

    def update(self, text: str) -> None:
        if self._status is not None:
            self._finish_step()
            if self._steps:
                self._step = (text, time.monotonic())
            self._status.update(text)

    def _finish_step(self) -> None:
        if self._step is not None:
            text, began = self._step
            self._err.print(f"  [green]✓[/] {text} ({time.monotonic() - began:.1f}s)")
            self._step = None

    def stop(self) -> None:
        if self._status is not None:
            self._finish_step()
            self._status.stop()
            for h, stream in self._handlers:
                h.setStream(stream)
            self._handlers.clear()


def _watch_demo_work(base: str, token_file: Path, err: Console, live: bool) -> None:
    """Until the demo's workloads all run: a status line on a terminal; then one line."""

    from stratum.client.http import StratumClient
    from stratum.core.errors import ApiError

    status = _StatusLine(err, live, "waiting for the API server").start()
    deadline = time.monotonic() + 300
    try:
        token = token_file.read_text(encoding="utf-8").strip()
        with StratumClient(base, token, timeout=5) as client:
            while time.monotonic() < deadline:
                try:
                    phases = [w.get("status", {}).get("phase") for w in client.list("Workload")]
                except (ApiError, OSError):
                    phases = []
                running = phases.count("Running")
                if phases and running == len(phases):
                    status.stop()
                    err.print(f"  demo work running: {running} workloads", markup=False)
                    return
                status.update(f"demo work binding: {running}/{len(phases)} running")
                time.sleep(0.5)
    except Exception:  # a progress display must never take the server down
        return
    finally:
        status.stop()


def local_host(country: str) -> list[dict[str, Any]]:
    """This host as a Site and a Cluster of its own (`up --local`): the local backend
    discovers its one node and runs what is placed there."""
    api = "stratum.dev/v1alpha1"
    return [
        {
            "apiVersion": api,
            "kind": "Site",
            "metadata": {"name": "this-host"},
            "spec": {"kind": "edge", "provider": "self", "country": country},
        },
        {
            "apiVersion": api,
            "kind": "Cluster",
            "metadata": {"name": "this-host"},
            "spec": {"site": "this-host", "backend": "local"},
        },
    ]
