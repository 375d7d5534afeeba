"""A throwaway schema on the local PostgreSQL (127.0.0.1:5432, database test, trust auth), for store and API tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

PG = "postgresql://{user}@127.0.0.1:5432/test"
PG_USERS = ("postgres", "root")


def pg_admin_url() -> str:
    """The URL of the local server's test database, as the first user that can connect."""
    errors = []
    for user in PG_USERS:
        try:
            with psycopg.connect(PG.format(user=user), connect_timeout=5):
                return PG.format(user=user)
        except psycopg.OperationalError as exc:
            errors.append(f"{user}: {exc}")
    pytest.fail(f"the local PostgreSQL (127.0.0.1:5432, database test) is not reachable: {errors}")


@contextmanager
def pg_schema() -> Iterator[str]:
    """A URL whose tables go into a fresh schema of their own, dropped afterwards."""
    admin = pg_admin_url()
    schema = f"kpilot_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{admin}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')
