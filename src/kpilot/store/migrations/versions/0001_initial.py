"""The first schema: settings overrides, decision log, annotations, pushes.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _stamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "metric_overrides",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("value", sa.JSON, nullable=True),
        _stamp("updated_at"),
        sa.Column("user", sa.String(200), nullable=True),
        sa.UniqueConstraint("workspace", "metric", "field", name="uq_metric_overrides_field"),
    )
    op.create_index("ix_metric_overrides_workspace", "metric_overrides", ["workspace"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("period", sa.String(40), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        _stamp("created_at"),
        _stamp("updated_at"),
        sa.Column("user", sa.String(200), nullable=True),
    )
    op.create_index("ix_decisions_workspace", "decisions", ["workspace"])
    op.create_table(
        "annotations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("period", sa.String(40), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        _stamp("created_at"),
        sa.Column("user", sa.String(200), nullable=True),
    )
    op.create_index("ix_annotations_workspace", "annotations", ["workspace"])
    op.create_table(
        "push_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        _stamp("created_at"),
        sa.UniqueConstraint("workspace", "key", name="uq_push_requests_key"),
    )
    op.create_table(
        "pushed_values",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("period", sa.String(40), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("push_id", sa.Integer, sa.ForeignKey("push_requests.id"), nullable=True),
        _stamp("pushed_at"),
    )
    op.create_index("ix_pushed_values_workspace", "pushed_values", ["workspace"])
    op.create_table(
        "pushed_rows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("row", sa.JSON, nullable=False),
        sa.Column("push_id", sa.Integer, sa.ForeignKey("push_requests.id"), nullable=True),
        _stamp("pushed_at"),
    )
    op.create_index("ix_pushed_rows_workspace", "pushed_rows", ["workspace"])


def downgrade() -> None:
    for table in ("pushed_rows", "pushed_values", "push_requests", "annotations", "decisions", "metric_overrides"):
        op.drop_table(table)
