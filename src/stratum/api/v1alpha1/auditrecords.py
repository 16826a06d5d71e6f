"""AuditRecord: who did what, append-only and hash-chained so tampering shows."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.meta import ObjectReference, Resource, Status, Timestamp, WireModel


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
    hash: str = ""


class AuditRecord(Resource):
    KIND: ClassVar[str] = "AuditRecord"
    PLURAL: ClassVar[str] = "auditrecords"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("audit",)
    kind: Literal["AuditRecord"] = "AuditRecord"
    spec: AuditRecordSpec
    status: Status = Field(default_factory=Status)
