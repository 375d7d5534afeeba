"""Every template, as a new user runs it: `kpilot init --template X`, `load`, `compute`, `analyze` succeed, and
what the analysis shows respects each metric's definition (anomalies outside their range, ranges and
forecasts within 0-100 % for rates, whole and non-negative for counts)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from kpilot.cli import app
from kpilot.compute import results
from kpilot.service import WorkspaceService
from kpilot.templates import TEMPLATES


def run(*args: str, as_json: bool = True) -> Any:
    done = CliRunner().invoke(app, [*args, "--format", "json"] if as_json else list(args))
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout) if as_json else None


def kinds(doc: dict[str, Any]) -> dict[str, str]:
    """'share' for rates in percent, 'count' for counts of rows, from the YAML as written."""
    out = {}
    for m in doc["metrics"]:
        if str(m.get("unit", "")).lower() in ("percent", "%"):
            out[m["key"]] = "share"
        elif m.get("type", "simple") != "ratio" and str(m.get("measure", "")).replace(" ", "").startswith("count("):
            out[m["key"]] = "count"
    return out


def within(kind: str | None, lower: float, upper: float, *values: float) -> None:
    if kind == "share":
        assert 0.0 <= lower <= upper <= 1.0, (lower, upper)
    if kind == "count":
        assert 0.0 <= lower <= upper and all(math.isclose(v, round(v)) for v in (lower, upper, *values))


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_new_workspace_analyses_from_start_to_end(template: str, tmp_path: Path) -> None:
    ws = str(tmp_path / template)
    run("init", "--template", template, "-w", ws, as_json=False)
    doc = yaml.safe_load((tmp_path / template / "kpilot.yaml").read_text(encoding="utf-8"))
    run("load", "-w", ws, as_json=False)
    run("compute", "-w", ws, as_json=False)
    summary = run("analyze", "-w", ws)
    kpis = [doc["north_star"], *doc["board"]]
    assert (summary["forecasts"], summary["audit"]) == (len(kpis), len(doc["metrics"]))

    # What `analyze` stored, as the web app and the alerts read it.
    with WorkspaceService(Path(ws)) as svc:
        found = [f.to_dict() for f in results.list_findings(svc.con, kind="anomaly")]
        stored = results.load_run(svc.con, "forecasts")
    assert len(found) == summary["anomalies"] and stored is not None
    shape = kinds(doc)
    for a in found:
        assert not a["lower"] <= a["value"] <= a["upper"], a
        within(shape.get(a["metric"]), a["lower"], a["upper"], a["expected"])
    assert [f["metric"] for f in stored.payload] == kpis
    for f in stored.payload:
        for p in f["points"]:
            assert p["lower"] <= p["value"] <= p["upper"]
            within(shape.get(f["metric"]), p["lower"], p["upper"], p["value"])
