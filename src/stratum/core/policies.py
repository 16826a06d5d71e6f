"""Policy expressions in CEL (the language of Kubernetes admission policies), via cel-python.

An expression sees three variables — `workload`, `tenant` and `site` — as the objects are
on the wire, with every optional field present (null when unset), so `a.b == null` works
and a typo in a field name is an error rather than a silent false.
"""

from __future__ import annotations

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
        message = (f"{result.error.split(' (in activation')[0]}; the variables are "
                   f"{', '.join(VARIABLES)}")
        raise Invalid(f"{field}: {message}", causes=[Cause(field, message)])
    with _lock:
        _programs[expression] = program
    return program


def _run(program: Any, activation: dict[str, Any]) -> Outcome:
    from celpy.adapter import json_to_cel
    from celpy.evaluation import CELEvalError

    try:
        value = program.evaluate({k: json_to_cel(v) for k, v in activation.items()})
    except CELEvalError as err:
        return Outcome(False, str(err.args[0]) if err.args else str(err))
    if isinstance(value, CELEvalError):
        return Outcome(False, str(value.args[0]) if value.args else str(value))
    if not isinstance(value, bool):  # BoolType subclasses int, not bool
        import celpy.celtypes as ct

        if not isinstance(value, ct.BoolType):
            return Outcome(False, f"the expression gave {type(value).__name__}, not a bool")
    return Outcome(bool(value))


def evaluate(expression: str, *, workload: Mapping[str, Any], tenant: Mapping[str, Any],
             site: Mapping[str, Any] | None) -> Outcome:
    """Whether the expression holds for this workload, tenant and site."""
    program = compile_expression(expression)
    return _run(program, {"workload": dict(workload), "tenant": dict(tenant),
                          "site": dict(site or {})})
