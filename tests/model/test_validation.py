"""Workspace validation: acme validates as it is; every error cites file:line:column and a fix."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from kpilot.model import WorkspaceInvalid, load_workspace, parse_workspace, validate
from kpilot.model.yamlsrc import load_yaml


def test_acme_validates_without_issues(acme_dir: Path, acme_schema: dict[str, dict[str, str]]) -> None:
    ws, issues = load_workspace(acme_dir, acme_schema)
    assert issues == []
    assert ws.north_star == "mrr"
    assert ws.board == ["pipeline_generated", "demos_booked", "win_rate", "logo_churn"]
    assert ws.model_by_key("meetings").joins[0].pairs() == [("lead_id", "lead_id")]  # `on:` is not a YAML boolean
    assert ws.metric("logo_churn").denominator is not None
    assert ws.metric("logo_churn").denominator.offset == -1
    assert [m.key for m in ws.metrics if m.is_kpi] == [
        "mrr", "pipeline_generated", "demos_booked", "win_rate", "logo_churn"]


def _variant(acme_dir: Path, tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    text = (acme_dir / "kpilot.yaml").read_text(encoding="utf-8")
    assert text.count(old) >= count, old
    (tmp_path / "kpilot.yaml").write_text(text.replace(old, new, count), encoding="utf-8")
    return tmp_path / "kpilot.yaml"


def _errors(path: Path, schema: dict[str, dict[str, str]] | None) -> list[str]:
    with pytest.raises(WorkspaceInvalid) as info:
        load_workspace(path, schema)
    return [str(i) for i in info.value.issues if i.severity == "error"]


def test_unknown_column_cites_line_column_and_suggestion(acme_dir, tmp_path, acme_schema) -> None:
    path = _variant(acme_dir, tmp_path, "measure: sum(amount_eur)\n    grain: week", "measure: sum(amount_er)\n    grain: week")
    errors = _errors(path, acme_schema)
    assert len(errors) == 1
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "sum(amount_er)" in t)
    col = path.read_text().splitlines()[line - 1].index("amount_er") + 1
    assert errors[0].startswith(f"{path}:{line}:{col}: error: metrics[1].measure: unknown column 'amount_er' in model deals;")
    assert "did you mean 'amount_eur'?" in errors[0]


def test_unknown_metric_in_formula(acme_dir, tmp_path, acme_schema) -> None:
    path = _variant(acme_dir, tmp_path, 'formula: "ad_spend / demos_booked"', 'formula: "ad_spend / demo_booked"')
    errors = _errors(path, acme_schema)
    assert len(errors) == 1
    assert "unknown metric 'demo_booked' in formula" in errors[0]
    assert "did you mean 'demos_booked'?" in errors[0]
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "demo_booked\"" in t)
    assert f":{line}:" in errors[0]


def test_unknown_field_and_wrong_enum(acme_dir, tmp_path) -> None:
    path = _variant(acme_dir, tmp_path, "    grain: month\n    unit: EUR", "    grian: month\n    unit: EUR")
    errors = _errors(path, None)
    assert any("unknown field 'grian'; did you mean 'grain'?" in e for e in errors)
    path = _variant(acme_dir, tmp_path, "grain: week", "grain: weekly")
    errors = _errors(path, None)
    assert any("metrics[1].grain" in e and "did you mean 'week'?" in e for e in errors)


def test_yaml_syntax_error_has_line(tmp_path) -> None:
    (tmp_path / "kpilot.yaml").write_text("workspace: x\nmetrics:\n  - key: a\n   model: b\n", encoding="utf-8")
    errors = _errors(tmp_path / "kpilot.yaml", None)
    assert len(errors) == 1 and ":4:" in errors[0] and "YAML syntax error" in errors[0]


def test_duplicate_yaml_key(tmp_path) -> None:
    (tmp_path / "kpilot.yaml").write_text("workspace: x\ntitle: a\ntitle: b\n", encoding="utf-8")
    errors = _errors(tmp_path / "kpilot.yaml", None)
    assert errors == [f"{tmp_path / 'kpilot.yaml'}:3:1: error: key 'title' appears twice in the same mapping "
                      "Fix: remove or rename one of them; the second would silently replace the first"]


BASE = """
workspace: w
teams: [{key: marketing}, {key: sales}]
models:
  - {key: leads, table: leads, time: created_at}
