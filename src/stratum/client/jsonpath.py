"""kubectl's JSONPath templates for `-o jsonpath=…` and `-o custom-columns=…`.

The subset kubectl users type every day: text with `{…}` expressions, `.a.b`,
`['key.with.dots']`, `[n]` (negative too), `[*]`, `..name` (recursive descent) and
`{range …}…{end}`. Filters (`?(@.x=="y")`) are supported for equality only. Kept here
rather than adding a JSONPath library: none of them speaks kubectl's template syntax
(text around `{}` and `range`), which is what users paste from kubectl habits.
"""

from __future__ import annotations

import json
import re
from typing import Any

from stratum.core.errors import BadRequest

_TOKEN = re.compile(
    r"""\.\.(?P<deep>[A-Za-z0-9_\-]+)       # ..name
      | \.(?P<key>[A-Za-z0-9_\-]+)          # .name
      | \[\s*'(?P<quoted>[^']*)'\s*\]       # ['name.with.dots']
      | \[\s*"(?P<dquoted>[^"]*)"\s*\]
      | \[\s*(?P<index>-?\d+)\s*\]          # [0], [-1]
      | \[\s*(?P<star>\*)\s*\]              # [*]
      | \[\s*\?\(\s*@(?P<fpath>(?:\.[A-Za-z0-9_\-]+)+)\s*==\s*
            (?:'(?P<fsq>[^']*)'|"(?P<fdq>[^"]*)"|(?P<fnum>-?[\d.]+))\s*\)\s*\]
      | (?P<star2>\.\*)                     # .*
    """,
    re.VERBOSE,
)


def _walk(values: list[Any], expr: str) -> list[Any]:
    """Every value that `expr` (`.a.b[0]`) selects from each of `values`."""
    expr = expr.strip()
    if expr in ("", "@", "$", "."):
        return values
    expr = expr.removeprefix("$").removeprefix("@")
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise BadRequest(
                f"jsonpath: cannot parse {expr[pos:]!r} in {expr!r}; expected .field, "
                "[index], [*] or ['key']"
            )
        pos = m.end()
        values = _step(values, m)
    return values


def _step(values: list[Any], m: re.Match[str]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if (key := m.group("key") or m.group("quoted") or m.group("dquoted")) is not None:
            if isinstance(value, dict) and key in value:
                out.append(value[key])
        elif m.group("deep") is not None:
            out += _descend(value, m.group("deep"))
        elif m.group("index") is not None:
            i = int(m.group("index"))
            if isinstance(value, list) and -len(value) <= i < len(value):
                out.append(value[i])
        elif m.group("star") or m.group("star2"):
            if isinstance(value, list):
                out += value
            elif isinstance(value, dict):
                out += list(value.values())
        elif m.group("fpath") is not None:
            want = m.group("fsq") if m.group("fsq") is not None else m.group("fdq")
            number = m.group("fnum")
            for item in value if isinstance(value, list) else []:
                found = _walk([item], m.group("fpath"))
                if found and (
                    str(found[0]) == want
                    if want is not None
                    else _same_number(found[0], number or "")
                ):
                    out.append(item)
    return out


def _same_number(value: Any, text: str) -> bool:
    try:
        return float(value) == float(text)
    except (TypeError, ValueError):
        return False


def _descend(value: Any, key: str) -> list[Any]:
    found = []
    if isinstance(value, dict):
        if key in value:
            found.append(value[key])
        for child in value.values():
            found += _descend(child, key)
    elif isinstance(value, list):
        for child in value:
            found += _descend(child, key)
    return found


def text(value: Any) -> str:
    """How kubectl prints one selected value: strings bare, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def select(data: Any, expr: str) -> list[Any]:
    """The values one expression selects (`.metadata.name`, `{.spec.replicas}`)."""
    expr = expr.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    return _walk([data], expr)


_PART = re.compile(r"\{([^{}]*)\}")


def render(template: str, data: Any) -> str:
    """Fill a kubectl JSONPath template: `{.items[*].metadata.name}`, with `{range}`."""
    template = template.replace("\\n", "\n").replace("\\t", "\t")
    parts: list[tuple[str, str]] = []  # ("text", s) or ("expr", e)
    pos = 0
    for m in _PART.finditer(template):
        if m.start() > pos:
            parts.append(("text", template[pos : m.start()]))
        parts.append(("expr", m.group(1).strip()))
        pos = m.end()
    if pos < len(template):
        parts.append(("text", template[pos:]))
    if "{" in "".join(t for k, t in parts if k == "text"):
        raise BadRequest(f"jsonpath: unmatched '{{' in {template!r}")
    out, rest = _render(parts, data)
    if rest:
        raise BadRequest("jsonpath: {end} without {range}")
    return out


def _render(parts: list[tuple[str, str]], data: Any) -> tuple[str, list[tuple[str, str]]]:
    """Render until an unmatched {end}; return the text and the parts after that {end}."""
    out: list[str] = []
    while parts:
        kind, value = parts[0]
        parts = parts[1:]
        if kind == "text":
            out.append(value)
        elif value == "end":
            return "".join(out), parts
        elif value.startswith("range "):
            body_parts = parts
            items = _walk([data], value.removeprefix("range "))
            after: list[tuple[str, str]] | None = None
            for item in items:
                text_, after = _render(body_parts, item)
                out.append(text_)
            if after is None:  # nothing to iterate: skip to the matching {end}
                _, after = _render(body_parts, None)
            parts = after
        elif len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            out.append(value[1:-1])  # a literal, as in {"\n"} or {'\t'}
        elif data is not None:
            out.append(" ".join(text(v) for v in _walk([data], value)))
    return "".join(out), []
