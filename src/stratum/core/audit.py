"""The audit chain: digests of objects, the hash that links each record to the one before,
and the check that finds an edited, removed or reordered record.

Each record's hash is SHA-256 over its own fields (canonical JSON) and the previous
record's hash, so changing or deleting any record breaks every link after it; the count
of records the server has written is kept apart, so that removing the newest shows too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
HASHED_FIELDS = (
    "sequence",
    "timestamp",
    "actor",
    "action",
    "object",
    "sourceAddress",
    "beforeDigest",
    "afterDigest",
    "previousHash",
)


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(obj: Mapping[str, Any] | None) -> str | None:
    """SHA-256 of an object's content (metadata, spec, status), without what the store adds
    on every write, so that equal content has equal digests."""
    if obj is None:
        return None
    body = {k: v for k, v in obj.items() if k in ("apiVersion", "kind", "spec", "status")}
    meta = dict(obj.get("metadata") or {})
    for key in ("resourceVersion", "generation", "creationTimestamp", "uid"):
        meta.pop(key, None)
    body["metadata"] = meta
    return "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


def record_hash(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical({k: spec.get(k) for k in HASHED_FIELDS})).hexdigest()


def record_name(sequence: int) -> str:
    return f"{sequence:012d}"


@dataclass(frozen=True, slots=True)
class Problem:
    sequence: int
    message: str


@dataclass(frozen=True, slots=True)
class Verification:
    records: int
    expected: int
    head: str
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(records: Iterable[Mapping[str, Any]], *, expected: int) -> Verification:
    """Check a chain of AuditRecord wire objects, in sequence order, against the number of
    records the server has appended (`expected`)."""
    problems: list[Problem] = []
    previous_hash = GENESIS
    next_sequence = 1
    count = 0
    for record in sorted(records, key=lambda r: int(r["spec"]["sequence"])):
        count += 1
        spec = record["spec"]
        seq = int(spec["sequence"])
        name = (record.get("metadata") or {}).get("name")
        if name != record_name(seq):
            problems.append(
                Problem(
                    seq,
                    f"record {name} claims sequence {seq}: it was renamed or its sequence edited",
                )
            )
        if seq > next_sequence:
            missing = (
                f"{next_sequence}" if seq == next_sequence + 1 else f"{next_sequence}..{seq - 1}"
            )
            problems.append(Problem(next_sequence, f"record(s) {missing} missing: deleted"))
        if spec.get("hash") != record_hash(spec):
            problems.append(
                Problem(seq, f"record {seq} was edited: its content no longer matches its hash")
            )
        elif spec.get("previousHash") != previous_hash:
            problems.append(
                Problem(
                    seq,
                    f"record {seq} does not follow the record before it "
                    "(its previousHash differs): the chain was broken "
                    "before it",
                )
            )
        previous_hash = str(spec.get("hash"))
        next_sequence = seq + 1
    if expected >= next_sequence:
        missing = (
            f"{next_sequence}" if expected == next_sequence else f"{next_sequence}..{expected}"
        )
        problems.append(
            Problem(
                next_sequence,
                f"record(s) {missing} missing: the server wrote "
                f"{expected} records, the log ends at "
                f"{next_sequence - 1}",
            )
        )
    return Verification(
        records=count, expected=expected, head=previous_hash, problems=tuple(problems)
    )
