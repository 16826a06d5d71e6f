"""Policy expressions in CEL (the language of Kubernetes admission policies), via cel-python.

An expression sees three variables — `workload`, `tenant` and `site` — as the objects are
on the wire, with every optional field present (null when unset), so `a.b == null` works
and a typo in a field name is an error rather than a silent false.

What one expression may cost is bounded twice (security issue #11): statically when it is
compiled (length, nesting, an estimate of the work, the names it uses: cel_bounds) and at
every evaluation by a budget of steps (cel_runtime). Applying a Policy also checks the
field paths it reads against the schemas (policy_paths). Both caches below are LRUs of a
fixed size, and only expressions that compiled are ever cached. (The paths an expression
reads are parsed once as well: an LRU of as many expressions, each at most the 8 KiB a
stored Policy may hold.)
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from stratum.core.cel_bounds import RUNTIME_BUDGET, VARIABLES, Analysis, analyse
from stratum.core.cel_runtime import BudgetExceeded, run
from stratum.core.errors import Invalid
from stratum.core.policy_paths import check_paths

__all__ = [
    "VARIABLES",
    "Outcome",
    "cache_sizes",
    "check_policy_expression",
    "evaluate",
    "read_values",
    "warm",
]

MAX_PROGRAMS = 512  # distinct expressions kept compiled (a fleet has tens of policies)
# Remembered outcomes, per expression and values of what it reads: at most ~40 MB, as a
# longer projection is not kept and each expression's text is held once (interned).
MAX_RESULTS = 10_000
MAX_KEY_CHARS = 4096

_lock = threading.Lock()
_programs: OrderedDict[str, Analysis] = OrderedDict()


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one evaluation: allowed, or not with why (an error counts as not)."""

    allowed: bool
    error: str | None = None


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any, limit: int) -> None:
    with _lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > limit:
            cache.popitem(last=False)


def _recall(cache: OrderedDict[Any, Any], key: Any) -> Any:
    with _lock:
        found = cache.get(key)
        if found is not None:
            cache.move_to_end(key)
        return found


def compile_expression(expression: str, *, field: str = "spec.expression") -> Analysis:
    """Parse and bound (cached), or raise Invalid naming the field, the position or the
    limit. Costs up to a few hundred milliseconds of CPU for the longest expressions:
    servers call it in a worker thread, never on the event loop."""
    cached: Analysis | None = _recall(_programs, expression)
    if cached is not None:
        return cached
    analysis = analyse(expression, field_name=field)
    _remember(_programs, expression, analysis, MAX_PROGRAMS)
    return analysis


def check_policy_expression(expression: str, *, field: str = "spec.expression") -> Analysis:
    """Everything applying a Policy checks: compile_expression, then every field path
    it reads against the schemas of Workload, Tenant and Site."""
    analysis = compile_expression(expression, field=field)
    check_paths(analysis.paths, field_name=field)
    return analysis


def warm() -> None:
    """Load what the first compile would (cel-python's grammar, the wire schemas): ~2 s of
    CPU that a server spends at startup rather than in the middle of its first request."""
    check_policy_expression("has(workload.metadata.name) && has(tenant.spec) && has(site.spec)")


def cache_sizes() -> tuple[int, int]:
    """(compiled expressions, remembered outcomes): both bounded."""
    with _lock:
        return len(_programs), len(_results)


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


def _run(analysis: Analysis, activation: dict[str, Any]) -> Outcome:
    from celpy.evaluation import CELEvalError

    try:
        value = run(
            analysis.ast,
            {k: _to_cel(v) for k, v in activation.items()},
            budget=RUNTIME_BUDGET,
        )
    except CELEvalError as err:
        return Outcome(False, str(err.args[0]) if err.args else str(err))
    except BudgetExceeded as err:
        return Outcome(False, str(err))
    except RecursionError:
        return Outcome(False, "the expression nests too deeply to evaluate")
    if not isinstance(value, bool):  # BoolType subclasses int, not bool
        import celpy.celtypes as ct

        if not isinstance(value, ct.BoolType):
            return Outcome(False, f"the expression gave {type(value).__name__}, not a bool")
    return Outcome(bool(value))


_PATH = re.compile(r"\b(workload|tenant|site)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
_results: OrderedDict[tuple[str, str], Outcome] = OrderedDict()


def read_values(expression: str, activation: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The values of every `variable.a.b.c` path the expression names, as a key: equal keys,
    equal outcomes. None when it uses a variable whole (then any field could matter). A path
    is followed as far as the object has it, so `labels['x']` or `env.exists(...)` key on
    the whole map."""
    paths = _paths(expression)
    if paths is None:
        return None
    parts = []
    for root, dotted, names in paths:
        value: Any = activation[root]
        for name in names:
            # A wire object is a dict: the exact type test spares the ABC check, the hot
            # part of a key when thousands of workloads are judged.
            if not (type(value) is dict or isinstance(value, Mapping)) or name not in value:
                break
            value = value[name]
        parts.append(f"{root}{dotted}={_key_text(value)}")
    return "|".join(parts)


_KEY_JSON = json.JSONEncoder(sort_keys=True, default=str)  # one encoder, not one per value


def _key_text(value: Any) -> str:
    # The encoder sets up its C machinery per call for all but strings: the usual leaves
    # (null, true, false) are spelled here, as JSON spells them.
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _KEY_JSON.encode(value)


@lru_cache(maxsize=MAX_PROGRAMS)
def _paths(expression: str) -> tuple[tuple[str, str, tuple[str, ...]], ...] | None:
    """(variable, ".a.b", ("a", "b")) for every path the expression names; None when it uses
    a variable whole. Parsed once per expression (at most MAX_PROGRAMS kept)."""
    paths = []
    for match in _PATH.finditer(expression):
        root, dotted = match.group(1), match.group(2)
        if not dotted:
            return None
        paths.append((root, dotted, tuple(dotted[1:].split("."))))
    return tuple(paths)


def evaluate(
    expression: str,
    *,
    workload: Mapping[str, Any],
    tenant: Mapping[str, Any],
    site: Mapping[str, Any] | None,
) -> Outcome:
    """Whether the expression holds for this workload, tenant and site. Results are
    remembered per expression and per value of the paths it reads: judging a thousand
    look-alike workloads over every site runs CEL a handful of times, not thousands.
    An expression that no longer compiles (stored before a bound existed) does not hold."""
    activation = {"workload": workload, "tenant": tenant, "site": site or _NO_SITE}
    key = read_values(expression, activation)
    if key is not None and len(key) > MAX_KEY_CHARS:
        key = None
    if key is not None:
        expression = sys.intern(expression)
        known: Outcome | None = _recall(_results, (expression, key))
        if known is not None:
            return known
    try:
        analysis = compile_expression(expression)
    except Invalid as err:
        return Outcome(False, err.message)
    outcome = _run(analysis, dict(activation))
    if key is not None:
        _remember(_results, (expression, key), outcome, MAX_RESULTS)
    return outcome


_NO_SITE: Mapping[str, Any] = {}
