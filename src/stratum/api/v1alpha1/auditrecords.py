"""AuditRecord: who did what, append-only and hash-chained so tampering shows."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.meta import ObjectReference, Resource, Status, Timestamp, WireModel


class Issuer(WireModel):
    """Who made the token a record's actor used: its subject and its own token."""

    subject: str = Field(description="The issuer's subject.")
    token: str = Field(description="The id of the token the issuer used.")


class AuditRecordSpec(WireModel):
    sequence: int = Field(ge=0, description="Position in the audit chain, from 0.")
    timestamp: Timestamp = Field(description="When the write happened.")
    actor: str = Field(description="The subject that made the write (system: for the server).")
    action: Literal["create", "update", "delete", "status"] = Field(
        description="create, update, delete, or status (a write of the status only)."
    )
    object: ObjectReference = Field(description="The object written.")
    source_address: str | None = Field(
        default=None, description="The client's network address, for API writes."
    )
    before_digest: str | None = Field(
        default=None, description="sha256: digest of the object before the write; unset on create."
    )
    after_digest: str | None = Field(
        default=None, description="sha256: digest of the object after the write; unset on delete."
    )
    previous_hash: str = Field(
        default="", description="The hash of the record before it in the chain."
    )
    # The token the actor used, and who issued it (nearest first): impersonation shows.
    token: str | None = Field(default=None, description="The id of the token the actor used.")
    issued_by: list[Issuer] | None = Field(
        default=None, description="Who issued that token, and who issued theirs, nearest first."
    )
    # The audit key the hash is an HMAC under (None: a plain SHA-256, from before keys).
    key_id: str | None = Field(
        default=None,
        description="The audit key the hash is an HMAC-SHA256 under; unset: a plain SHA-256, "
        "written before the server had a key.",
    )
    hash: str = Field(
        default="",
        description="Hash over this record's fields and previousHash; an edited, removed or "
        "reordered record breaks the chain.",
    )


class AuditRecord(Resource):
    KIND: ClassVar[str] = "AuditRecord"
    PLURAL: ClassVar[str] = "auditrecords"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("audit",)
    kind: Literal["AuditRecord"] = "AuditRecord"
    spec: AuditRecordSpec = Field(description="Who wrote what, when, and its link in the chain.")
    status: Status = Field(
        default_factory=Status,
        description="Conditions, if any; audit records have no status of their own.",
    )
