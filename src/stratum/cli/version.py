"""`stratum version` (client and server) and `stratum completion bash|zsh|fish`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from stratum.cli.output import EXIT_USAGE, console, fail, fail_api, print_json, print_yaml

SHELLS = ("bash", "zsh", "fish")


def register(app: typer.Typer) -> None:
    app.command("version")(version)
    app.command("completion")(completion)


def version(
    client_only: Annotated[
        bool, typer.Option("--client", help="Only the client's version; ask no server.")
    ] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="text, yaml or json.")] = "text",
) -> None:
    """The client's version and the server's (exit 3 when the server cannot be reached)."""
    import stratum
    from stratum.core.errors import ApiError

    if output not in ("text", "yaml", "json"):
        fail(f"--output: expected text, yaml or json, got {output!r}", code=EXIT_USAGE)
    info: dict[str, object] = {
        "clientVersion": {"version": stratum.__version__, "apiVersion": "stratum.dev/v1alpha1"}
    }
    error = None
    if not client_only:
        from stratum.cli.resources import _client

        with _client() as client:
            try:
                info["serverVersion"] = client.version()
            except ApiError as err:
                error = err
            info["server"] = client.server
    if output == "json":
        print_json(info)
    elif output == "yaml":
        print_yaml(info)
    else:
        out = console()
        out.print(f"Client Version: {stratum.__version__}", markup=False)
        if "serverVersion" in info:
            server = info["serverVersion"]
            assert isinstance(server, dict)
            out.print(f"Server Version: {server.get('version')} ({info['server']})", markup=False)
    if error is not None:
        fail_api(error)


def completion(
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script. Load it with, for instance:

    bash: `source <(stratum completion bash)`;
    zsh: `stratum completion zsh > "${fpath[1]}/_stratum"`;
    fish: `stratum completion fish > ~/.config/fish/completions/stratum.fish`.
    """
    if shell not in SHELLS:
        fail(f"unknown shell {shell!r}; expected one of {', '.join(SHELLS)}", code=EXIT_USAGE)
    from typer._completion_classes import completion_init
    from typer._completion_shared import get_completion_script

    completion_init()
    script = get_completion_script(
        prog_name="stratum", complete_var="_STRATUM_COMPLETE", shell=shell
    )
    # Written as is: a console would wrap long lines at the terminal's width.
    sys.stdout.write(script.rstrip("\n") + "\n")
