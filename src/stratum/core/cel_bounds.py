"""Static bounds on a CEL expression, checked once when it is compiled.

In the spirit of Kubernetes' CEL cost estimation: before an expression is accepted, its
size, its nesting and an estimate of the work one evaluation can take are bounded, so
that the evaluations on the hot path (admission, placement) stay small. Comprehensions
(`all`, `exists`, `exists_one`, `map`, `filter`) multiply the cost of their body by the
size of what they range over: the length of a list written in the expression, or
ASSUMED_SIZE for a list or map taken from the objects (their schemas set no maximum).
Nested comprehensions multiply. Costs are in the steps cel_runtime counts at evaluation
(one step per parse-tree node visited), so the estimate and the run-time budget agree.

Names are checked here too: the variables, the functions and the macros an expression
may use, so that a typo is an apply-time error rather than a denial of every workload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import lark

from stratum.core.cel_runtime import ITERATION_STEPS, Node, environment
from stratum.core.errors import Cause, Invalid

MAX_LENGTH = 4096  # characters
# Tokens, counted before parsing: cel-python's parser builds ~10 tree nodes a token and
# takes up to ~0.5 ms a token on a loaded machine, so this keeps a parse under a second.
MAX_TOKENS = 1500
MAX_DEPTH = 250  # parse-tree levels: a term is ~10 deep, each `||` of a chain adds one
MAX_COST = 10_000  # estimated steps: ~0.1-0.25 s of CPU at worst, in a worker thread
ASSUMED_SIZE = 100  # elements of a list or map from the objects that a comprehension ranges over
RUNTIME_BUDGET = 4 * MAX_COST  # objects may hold longer lists than assumed; then this stops it

VARIABLES = ("workload", "tenant", "site")
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
# Functions and methods of standard CEL that cel-python implements. Its extensions
# `reduce` and `min` are left out: `reduce` carries an accumulator (`r + r` doubles a
# string per element), which no static bound can follow.
FUNCTIONS = frozenset(
    {
        "has",
        "dyn",
        "size",
        "type",
        "int",
        "uint",
        "double",
        "bool",
        "string",
        "bytes",
        "duration",
        "timestamp",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getFullYear",
        "getMonth",
        "getHours",
        "getMilliseconds",
        "getMinutes",
        "getSeconds",
    }
)
TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"}
)


@dataclass(frozen=True, slots=True)
class Analysis:
    """A parsed expression that passed every bound, with what it reads."""

    ast: Node
    cost: int
    # (variable, (field, field, ...)) for every `workload.a.b`-like path, longest first.
    paths: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())


def refuse(field_name: str, message: str) -> Invalid:
    return Invalid(f"{field_name}: {message}", causes=[Cause(field_name, message)])


def analyse(expression: str, *, field_name: str = "spec.expression") -> Analysis:
    """Parse and bound `expression`, or raise Invalid naming `field_name` and the limit."""
    if len(expression) > MAX_LENGTH:
        raise refuse(
            field_name,
            f"the expression is {len(expression)} characters long; the limit is {MAX_LENGTH}",
        )
    tokens = len(_TOKEN.findall(expression))
    if tokens > MAX_TOKENS:
        raise refuse(
            field_name,
            f"the expression has {tokens} tokens; the limit is {MAX_TOKENS} "
            "(a list of alternatives reads best as `x in [...]`)",
        )
    ast = _parse(expression, field_name)
    depth = _depth(ast)
    if depth > MAX_DEPTH:
        raise refuse(
            field_name,
            f"the expression nests too deeply (depth {depth}, the limit is {MAX_DEPTH}); "
            "split it into several policies or use `in [...]` for long lists of alternatives",
        )
    walker = _Walker(field_name)
    cost = walker.cost(ast, frozenset())
    if cost > MAX_COST:
        raise refuse(
            field_name,
            f"the expression's estimated cost is {cost}, over the limit of {MAX_COST}: "
            "all/exists/map/filter multiply the cost of their body by the length of their "
            f"list ({ASSUMED_SIZE} assumed for lists from the objects), and nested ones "
            "multiply again",
        )
    longest = sorted(set(walker.paths), key=lambda p: -len(p[1]))
    kept: list[tuple[str, tuple[str, ...]]] = []
    for root, path in longest:
        if not any(r == root and p[: len(path)] == path for r, p in kept):
            kept.append((root, path))
    return Analysis(ast, cost, tuple(kept))


# A string literal, a word (name or number) or one character of punctuation: a slight
# over-count of CEL's tokens (`==` counts two), linear to scan.
_TOKEN = re.compile(r"'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"|\w+|[^\w\s]")


def _parse(expression: str, field_name: str) -> Node:
    from celpy.celparser import CELParseError

    try:
        ast: Node = environment().compile(expression)
    except CELParseError as err:
        line, column = getattr(err, "line", None), getattr(err, "column", None)
        where = f"line {line}, column {column}" if line else "an unknown position"
        detail = str(err.args[0]).rstrip() if err.args else str(err)
        raise refuse(field_name, f"CEL syntax error at {where}:\n{detail}") from None
    return ast


def _depth(ast: Node) -> int:
    """Depth of the parse tree, without recursion (a deep tree must not crash the check)."""
    deepest, stack = 0, [(ast, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, lark.Tree))
    return deepest


def _token(node: Node | lark.Token | None) -> str | None:
    return str(node) if isinstance(node, lark.Token) else None


def _unwrap(node: Node) -> Node:
    """The first node below a chain of single-child wrappers (expr > ... > primary)."""
    while (
        node.data in ("expr", "conditionalor", "conditionaland", "relation", "addition")
        or node.data in ("multiplication", "unary", "member", "primary", "paren_expr")
    ) and len(node.children) == 1:
        child = node.children[0]
        if not isinstance(child, lark.Tree):
            break
        node = child
    return node


class _Walker:
    """One recursive pass (the depth is bounded first) computing the cost and the paths."""

    def __init__(self, field_name: str) -> None:
        self.field_name = field_name
        self.paths: list[tuple[str, tuple[str, ...]]] = []

    def cost(self, node: Node, bound: frozenset[str]) -> int:
        kind = node.data
        if kind == "ident":
            self._check_ident(node, bound)
        elif kind == "dot_ident":  # `.name`: the root scope, where only the variables are
            self._check_ident(node, frozenset())
        elif kind in ("ident_arg", "dot_ident_arg"):
            self._check_function(_token(node.children[0]), node)
        elif kind == "member_dot_arg":
            return self._method(node, bound)
        if kind in ("member_dot", "member_index"):
            self._record_path(node, bound)
        return 1 + sum(self.cost(c, bound) for c in node.children if isinstance(c, lark.Tree))

    def _check_ident(self, node: Node, bound: frozenset[str]) -> None:
        name = _token(node.children[0]) or ""
        if name in VARIABLES or name in bound or name in TYPE_NAMES:
            return
        raise refuse(
            self.field_name,
            f"undeclared reference to {name!r} (line {node.meta.line}, column "
            f"{node.meta.column}); the variables are {', '.join(VARIABLES)}",
        )

    def _check_function(self, name: str | None, node: Node) -> None:
        if name in FUNCTIONS or name in MACROS:
            return
        where = f"line {node.meta.line}, column {node.meta.column}"
        if name in ("reduce", "min"):
            raise refuse(
                self.field_name,
                f"{name}() ({where}) is a cel-python extension, not CEL; it is not allowed",
            )
        raise refuse(
            self.field_name,
            f"undeclared reference to {name!r} ({where}); the functions are "
            f"{', '.join(sorted(FUNCTIONS | MACROS))}",
        )

    def _method(self, node: Node, bound: frozenset[str]) -> int:
        target, name_token = node.children[0], node.children[1]
        name = _token(name_token)
        self._check_function(name, node)
        args = node.children[2] if len(node.children) > 2 else None
        arguments = (
            [c for c in args.children if isinstance(c, lark.Tree)]
            if isinstance(args, lark.Tree)
            else []
        )
        assert isinstance(target, lark.Tree)
        base = 1 + self.cost(target, bound) + (1 if args is not None else 0)
        if name not in MACROS:
            return base + sum(self.cost(a, bound) for a in arguments)
        if len(arguments) < 2:
            raise refuse(self.field_name, f"{name}() takes a variable and an expression")
        variable = _unwrap(arguments[0])
        var_name = _token(variable.children[0]) if variable.data == "ident" else None
        if var_name is None:
            raise refuse(
                self.field_name,
                f"{name}(): the first argument must be a variable name "
                f"(line {node.meta.line}, column {node.meta.column})",
            )
        inner = bound | {var_name}
        body = sum(self.cost(a, inner) for a in arguments[1:])
        return base + 1 + _size(target) * (ITERATION_STEPS + body)

    def _record_path(self, node: Node, bound: frozenset[str]) -> None:
        """`workload.a.b['c']` -> ('workload', ('a', 'b', 'c')); indexes that are not string
        literals end the path (what follows depends on the data)."""
        parts: list[str] = []
        current: Node = node
        while True:
            if current.data == "member_dot":
                parts.append(_token(current.children[1]) or "")
            elif current.data == "member_index":
                key = _unwrap(current.children[1])
                literal = _token(key.children[0]) if key.data == "literal" else None
                quoted = literal is not None and literal[:1] in ("'", '"')
                if literal is None or not quoted or literal[:3] in ('"""', "'''"):
                    parts.clear()  # a computed key: only the part before it is a path
                else:
                    parts.append(literal[1:-1])
            elif current.data == "ident":
                root = _token(current.children[0]) or ""
                if root in VARIABLES and root not in bound and parts:
                    self.paths.append((root, tuple(reversed(parts))))
                return
            elif current.data not in ("member", "primary"):
                return
            child = current.children[0]
            if not isinstance(child, lark.Tree):
                return
            current = child


def _size(target: Node) -> int:
    """How many elements a comprehension ranges over: counted for a literal list or map."""
    node = _unwrap(target)
    if node.data in ("list_lit", "map_lit"):
        if not node.children or not isinstance(node.children[0], lark.Tree):
            return 0
        items = [c for c in node.children[0].children if isinstance(c, lark.Tree)]
        return len(items) // 2 if node.data == "map_lit" else len(items)
    return ASSUMED_SIZE
