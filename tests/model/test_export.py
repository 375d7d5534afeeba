"""Settings overrides and `kpilot export`: the same rules as kpilot.yaml, and a round trip without loss."""

from __future__ import annotations

import difflib
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kpilot.cli import app
from kpilot.model import WorkspaceInvalid, load_workspace, parse_workspace
from kpilot.model.errors import english
from kpilot.model.export import export_workspace
from kpilot.model.overrides import apply_overrides
from kpilot.service import WorkspaceService
from kpilot.store import AppStore
from kpilot.templates import TEMPLATES, init_workspace

EDIT = {
    "pipeline_generated": {
        "targets": [{"from": "2026-01", "to": "2026-06", "value": 500000},
                    {"from": "2026-07-01", "to": "2026-12-31", "value": 650000.5}],
        "bands": {"green": 1.0, "amber": 0.8},
        "owners": ["marketing"],
        "decision": {"when": {"status": "red", "periods": 3}, "owner": "sales",
                     "action": "Appeler: les 20 comptes #1 — yes"},
    },
    "mrr": {"decision": None},
}


def _changed(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_overrides_replace_fields_and_keep_the_rest(acme_dir: Path) -> None:
    ws, _ = load_workspace(acme_dir)
    assert apply_overrides(ws, {}) is ws
    edited = apply_overrides(ws, EDIT)
    m = edited.metric("pipeline_generated")
    assert [(t.from_, t.to, t.value) for t in m.targets] == [
        ("2026-01", "2026-06", 500000.0), (date(2026, 7, 1), date(2026, 12, 31), 650000.5)]
    assert (m.bands.green, m.bands.amber) == (1.0, 0.8)
    assert m.owners == ["marketing"]
    assert m.decision is not None and m.decision.when.status == "red" and m.decision.when.periods == 3
    assert edited.metric("mrr").decision is None
    # Everything not overridden is the file's.
    assert edited.metric("demos_booked") == ws.metric("demos_booked")
    assert edited.models == ws.models and edited.board == ws.board


@pytest.mark.parametrize(("fields", "path", "text"), [
    ({"bands": {"green": 0.8, "amber": 0.9}}, "metrics[1].bands", "amber (0.9) must not be above green (0.8)"),
    ({"owners": ["nobody"]}, "metrics[1].owners[0]", "nobody"),
    ({"targets": [{"from": "2026-01", "value": "a lot"}]}, "metrics[1].targets[0].value", "valid number"),
    ({"targets": [{"from": "2026-13", "value": 1}]}, "metrics[1].targets[0]", "2026-13"),
    ({"targets": [{"from": "2026-01", "to": "2026-06", "value": 1}, {"from": "2026-03", "value": 2}]},
     "metrics[1].targets[1]", "overlaps targets[0]"),
    ({"decision": {"when": {"periods": 2}, "owner": "sales", "action": "x"}}, "metrics[1].decision.when",
     "needs a condition"),
    ({"decision": {"when": {"status": "red"}, "owner": "ghosts", "action": "x"}}, "metrics[1].decision.owner",
     "ghosts"),
    ({"colour": "blue"}, "metrics[1].colour", "unknown field 'colour'"),
])
def test_overrides_are_checked_with_the_rules_of_the_file(acme_dir: Path, fields: dict[str, object], path: str,
                                                          text: str) -> None:
    ws, _ = load_workspace(acme_dir)
    with pytest.raises(WorkspaceInvalid) as info:
        apply_overrides(ws, {"pipeline_generated": fields})
    errors = [i for i in info.value.issues if i.severity == "error"]
    assert [i.path for i in errors][:1] == [path]
    assert text in errors[0].render(english)
    assert errors[0].location is None  # not a place in kpilot.yaml: the settings


def test_an_override_of_a_metric_gone_from_the_file_is_an_error(acme_dir: Path) -> None:
    ws, _ = load_workspace(acme_dir)
    with pytest.raises(WorkspaceInvalid) as info:
        apply_overrides(ws, {"old_metric": {"owners": ["sales"]}})
    assert info.value.issues[0].code == "unknown_metric"


def test_export_of_acme_unchanged_is_the_file_itself(acme_dir: Path) -> None:
    original = (acme_dir / "kpilot.yaml").read_text(encoding="utf-8")
    ws, _ = load_workspace(acme_dir)
    assert export_workspace(ws, original) == original


def test_export_of_acme_with_settings_edits_only_those_lines(acme_dir: Path) -> None:
    original = (acme_dir / "kpilot.yaml").read_text(encoding="utf-8")
    ws, _ = load_workspace(acme_dir)
    edited = apply_overrides(ws, EDIT)
    text = export_workspace(edited, original)
    again, _ = parse_workspace(text)
    assert again == edited
    # Comments stay, flow style stays, and only the edited metrics' lines change.
    assert text.startswith("# Acme Gestion")
    assert "    targets:                                  # value per period of the metric's grain\n" \
           "      - {from: 2026-01, to: 2026-06, value: 500000}\n" \
           "      - {from: 2026-07-01, to: 2026-12-31, value: 650000.5}\n" in text
    assert '      action: "Appeler: les 20 comptes #1 — yes"' in text
    changed = _changed(original, text)
    assert all(any(w in line for w in ("owners", "value", "bands", "when", "owner", "action", "decision"))
               for line in changed if line.strip("+- ")), changed
    assert len(changed) < 20


def test_fresh_export_of_acme_reads_back_equal(acme_dir: Path) -> None:
    ws, _ = load_workspace(acme_dir)
    edited = apply_overrides(ws, EDIT)
    for w in (ws, edited):
        again, _ = parse_workspace(export_workspace(w))
        assert again == w


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", ["en", "fr"])
def test_templates_round_trip(tmp_path: Path, template: str, language: str) -> None:
    init_workspace(tmp_path, template, language, today=date(2026, 11, 15))
    original = (tmp_path / "kpilot.yaml").read_text(encoding="utf-8")
    ws, _ = load_workspace(tmp_path)
    assert export_workspace(ws, original) == original
    assert parse_workspace(export_workspace(ws))[0] == ws
    key = ws.board[0]
    m = ws.metric(key)
    team = ws.teams[-1].key
    edited = apply_overrides(ws, {key: {
        "targets": [{"from": "2026-01", "to": "2026-12", "value": 12345.5}],
        "bands": {"green": 0.97, "amber": 0.8}, "owners": [team],
        "decision": {"when": {"below_target": 0.7, "periods": 2}, "owner": team, "action": "12:30 no"},
    }})
    assert edited.metric(key) != m
    text = export_workspace(edited, original)
    assert parse_workspace(text)[0] == edited
    assert text.splitlines()[0] == original.splitlines()[0]  # the template's comments are kept
    assert parse_workspace(export_workspace(edited))[0] == edited


def test_kpilot_export_writes_the_stored_settings(acme_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with WorkspaceService(acme_dir, state_root=state) as svc, AppStore(state_dir=svc.state_dir) as store:
        store.set_override("acme", "pipeline_generated", "targets", [{"from": "2026-01", "value": 900000}])
    runner = CliRunner()
    shown = runner.invoke(app, ["export", "-w", str(acme_dir), "--state-dir", str(state)])
    assert shown.exit_code == 0, shown.output
    assert "      - {from: 2026-01, value: 900000}\n" in shown.stdout
    out = tmp_path / "kpilot.yaml"
    written = runner.invoke(app, ["export", "-w", str(acme_dir), "--state-dir", str(state), "--output", str(out)])
    assert written.exit_code == 0, written.output
    ws, _ = load_workspace(out)
    assert [(t.from_, t.value) for t in ws.metric("pipeline_generated").targets] == [("2026-01", 900000.0)]
    assert ws.metric("mrr") == load_workspace(acme_dir)[0].metric("mrr")
