"""Read YAML or JSON manifests (one or many documents) with errors that give line and column."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from stratum.core.errors import BadRequest, Cause


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

# libyaml when PyYAML was built with it (~10x faster than the pure-Python parser).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _at(event: Any, problem: str) -> yaml.MarkedYAMLError:
    return yaml.MarkedYAMLError(problem=problem, problem_mark=event.start_mark)


def _refuse_costly(text: str) -> None:
    """One pass over the YAML events, before anything is built: no aliases (a few nested
    ones expand to gigabytes), at most MAX_DEPTH levels and MAX_YAML_NODES nodes."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise _at(
                event, "YAML aliases (*name) are not accepted in manifests; write the value out"
            )
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_YAML_NODES:
                raise _at(event, f"more than {MAX_YAML_NODES} YAML nodes; split the input")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _at(event, f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def load_documents(text: str, source: str = "<input>") -> list[Document]:
    """Every non-empty document in `text`; a `kind: List` is expanded into its items."""
    documents: list[Document] = []
    index = 0
    loader = None
    try:
        _refuse_costly(text)
        loader = _Loader(text)
        while loader.check_node():
            index += 1
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            line = node.start_mark.line + 1
            if data is None:
                continue
            if isinstance(data, dict) and data.get("kind") == "List" and "items" in data:
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
    finally:
        if loader is not None:
            loader.dispose()
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
        if _too_deep(data):
            raise BadRequest(f"{source}: nested more than {MAX_DEPTH} levels deep")
    else:
        documents = load_documents(text, source)  # YAML is a superset of JSON
        if len(documents) != 1:
            raise BadRequest(f"{source}: expected exactly one object, got {len(documents)}")
        data = documents[0].data
    refuse_nul(data, source)
    return data


def _too_deep(data: Any) -> bool:
    """Whether `data` nests more than MAX_DEPTH levels (without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            if depth > MAX_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return False


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
