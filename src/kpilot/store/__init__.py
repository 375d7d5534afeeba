"""The application database: SQLAlchemy models, Alembic migrations (run on open), repositories."""

from kpilot.store.repository import (
    DECISION_STATUSES,
    AnnotationRecord,
    AppStore,
    DecisionRecord,
    PushedValue,
    StoreConflict,
    StoreInvalid,
    StoreNotFound,
    database_url,
)

__all__ = ["DECISION_STATUSES", "AnnotationRecord", "AppStore", "DecisionRecord", "PushedValue", "StoreConflict",
           "StoreInvalid", "StoreNotFound", "database_url"]
