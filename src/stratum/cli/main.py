"""The `stratum` command: one typer app; each command group lives in its own module.

Heavy imports (numpy, FastAPI, SQLAlchemy) stay inside the command functions so that
`stratum --help` is fast.
"""

from __future__ import annotations

import os

import typer

from stratum.cli import (
    agent,
    bench,
    catalog,
    cluster,
    discover,
    explain,
    faults,
    governance,
    logs,
    plan,
    resources,
    secrets,
    serve,
    top,
    up,
    version,
)
from stratum.cli.kinds import api_resources

app = typer.Typer(
    name="stratum",
    help="Stratum: resource contracts and topology-aware placement for AI workloads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help, not rich's panels: rich cuts long option names at 80 columns
    # ("--admin-token-fi…"); click never cuts a name and wraps only the help text.
    rich_markup_mode=None,
)

serve.register(app)
agent.register(app)
resources.register(app)
explain.register(app)
app.command("api-resources")(api_resources)
version.register(app)
catalog.register(app)
discover.register(app)
governance.register(app)
up.register(app)
plan.register(app)
top.register(app)
logs.register(app)
app.add_typer(faults.app, name="fault")
app.add_typer(bench.app, name="bench")
app.add_typer(secrets.app, name="secrets")
app.add_typer(cluster.app, name="cluster")


def run() -> None:
    # One program name however it was started (`stratum`, `python -m stratum`): the help's
    # usage lines and shell completion (_STRATUM_COMPLETE) both use it.
    if "_STRATUM_COMPLETE" in os.environ:  # a shell asks for completions
        from typer._completion_classes import completion_init

        completion_init()
    app(prog_name="stratum")
