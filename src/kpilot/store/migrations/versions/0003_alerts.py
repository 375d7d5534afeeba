"""Alerts, the outbox of messages to deliver, and decisions with an expected effect and a review.

Revision ID: 0003_alerts
Revises: 0002_credentials
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_alerts"
down_revision = "0002_credentials"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("story", sa.Integer, nullable=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("opened", sa.String(10), nullable=False),
        sa.Column("last_seen", sa.String(10), nullable=False),
        sa.Column("periods_seen", sa.Integer, nullable=False),
        sa.Column("needed", sa.Integer, nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("snoozed_until", sa.String(10), nullable=True),
        sa.Column("resolved_on", sa.String(10), nullable=True),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        sa.Column("notified", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("workspace", "key", "opened", name="uq_alerts_episode"),
    )
    op.create_index("ix_alerts_workspace", "alerts", ["workspace"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=True),
        sa.Column("message", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("delivery_id", name="uq_outbox_delivery"),
    )
    op.create_index("ix_outbox_workspace", "outbox", ["workspace"])
    op.create_index("ix_outbox_state", "outbox", ["state"])
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("expected_effect", sa.Text, nullable=True))
        batch.add_column(sa.Column("expected_change", sa.Float, nullable=True))
        batch.add_column(sa.Column("review_on", sa.String(10), nullable=True))
        batch.add_column(sa.Column("alert_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("baseline", sa.JSON, nullable=True))
        batch.add_column(sa.Column("effect", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        for column in ("effect", "baseline", "alert_id", "review_on", "expected_change", "expected_effect"):
            batch.drop_column(column)
    op.drop_table("outbox")
    op.drop_table("alerts")
