"""The CLI's output layer: tables, YAML/JSON, errors and exit codes.

Exit codes: 0 done; 1 the server refused the request (invalid, not found, conflict...);
2 wrong usage of the command; 3 the server could not be reached or the store is down.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.table import Table

from stratum.core.errors import ApiError, Unavailable

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Off a terminal, never wrap or cut columns: scripts read these lines.
    width = None if stream.isatty() else 10_000
    return Console(file=stream, width=width, highlight=False, soft_wrap=not stream.isatty())


def fail(message: str, *, code: int = EXIT_REFUSED) -> NoReturn:
    console(stderr=True).print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def fail_api(err: ApiError, hint: str | None = None) -> NoReturn:
    lines = [err.message]
    shown_in_message = all(c.field in err.message for c in err.causes)
    if err.causes and not shown_in_message:
        lines += [f"  {c.field}: {c.message}" for c in err.causes]
    if hint:
        lines.append(hint)
    fail("\n".join(lines), code=EXIT_UNREACHABLE if isinstance(err, Unavailable) else EXIT_REFUSED)


def read_one_document(path: Path, what: str) -> Any:
    """The single YAML/JSON document of a file the user named; exit 2 (usage) if it is
    missing, malformed or holds more or fewer than one document."""
    from stratum.core.manifests import load_documents

    try:
        docs = load_documents(path.read_text(encoding="utf-8"), str(path))
    except OSError as err:
        fail(f"{path}: {err.strerror}", code=EXIT_USAGE)
    except ApiError as err:
        fail(err.message, code=EXIT_USAGE)
    if len(docs) != 1:
        fail(f"{path}: expected one document ({what}), got {len(docs)}", code=EXIT_USAGE)
    return docs[0].data


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console().print(table)


def print_yaml(data: Any) -> None:
    sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
