"""`stratum discover`: print this host (or saved command outputs) as a HardwareProfile."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Placeholder until discovery lands."""
