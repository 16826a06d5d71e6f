"""Logging setup for `stratum serve` and `stratum up`: text for people, JSON lines for log
pipelines. A record about an object carries its kind, namespace, name and uid
(`object_fields`), which the JSON format writes as an `object` field."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_OBJECT_KEYS = ("kind", "namespace", "name", "uid")
# Attributes every LogRecord has: whatever else a record carries came in through `extra`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def object_fields(
    kind: str, name: str, namespace: str | None = None, uid: str | None = None
) -> dict[str, Any]:
    """`extra=` for a log record about one object."""
    return {
        f"object_{k}": v
        for k, v in zip(_OBJECT_KEYS, (kind, namespace, name, uid), strict=True)
        if v
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC), level, logger, message, the object
    the record is about, any other `extra` fields, and the exception if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        obj = {
            k: getattr(record, f"object_{k}")
            for k in _OBJECT_KEYS
            if getattr(record, f"object_{k}", None)
        }
        if obj:
            out["object"] = obj
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("object_") and not key.startswith("_"):
                out[key] = (
                    value if isinstance(value, str | int | float | bool | None) else str(value)
                )
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The usual line, with ` (kind namespace/name)` when the record is about an object."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        kind = getattr(record, "object_kind", None)
        if kind:
            ns = getattr(record, "object_namespace", None)
            line += f" ({kind} {ns + '/' if ns else ''}{getattr(record, 'object_name', '')})"
        return line


def setup_logging(*, level: str = "info", fmt: str = "text") -> logging.Handler:
    """Send every logger (uvicorn's too) to stderr in `fmt`; returns the handler."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format: expected one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
