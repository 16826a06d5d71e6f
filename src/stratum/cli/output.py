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
from rich.markup import escape
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
    # The message is text, not markup: "[index]" or "[*]" in it must print as written.
    console(stderr=True).print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(code)


def fail_api(err: ApiError, hint: str | None = None) -> NoReturn:
    lines = [err.message]
    shown_in_message = all(c.field in err.message for c in err.causes)
    if err.causes and not shown_in_message:
        # A cause the message already says in full is not said twice.
        lines += [f"  {c.field}: {c.message}" for c in err.causes if c.message not in err.message]
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


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], no_headers: bool = False
) -> None:
    table = Table(
        box=None,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
        show_header=not no_headers,
    )
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out = console()
    with out.capture() as captured:
        out.print(table)
    # rich pads the last column to its widest cell; kubectl does not, and a script reading
    # a line (or a diff of two outputs) should not see trailing blanks.
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def print_yaml(data: Any) -> None:
    sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# -- -o: every way `get` can print objects -------------------------------------------------
OUTPUT_HELP = "table, wide, yaml, json, name, jsonpath=TEMPLATE or custom-columns=HEADER:.path,..."
_PLAIN_OUTPUTS = ("table", "wide", "yaml", "json", "name")


def check_output(output: str) -> str:
    """Exit 2 (usage) for an -o value no printer knows, naming the ones it does."""
    head = output.split("=", 1)[0]
    if output in _PLAIN_OUTPUTS or (head in ("jsonpath", "custom-columns") and "=" in output):
        if head == "custom-columns":
            parse_custom_columns(output.split("=", 1)[1])
        return output
    from stratum.cli.suggest import did_you_mean

    fail(
        f"--output: unknown format {output!r}"
        f"{did_you_mean(head, [*_PLAIN_OUTPUTS, 'jsonpath', 'custom-columns'])}; "
        f"expected {OUTPUT_HELP}",
        code=EXIT_USAGE,
    )


def parse_custom_columns(spec: str) -> list[tuple[str, str]]:
    columns = []
    for part in spec.split(","):
        header, sep, path = part.partition(":")
        if not sep or not header or not path:
            fail(
                f"--output custom-columns: expected HEADER:.json.path, got {part!r}",
                code=EXIT_USAGE,
            )
        columns.append((header, path))
    return columns


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "stratum.dev/v1alpha1", "kind": "List", "items": items}


def print_objects(
    model: Any,
    items: list[dict[str, Any]],
    output: str,
    *,
    single: bool,
    columns: Sequence[tuple[str, Any]] = (),
    no_headers: bool = False,
) -> None:
    """Print objects of one kind as `get` does; `columns` are the table's (header, getter)."""
    from stratum.client import jsonpath

    data: Any = items[0] if single and items else as_list(items)
    if output == "yaml":
        print_yaml(data)
    elif output == "json":
        print_json(data)
    elif output == "name":
        for item in items:
            console().print(f"{model.KIND.lower()}/{item['metadata']['name']}", markup=False)
    elif output.startswith("jsonpath="):
        try:
            sys.stdout.write(jsonpath.render(output.split("=", 1)[1], data) + "\n")
        except ApiError as err:
            fail(err.message, code=EXIT_USAGE)
    elif output.startswith("custom-columns="):
        cols = parse_custom_columns(output.split("=", 1)[1])
        rows = [
            [",".join(jsonpath.text(v) for v in jsonpath.select(i, p)) or "<none>" for _, p in cols]
            for i in items
        ]
        print_table([h for h, _ in cols], rows, no_headers=no_headers)
    elif not items:
        console(stderr=True).print(f"No {model.PLURAL} found.", markup=False)
    else:
        print_table(
            [h for h, _ in columns], [[g(i) for _, g in columns] for i in items], no_headers
        )
