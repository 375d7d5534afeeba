"""The application database's tables (SQLAlchemy 2 declarative models).

The schema itself is created and changed by the Alembic migrations in `kpilot.store.migrations`; these
classes must match the latest migration (tests/store checks that `upgrade head` builds the same tables).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class OverrideRow(Base):
    """A value replacing one field of one metric of kpilot.yaml (edited in the web's settings)."""

    __tablename__ = "metric_overrides"
    __table_args__ = (UniqueConstraint("workspace", "metric", "field", name="uq_metric_overrides_field"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    metric: Mapped[str] = mapped_column(String(200))
    field: Mapped[str] = mapped_column(String(100))
    value: Mapped[object] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user: Mapped[str | None] = mapped_column(String(200), nullable=True)


class DecisionRow(Base):
    """A decision taken (or declined) about a KPI: the decision log."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    metric: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The expected effect and its review: "+15 % within 3 weeks" is expected_change 0.15, review_on 3 weeks on.
    expected_effect: Mapped[str | None] = mapped_column(Text, nullable=True)
    expected_change: Mapped[float | None] = mapped_column(Float, nullable=True)
    review_on: Mapped[str | None] = mapped_column(String(10), nullable=True)
    alert_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    baseline: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)  # the forecast made before
    effect: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)  # measured at the review


class AnnotationRow(Base):
    """A note on a metric's history (a launch, an outage, a price change)."""

    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    metric: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user: Mapped[str | None] = mapped_column(String(200), nullable=True)


class PushRequestRow(Base):
    """A push seen with an idempotency key: its body's fingerprint and the response it was given."""

    __tablename__ = "push_requests"
    __table_args__ = (UniqueConstraint("workspace", "key", name="uq_push_requests_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PushedValueRow(Base):
    """A metric value sent by another system (append-only: the latest per metric and period wins)."""

    __tablename__ = "pushed_values"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    metric: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(40))
    value: Mapped[float] = mapped_column(Float)
    push_id: Mapped[int | None] = mapped_column(ForeignKey("push_requests.id"), nullable=True)
    pushed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PushedRowRow(Base):
    """A row of a table sent by another system (append-only), kept as JSON."""

    __tablename__ = "pushed_rows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    table_name: Mapped[str] = mapped_column(String(200))
    row: Mapped[dict[str, object]] = mapped_column(JSON)
    push_id: Mapped[int | None] = mapped_column(ForeignKey("push_requests.id"), nullable=True)
    pushed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CredentialRow(Base):
    """A credential of a source (a token, an API key, a database URL), encrypted: `value` is a Fernet token."""

    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("workspace", "source", "name", name="uq_credentials_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    source: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user: Mapped[str | None] = mapped_column(String(200), nullable=True)


class AlertRow(Base):
    """An alert: a KPI off track or whose decision rule fired, an early warning or an anomaly, with its state.

    `key` identifies what the alert is about across runs (the same KPI's episode, the same warning), so a condition
    seen again updates its alert instead of raising a new one. `story` is the id of the alert that opened the chain
    (a leading indicator's dip and the lagging miss it predicts share one story).
    """

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("workspace", "key", "opened", name="uq_alerts_episode"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    key: Mapped[str] = mapped_column(String(300))
    story: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(30))
    metric: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(10))
    opened: Mapped[str] = mapped_column(String(10))  # as-of date (ISO) of the run that first saw it
    last_seen: Mapped[str] = mapped_column(String(10))
    periods_seen: Mapped[int] = mapped_column(Integer)
    needed: Mapped[int] = mapped_column(Integer)  # periods the condition must hold before it fires
    recipients: Mapped[list[str]] = mapped_column(JSON)
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    snoozed_until: Mapped[str | None] = mapped_column(String(10), nullable=True)
    resolved_on: Mapped[str | None] = mapped_column(String(10), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    notified: Mapped[int] = mapped_column(Integer, default=0)  # messages queued for it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxRow(Base):
    """A message to deliver, written before any attempt; kept after delivery (the log of what was sent).

    `delivery_id` is the same on every attempt, so a receiver seeing it twice knows it is one message.
    """

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("delivery_id", name="uq_outbox_delivery"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    delivery_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(200))
    recipient: Mapped[str] = mapped_column(String(200))  # the team (or review address) it is for
    kind: Mapped[str] = mapped_column(String(20))  # alert | digest | review | decision_review
    week: Mapped[str] = mapped_column(String(10))  # first day of the as-of week (the budget's week)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), nullable=True)
    message: Mapped[dict[str, object]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UserRow(Base):
    """A person who may sign in to a workspace, with their role there (admin, editor, viewer) and, for an editor,
    the teams whose KPIs they may change (none: every KPI). No password hash: signs in through single sign-on."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("workspace", "email", name="uq_users_email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    role: Mapped[str] = mapped_column(String(20))
    teams: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebSessionRow(Base):
    """A signed-in browser: the SHA-256 of its session id (the id itself is only in the browser's cookie)."""

    __tablename__ = "web_sessions"
    __table_args__ = (UniqueConstraint("id_hash", name="uq_web_sessions_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    id_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiTokenRow(Base):
    """An API token of a workspace: its SHA-256 (the token is shown once, at creation), role and last use."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_api_tokens_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(20))  # the token's first characters, to recognise it in a list
    role: Mapped[str] = mapped_column(String(20))
    teams: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(254), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ChangeRow(Base):
    """One change to the workspace, kept for the audit log: who, when, what, the value before and after."""

    __tablename__ = "change_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str | None] = mapped_column(String(254), nullable=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(300))
    before: Mapped[object] = mapped_column(JSON, nullable=True)
    after: Mapped[object] = mapped_column(JSON, nullable=True)


class SignInFailureRow(Base):
    """A failed sign-in, kept for the throttle's window: the SHA-256 of what it is counted against (an address, a
    client), never the address itself."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SsoFlowRow(Base):
    """A single sign-on started and not back yet, kept for ten minutes so that any server process sharing the
    database can end it: the SHA-256 of its state and of the browser's flow cookie, the nonce and PKCE verifier it
    was sent with, the page to land on and the callback address."""

    __tablename__ = "sso_flows"
    __table_args__ = (UniqueConstraint("state_hash", name="uq_sso_flows_state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(200), index=True)
    state_hash: Mapped[str] = mapped_column(String(64))
    browser_hash: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(200))
    verifier: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
