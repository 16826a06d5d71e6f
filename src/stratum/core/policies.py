"""Policy expressions in CEL (the language of Kubernetes admission policies), via cel-python.

An expression sees three variables — `workload`, `tenant` and `site` — as the objects are
on the wire, with every optional field present (null when unset), so `a.b == null` works
and a typo in a field name is an error rather than a silent false.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stratum.core.errors import Cause, Invalid

VARIABLES = ("workload", "tenant", "site")
_lock = threading.Lock()
_programs: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one evaluation: allowed, or not with why (an error counts as not)."""

    allowed: bool
    error: str | None = None


def _environment() -> Any:
    import celpy  # lazy: lark grammar loading is not free

    return celpy.Environment()


def compile_expression(expression: str, *, field: str = "spec.expression") -> Any:
    """Compile (cached) or raise Invalid naming the line and column of the first error."""
    with _lock:
        cached = _programs.get(expression)
    if cached is not None:
        return cached
    from celpy.celparser import CELParseError

    env = _environment()
    try:
        ast = env.compile(expression)
    except CELParseError as err:
        line, column = getattr(err, "line", None), getattr(err, "column", None)
        where = f"line {line}, column {column}" if line else "an unknown position"
        detail = str(err.args[0]).rstrip() if err.args else str(err)
        message = f"CEL syntax error at {where}:\n{detail}"
        raise Invalid(f"{field}: {message}", causes=[Cause(field, message)]) from None
    program = env.program(ast)
    # Evaluate once over empty objects: an unknown variable or function shows up now, at
    # apply time, rather than as a denial later. Other errors (a missing label) may be
    # real at evaluation time and are left for then.
    result = _run(program, {v: {} for v in VARIABLES})
    if result.error and "undeclared reference" in result.error:
        message = (
            f"{result.error.split(' (in activation')[0]}; the variables are {', '.join(VARIABLES)}"
        )
        raise Invalid(f"{field}: {message}", causes=[Cause(field, message)])
    with _lock:
        _programs[expression] = program
    return program


_converted = threading.local()


def _to_cel(value: Any) -> Any:
    """json_to_cel, remembered for the last few objects of this thread: judging one
    workload over every site and policy converts it once, not once per evaluation. Callers
    hand in objects they do not change afterwards (each judgement builds its own)."""
    from celpy.adapter import json_to_cel

    memo: dict[int, tuple[Any, Any]] = getattr(_converted, "memo", None) or {}
    _converted.memo = memo
    hit = memo.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    cel = json_to_cel(value)
    if len(memo) >= 32:
        memo.clear()
    memo[id(value)] = (value, cel)  # holding `value` keeps its id from being reused
    return cel


def _run(program: Any, activation: dict[str, Any]) -> Outcome:
    from celpy.evaluation import CELEvalError

    try:
        value = program.evaluate({k: _to_cel(v) for k, v in activation.items()})
    except CELEvalError as err:
        return Outcome(False, str(err.args[0]) if err.args else str(err))
    if isinstance(value, CELEvalError):
        return Outcome(False, str(value.args[0]) if value.args else str(value))
    if not isinstance(value, bool):  # BoolType subclasses int, not bool
        import celpy.celtypes as ct

        if not isinstance(value, ct.BoolType):
            return Outcome(False, f"the expression gave {type(value).__name__}, not a bool")
    return Outcome(bool(value))


_PATH = re.compile(r"\b(workload|tenant|site)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
_results: dict[tuple[str, str], Outcome] = {}


def _projection(expression: str, activation: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The values of every `variable.a.b.c` path the expression names, as a cache key; None
    when it uses a variable whole (then any field could matter). A path is followed as far
    as the object has it, so `labels['x']` or `env.exists(...)` key on the whole map."""
    parts = []
    for match in _PATH.finditer(expression):
        root, dotted = match.group(1), match.group(2)
        if not dotted:
            return None
        value: Any = activation[root]
        for name in dotted[1:].split("."):
            if not isinstance(value, Mapping) or name not in value:
                break
            value = value[name]
        parts.append(f"{root}{dotted}={json.dumps(value, sort_keys=True, default=str)}")
    return "|".join(parts)


def evaluate(
    expression: str,
    *,
    workload: Mapping[str, Any],
    tenant: Mapping[str, Any],
    site: Mapping[str, Any] | None,
) -> Outcome:
    """Whether the expression holds for this workload, tenant and site. Results are
    remembered per expression and per value of the paths it reads: judging a thousand
    look-alike workloads over every site runs CEL a handful of times, not thousands."""
    activation = {"workload": workload, "tenant": tenant, "site": site or _NO_SITE}
    key = _projection(expression, activation)
    if key is not None:
        with _lock:
            known = _results.get((expression, key))
        if known is not None:
            return known
    outcome = _run(compile_expression(expression), dict(activation))
    if key is not None:
        with _lock:
            if len(_results) > 50_000:
                _results.clear()
            _results[(expression, key)] = outcome
    return outcome


_NO_SITE: Mapping[str, Any] = {}
