"""Read YAML or JSON manifests (one or many documents) with errors that give line and column."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from stratum.core.errors import BadRequest, Cause, Invalid


@dataclass(frozen=True, slots=True)
class Document:
    source: str
    index: int  # 1-based position of the document in its source
    line: int  # 1-based line where the document starts
    data: Any

    @property
    def where(self) -> str:
        return f"{self.source} document {self.index} (line {self.line})"


# What one input may hold. Objects nest ~10 levels; a manifest of a thousand workloads
# is ~50,000 YAML nodes. Beyond these, parsing is work for nobody's benefit (issue #11:
# a 4 MiB YAML body took 15 s of CPU in the pure-Python parser).
MAX_DEPTH = 64
MAX_YAML_NODES = 200_000

# libyaml's event parser when PyYAML was built with it (~10x faster than pure Python).
# Objects are built here from the events rather than by libyaml's composer, which builds
# a whole document in one C call without releasing the GIL (~1 s for 4 MiB: a stall of
# the server's event loop even from a worker thread).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_resolver = yaml.resolver.Resolver()
_constructor = yaml.constructor.SafeConstructor()
_MAP_TAGS = (None, "!", "tag:yaml.org,2002:map")
_SEQ_TAGS = (None, "!", "tag:yaml.org,2002:seq")
_NO_KEY = object()


def _at(event: Any, problem: str) -> yaml.MarkedYAMLError:
    return yaml.MarkedYAMLError(problem=problem, problem_mark=event.start_mark)


def _scalar(event: Any) -> Any:
    tag = event.tag
    if tag in (None, "!"):
        tag = _resolver.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
    if tag == "tag:yaml.org,2002:merge":
        raise _at(event, "YAML merge keys (<<) are not accepted in manifests; write the keys out")
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    constructors: Any = _constructor.yaml_constructors
    try:
        return constructors.get(tag, constructors[None])(_constructor, node)
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise _at(event, f"unreadable {tag.rsplit(':', 1)[-1]}: {err}") from None


def _documents(text: str) -> Iterator[tuple[int, Any]]:
    """(line, data) of each document: plain values, maps and lists; no aliases (a few
    nested ones expand to gigabytes), at most MAX_DEPTH levels and MAX_YAML_NODES nodes."""
    stack: list[list[Any]] = []  # [container, pending key] of each open collection
    nodes = 0
    line = 0
    root: Any = None
    event: Any
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise _at(
                event, "YAML aliases (*name) are not accepted in manifests; write the value out"
            )
        if isinstance(event, yaml.DocumentStartEvent):
            line, root = 0, None
            continue
        if isinstance(event, yaml.DocumentEndEvent):
            yield line, root
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            value = stack.pop()[0]
        elif isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_YAML_NODES:
                raise _at(event, f"more than {MAX_YAML_NODES} YAML nodes; split the input")
            mark: Any = event.start_mark
            line = line or mark.line + 1
            if isinstance(event, yaml.ScalarEvent):
                value = _scalar(event)
            else:
                mapping = isinstance(event, yaml.MappingStartEvent)
                tag = getattr(event, "tag", None)
                if tag not in (_MAP_TAGS if mapping else _SEQ_TAGS):
                    raise _at(event, f"the YAML tag {tag} is not accepted in manifests")
                if len(stack) >= MAX_DEPTH:
                    raise _at(event, f"nested more than {MAX_DEPTH} levels deep")
                stack.append([{} if mapping else [], _NO_KEY])
                continue
        else:
            continue
        if not stack:
            root = value
            continue
        container = stack[-1]
        if isinstance(container[0], list):
            container[0].append(value)
        elif container[1] is _NO_KEY:
            if isinstance(value, dict | list):
                raise _at(event, "a mapping key must be a plain value, not a map or a list")
            container[1] = value
        else:
            container[0][container[1]] = value
            container[1] = _NO_KEY


def load_documents(
    text: str, source: str = "<input>", *, expand_lists: bool = True
) -> list[Document]:
    """Every non-empty document in `text`; a `kind: List` is expanded into its items
    unless `expand_lists` is false."""
    documents: list[Document] = []
    try:
        for index, (line, data) in enumerate(_documents(text), start=1):
            if data is None:
                continue
            if (
                expand_lists
                and isinstance(data, dict)
                and data.get("kind") == "List"
                and "items" in data
            ):
                items = data["items"] if isinstance(data["items"], list) else [data["items"]]
                documents.extend(Document(source, index, line, item) for item in items)
            else:
                documents.append(Document(source, index, line, data))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{source}: line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = err.problem or err.context or "malformed YAML"
        message = f"{where}: {problem}"
        if err.context and err.problem:
            message += f" ({err.context})"
        raise BadRequest(message, causes=[Cause(source, message, "FieldValueInvalid")]) from None
    except yaml.YAMLError as err:
        raise BadRequest(f"{source}: malformed YAML: {err}") from None
    return documents


def load_body(raw: bytes, content_type: str | None, source: str = "request body") -> Any:
    """Decode one request body (JSON, or YAML when the content type says so)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(f"{source}: not UTF-8 text (byte {err.start})") from None
    if not text.strip():
        raise BadRequest(f"{source} is empty: expected an object")
    if "yaml" not in (content_type or ""):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise BadRequest(
                f"{source}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}"
            ) from None
        except RecursionError:  # thousands of levels: the C decoder gives up
            raise BadRequest(f"{source}: nested more than {MAX_DEPTH} levels deep") from None
        except ValueError as err:  # an integer of more digits than Python converts
            raise BadRequest(f"{source}: {err}") from None
        deep = _too_deep(data)
        if deep is not None:
            message = f"nested more than {MAX_DEPTH} levels deep"
            raise Invalid(f"{deep}: {message}", causes=[Cause(deep, message)])
    else:
        # YAML is a superset of JSON; a List stays one object (for /apply).
        documents = load_documents(text, source, expand_lists=False)
        if len(documents) != 1:
            raise BadRequest(f"{source}: expected exactly one object, got {len(documents)}")
        data = documents[0].data
    refuse_nul(data, source)
    return data


def approximate_size(data: Any) -> int:
    """About how many bytes `data` takes as JSON, without encoding it (one C call holding
    the GIL for the whole value): the length of every string plus a few bytes a node."""
    size, stack = 0, [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            size += len(value) + 3
        elif isinstance(value, dict):
            size += 2 + len(value)
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            size += 2 + len(value)
            stack.extend(value)
        else:
            size += 8
    return size


def _too_deep(data: Any) -> str | None:
    """The path (`spec.a.b`, `items[3].x`) at which `data` nests more than MAX_DEPTH levels,
    found without recursion; None when it does not."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict):
            children = [(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()]
        elif isinstance(value, list):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(value)]
        else:
            continue
        if depth > MAX_DEPTH:
            return path or "the body"
        stack.extend((v, depth + 1, p) for v, p in children if isinstance(v, dict | list))
    return None


def refuse_nul(data: Any, source: str, path: str = "") -> None:
    """NUL characters cannot be stored by every database (PostgreSQL's JSONB refuses them)."""
    if isinstance(data, str):
        if "\x00" in data:
            raise BadRequest(
                f"{source}: {path or 'a value'} contains a NUL character (\\u0000), "
                "which is not allowed"
            )
    elif isinstance(data, dict):
        for key, value in data.items():
            refuse_nul(key, source, path)
            refuse_nul(value, source, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            refuse_nul(value, source, f"{path}[{i}]")
