"""`kpilot explain` compares the periods asked, at their grain, whatever the metric's own grain.

Expected values come from hand-written DuckDB SQL over acme's CSVs (times are Europe/Paris local times,
as kpilot reads them), never from kpilot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import one


@pytest.fixture(scope="module")
def acme(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A loaded copy of acme: (workspace, state dir)."""
    root = tmp_path_factory.mktemp("explain-grain")
    workspace, state = root / "acme", root / "state"
    shutil.copytree(acme_dir, workspace)
    for path in [workspace, *workspace.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    r = run(workspace, state, "load")
    assert r.returncode == 0, r.stderr
    return workspace, state


def run(workspace: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kpilot.cli", *args, "-w", str(workspace), "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, COLUMNS="200"))


def explain_json(acme: tuple[Path, Path], *args: str) -> dict[str, object]:
    r = run(*acme, "explain", *args, "--format", "json", "--lang", "en")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert isinstance(out, dict)
    return out


def singles(out: dict[str, object], dimension: str) -> dict[str, dict[str, float]]:
    contributions = out["contributions"]
    assert isinstance(contributions, list)
    return {c["values"][0]: c for c in contributions if c["dimensions"] == [dimension]}


PIPELINE = ("SELECT coalesce(sum(amount_eur), 0) FROM deals WHERE segment = ? "
            "AND created_at >= ?::TIMESTAMP AND created_at < ?::TIMESTAMP")


def test_a_weekly_sum_explained_by_month_compares_the_months(acme: tuple[Path, Path],
                                                             acme_raw: duckdb.DuckDBPyConnection) -> None:
    # November is complete as of its last day: both months whole.
    out = explain_json(acme, "pipeline_generated", "--from", "2026-10", "--to", "2026-11", "--by", "segment",
                       "--as-of", "2026-11-30")
    by_segment = singles(out, "segment")
    assert set(by_segment) == {"ETI", "PME"}
    for segment, c in by_segment.items():
        assert c["before"] == pytest.approx(one(acme_raw, PIPELINE, segment, "2026-10-01", "2026-11-01"))
        assert c["after"] == pytest.approx(one(acme_raw, PIPELINE, segment, "2026-11-01", "2026-12-01"))
    october = one(acme_raw, "SELECT sum(amount_eur) FROM deals WHERE created_at >= '2026-10-01' "
                            "AND created_at < '2026-11-01'")
    assert out["total_before"] == pytest.approx(october)
    assert out["grain"] == "month"
    assert out["compared"]["same_days"] is None
    assert out["compared"]["metric_grain"] == "week"


def test_a_month_in_progress_is_compared_with_the_same_days_of_the_month_before(
        acme: tuple[Path, Path], acme_raw: duckdb.DuckDBPyConnection) -> None:
    out = explain_json(acme, "pipeline_generated", "--from", "2026-10", "--to", "2026-11", "--by", "segment",
                       "--as-of", "2026-11-26")
    for segment, c in singles(out, "segment").items():
        assert c["before"] == pytest.approx(one(acme_raw, PIPELINE, segment, "2026-10-01", "2026-10-27"))
        assert c["after"] == pytest.approx(one(acme_raw, PIPELINE, segment, "2026-11-01", "2026-11-27"))
    compared = out["compared"]
    assert compared["same_days"] == 26
    assert (compared["before"]["last"], compared["after"]["last"]) == ("2026-10-26", "2026-11-26")
    r = run(*acme, "explain", "pipeline_generated", "--from", "2026-10", "--to", "2026-11", "--as-of", "2026-11-26",
            "--lang", "en")
    assert r.returncode == 0, r.stderr
    assert ("November 2026 is in progress: it is compared with October 2026 over the same first 26 day(s) "
            "(Oct 1, 2026 – Oct 26, 2026 against Nov 1, 2026 – Nov 26, 2026), not with the whole of October 2026."
            ) in r.stdout
    # Periods, dimensions and their values in people's words, changes signed: as the KPI page says them.
    assert "Pipeline généré, October 2026 → November 2026: €3.72M → €3.47M (−€256,340)" in r.stdout
    assert "Google Ads" in r.stdout and "google_ads" not in r.stdout and "2026-W" not in r.stdout
    assert "Compared by month (the metric's own grain is week)" in r.stdout


