"""Evaluate a parsed CEL expression within a budget of steps, with logic that cannot blow up.

cel-python 0.5 interprets the parse tree directly. Three of its habits make one small
expression cost the host (security issue #11), and this module works around each:

- `a || b` and `a && b` over two errors raise a TypeError whose text is the repr of both
  operands, each holding the text of the errors below it: the message doubles with every
  term, so 24 error terms (any missing field over an empty object) took 566 MiB. Here two
  errors give the first one, as CEL allows, and no text is built. `all()` and `exists()`
  reduce with the same functions; they are reimplemented here, short-circuiting as CEL
  says (celpy evaluates every element).
- Nothing bounds the work: nested comprehensions multiply. Each evaluation gets a budget
  of steps (a step is one visit of a parse-tree node; an element of a comprehension costs
  ITERATION_STEPS more, for the scope celpy copies per element; building or scanning a
  string or list costs one step per SIZE_UNIT characters or items). Spent, the evaluation
  stops with BudgetExceeded. Counting steps, not seconds, keeps the outcome deterministic.
- `'%09999999d' % 1` is Python string formatting (a gigabyte string in one step): `%` is
  numeric only here, as in CEL.

Regular expressions (`matches`) already run on RE2 in celpy: linear time, no ReDoS.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import celpy
import celpy.celtypes as ct
import lark
from celpy.evaluation import Activation, CELEvalError, Evaluator, base_functions

Node = lark.Tree[Any]  # a node of the parse tree
# One step is about 10-25 microseconds of CPU in cel-python (measured on the CI machine).
ITERATION_STEPS = 20
SIZE_UNIT = 64
_NUMBERS = (ct.IntType, ct.UintType, ct.DoubleType)


class BudgetExceeded(Exception):
    """An evaluation used up its steps: the expression is too costly for these objects."""

    def __init__(self, budget: int) -> None:
        super().__init__(
            f"the expression exceeded its evaluation budget of {budget} steps "
            "(comprehensions over long lists, or very long strings)"
        )


class Budget:
    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise BudgetExceeded(self.limit)

    def spend_size(self, value: Any) -> None:
        if isinstance(value, str | bytes | list | tuple | dict):
            self.spend(len(value) // SIZE_UNIT)


def _or(x: Any, y: Any) -> Any:
    """CEL `||`: true wins over an error; two errors give the first (no text built)."""
    if isinstance(x, ct.BoolType) and x:
        return x
    if isinstance(y, ct.BoolType) and y:
        return y
    if isinstance(x, ct.BoolType) and isinstance(y, ct.BoolType):
        return ct.BoolType(False)
    return _error_of(x, y, "||")


def _and(x: Any, y: Any) -> Any:
    """CEL `&&`: false wins over an error; two errors give the first (no text built)."""
    if isinstance(x, ct.BoolType) and not x:
        return x
    if isinstance(y, ct.BoolType) and not y:
        return y
    if isinstance(x, ct.BoolType) and isinstance(y, ct.BoolType):
        return ct.BoolType(True)
    return _error_of(x, y, "&&")


def _error_of(x: Any, y: Any, op: str) -> Any:
    for value in (x, y):
        if isinstance(value, CELEvalError):
            return value
    # celpy turns a TypeError into "no matching overload" naming the operand types only.
    raise TypeError(f"{type(x).__name__} {op} {type(y).__name__}")


def _mod(x: Any, y: Any) -> Any:
    if isinstance(x, _NUMBERS) and isinstance(y, _NUMBERS):
        return operator.mod(x, y)
    raise TypeError(f"{type(x).__name__} % {type(y).__name__}")


def _functions(budget: Budget) -> dict[str, Callable[..., Any]]:
    """The operators that can do work proportional to their operands, charged to `budget`."""

    def add(x: Any, y: Any) -> Any:
        result = operator.add(x, y)
        budget.spend_size(result)
        return result

    def scan(function: Callable[..., Any]) -> Callable[..., Any]:
        def charged(x: Any, y: Any) -> Any:
            budget.spend_size(x)
            budget.spend_size(y)
            return function(x, y)

        return charged

    return {
        "_||_": _or,
        "_&&_": _and,
        "_%_": _mod,
        "_+_": add,
        "_in_": scan(base_functions["_in_"]),
        "_==_": scan(base_functions["_==_"]),
        "_!=_": scan(base_functions["_!=_"]),
        "contains": scan(base_functions["contains"]),
        "matches": scan(base_functions["matches"]),
    }


class _BoundedEvaluator(Evaluator):
    """celpy's interpreter, charging every node it visits to one shared budget."""

    def __init__(self, ast: Node, activation: Activation, budget: Budget) -> None:
        super().__init__(ast, activation)
        self.budget = budget

    def sub_evaluator(self, ast: Node) -> Evaluator:
        return _BoundedEvaluator(ast, self.activation, self.budget)

    def _visit_tree(self, tree: Node) -> Any:
        self.budget.spend(1)
        return super()._visit_tree(tree)

    def build_macro_eval(self, child: Node) -> Callable[[Any], Any]:
        return self._charged(super().build_macro_eval(child))

    def build_ss_macro_eval(self, child: Node) -> Callable[[Any], Any]:
        return self._charged(super().build_ss_macro_eval(child))

    def _charged(self, sub_expr: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def charged(value: Any) -> Any:
            self.budget.spend(ITERATION_STEPS)
            return sub_expr(value)

        return charged

    def member_dot_arg(self, tree: Node) -> Any:
        method = tree.children[1]
        name = method.value if isinstance(method, lark.Token) else None
        if name in ("all", "exists", "exists_one"):
            return self._quantifier(tree, name)
        return super().member_dot_arg(tree)

    def _quantifier(self, tree: Node, name: str) -> Any:
        """all/exists/exists_one as CEL defines them: a false (all) or true (exists) decides
        at once, whatever errors other elements give; otherwise any error is the result."""
        target = self.visit(tree.children[0])
        if isinstance(target, CELEvalError):
            return target
        if not isinstance(target, ct.ListType | ct.MapType):
            return CELEvalError(f"{name}() needs a list or a map", TypeError, None, tree=tree)
        predicate = self.build_ss_macro_eval(tree)
        error: Any = None
        count = 0
        for element in target:  # a map ranges over its keys
            value = predicate(element)
            if isinstance(value, ct.BoolType):
                if name == "all" and not value:
                    return ct.BoolType(False)
                if name == "exists" and value:
                    return ct.BoolType(True)
                count += bool(value)
            elif error is None:
                error = (
                    value
                    if isinstance(value, CELEvalError)
                    else CELEvalError(f"{name}() needs a bool predicate", TypeError, None)
                )
        if error is not None:
            return error
        if name == "exists_one":
            return ct.BoolType(count == 1)
        return ct.BoolType(name == "all")


_environment: celpy.Environment | None = None


def environment() -> celpy.Environment:
    """One shared celpy Environment (its parser is built once; it holds no evaluation state)."""
    global _environment
    if _environment is None:
        _environment = celpy.Environment()
    return _environment


def run(ast: Node, variables: Mapping[str, Any], *, budget: int) -> Any:
    """Evaluate `ast` over CEL values; raise CELEvalError or BudgetExceeded."""
    spent = Budget(budget)
    activation = Activation(
        annotations=environment().annotations, functions=_functions(spent), package=None
    )
    return _BoundedEvaluator(ast, activation, spent).evaluate(dict(variables))
