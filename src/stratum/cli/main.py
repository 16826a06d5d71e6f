"""The `stratum` command: one typer app; each command group lives in its own module.

Heavy imports (numpy, FastAPI, SQLAlchemy) stay inside the command functions so that
`stratum --help` is fast.
"""

from __future__ import annotations

import typer

from stratum.cli import (
    bench,
    discover,
    faults,
    governance,
    plan,
    resources,
    secrets,
    serve,
    top,
    up,
)

app = typer.Typer(
    name="stratum",
    help="Stratum: resource contracts and topology-aware placement for AI workloads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

serve.register(app)
resources.register(app)
discover.register(app)
governance.register(app)
up.register(app)
plan.register(app)
top.register(app)
app.add_typer(faults.app, name="fault")
app.add_typer(bench.app, name="bench")
app.add_typer(secrets.app, name="secrets")


def run() -> None:
    app()