def test_a_snapshot_in_progress_is_read_at_the_same_day_of_the_month_before(
        acme: tuple[Path, Path], acme_raw: duckdb.DuckDBPyConnection) -> None:
    out = explain_json(acme, "mrr", "--from", "2026-10", "--to", "2026-11", "--by", "segment", "--as-of", "2026-11-26")
    sql = ("SELECT sum(mrr_eur) FROM subscriptions WHERE segment = ? AND start_date <= ?::DATE "
           "AND (end_date IS NULL OR end_date > ?::DATE)")
    for segment, c in singles(out, "segment").items():
        assert c["before"] == pytest.approx(one(acme_raw, sql, segment, "2026-10-26", "2026-10-26"))
        assert c["after"] == pytest.approx(one(acme_raw, sql, segment, "2026-11-26", "2026-11-26"))


def test_a_weekly_ratio_explained_by_month_regrains_numerator_and_denominator(
        acme: tuple[Path, Path], acme_raw: duckdb.DuckDBPyConnection) -> None:
    out = explain_json(acme, "mql_rate", "--from", "2026-09", "--to", "2026-10", "--by", "channel", "--no-pairs",
                       "--as-of", "2026-11-30")
    assert out["kind"] == "ratio" and out["grain"] == "month"
    sql = ("SELECT count(*) FILTER (WHERE is_mql) / count(*) FROM leads WHERE {where} "
           "AND created_at >= ?::TIMESTAMP AND created_at < ?::TIMESTAMP")
    assert out["total_before"] == pytest.approx(one(acme_raw, sql.format(where="true"), "2026-09-01", "2026-10-01"))
    assert out["total_after"] == pytest.approx(one(acme_raw, sql.format(where="true"), "2026-10-01", "2026-11-01"))
    for channel, c in singles(out, "channel").items():
        assert c["before"] == pytest.approx(one(acme_raw, sql.format(where="channel = ?"), channel, "2026-09-01",
                                                "2026-10-01"))
        assert c["after"] == pytest.approx(one(acme_raw, sql.format(where="channel = ?"), channel, "2026-10-01",
                                               "2026-11-01"))
    assert sum(c["change"] for c in singles(out, "channel").values()) == pytest.approx(out["total_change"], abs=1e-12)


def test_quarters_and_days_with_a_grain(acme: tuple[Path, Path], acme_raw: duckdb.DuckDBPyConnection) -> None:
    out = explain_json(acme, "pipeline_generated", "--from", "2026-Q2", "--to", "2026-Q3", "--by", "segment",
                       "--as-of", "2026-11-30")
    for segment, c in singles(out, "segment").items():
        assert c["before"] == pytest.approx(one(acme_raw, PIPELINE, segment, "2026-04-01", "2026-07-01"))
        assert c["after"] == pytest.approx(one(acme_raw, PIPELINE, segment, "2026-07-01", "2026-10-01"))
    # Days with --grain month stand for the months holding them.
    by_days = explain_json(acme, "pipeline_generated", "--from", "2026-10-15", "--to", "2026-11-03", "--grain", "month",
                           "--by", "segment", "--as-of", "2026-11-30")
    by_months = explain_json(acme, "pipeline_generated", "--from", "2026-10", "--to", "2026-11", "--by", "segment",
                             "--as-of", "2026-11-30")
    assert (by_days["from"], by_days["to"]) == ("2026-10-01", "2026-11-01")
    assert by_days["contributions"] == by_months["contributions"]


def test_a_monthly_ratio_explained_by_week(acme: tuple[Path, Path], acme_raw: duckdb.DuckDBPyConnection) -> None:
    out = explain_json(acme, "win_rate", "--from", "2026-W40", "--to", "2026-W41", "--by", "segment",
                       "--as-of", "2026-11-30")
    assert out["grain"] == "week" and out["compared"]["metric_grain"] == "month"
    sql = ("SELECT count(*) FILTER (WHERE stage = 'won') / count(*) FILTER (WHERE stage IN ('won', 'lost')) "
           "FROM deals WHERE segment = ? AND closed_at >= ?::TIMESTAMP AND closed_at < ?::TIMESTAMP")
    for segment, c in singles(out, "segment").items():
        assert c["before"] == pytest.approx(one(acme_raw, sql, segment, "2026-09-28", "2026-10-05"))
        assert c["after"] == pytest.approx(one(acme_raw, sql, segment, "2026-10-05", "2026-10-12"))