north_star: a
"""


def _issues(text: str, schema=None):
    ws, smap = parse_workspace(text, "w.yaml")
    return validate(ws, smap, schema)


def test_board_size_and_vanity_warnings() -> None:
    text = BASE + """
board: [b]
metrics:
  - {key: a, model: leads, measure: count(*), owners: [sales], targets: [{from: 2026, value: 1}],
     decision: {when: {status: red}, owner: sales, action: act}}
  - {key: b, model: leads, measure: count(*)}
"""
    issues = _issues(text)
    codes = {i.code for i in issues}
    assert all(i.severity == "warning" for i in issues)
    assert "board_size" in codes
    vanity = [i for i in issues if i.code == "vanity_metric"]
    assert len(vanity) == 1 and "'b' is on the board without target, owner, decision rule" in vanity[0].message


def test_incentive_risk_only_without_a_shared_quality_kpi() -> None:
    alone = BASE + """
metrics:
  - {key: a, model: leads, measure: count(*), owners: [marketing]}
"""
    assert [i.code for i in _issues(alone) if i.code == "incentive_risk"] == ["incentive_risk"]
    shared = alone + """
  - {key: pipeline, model: leads, measure: sum(amount), unit: EUR, owners: [marketing, sales]}
"""
    assert [i.code for i in _issues(shared) if i.code == "incentive_risk"] == []


def test_semantic_errors() -> None:
    text = BASE + """
metrics:
  - {key: a, model: leeds, measure: count(*), owners: [finance]}
  - {key: b, type: derived, formula: "c + 1"}
  - {key: c, type: derived, formula: "b * 2"}
  - {key: d, type: ratio, numerator: {model: leads, measure: count(*)}}
  - {key: e, model: leads, measure: sum(x), targets: [{from: 2026-01, to: 2026-06, value: 1},
                                                       {from: 2026-03, to: 2026-12, value: 2}]}
  - {key: f, model: leads, measure: "sum(x) + y"}
  - {key: g, model: leads, measure: "count(*)", filter: "sum(x) > 1"}
  - {key: h, model: leads, measure: "count(*)", decision: {when: {below_target: 0.9}, owner: sales, action: x}}
"""
    messages = [i.message for i in _issues(text) if i.severity == "error"]
    expected = [
        "unknown model 'leeds' in metric a; did you mean 'leads'?",
        "unknown team 'finance'",
        "metrics depend on each other in a cycle",
        "a ratio needs a denominator",
        "target overlaps targets[0]",
        "column 'y' in measure 'sum(x) + y' is outside an aggregate",
        "aggregate sum() is not allowed in a filter",
        "this decision rule compares the metric with its target, but the metric has no `targets`",
    ]
    for fragment in expected:
        assert any(fragment in m for m in messages), (fragment, messages)


def test_sum_over_text_column_is_a_type_error() -> None:
    text = BASE + """
metrics:
  - {key: a, model: leads, measure: sum(channel)}
"""
    schema = {"leads": {"created_at": "TIMESTAMP", "channel": "VARCHAR"}}
    issues = [i for i in _issues(text, schema) if i.severity == "error"]
    assert len(issues) == 1
    assert "sum(channel): column 'channel' is VARCHAR, not a number" in issues[0].message


def test_yaml_12_booleans() -> None:
    data, _ = load_yaml("a: on\nb: yes\nc: true\nd: NO\n", "x.yaml")
    assert data == {"a": "on", "b": "yes", "c": True, "d": "NO"}


# --- targets: periods, open ends, and the current period ------------------------------------------------

RULE = "owners: [sales], decision: {when: {status: red}, owner: sales, action: act}"


def _kpis(targets_a: str, targets_b: str, grain_b: str = "month") -> str:
    return BASE + f"""
