"""The smarketing template: a commented funnel workspace shared by marketing and sales, valid in
both languages, whose board carries the incentive lesson (no volume metric owned by one team)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpilot.model import Kind
from kpilot.model.steering import is_volume_metric
from kpilot.templates import smarketing
from tests.templates.test_saas import (
    TODAY,
    check_sample_data,
    check_targets_cover_last_periods,
    check_teaching_file,
    written,
)


@pytest.fixture(scope="module", params=["en", "fr"])
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    target = tmp_path_factory.mktemp(f"smarketing-{request.param}") / "funnel"
    smarketing.write(target, request.param, TODAY)
    return request.param, target


def test_validates_with_no_error_and_no_warning(made: tuple[str, Path]) -> None:
    language, target = made
    ws, _ = written(target)
    assert ws.language.value == language
    assert ws.north_star == "new_bookings"
    assert ws.board == ["pipeline_generated", "mql_to_sql", "demos_booked", "win_rate", "sales_cycle"]
    assert ws.metric("sales_cycle").direction.value == "down"
    check_targets_cover_last_periods(ws, TODAY)


def test_the_board_carries_the_incentive_lesson(made: tuple[str, Path]) -> None:
    _, target = made
    ws, _ = written(target)
    pipeline = ws.metric("pipeline_generated")
    assert set(pipeline.owners) == {"marketing", "sales"}
    assert pipeline.kind == Kind.leading, "pipeline generated is the key shared, leading KPI"
    assert set(ws.metric("mql_to_sql").owners) == {"marketing", "sales"}
    for key in ws.board:
        metric = ws.metric(key)
        assert not (is_volume_metric(metric) and len(metric.owners) < 2), f"{key}: a volume metric owned by one team"
    leads = ws.metric("leads")
    assert "leads" not in ws.board and not leads.targets, "the lead count is kept to diagnose, with no target"


def test_yaml_teaches_the_method_in_its_language(made: tuple[str, Path]) -> None:
    language, target = made
    _, text = written(target)
    words = {"en": ("North Star", "shared KPI", "leading", "volume", "decision rule", "Connect your real data"),
             "fr": ("étoile du nord", "KPI partagé", "prédictif", "volume", "règle de décision",
                    "Brancher vos vraies données")}[language]
    check_teaching_file(text, language, words)


def test_sample_data_is_a_year_of_the_funnel(made: tuple[str, Path]) -> None:
    _, target = made
    counts = check_sample_data(target / "data", smarketing.TABLES, TODAY)
    print("\nsmarketing sample rows:", counts)
    assert 12_000 <= counts["leads"] <= 40_000
    assert counts["ad_spend"] >= 2 * 360 and counts["web_sessions"] >= 5 * 360
