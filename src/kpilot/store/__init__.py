"""The application database: SQLAlchemy models, Alembic migrations (run on open), repositories."""

from kpilot.store.repository import (
    DATABASE_ENV,
    DECISION_STATUSES,
    AnnotationRecord,
    AppStore,
    DecisionRecord,
    PushedValue,
    StoreConflict,
    StoreInvalid,
    StoreNotFound,
    database_url,
    open_store,
    store_exists,
)

__all__ = ["DATABASE_ENV", "DECISION_STATUSES", "AnnotationRecord", "AppStore", "DecisionRecord", "PushedValue",
           "StoreConflict", "StoreInvalid", "StoreNotFound", "database_url", "open_store", "store_exists"]
