"""The application database on both engines: SQLite in a tmp folder and a fresh schema of the local PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.pg import pg_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (SQLite in the state folder, the default) or a URL on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield None
        return
    with pg_schema() as url:
        yield url
