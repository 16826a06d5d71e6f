"""`stratum agent`: run this host as a node of a Cluster with `backend: agent`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from stratum.cli.output import fail


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)


def _default_state_dir() -> Path:
    home = os.environ.get("STRATUM_HOME")
    if home:
        return Path(home) / "agent"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "stratum" / "agent"


def agent(
    server: Annotated[
        str, typer.Option(envvar="STRATUM_SERVER", help="The server's URL (https://... with TLS).")
    ],
    token: Annotated[
        str | None,
        typer.Option(
            envvar="STRATUM_AGENT_BOOTSTRAP_TOKEN",
            help="The Cluster's bootstrap token (its credential bootstrapToken), for the first "
            "join; the node-bound token the server answers with is kept in --state-dir.",
        ),
    ] = None,
    from_dir: Annotated[
        Path | None,
        typer.Option(
            "--from",
            exists=True,
            help="Read the hardware from saved tool outputs in this directory (as `stratum "
            "discover --from`) instead of discovering this host.",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="The Node's name. Default: this host's name.")
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(help="The Cluster to join (default: the one the bootstrap token opens)."),
    ] = None,
    rack: Annotated[str | None, typer.Option(help="The rack this host stands in.")] = None,
    ca: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            help="The certificate authority that signed the server's TLS certificate "
            "(default: the system's).",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the node token and the runs' state live (default: "
            "$STRATUM_HOME/agent, else ~/.local/state/stratum/agent)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Join a Cluster (backend: agent) as a node and run what is placed on it: its runs go on
    when the server is unreachable, and are reconciled when it is back (docs/agent.md)."""
    import logging
    import signal

    from stratum.agent.host import Agent, AgentError, AgentSettings
    from stratum.agent.runtime import local_runtime
    from stratum.core.clock import SystemClock
    from stratum.discovery import ParseError, discover_dir, discover_this_host
    from stratum.observability.logs import setup_logging

    setup_logging(level=log_level, fmt="text")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per heartbeat otherwise
    try:
        found = discover_dir(from_dir, name=name) if from_dir else discover_this_host(name=name)
    except (ParseError, OSError) as err:
        fail(f"hardware discovery failed: {err}", code=2)
    node = name or found.profile.metadata.name
    where = state_dir or _default_state_dir()
    settings = AgentSettings(
        server=server,
        state_dir=where,
        hardware=found.profile.spec,
        node=node,
        bootstrap_token=token,
        cluster=cluster,
        rack=rack,
        ca=ca,
    )
    runner = Agent(settings, local_runtime(where, SystemClock()))

    def _stop(_sig: int, _frame: object) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        runner.start()
    except AgentError as err:
        fail(str(err), code=3)
    typer.echo(f"stratum agent: node {node} on {server}", err=True)
    runner.wait()
