"""Tokens remember the token that issued them, so that an audit record names the whole
chain of issuers (impersonation shows) and a token can be held to its issuer's lifetime.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("issuer_token_id", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("tokens", "issuer_token_id")
