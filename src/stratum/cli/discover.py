"""`stratum discover`: print this host (or saved command outputs) as a HardwareProfile."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer


class OutputFormat(StrEnum):
    yaml = "yaml"
    json = "json"


def register(app: typer.Typer) -> None:
    @app.command("discover")
    def discover(
        output: OutputFormat = typer.Option(
            OutputFormat.yaml, "-o", "--output", help="Print the profile as yaml or json."
        ),
        from_dir: Path | None = typer.Option(
            None,
            "--from",
            exists=True,
            readable=True,
            resolve_path=True,
            help="Read saved outputs (nvidia-smi, lscpu, numactl, ibstat, lspci, ...) from "
            "this directory or file instead of this host; files are recognised by content.",
        ),
        name: str | None = typer.Option(
            None, "--name", help="metadata.name of the profile (default: the host name)."
        ),
        save: Path | None = typer.Option(
            None,
            "--save",
            file_okay=False,
            help="Also save this host's raw outputs (and the sysfs files read) to this "
            "directory, for `stratum discover --from` elsewhere.",
        ),
        quiet: bool = typer.Option(False, "-q", "--quiet", help="Do not print warnings."),
    ) -> None:
        """Discover a machine's topology (sockets, NUMA, GPUs, NVLink, NICs) as a HardwareProfile.

        Warnings (what could not be read, or was inferred) go to stderr; the profile alone goes
        to stdout. Exit status 2 when an output cannot be read without guessing.
        """
        import json

        import yaml

        from stratum.discovery import ParseError, discover_dir, discover_this_host

        if from_dir is not None and save is not None:
            raise typer.BadParameter("--save saves this host's outputs; it cannot go with --from")
        try:
            if from_dir is not None:
                result = discover_dir(from_dir, name=name)
            else:
                result = discover_this_host(name=name, save_to=save)
        except ParseError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if not quiet:
            for note in result.notes:
                typer.echo(f"warning: {note}", err=True)
        body = result.profile.model_dump(mode="json", by_alias=True, exclude_none=True)
        body.pop("status", None)
        if output is OutputFormat.json:
            typer.echo(json.dumps(body, indent=2))
        else:
            typer.echo(
                yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=100), nl=False
            )
