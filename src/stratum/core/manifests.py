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


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without aliases: a few nested aliases can expand to gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            mark = event.start_mark
            raise yaml.MarkedYAMLError(
                problem="YAML aliases (*name) are not accepted in manifests; write the value out",
                problem_mark=mark,
            )
        return super().compose_node(parent, index)


def load_documents(text: str, source: str = "<input>") -> list[Document]:
    """Every non-empty document in `text`; a `kind: List` is expanded into its items."""
    loader = _NoAliasLoader(text)
    documents: list[Document] = []
    index = 0
    try:
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
    else:
        documents = load_documents(text, source)  # YAML is a superset of JSON
        if len(documents) != 1:
            raise BadRequest(f"{source}: expected exactly one object, got {len(documents)}")
        data = documents[0].data
    refuse_nul(data, source)
    return data


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
