"""Fixtures of the source tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kpilot.sources.saas import http
from tests.sources.helpers import Ws


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Ws]:
    w = Ws(tmp_path)
    yield w
    w.con.close()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits of every HTTP client (retries, Retry-After), recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(http, "default_sleep", recorded.append)
    return recorded
