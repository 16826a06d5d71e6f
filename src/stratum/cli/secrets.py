"""`stratum secrets`: keys that encrypt stored credentials, and their rotation."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from stratum.cli.output import console, fail_api, print_json
from stratum.core.errors import ApiError

app = typer.Typer(
    help="Keys that encrypt stored credentials (cluster kubeconfigs, agent tokens).",
    no_args_is_help=True,
)


@app.command("generate-key")
def generate_key() -> None:
    """Print a new key (Fernet: 32 random bytes, url-safe base64) on standard output."""
    from stratum.core.secrets import Keyring

    sys.stdout.write(Keyring.generate_key() + "\n")


@app.command("rotate")
def rotate(
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check that every stored secret can be read and re-encrypted; change nothing.",
        ),
    ] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Re-encrypt every stored secret with the server's newest key, in one transaction.

    Put the new key first in STRATUM_SECRET_KEYS (or the key file), keep the old ones after
    it, restart the server(s), run this, then the old keys may go."""
    from stratum.cli.governance import _client

    with _client() as client:
        try:
            result = client.rotate_secrets(dry_run=dry_run)
        except ApiError as err:
            fail_api(err)
    if output == "json":
        print_json(result)
        return
    verb = "would re-encrypt" if result.get("dryRun") else "re-encrypted"
    console().print(
        f"{verb} {result['secrets']} secret(s) in {result['objects']} object(s) "
        f"with key {result['keyId']}",
        markup=False,
    )
