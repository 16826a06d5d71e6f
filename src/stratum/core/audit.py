"""The audit chain: digests of objects, the hash that links each record to the one before,
and the check that finds an edited, removed or reordered record.

Each record's hash is an HMAC-SHA256, under a key the database does not hold, over its own
fields (canonical JSON) and the previous record's hash: changing or deleting any record
breaks every link after it, and whoever can write the database but lacks the key cannot
recompute the chain. The record names its key (`keyId`), so keys can rotate. Records
written before the server had a key carry a plain SHA-256 (no `keyId`): they still link,
but an edit that recomputes them cannot be told apart, and verification says so.

The newest records are protected by an anchor kept outside the store (a file): the head's
sequence and hash, signed with the key. Deleting the newest records, or rewriting the
chain up to the head, no longer matches the anchor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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


# Fields added since the first version: hashed only when a record has them, so that the
# hashes of older records stay what they were.
OPTIONAL_FIELDS = ("keyId", "token", "issuedBy")


def _hashed(spec: Mapping[str, Any]) -> bytes:
    body = {k: spec.get(k) for k in HASHED_FIELDS}
    body.update({k: spec[k] for k in OPTIONAL_FIELDS if k in spec})
    return canonical(body)


def record_hash(spec: Mapping[str, Any], key: bytes | None = None) -> str:
    """HMAC-SHA256 of the record's fields under `key`; plain SHA-256 without one (records
    written before the server had a key)."""
    if key is None:
        return hashlib.sha256(_hashed(spec)).hexdigest()
    return hmac.new(key, _hashed(spec), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditKey:
    """One key of the chain, derived from a secret key the server holds outside the store."""

    id: str
    secret: bytes = field(repr=False)

    @classmethod
    def derive(cls, fernet_key: str) -> AuditKey:
        """From a Fernet key (32 bytes, url-safe base64), for this purpose only: knowing the
        audit key tells nothing about the key that seals credentials."""
        raw = base64.urlsafe_b64decode(fernet_key.encode())
        secret = hmac.new(raw, b"stratum/audit-chain", hashlib.sha256).digest()
        key_id = hmac.new(raw, b"stratum/audit-key-id", hashlib.sha256).hexdigest()[:12]
        return cls(key_id, secret)


def audit_keys(fernet_keys: Sequence[str]) -> tuple[AuditKey, ...]:
    """The audit keys of a keyring, newest first: records are signed with the first."""
    return tuple(AuditKey.derive(k) for k in fernet_keys)


@dataclass(frozen=True, slots=True)
class Anchor:
    """The head of the chain as last seen, kept outside the store and signed."""

    sequence: int
    hash: str
    key_id: str
    mac: str
    updated_at: str | None = None

    @staticmethod
    def _message(sequence: int, head: str) -> bytes:
        return canonical({"sequence": sequence, "hash": head, "purpose": "audit-anchor"})

    @classmethod
    def sign(cls, sequence: int, head: str, key: AuditKey, updated_at: str | None = None) -> Anchor:
        mac = hmac.new(key.secret, cls._message(sequence, head), hashlib.sha256).hexdigest()
        return cls(sequence, head, key.id, mac, updated_at)

    def signed_by(self, keys: Mapping[str, AuditKey]) -> bool:
        key = keys.get(self.key_id)
        if key is None:
            return False
        expected = hmac.new(key.secret, self._message(self.sequence, self.hash), hashlib.sha256)
        return hmac.compare_digest(expected.hexdigest(), self.mac)

    def to_wire(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "hash": self.hash,
            "keyId": self.key_id,
            "mac": self.mac,
            "updatedAt": self.updated_at,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Anchor:
        """Raises ValueError (KeyError/TypeError included) for anything else."""
        try:
            return cls(
                sequence=int(data["sequence"]),
                hash=str(data["hash"]),
                key_id=str(data["keyId"]),
                mac=str(data["mac"]),
                updated_at=None if data.get("updatedAt") is None else str(data["updatedAt"]),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not an audit anchor: {err}") from None


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
    # What verification could not prove, said plainly (records from before the key, no
    # anchor): not problems, but limits of what `ok` means.
    notes: tuple[str, ...] = ()
    unkeyed: int = 0
    anchored: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _span(first: int, last: int) -> str:
    return f"{first}" if first == last else f"{first}..{last}"


def verify(
    records: Iterable[Mapping[str, Any]],
    *,
    expected: int,
    keys: Sequence[AuditKey] = (),
    anchor: Anchor | None = None,
    anchor_expected: bool = False,
) -> Verification:
    """Check a chain of AuditRecord wire objects, in sequence order, against the number of
    records the server has appended (`expected`), the keys the server holds and the anchor
    kept outside the store (`anchor_expected`: the server keeps one, so none is a problem)."""
    by_id = {k.id: k for k in keys}
    problems: list[Problem] = []
    previous_hash = GENESIS
    next_sequence = 1
    count = 0
    unkeyed: list[int] = []
    keyed_seen = False
    hashes: dict[int, str] = {}
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
            problems.append(
                Problem(
                    next_sequence, f"record(s) {_span(next_sequence, seq - 1)} missing: deleted"
                )
            )
        key_id = spec.get("keyId")
        key: AuditKey | None = None
        if key_id is None:
            unkeyed.append(seq)
            if keyed_seen:
                problems.append(
                    Problem(
                        seq,
                        f"record {seq} carries no key although records before it do: it was "
                        "rewritten by someone without the audit key",
                    )
                )
        else:
            keyed_seen = True
            key = by_id.get(str(key_id))
        if key_id is not None and key is None:
            problems.append(
                Problem(
                    seq,
                    f"record {seq} is signed with audit key {key_id}, which this server does "
                    "not hold: it cannot be verified (restore that key to the keyring, after "
                    "the newest) or it was forged",
                )
            )
        elif spec.get("hash") != record_hash(spec, None if key is None else key.secret):
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
        hashes[seq] = previous_hash
        next_sequence = seq + 1
    if expected >= next_sequence:
        problems.append(
            Problem(
                next_sequence,
                f"record(s) {_span(next_sequence, expected)} missing: the server wrote "
                f"{expected} records, the log ends at "
                f"{next_sequence - 1}",
            )
        )
    notes: list[str] = []
    if unkeyed:
        notes.append(
            f"{len(unkeyed)} record(s) ({_span(unkeyed[0], unkeyed[-1])}) were written "
            "without an audit key (before one was configured): an edit that recomputes "
            "their hashes cannot be detected"
        )
    anchored = None
    if anchor is None:
        if anchor_expected and count:
            problems.append(
                Problem(
                    next_sequence - 1,
                    "the anchor kept outside the store is missing: the newest records "
                    "cannot be checked against it",
                )
            )
        elif not anchor_expected:
            notes.append(
                "no anchor outside the store is configured: deleting the newest records "
                "together with the server's record counter cannot be detected"
            )
    elif not anchor.signed_by(by_id):
        problems.append(
            Problem(
                anchor.sequence,
                f"the anchor outside the store (head {anchor.sequence}) is not signed by any "
                "audit key this server holds: it was forged or the key is missing",
            )
        )
    else:
        anchored = anchor.sequence
        held = hashes.get(anchor.sequence)
        if anchor.sequence >= next_sequence:
            problems.append(
                Problem(
                    next_sequence,
                    f"record(s) {_span(next_sequence, anchor.sequence)} missing: the anchor "
                    f"outside the store says the log reached {anchor.sequence}, it ends at "
                    f"{next_sequence - 1} (the newest records were deleted)",
                )
            )
        elif held is not None and held != anchor.hash:
            problems.append(
                Problem(
                    anchor.sequence,
                    f"record {anchor.sequence} is not the one the anchor outside the store "
                    "signed: the chain was rewritten up to it",
                )
            )
    return Verification(
        records=count,
        expected=expected,
        head=previous_hash,
        problems=tuple(problems),
        notes=tuple(notes),
        unkeyed=len(unkeyed),
        anchored=anchored,
    )
