"""The reference docs, generated: docs/reference/cli.md from the typer app (every command,
its arguments and options, as `--help` shows them) and docs/reference/kinds.md from the
API's pydantic models (every field, its type, rules and description).

`python scripts/gen_docs.py` writes them; a test fails when they are not current.
"""

from __future__ import annotations

import sys
from typing import Any


def _command_rows(command: Any, path: str) -> list[tuple[str, Any]]:
    rows = [(path, command)]
    if hasattr(command, "list_commands"):  # a group (typer's classes are not click's)
        for name in command.list_commands(command.context_class(command)):
            sub = command.get_command(command.context_class(command), name)
            if sub is not None and not sub.hidden:
                rows += _command_rows(sub, f"{path} {name}")
    return rows


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def cli_markdown() -> str:
    """Markdown for every `stratum` command."""
    import typer.main

    from stratum.cli.main import app

    root = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        "Generated from the command itself by `python scripts/gen_docs.py`; do not edit.",
        "Exit codes: 0 done, 1 refused by the server, 2 wrong usage, 3 server unreachable",
        "(`stratum diff`: 1 means differences, as with kubectl).",
        "",
    ]
    for path, command in _command_rows(root, "stratum"):
        ctx = command.context_class(command, info_name=path)
        lines += [f"## {path}", ""]
        if command.help:
            lines += [command.help.strip(), ""]
        lines += ["```", command.get_usage(ctx).replace("Usage: ", ""), "```", ""]
        params = [p for p in command.params if p.name != "help"]
        if not params:
            continue
        lines += ["| Argument or option | Type | Default | Help |", "| --- | --- | --- | --- |"]
        for p in params:
            names = ", ".join(f"`{n}`" for n in [*p.opts, *p.secondary_opts])
            if getattr(p, "param_type_name", "") == "argument":
                names = f"`{p.display_name_raw}`"
            default = p.default if not callable(p.default) else None
            shown = "" if default in (None, False, (), []) else f"`{default}`"
            help_text = _clean(getattr(p, "help", "")).replace("|", "\\|")
            kind = p.display_type(ctx).strip("<>")
            lines.append(f"| {names} | {kind} | {shown} | {help_text} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _field_rows(
    schema: dict[str, Any], defs: dict[str, Any], prefix: str, depth: int, lines: list[str]
) -> None:
    from stratum.cli.kinds import _element, _resolved, _rules, type_name

    members = _element(schema, defs)
    required = set(members.get("required", []))
    for name, raw in members.get("properties", {}).items():
        field = _resolved(raw, defs)
        path = f"{prefix}.{name}" if prefix else name
        if path in ("apiVersion", "kind", "metadata"):
            continue
        rules = "; ".join(r for r in (_rules(field), "required" * (name in required)) if r)
        text = _clean(field.get("description", ""))
        cells = [f"`{path}`", type_name(field), rules, text]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        if depth < 6:
            _field_rows(field, defs, path, depth + 1, lines)


def kinds_markdown() -> str:
    """Markdown for every kind of the API and every field under its spec and status."""
    from stratum.api.v1alpha1 import KINDS
    from stratum.cli.kinds import _resolved, schema_of

    lines = [
        "# Kinds reference (stratum.dev/v1alpha1)",
        "",
        "Generated from the API's models by `python scripts/gen_docs.py`; do not edit.",
        "`stratum explain KIND.field` shows the same at the terminal.",
        "",
    ]
    for model in KINDS:
        root = schema_of(model)
        defs = root.get("$defs", {})
        # The kind's module docstring says what it is for in its first line.
        doc = (sys.modules[model.__module__].__doc__ or "").strip().splitlines()
        short = f", short names {', '.join(f'`{s}`' for s in model.SHORT_NAMES)}"
        lines += [
            f"## {model.KIND}",
            "",
            doc[0] if doc else "",
            "",
            f"Plural `{model.PLURAL}`"
            + (short if model.SHORT_NAMES else "")
            + (", namespaced (one tenant)" if model.NAMESPACED else ", cluster-wide")
            + ".",
            "",
            "| Field | Type | Rules | Description |",
            "| --- | --- | --- | --- |",
        ]
        _field_rows(_resolved(root, defs), defs, "", 0, lines)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
