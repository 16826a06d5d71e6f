"""`stratum logs WORKLOAD [-n TENANT] [--replica N] [--tail N] [-f]`: what a workload's
replica printed, from the backend that runs it (the local runtime, an agent)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from stratum.cli.output import EXIT_USAGE, fail, fail_api
from stratum.core.errors import ApiError


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)


def logs(
    workload: Annotated[str, typer.Argument(help="The workload's name (or workload/NAME).")],
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", help="Tenant namespace (default: STRATUM_NAMESPACE or config)."
        ),
    ] = None,
    replica: Annotated[int, typer.Option("--replica", help="Which replica.", min=0)] = 0,
    tail: Annotated[
        int | None, typer.Option("--tail", help="Only the last N lines.", min=0)
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the process ends.")
    ] = False,
) -> None:
    """Print a workload's output (stdout and stderr of one replica, latest attempt)."""
    from stratum.cli.resources import _client, default_namespace

    name = workload.split("/", 1)[1] if workload.lower().startswith("workload/") else workload
    ns = default_namespace(namespace)
    if not ns:
        fail("a Workload is namespaced: pass -n TENANT", code=EXIT_USAGE)
    with _client() as client:
        try:
            if not follow:
                sys.stdout.write(client.logs(name, ns, replica=replica, tail=tail))
                return
            for chunk in client.follow_logs(name, ns, replica=replica, tail=tail):
                sys.stdout.write(chunk)
                sys.stdout.flush()
        except ApiError as err:
            fail_api(err)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
