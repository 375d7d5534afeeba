"""Fixtures of the source tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sources.helpers import Ws


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Ws]:
    w = Ws(tmp_path)
    yield w
    w.con.close()
