"""Bad input through the CLI: a clear message (what, where, how to fix) and nothing lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.test_acme_cli import kpilot


def _series(ws: Path, state: Path, metric: str) -> list[dict[str, object]]:
    r = kpilot("series", metric, "-w", str(ws), "--format", "json", "--as-of", "2026-11-26", env_state=state)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("D00002,2024-01-11 19:36:00,2024-02-10 19:36:00,lost,8060.0,PME,Hugo Bernard,seo",
     "D00002,2024-01-11 19:36:00,2024-02-10 19:36:00,lost,8060.0,PME,Hugo Bernard,seo,extra",
     ["deals.csv, line 3: 9 field(s) where the header has 8"]),
    ("lost,8060.0,PME", "lost,abc,PME",
     ["deals.csv, line 3, column amount_eur: 'abc' is not a number", "Fix:"]),
    ("deal_id,created_at,closed_at,stage,amount_eur,", "deal_id,created_at,closed_at,stage,amount,",
     ["deals.csv has no column 'amount_eur', needed as", "did you mean 'amount'?"]),
])
def test_a_broken_csv_changes_nothing(acme_copy, old: str, new: str, expected: list[str]) -> None:
    ws, state = acme_copy
    before = _series(ws, state, "pipeline_generated")
    _rewrite(ws / "data" / "deals.csv", old, new)
    r = kpilot("load", "-w", str(ws), "--lang", "en", env_state=state)  # acme is French; English asserted here
    assert r.returncode == 1
    for fragment in expected:
        assert fragment in r.stderr, r.stderr
    assert "Nothing was loaded: every table keeps its previous data." in r.stderr
    assert "Traceback" not in r.stderr
    # The previous data is intact and still answers: the status's own load is refused too, and it shows the
    # last good data with a warning naming the failure (stdout stays JSON).
    r = kpilot("status", "-w", str(ws), "--format", "json", "--lang", "en", env_state=state)
    assert r.returncode == 0, r.stderr
    assert "warning: the latest load failed" in r.stderr and expected[0] in r.stderr
    assert json.loads(r.stdout)[0]["key"] == "mrr"
    assert _series_no_load(ws, state, "pipeline_generated") == before


def _series_no_load(ws: Path, state: Path, metric: str) -> list[dict[str, object]]:
    # --as-of replays from the warehouse without loading files first.
    return _series(ws, state, metric)


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('formula: "ad_spend / demos_booked"', 'formula: "ad_spend / demo_booked"',
     "unknown metric 'demo_booked' in formula 'ad_spend / demo_booked'; did you mean 'demos_booked'?"),
    ("measure: sum(mrr_eur)", "measure: sum(mrr)",
     "unknown column 'mrr' in model subscriptions; did you mean 'mrr_eur'?"),
    ("measure: sum(sessions)", "measure: sum(channel)",
     "sum(channel): column 'channel' is VARCHAR, not a number"),
])
def test_a_bad_definition_is_refused_with_its_place(acme_copy, old: str, new: str, expected: str) -> None:
    ws, state = acme_copy
    before = _series(ws, state, "mrr")
    _rewrite(ws / "kpilot.yaml", old, new)
    line = next(i for i, t in enumerate((ws / "kpilot.yaml").read_text().splitlines(), 1) if new in t)
    r = kpilot("validate", "-w", str(ws), "--lang", "en", env_state=state)  # acme is French; English asserted here
    assert r.returncode == 1
    assert f"kpilot.yaml:{line}:" in r.stderr and expected in r.stderr, r.stderr
    r = kpilot("compute", "-w", str(ws), "--lang", "en", env_state=state)
    assert r.returncode == 1 and expected in r.stderr
    _rewrite(ws / "kpilot.yaml", new, old)
    assert _series(ws, state, "mrr") == before


def test_a_bad_number_on_a_first_load_names_its_line(acme_dir: Path, tmp_path: Path) -> None:
    """Before any load, DuckDB's sniffer would read the column as text; kpilot still names the bad value."""
    ws = tmp_path / "acme"
    shutil.copytree(acme_dir, ws)
    for p in ws.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    _rewrite(ws / "data" / "deals.csv", "lost,8060.0,PME", "lost,abc,PME")
    r = kpilot("load", "-w", str(ws), "--lang", "en", env_state=tmp_path / "state")
    assert r.returncode == 1
    assert "deals.csv, line 3, column amount_eur: 'abc' is not a number" in r.stderr, r.stderr
    # Summing a column that really is text is a definition error, reported at its line.
    _rewrite(ws / "data" / "deals.csv", "lost,abc,PME", "lost,8060.0,PME")
    _rewrite(ws / "kpilot.yaml", "measure: sum(amount_eur)\n    grain: week", "measure: sum(segment)\n    grain: week")
    r = kpilot("load", "-w", str(ws), "--lang", "en", env_state=tmp_path / "state")
    assert r.returncode == 1
    assert "sum(segment): column 'segment' is VARCHAR, not a number" in r.stderr and "kpilot.yaml:" in r.stderr