@pytest.mark.parametrize(("args", "error"), [
    (("--from", "2026-10", "--to", "2026-W45"),
     "the periods to compare are not of the same grain: 2026-10 (month) and 2026-W45 (week)"),
    (("--from", "2026-10", "--to", "2026-11", "--grain", "week"),
     "'2026-10' is a period of grain month, not week. Fix: write it as a week (like 2026-W40)"),
    (("--from", "2026-11", "--to", "2026-12", "--as-of", "2026-11-26"),
     "2026-12 has not started as of 2026-11-26: there is nothing to compare yet."),
    (("--from", "2023-10", "--to", "2023-11"),
     "Pipeline généré has no data for 2023-10: its data starts on 2024-01-01. Fix: compare later periods."),
    (("--from", "2026-10", "--to", "2026-10-20"), "the two periods are the same (2026-10)"),
])
def test_periods_that_cannot_be_compared_are_refused(acme: tuple[Path, Path], args: tuple[str, ...],
                                                     error: str) -> None:
    r = run(*acme, "explain", "pipeline_generated", *args, "--lang", "en")
    assert r.returncode == 1
    assert error in " ".join(r.stderr.split())


def test_the_errors_speak_french(acme: tuple[Path, Path]) -> None:
    r = run(*acme, "explain", "pipeline_generated", "--from", "2026-10", "--to", "2026-W45", "--lang", "fr")
    assert r.returncode == 1
    assert ("les périodes à comparer ne sont pas du même grain : 2026-10 (mois) et 2026-W45 (semaine)"
            in " ".join(r.stderr.split()))


MONTHLY = """workspace: budgets
sources: [{key: files, type: csv, path: data/}]
models: [{key: budget, table: budget, time: month, dimensions: [team]}]
metrics:
  - {key: budget, model: budget, measure: sum(amount), grain: month}
  - {key: teams, model: budget, measure: count(distinct team), grain: month}
"""


@pytest.fixture(scope="module")
def monthly(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A workspace whose rows are dated by month (each on the 1st): (workspace, state dir)."""
    root = tmp_path_factory.mktemp("monthly")
    workspace = root / "ws"
    (workspace / "data").mkdir(parents=True)
    (workspace / "kpilot.yaml").write_text(MONTHLY, encoding="utf-8")
    rows = [f"2026-{m:02d}-01,{team},{100 * m + len(team)}" for m in range(1, 11) for team in ("ops", "sales")]
    (workspace / "data" / "budget.csv").write_text("month,team,amount\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return workspace, root / "state"


def test_a_grain_finer_than_the_rows_is_refused(monthly: tuple[Path, Path]) -> None:
    r = run(*monthly, "explain", "budget", "--from", "2026-W36", "--to", "2026-W37", "--as-of", "2026-10-31",
            "--lang", "en")
    assert r.returncode == 1
    assert ("budget cannot be compared by week: its rows are dated by month (each on the first day of a period of "
            "that grain), so a period of grain week would hold a whole month of data or none. Fix: compare periods "
            "of grain month or longer.") in " ".join(r.stderr.split())
    ok = run(*monthly, "explain", "budget", "--from", "2026-Q2", "--to", "2026-Q3", "--as-of", "2026-10-31",
             "--format", "json")
    assert ok.returncode == 0, ok.stderr
    by_team = singles(json.loads(ok.stdout), "team")
    assert by_team["ops"]["before"] == 3 * 100 * 5 + 3 * 3  # April to June: 400 + 500 + 600, plus len("ops") each
    assert by_team["ops"]["after"] == 3 * 100 * 8 + 3 * 3


def test_a_distinct_count_is_refused_with_a_way_out(monthly: tuple[Path, Path]) -> None:
    r = run(*monthly, "explain", "teams", "--from", "2026-Q2", "--to", "2026-Q3", "--as-of", "2026-10-31",
            "--lang", "en")
    assert r.returncode == 1
    text = " ".join(r.stderr.split())
    assert "a change of teams cannot be split by dimension" in text
    assert "Fix: explain the sums or counts it is made of" in text
