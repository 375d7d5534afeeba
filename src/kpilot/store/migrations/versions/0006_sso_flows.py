"""Started single sign-ons, kept in the database so that any server process can end them.

Revision ID: 0006_sso_flows
Revises: 0005_sign_in_failures
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_sso_flows"
down_revision = "0005_sign_in_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_flows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(200), nullable=False),
        sa.Column("verifier", sa.String(200), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("state_hash", name="uq_sso_flows_state"),
    )
    op.create_index("ix_sso_flows_workspace", "sso_flows", ["workspace"])
    op.create_index("ix_sso_flows_started_at", "sso_flows", ["started_at"])


def downgrade() -> None:
    op.drop_table("sso_flows")
