"""Credentials of sources, encrypted (kpilot.store.credentials).

Revision ID: 0002_credentials
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_credentials"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(200), nullable=True),
        sa.UniqueConstraint("workspace", "source", "name", name="uq_credentials_name"),
    )
    op.create_index("ix_credentials_workspace", "credentials", ["workspace"])


def downgrade() -> None:
    op.drop_table("credentials")
