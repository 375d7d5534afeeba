"""The analysis commands on acme: leads, forecast, warnings, anomalies, explain, audit, analyze.

Root-cause totals are checked against hand-written DuckDB SQL over the same CSVs.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.cli.test_acme_cli import AS_OF, kpilot
from tests.conftest import one


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("acme-analysis")


def run_json(acme_dir: Path, state: Path, *args: str) -> object:
    r = kpilot(*args, "-w", str(acme_dir), "--as-of", AS_OF, "--format", "json", env_state=state)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_leads_finds_demos_and_pipeline_leading_won_revenue(acme_dir: Path, state: Path) -> None:
    edges = run_json(acme_dir, state, "leads")
    assert isinstance(edges, list)
    found = {(e["leader"], e["follower"]): e for e in edges}
    for leader in ("demos_booked", "pipeline_generated"):
        e = found[(leader, "won_revenue")]
        assert 3 <= e["lag"] <= 5
        assert e["p_value"] < 0.05 and e["correlation"] > 0 and e["effect"] > 0
        assert list(e)[:8] == ["leader", "follower", "lag", "correlation", "p_value", "effect", "n", "stable"]
    # The table says each lag with its plural, in the grain it was measured at.
    table = kpilot("leads", "-w", str(acme_dir), "--as-of", AS_OF, "--lang", "en", env_state=state)
    assert table.returncode == 0, table.stderr
    lags = {e["lag"] for e in edges if e["follower"] == "won_revenue"}
    assert all(f"{n} weeks" in table.stdout for n in lags if n > 1) and " 4 week " not in table.stdout


def test_forecast_gives_the_current_and_next_period_with_interval_and_chance(acme_dir: Path, state: Path,
                                                                             acme_raw: duckdb.DuckDBPyConnection) -> None:
    found = run_json(acme_dir, state, "forecast")
    assert [f["metric"] for f in found] == ["mrr", "pipeline_generated", "demos_booked", "win_rate", "logo_churn"]
    by_metric = {f["metric"]: f for f in found}
    mrr = by_metric["mrr"]
    assert [p["period"] for p in mrr["points"]] == ["2026-11-01", "2026-12-01"]
    assert mrr["method"] in mrr["backtest"] and mrr["error"] == pytest.approx(mrr["backtest"][mrr["method"]])
    for f in found:
        for p in f["points"]:
            assert p["lower"] <= p["value"] <= p["upper"]
            assert 0 <= p["probability"] <= 1
        # The evidence: the backtest error beside the seasonal naive forecast's, and the interval's coverage.
        ev = f["evidence"]
        assert ev["error"] == pytest.approx(f["error"]) and ev["error_metric"] == "MASE" and ev["level"] == 0.8
        assert ev["relative_error"] == pytest.approx(ev["error"] / ev["baseline_error"])
        assert ev["baseline"] == ("seasonal_naive" if f["grain"] == "week" else "naive")
        assert 0 <= ev["coverage"] <= 1 and ev["coverage_points"] >= 10
        assert sum(ev["weights"].values()) == pytest.approx(1, abs=1e-3) and set(ev["weights"]) <= set(f["backtest"])
    # The week of 2026-11-23 holds the as-of date: demos already booked count, the rest is forecast.
    demos = by_metric["demos_booked"]["points"][0]
    assert demos["period"] == "2026-11-23" and demos["observed"] is not None
    assert demos["value"] >= demos["observed"]
    # What is known of the periods in progress, against hand-written SQL over the CSVs.
    assert demos["observed"] == one(acme_raw, "SELECT count(*) FROM meetings WHERE type = 'demo' "
                                              "AND booked_at >= '2026-11-23' AND booked_at < '2026-11-27'")
    assert mrr["points"][0]["observed"] == pytest.approx(one(
        acme_raw, "SELECT sum(mrr_eur) FROM subscriptions WHERE start_date <= DATE '2026-11-26' "
                  "AND (end_date IS NULL OR end_date > DATE '2026-11-26')"))
    # A snapshot's period-end forecast starts from today's value: one month-end step can only move it so far.
    assert abs(mrr["points"][0]["value"] - mrr["points"][0]["observed"]) < 0.01 * mrr["points"][0]["observed"]


def test_forecast_table_says_how_each_forecast_fared_in_english_and_french(acme_dir: Path, state: Path) -> None:
    found = {f["metric"]: f["evidence"] for f in run_json(acme_dir, state, "forecast", "demos_booked")}
    ev = found["demos_booked"]
    for lang, words in (("en", ("backtest error", "of the seasonal naive forecast's", "past outcomes")),
                        ("fr", ("erreur rétrospective", "de la prévision naïve saisonnière", "valeurs passées"))):
        r = kpilot("forecast", "demos_booked", "-w", str(acme_dir), "--as-of", AS_OF, "--lang", lang, env_state=state)
        assert r.returncode == 0, r.stderr
        line = next(x for x in r.stdout.splitlines() if words[0] in x)
        assert all(w in line for w in words), line
        coverage = round(100 * ev["coverage"])
        assert (f"{coverage}%" if lang == "en" else f"{coverage}\u202f%") in line
        assert f" {ev['coverage_points']} " in line
        # Periods in words, as the board says them: "week of 23 Nov", not "2026-W48".
        assert ("week of 23 Nov" if lang == "en" else "semaine du 23 nov.") in r.stdout, r.stdout
        assert "2026-W" not in r.stdout


def test_no_decision_yet_is_said_not_an_empty_table(tmp_path: Path, acme_dir: Path) -> None:
    for lang, words in (("en", "No decision recorded yet"), ("fr", "Aucune décision enregistrée")):
        r = kpilot("decisions", "-w", str(acme_dir), "--lang", lang, env_state=tmp_path)
        assert r.returncode == 0, r.stderr
        assert words in r.stdout and "┃" not in r.stdout, r.stdout


def test_forecast_of_an_unknown_metric_says_which_exist(acme_dir: Path, state: Path) -> None:
    r = kpilot("forecast", "demo_booked", "-w", str(acme_dir), "--lang", "en", env_state=state)
    assert r.returncode == 1
    assert "unknown metric 'demo_booked'" in r.stderr and "demos_booked" in r.stderr


def test_explain_a_ratio_splits_mix_and_rate_and_adds_up(acme_dir: Path, state: Path,
                                                         acme_raw: duckdb.DuckDBPyConnection) -> None:
    out = run_json(acme_dir, state, "explain", "win_rate", "--from", "2026-08", "--to", "2026-09", "--by", "segment")
    assert out["kind"] == "ratio"

    def rate(month: str) -> float:
        return one(acme_raw, "SELECT count(*) FILTER (WHERE stage = 'won') / count(*) FILTER "
                             "(WHERE stage IN ('won', 'lost')) FROM deals WHERE strftime(closed_at, '%Y-%m') = ?", month)

    assert out["total_before"] == pytest.approx(rate("2026-08"), abs=1e-12)
    assert out["total_after"] == pytest.approx(rate("2026-09"), abs=1e-12)
    singles = [c for c in out["contributions"] if c["dimensions"] == ["segment"]]
    assert {c["values"][0] for c in singles} == {"PME", "ETI"}
    assert sum(c["change"] for c in singles) == pytest.approx(out["total_change"], abs=1e-12)
    for c in singles:
        assert c["mix"] + c["rate"] == pytest.approx(c["change"], abs=1e-12)


def test_explain_an_additive_metric_by_channel_matches_sql(acme_dir: Path, state: Path,
                                                           acme_raw: duckdb.DuckDBPyConnection) -> None:
    out = run_json(acme_dir, state, "explain", "won_revenue", "--from", "2026-W33", "--to", "2026-W39",
                   "--by", "source_channel", "--no-pairs")
    sql = ("SELECT coalesce(sum(amount_eur), 0) FROM deals WHERE stage = 'won' AND source_channel = ? "
           "AND date_trunc('week', closed_at) = ?::DATE")
    for c in out["contributions"]:
        channel = c["values"][0]
        assert c["before"] == pytest.approx(one(acme_raw, sql, channel, "2026-08-10"))
        assert c["after"] == pytest.approx(one(acme_raw, sql, channel, "2026-09-21"))
    assert sum(c["change"] for c in out["contributions"]) == pytest.approx(out["total_change"])
    assert out["residual"] == pytest.approx(0, abs=1e-6)


def test_explain_refuses_a_distinct_count_or_formula(acme_dir: Path, state: Path) -> None:
    r = kpilot("explain", "cost_per_demo", "--from", "2026-W33", "--to", "2026-W39", "-w", str(acme_dir),
               "--lang", "en", env_state=state)
    assert r.returncode == 1 and "cannot be split by dimension" in r.stderr


def test_anomalies_and_audit(acme_dir: Path, state: Path) -> None:
    found = run_json(acme_dir, state, "anomalies")
    assert isinstance(found, list)
    for a in found:
        assert a["kind"] == "anomaly" and a["severity"] in ("low", "medium", "high")
        assert a["lower"] <= a["expected"] <= a["upper"]
    verdicts = run_json(acme_dir, state, "audit")
    by_key = {v["key"]: v for v in verdicts}
    assert set(by_key) == {"mrr", "pipeline_generated", "demos_booked", "win_rate", "logo_churn",
                           "active_subscriptions", "leads", "mql_rate", "sessions", "ad_spend", "won_revenue",
                           "cost_per_demo"}
    assert by_key["mrr"]["verdict"] == "keep"
    assert by_key["cost_per_demo"]["verdict"] == "delete"  # no owner, no decision, predicts nothing
    # A volume owned by marketing alone: a stage of the funnel, so it has a job (never "delete"), but a team
    # measured on it alone is pushed to game it: fix.
    assert by_key["leads"]["checks"]["incentive_risk"] is True
    assert by_key["leads"]["verdict"] == "fix"
    # logo_churn's denominator does a job.
    assert by_key["active_subscriptions"]["verdict"] == "keep"
    assert all(v["reasons"] for v in verdicts)


def test_audit_of_a_dashboard_inventory(acme_dir: Path, state: Path, tmp_path: Path) -> None:
    inventory = tmp_path / "dashboard.csv"
    inventory.write_text("titre;métrique;responsable;décision\n"
                         "MRR;mrr;sales;Geler les recrutements ETI\n"
                         "Visites du site;sessions;;\n", encoding="utf-8")
    verdicts = run_json(acme_dir, state, "audit", "--inventory", str(inventory))
    assert [v["title"] for v in verdicts] == ["MRR", "Visites du site"]
    assert verdicts[0]["verdict"] == "keep"
    assert verdicts[1]["verdict"] != "keep" and verdicts[1]["question"]
    broken = tmp_path / "broken.csv"
    broken.write_text("", encoding="utf-8")
    r = kpilot("audit", "--inventory", str(broken), "-w", str(acme_dir), "--lang", "en", env_state=state)
    assert r.returncode == 1 and "the file is empty" in r.stderr


@pytest.fixture(scope="module")
def acme_with_target(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """acme, with a weekly target on won revenue (230 k€, about its first-half 2026 pace)."""
    folder = tmp_path_factory.mktemp("acme-target")
    shutil.copytree(acme_dir / "data", folder / "data")  # a workspace reads inside its own folder
    text = (acme_dir / "kpilot.yaml").read_text(encoding="utf-8")
    text = text.replace("    filter: \"stage = 'won'\"\n    grain: week\n    unit: EUR\n",
                        "    filter: \"stage = 'won'\"\n    grain: week\n    unit: EUR\n"
                        "    targets:\n      - {from: 2026-01, to: 2026-12, value: 230000}\n")
    assert "value: 230000" in text
    (folder / "kpilot.yaml").write_text(text, encoding="utf-8")
    return folder


def test_stored_edges_warn_of_the_demo_dip(acme_with_target: Path, tmp_path: Path) -> None:
    """Leads learned at the start of August; two weeks later the demo dip warns on won revenue."""
    r = kpilot("leads", "-w", str(acme_with_target), "--as-of", "2026-08-02", "--format", "json", env_state=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {e["leader"] for e in json.loads(r.stdout)} >= {"demos_booked"}
    r = kpilot("warnings", "-w", str(acme_with_target), "--as-of", "2026-08-16", "--format", "json",
               env_state=tmp_path)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    demos = [w for w in found if w["leader"] == "demos_booked"]
    assert demos, found
    w = demos[0]
    assert w["metric"] == "won_revenue" and w["leader_period"] == "2026-08-10" and w["lag"] == 5
    assert w["projected"] < 230000 * 0.9 and w["confidence"] >= 0.6 and w["decision"] is None
    r = kpilot("warnings", "-w", str(acme_with_target), "--as-of", "2026-08-16", "--lang", "en", env_state=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Démos planifiées" in r.stdout and "no decision rule for this KPI" in r.stdout


def test_analyze_stores_everything_once(acme_dir: Path, state: Path) -> None:
    first = run_json(acme_dir, state, "analyze")
    assert first["edges"] >= 2 and first["forecasts"] == 5 and first["audit"] == 12
    again = run_json(acme_dir, state, "analyze")
    assert again["new_findings"] == 0 and again["anomalies"] == first["anomalies"]


def test_a_replayed_leads_run_does_not_replace_a_later_one(acme_with_target: Path, tmp_path: Path) -> None:
    """Warnings as of a date use the latest leads run up to that date: a replay of August never stands in for
    a later run, and a run from the future is not used."""
    from kpilot.compute import results
    from kpilot.insights import Insights
    from kpilot.service import WorkspaceService

    for day in ("2026-11-22", "2026-08-02"):  # today's run first, then a replay of August
        r = kpilot("leads", "-w", str(acme_with_target), "--as-of", day, "--format", "json", env_state=tmp_path)
        assert r.returncode == 0, r.stderr
    (state,) = list(tmp_path.iterdir())  # the one workspace's state under KPILOT_STATE_DIR
    with WorkspaceService(acme_with_target, state_dir=state) as svc:
        assert results.load_run(svc.con, "leads", date(2026, 11, 26)).as_of == date(2026, 11, 22)
        assert results.load_run(svc.con, "leads", date(2026, 8, 16)).as_of == date(2026, 8, 2)
        assert results.load_run(svc.con, "leads", date(2026, 7, 1)) is None
        assert Insights(svc, as_of=date(2026, 7, 1)).stored_edges() is None


def test_a_warning_names_the_team_that_acts(acme_with_target: Path, tmp_path: Path) -> None:
    # Won revenue given a decision rule owned by the sales team ("Ventes" in acme): the warning says who acts by
    # the team's name, with the language's colon.
    folder = tmp_path / "acme"
    shutil.copytree(acme_with_target, folder)
    yaml = folder / "kpilot.yaml"
    text = yaml.read_text(encoding="utf-8")
    target = "    targets:\n      - {from: 2026-01, to: 2026-12, value: 230000}\n"
    yaml.write_text(text.replace(target, target + "    decision:\n      when: {status: red}\n      owner: sales\n"
                                 "      action: Relancer les démos\n"), encoding="utf-8")
    assert kpilot("leads", "-w", str(folder), "--as-of", "2026-08-02", env_state=tmp_path / "s").returncode == 0
    for lang, line in (("fr", "→ Ventes : Relancer les démos"), ("en", "→ Ventes: Relancer les démos")):
        r = kpilot("warnings", "-w", str(folder), "--as-of", "2026-08-16", "--lang", lang, env_state=tmp_path / "s")
        assert r.returncode == 0, r.stderr
        assert line in r.stdout and "→ sales" not in r.stdout, r.stdout
