"""AuditRecord: who did what, append-only and hash-chained so tampering shows."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.meta import ObjectReference, Resource, Status, Timestamp, WireModel


class Issuer(WireModel):
    """Who made the token a record's actor used: its subject and its own token."""

    subject: str
    token: str


class AuditRecordSpec(WireModel):
    sequence: int = Field(ge=0)
    timestamp: Timestamp
    actor: str
    action: Literal["create", "update", "delete", "status"]
    object: ObjectReference
    source_address: str | None = None
    before_digest: str | None = None
    after_digest: str | None = None
    previous_hash: str = ""
    # The token the actor used, and who issued it (nearest first): impersonation shows.
    token: str | None = None
    issued_by: list[Issuer] | None = None
    # The audit key the hash is an HMAC under (None: a plain SHA-256, from before keys).
    key_id: str | None = None
    hash: str = ""


class AuditRecord(Resource):
    KIND: ClassVar[str] = "AuditRecord"
    PLURAL: ClassVar[str] = "auditrecords"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("audit",)
    kind: Literal["AuditRecord"] = "AuditRecord"
    spec: AuditRecordSpec
    status: Status = Field(default_factory=Status)
