"""`stratum bench`: reproducible benchmarks (placement quality and speed)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run Stratum's benchmarks.", no_args_is_help=True)
