"""The CLI on the acme acceptance workspace: validate, load, compute, status, series.

Values come from `kpilot series --format json` and are checked against hand-written DuckDB SQL
over the same CSVs (not against kpilot's compiler).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

AS_OF = "2026-11-26"


def kpilot(*args: str, env_state: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KPILOT_STATE_DIR=str(env_state), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "kpilot.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("acme-state")


@pytest.fixture(scope="module")
def loaded(acme_dir: Path, state: Path) -> Path:
    r = kpilot("load", "-w", str(acme_dir), env_state=state)
    assert r.returncode == 0, r.stderr
    return state


def series(acme_dir: Path, state: Path, metric: str, *extra: str) -> dict[date, float | None]:
    r = kpilot("series", metric, "-w", str(acme_dir), "--format", "json", *extra, env_state=state)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows and set(rows[0]) >= {"period", "value", "target", "status"}
    return {date.fromisoformat(x["period"]): x["value"] for x in rows}


def same(ours: dict[date, float | None], ref: dict[date, float]) -> None:
    assert ref
    for p, v in ref.items():
        assert ours.get(p) == pytest.approx(float(v), rel=1e-9), p


def test_validate(acme_dir: Path, state: Path) -> None:
    # acme's targets run through 2026: a date is given, or the test would start warning in 2027.
    r = kpilot("validate", "-w", str(acme_dir), "--today", AS_OF, env_state=state)
    assert r.returncode == 0, r.stderr
    assert "est valide : 12 indicateurs, 6 modèles, 0 avertissement(s)" in r.stdout  # acme is in French
    r = kpilot("validate", "-w", str(acme_dir), "--format", "json", "--today", AS_OF, env_state=state)
    assert json.loads(r.stdout) == {"valid": True, "issues": []}


def test_validate_warns_about_kpis_without_a_target_for_the_current_period(acme_dir: Path, state: Path) -> None:
    r = kpilot("validate", "-w", str(acme_dir), "--format", "json", "--today", "2027-02-01", env_state=state)
    assert r.returncode == 0, r.stderr
    found = [(i["code"], i["severity"], i["path"], i["message"]) for i in json.loads(r.stdout)["issues"]]
    assert [f[:3] for f in found] == [("no_current_target", "warning", f"metrics[{i}].targets") for i in range(5)]
    assert found[0][3] == ("the North Star 'mrr' has no target for its current period 2027-02: its status cannot "
                           "be judged")
    assert found[1][3] == ("board KPI 'pipeline_generated' has no target for its current period 2027-W05: its "
                           "status cannot be judged")
    r = kpilot("validate", "-w", str(acme_dir), "--today", "2027-02-01", env_state=state)
    assert "la North Star 'mrr' n'a pas d'objectif pour sa période en cours 2027-02" in r.stderr, r.stderr
    assert "ajoutez un objectif qui couvre 2027-02" in r.stderr


def test_load_then_unchanged(acme_dir: Path, loaded: Path) -> None:
    r = kpilot("load", "-w", str(acme_dir), env_state=loaded)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("inchangée") == 6


def test_compute_is_incremental(acme_dir: Path, loaded: Path) -> None:
    first = kpilot("compute", "-w", str(acme_dir), env_state=loaded)
    assert first.returncode == 0, first.stderr
    again = kpilot("compute", "-w", str(acme_dir), env_state=loaded)
    assert again.returncode == 0, again.stderr
    assert "0 agrégats recalculés" in again.stdout, again.stdout


def test_mrr_at_month_ends(acme_dir: Path, loaded: Path, acme_raw: duckdb.DuckDBPyConnection) -> None:
    ref = dict(acme_raw.execute("""
        WITH months AS (SELECT unnest(generate_series(DATE '2024-02-01', DATE '2026-10-01', INTERVAL 1 MONTH))::DATE AS m)
        SELECT m, sum(mrr_eur) FROM months JOIN subscriptions
          ON start_date <= last_day(m) AND (end_date IS NULL OR end_date > last_day(m)) GROUP BY m""").fetchall())
    same(series(acme_dir, loaded, "mrr"), ref)


def test_weekly_pipeline_demos_cost_per_demo(acme_dir: Path, loaded: Path, acme_raw) -> None:
    pipeline = dict(acme_raw.execute(
        "SELECT date_trunc('week', created_at)::DATE, sum(amount_eur) FROM deals GROUP BY 1").fetchall())
    same(series(acme_dir, loaded, "pipeline_generated"), pipeline)
    demos = dict(acme_raw.execute(
        "SELECT date_trunc('week', booked_at)::DATE, count(*) FROM meetings WHERE type = 'demo' GROUP BY 1").fetchall())
    same(series(acme_dir, loaded, "demos_booked"), demos)
    spend = dict(acme_raw.execute(
        "SELECT date_trunc('week', date)::DATE, sum(amount_eur) FROM ad_spend GROUP BY 1").fetchall())
    cost = {w: spend[w] / demos[w] for w in spend if w in demos and w < date(2026, 11, 23)}
    same(series(acme_dir, loaded, "cost_per_demo"), cost)


def test_monthly_win_rate_and_churn(acme_dir: Path, loaded: Path, acme_raw) -> None:
    win = dict(acme_raw.execute("""SELECT date_trunc('month', closed_at)::DATE,
        sum(CASE WHEN stage = 'won' THEN 1 ELSE 0 END) / sum(CASE WHEN stage IN ('won', 'lost') THEN 1 ELSE 0 END)
        FROM deals WHERE closed_at IS NOT NULL GROUP BY 1""").fetchall())
    same(series(acme_dir, loaded, "win_rate"), win)
    churn = dict(acme_raw.execute("""
        WITH months AS (SELECT unnest(generate_series(DATE '2024-03-01', DATE '2026-11-01', INTERVAL 1 MONTH))::DATE AS m)
        SELECT m, (SELECT count(*) FROM subscriptions WHERE end_date >= m AND end_date < m + INTERVAL 1 MONTH)
                / (SELECT count(*) FROM subscriptions WHERE start_date <= m - 1 AND (end_date IS NULL OR end_date > m - 1))
        FROM months""").fetchall())
    same(series(acme_dir, loaded, "logo_churn"), churn)


def test_series_grain_range_and_csv(acme_dir: Path, loaded: Path, acme_raw) -> None:
    monthly = series(acme_dir, loaded, "demos_booked", "--grain", "month", "--from", "2026-01", "--to", "2026-06")
    assert sorted(monthly) == [date(2026, m, 1) for m in range(1, 7)]
    ref = dict(acme_raw.execute("""SELECT date_trunc('month', booked_at)::DATE, count(*) FROM meetings
        WHERE type = 'demo' AND booked_at >= '2026-01-01' AND booked_at < '2026-07-01' GROUP BY 1""").fetchall())
    same(monthly, ref)
    r = kpilot("series", "win_rate", "-w", str(acme_dir), "--format", "csv", "--from", "2026-09", env_state=loaded)
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "period,label,value,target,status,complete,numerator,denominator"
    assert lines[1].startswith("2026-09-01,2026-09,")


def test_status_json(acme_dir: Path, loaded: Path, acme_raw) -> None:
    r = kpilot("status", "-w", str(acme_dir), "--format", "json", "--as-of", AS_OF, env_state=loaded)
    assert r.returncode == 0, r.stderr
    board = json.loads(r.stdout)
    assert [b["key"] for b in board] == ["mrr", "pipeline_generated", "demos_booked", "win_rate", "logo_churn"]
    for b in board:
        assert {"key", "period", "value", "target", "status", "pacing", "change", "decision"} <= set(b)
        assert b["status"] in ("green", "amber", "red", "none")
        assert isinstance(b["decision"]["fires"], bool)
        assert b["decision"]["owner"] and b["decision"]["action"]
    by = {b["key"]: b for b in board}
    # MRR as of 2026-11-26 against the H2 target of 1.9 M; bands green 1.0 / amber 0.95.
    mrr_now = acme_raw.execute("""SELECT sum(mrr_eur) FROM subscriptions WHERE start_date <= DATE '2026-11-26'
                                  AND (end_date IS NULL OR end_date > DATE '2026-11-26')""").fetchone()[0]
    assert by["mrr"]["period"] == "2026-11-01"
    assert by["mrr"]["value"] == pytest.approx(mrr_now)
    assert by["mrr"]["target"] == 1_900_000
    expected_mrr = "green" if mrr_now >= 1_900_000 else "amber" if mrr_now >= 0.95 * 1_900_000 else "red"
    assert by["mrr"]["status"] == expected_mrr
    # Demos: the week of 2026-11-23, paced; its value is the week's count so far.
    demos_week = acme_raw.execute("""SELECT count(*) FROM meetings WHERE type = 'demo'
        AND booked_at >= '2026-11-23' AND booked_at < '2026-11-27'""").fetchone()[0]
    assert by["demos_booked"]["period"] == "2026-11-23"
    assert by["demos_booked"]["value"] == demos_week
    assert by["demos_booked"]["pacing"] > 0
    # Churn in November (so far) against 2 %: direction down.
    churn = by["logo_churn"]
    assert churn["target"] == 0.02
    assert churn["status"] == ("red" if churn["value"] > 0.02 / 0.9 else "amber" if churn["value"] > 0.02 else "green")
    assert churn["decision"]["fires"] == (churn["status"] == "red")


def test_status_table_in_french(acme_dir: Path, loaded: Path) -> None:
    r = kpilot("status", "-w", str(acme_dir), "--as-of", AS_OF, env_state=loaded)
    assert r.returncode == 0, r.stderr
    assert "tableau de bord au 26 nov. 2026" in r.stdout
    assert "Pipeline généré" in r.stdout and "Décisions" in r.stdout
    # French puts a space before a colon: "→ Ventes : Geler ...", never "→ Ventes: Geler ...".
    assert "→ Ventes : " in r.stdout and "→ Ventes: " not in r.stdout, r.stdout
    r = kpilot("status", "-w", str(acme_dir), "--as-of", AS_OF, "--lang", "en", env_state=loaded)
    assert "board as of Nov 26, 2026" in r.stdout and "→ Ventes: " in r.stdout  # the team as acme names it


def test_unknown_metric_is_a_clear_error(acme_dir: Path, loaded: Path) -> None:
    r = kpilot("series", "demo_booked", "-w", str(acme_dir), "--lang", "en", env_state=loaded)
    assert r.returncode == 1
    assert "unknown metric 'demo_booked'; did you mean 'demos_booked'?" in r.stderr