board: [b]
metrics:
  - {{key: a, model: leads, measure: count(*), {RULE}, targets: {targets_a}}}
  - {{key: b, model: leads, measure: count(*), grain: {grain_b}, {RULE}, targets: {targets_b}}}
"""


def _current(text: str, today: date | None) -> list[tuple[str, str, str, str]]:
    ws, smap = parse_workspace(text, "w.yaml")
    return [(i.severity, str(i.location), i.message, i.fix) for i in validate(ws, smap, None, today=today)
            if i.code == "no_current_target"]


def test_a_target_from_alone_runs_into_the_next_without_overlapping_it() -> None:
    text = _kpis("[{from: 2026-01, value: 1}, {from: 2026-07, value: 2}]", "[{from: 2026-Q1, value: 1}]")
    assert [i for i in _issues(text) if i.severity == "error"] == []
    same_start = _kpis("[{from: 2026-01, value: 1}, {from: 2026-01, to: 2026-03, value: 2}]", "[{from: 2026, value: 1}]")
    assert [i.code for i in _issues(same_start) if i.severity == "error"] == ["overlapping_targets"]
    inside = _kpis("[{from: 2026-01, to: 2026-12, value: 1}, {from: 2026-06, value: 2}]", "[{from: 2026, value: 1}]")
    assert [i.code for i in _issues(inside) if i.severity == "error"] == ["overlapping_targets"]


def test_a_kpi_without_a_target_for_the_period_holding_today_is_warned() -> None:
    text = _kpis("[{from: 2026-01, to: 2026-06, value: 1}]", "[{from: 2025-01, to: 2026-10, value: 1}]",
                 grain_b="week")
    found = _current(text, date(2026, 11, 26))
    line_a = next(i for i, t in enumerate(text.splitlines(), 1) if "key: a," in t)
    assert [(sev, loc.split(":")[1]) for sev, loc, _, _ in found] == [("warning", str(line_a)), ("warning",
                                                                                                 str(line_a + 1))]
    assert found[0][2] == ("the North Star 'a' has no target for its current period 2026-11: its status cannot be "
                           "judged")
    assert found[0][3] == ("add a target covering 2026-11, e.g. `{from: 2026-11, value: ...}` (without `to:`, a "
                           "target lasts until the next one starts)")
    assert found[1][2] == "board KPI 'b' has no target for its current period 2026-W48: its status cannot be judged"


def test_no_warning_when_a_target_covers_today_or_without_a_date() -> None:
    text = _kpis("[{from: 2026-01, value: 1}]", "[{from: 2026-01, to: 2026-12, value: 1}]")
    assert _current(text, date(2026, 11, 26)) == []
    assert _current(text, date(2031, 1, 1))[0][2].startswith("board KPI 'b' has no target")
    assert len(_current(text, date(2031, 1, 1))) == 1  # a's target has no end
    assert _current(text, None) == []
    # Without any target, the vanity warning already asks for one: no second warning.
    no_targets = BASE + """
board: [b]
metrics:
  - {key: a, model: leads, measure: count(*), owners: [sales]}
  - {key: b, model: leads, measure: count(*), owners: [sales]}
"""
    assert _current(no_targets, date(2026, 11, 26)) == []


def test_metrics_off_the_board_need_no_current_target() -> None:
    text = BASE + f"""
board: [a]
metrics:
  - {{key: a, model: leads, measure: count(*), {RULE}, targets: [{{from: 2026-01, value: 1}}]}}
  - {{key: c, model: leads, measure: count(*), targets: [{{from: 2020-01, to: 2020-12, value: 1}}]}}
"""
    assert _current(text, date(2026, 11, 26)) == []
