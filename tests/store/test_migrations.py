"""Alembic: the store's schema comes from its migrations, applied on open, and matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from kpilot.model import KpilotError
from kpilot.store import AppStore, database_url
from kpilot.store.models import Base
from kpilot.store.repository import MIGRATIONS

TABLES = {"alembic_version", "metric_overrides", "decisions", "annotations", "push_requests", "pushed_values",
          "pushed_rows", "credentials", "alerts", "outbox", "users", "web_sessions", "api_tokens", "change_log",
          "sign_in_failures", "sso_flows"}


def _head() -> str:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def test_opening_an_empty_database_upgrades_it_to_head(db_url: str | None, tmp_path: Path) -> None:
    url = database_url(db_url, tmp_path)
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == set()
    with AppStore(db_url, state_dir=tmp_path):
        pass
    assert set(inspect(engine).get_table_names()) == TABLES
    with engine.connect() as con:
        assert MigrationContext.configure(con).get_current_revision() == _head()
        # The models and the migrated schema agree: autogenerate finds nothing to change.
        assert compare_metadata(MigrationContext.configure(con), Base.metadata) == []
    engine.dispose()


def test_every_migration_goes_down_and_up_again(db_url: str | None, tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    with AppStore(db_url, state_dir=tmp_path) as store:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with store.engine.begin() as con:
            cfg.attributes["connection"] = con
            command.downgrade(cfg, "base")
        assert set(inspect(store.engine).get_table_names()) == {"alembic_version"}
    with AppStore(db_url, state_dir=tmp_path) as again:
        assert set(inspect(again.engine).get_table_names()) == TABLES
        assert again.decisions("acme") == []


def test_opening_twice_changes_nothing(db_url: str | None, tmp_path: Path) -> None:
    with AppStore(db_url, state_dir=tmp_path) as store:
        store.add_decision("acme", "mrr", period="2026-11", action="x", owner=None)
    with AppStore(db_url, state_dir=tmp_path) as store:
        assert len(store.decisions("acme")) == 1


def test_the_default_is_sqlite_in_the_state_folder(tmp_path: Path) -> None:
    with AppStore(state_dir=tmp_path / "state") as store:
        assert store.url == f"sqlite:///{tmp_path / 'state' / 'app.db'}"
    assert (tmp_path / "state" / "app.db").is_file()


def test_postgresql_urls_use_psycopg3(tmp_path: Path) -> None:
    assert database_url("postgresql://u@h/db", tmp_path) == "postgresql+psycopg://u@h/db"
    assert database_url("postgres://u@h/db", tmp_path) == "postgresql+psycopg://u@h/db"
    assert database_url("sqlite:///x.db", tmp_path) == "sqlite:///x.db"


def test_a_bad_url_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(KpilotError, match="cannot use the application database URL 'nosuch://x'") as bad:
        AppStore("nosuch://x", state_dir=tmp_path)
    assert "KPILOT_DATABASE_URL" in str(bad.value)


def test_an_unreachable_server_is_reported_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(KpilotError, match="cannot open the application database") as bad:
        AppStore("postgresql://kp:secret@127.0.0.1:1/none?connect_timeout=2", state_dir=tmp_path)
    assert "secret" not in str(bad.value) and "kp:***@127.0.0.1:1" in str(bad.value)
