"""The SaaS template: each language writes a commented workspace and a year of sample data that
validate with no error and no warning, and whose targets cover the periods `kpilot status` shows."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from kpilot.model import Kind, Workspace, load_workspace
from kpilot.model.periods import period_range, period_start, shift
from kpilot.model.targets import native_target
from kpilot.templates import init_workspace, saas
from tests.conftest import csv_schema

TODAY = date(2026, 11, 26)


def written(target: Path) -> tuple[Workspace, str]:
    """Load a written template workspace against the schema of its own CSVs; fail on any issue."""
    ws, issues = load_workspace(target, csv_schema(target / "data"))
    assert issues == [], "\n".join(map(str, issues))
    return ws, (target / "kpilot.yaml").read_text(encoding="utf-8")


def check_teaching_file(text: str, language: str, words: tuple[str, ...]) -> None:
    """A template teaches the method in comments, in its own language, and leaves no placeholder."""
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 30, "the template explains the method in comments"
    assert "${" not in text and "$" not in text.replace("$$", "")
    assert f"language: {language}" in text
    body = " ".join(" ".join(line.lstrip(" #").split()) for line in comments).lower()  # lines rewrapped
    for word in words:
        assert word.lower() in body, f"the comments should talk about {word!r}"


def check_targets_cover_last_periods(ws: Workspace, today: date) -> None:
    """Every KPI has a target for its last complete period and the current one, so status works at once."""
    for key in [*ws.board, ws.north_star or ""]:
        metric = ws.metric(key)
        grain = metric.grain
        current = period_start(today, grain)
        for period in (shift(current, grain, -1), current):
            covered = [t for t in metric.targets
                       if period_range(t.from_)[0] <= period < period_range(t.to if t.to is not None else t.from_)[1]]
            assert len(covered) == 1, f"{key}: no single target for {period}"
        # The plan moves: several target values, and the one in force now is not the one of a year ago
        # (per quarter for growth metrics, per year for rates, whatever the metric's grain).
        year_ago = period_start(today - timedelta(days=364), grain)
        assert len({t.value for t in metric.targets}) >= 2, f"{key}: targets vary over time"
        assert native_target(metric, current) != native_target(metric, year_ago), f"{key}: same target a year ago"


def check_sample_data(data: Path, tables: tuple[str, ...], today: date) -> dict[str, int]:
    assert sorted(p.stem for p in data.glob("*.csv")) == sorted(tables)
    con = duckdb.connect()
    counts = {t: con.execute(f"SELECT count(*) FROM read_csv('{data / (t + '.csv')}')").fetchall()[0][0] for t in tables}
    if "leads" in tables:
        first, last = con.execute(f"SELECT min(created_at), max(created_at) FROM read_csv('{data / 'leads.csv'}')").fetchall()[0]
        assert today - timedelta(days=400) < first.date() <= today - timedelta(days=360)
        assert last.date() < today
    return counts


@pytest.fixture(scope="module", params=["en", "fr"])
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    target = tmp_path_factory.mktemp(f"saas-{request.param}") / "my-saas"
    saas.write(target, request.param, TODAY)
    return request.param, target


def test_validates_with_no_error_and_no_warning(made: tuple[str, Path]) -> None:
    language, target = made
    ws, _ = written(target)
    assert ws.workspace == "my-saas", "the workspace key comes from the folder name"
    assert ws.language.value == language
    assert ws.north_star == "mrr"
    assert ws.board == ["net_new_mrr", "logo_churn", "demo_to_win", "pipeline_generated"]
    assert set(ws.metric("pipeline_generated").owners) == {"marketing", "sales"}
    assert ws.metric("pipeline_generated").kind == Kind.leading
    assert {ws.metric(k).type.value for k in ("mrr", "net_new_mrr", "logo_churn", "bookings_ytd")} == {
        "snapshot", "derived", "ratio", "cumulative"}
    check_targets_cover_last_periods(ws, TODAY)


def test_yaml_teaches_the_method_in_its_language(made: tuple[str, Path]) -> None:
    language, target = made
    _, text = written(target)
    words = {"en": ("North Star", "leading", "lagging", "shared KPI", "decision rule", "Connect your real data",
                    "vanity"),
             "fr": ("étoile du nord", "prédictif", "rétroviseur", "KPI partagé", "règle de décision",
                    "Brancher vos vraies données", "vanité")}[language]
    check_teaching_file(text, language, words)


def test_sample_data_is_a_year_of_the_funnel(made: tuple[str, Path]) -> None:
    _, target = made
    counts = check_sample_data(target / "data", saas.TABLES, TODAY)
    print("\nsaas sample rows:", counts)
    assert 12_000 <= counts["leads"] <= 40_000
    assert 1_000 <= counts["deals"] <= 5_000
    assert 1_000 <= counts["subscriptions"] <= 4_000


def test_init_writes_the_same_files_twice(tmp_path: Path) -> None:
    first = init_workspace(tmp_path / "a" / "ws", "saas", "en", today=TODAY)
    second = init_workspace(tmp_path / "b" / "ws", "saas", "en", today=TODAY)
    for f in ["kpilot.yaml", *(f"data/{t}.csv" for t in saas.TABLES)]:
        assert (first.parent / f).read_bytes() == (second.parent / f).read_bytes(), f
