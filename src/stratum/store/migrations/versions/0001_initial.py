"""Initial schema: objects, changes, counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("resource_version", sa.BigInteger, nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", _json, nullable=False),
        sa.UniqueConstraint("kind", "namespace", "name", name="uq_objects_kind_ns_name"),
    )
    op.create_index("ix_objects_kind_rv", "objects", ["kind", "resource_version"])
    op.create_table(
        "changes",
        sa.Column("resource_version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", _json, nullable=False),
    )
    op.create_index("ix_changes_kind_rv", "changes", ["kind", "resource_version"])
    op.create_table(
        "counters",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger)),
        [{"name": "resourceVersion", "value": 0}],
    )


def downgrade() -> None:
    op.drop_table("counters")
    op.drop_index("ix_changes_kind_rv", "changes")
    op.drop_table("changes")
    op.drop_index("ix_objects_kind_rv", "objects")
    op.drop_table("objects")
