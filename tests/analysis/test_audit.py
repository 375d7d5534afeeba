"""The Christmas-tree audit on the acme workspace, with hand-made lead-lag edges and correlations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from kpilot.analysis.audit import AuditVerdict, InventoryRow, audit_inventory, audit_workspace, parse_inventory
from kpilot.model.errors import KpilotError
from kpilot.model.loader import load_workspace
from kpilot.model.workspace import Workspace


@dataclass(frozen=True)
class Edge:
    leader: str
    follower: str
    lag: int
    correlation: float
    p_value: float


# A plausible funnel: leads -> demos -> pipeline -> MRR; won revenue -> MRR; plus two edges that must not count.
EDGES = [
    Edge("pipeline_generated", "mrr", 2, 0.71, 0.001),
    Edge("demos_booked", "pipeline_generated", 1, 0.64, 0.004),
    Edge("leads", "demos_booked", 1, 0.80, 0.0005),
    Edge("won_revenue", "mrr", 1, 0.52, 0.02),
    Edge("sessions", "leads", 1, 0.35, 0.30),  # not significant
    Edge("mql_rate", "mrr", 0, 0.60, 0.001),  # same period: not a prediction
]
CORRELATIONS = {("active_subscriptions", "mrr"): 0.99, ("ad_spend", "leads"): 0.61, ("win_rate", "logo_churn"): -0.2}


@pytest.fixture(scope="module")
def ws(acme_dir: Path) -> Workspace:
    workspace, _ = load_workspace(acme_dir / "kpilot.yaml")
    return workspace


@pytest.fixture(scope="module")
def verdicts(ws: Workspace) -> dict[str, AuditVerdict]:
    return {v.key: v for v in audit_workspace(ws, EDGES, CORRELATIONS)}


def test_every_metric_gets_a_verdict_north_star_and_board_first(ws: Workspace) -> None:
    out = audit_workspace(ws, EDGES, CORRELATIONS)
    assert [v.key for v in out] == ["mrr", "pipeline_generated", "demos_booked", "win_rate", "logo_churn",
                                    "active_subscriptions", "leads", "mql_rate", "sessions", "ad_spend",
                                    "won_revenue", "cost_per_demo"]
    assert [v.role for v in out[:6]] == ["north_star", "board", "board", "board", "board", "metric"]
    assert {v.key: v.verdict for v in out} == {
        "mrr": "keep", "pipeline_generated": "keep", "demos_booked": "keep", "win_rate": "keep", "logo_churn": "keep",
        "active_subscriptions": "delete", "leads": "fix", "mql_rate": "delete", "sessions": "delete",
        "ad_spend": "delete", "won_revenue": "fix", "cost_per_demo": "delete",
    }
    json.dumps([v.to_dict() for v in out], allow_nan=False)


def test_board_kpis_pass_every_check(verdicts: dict[str, AuditVerdict]) -> None:
    pipe = verdicts["pipeline_generated"]
    assert pipe.checks == {"decision": True, "owner": True, "target": True, "predicts": True,
                           "incentive_risk": False, "duplicate_of": False}
    assert "predicts mrr: moves 2 period(s) ahead of it (correlation 0.71)" in pipe.reasons
    # Demos predict MRR through the pipeline (a chain of edges).
    assert "predicts mrr through demos_booked → pipeline_generated → mrr" in verdicts["demos_booked"].reasons
    assert "a lagging outcome with a target: it matters by itself" in verdicts["win_rate"].reasons
    assert verdicts["mrr"].reasons[0] == "the North Star: the outcome everything else serves"


def test_leads_is_pure_volume_owned_by_marketing_alone(verdicts: dict[str, AuditVerdict]) -> None:
    v = verdicts["leads"]
    assert v.verdict == "fix"
    assert v.checks == {"decision": False, "owner": True, "target": False, "predicts": True,
                        "incentive_risk": True, "duplicate_of": False}
    assert ("pure volume owned by Marketing alone: pushing it invites quantity over quality. Fix: share it with "
            "another team, or pair it with a quality counter-metric such as Taux de MQL") in v.reasons
    assert "no decision rule: if Leads changes, nobody knows what to do. Fix: add `decision`." in v.reasons
    assert "predicts mrr through leads → demos_booked → pipeline_generated → mrr" in v.reasons
    # pipeline_generated, a volume too, is shared by marketing and sales: no incentive risk.
    assert verdicts["pipeline_generated"].checks["incentive_risk"] is False


def test_cost_per_demo_has_no_owner_and_no_decision(verdicts: dict[str, AuditVerdict]) -> None:
    v = verdicts["cost_per_demo"]
    assert v.verdict == "delete"
    assert v.checks == {"decision": False, "owner": False, "target": False, "predicts": False,
                        "incentive_risk": False, "duplicate_of": False}
    assert "no owner: no team answers for it. Fix: set `owners`." in v.reasons
    assert "no decision rule: if Coût par démo changes, nobody knows what to do. Fix: add `decision`." in v.reasons


def test_duplicates_and_edges_that_do_not_count(verdicts: dict[str, AuditVerdict]) -> None:
    subs = verdicts["active_subscriptions"]
    assert subs.verdict == "delete" and subs.duplicate_of == "mrr"
    assert "duplicate of mrr (correlation 0.99): it tells nothing mrr does not" in subs.reasons
    # logo_churn divides by it: the definition stays, only the chart goes.
    assert ("other metrics are computed from it (logo_churn): take it off dashboards, keep its definition"
            in subs.reasons)
    assert verdicts["ad_spend"].checks["duplicate_of"] is False  # 0.61 is far from 1
    assert verdicts["sessions"].checks["predicts"] is False  # its edge has p = 0.30
    assert verdicts["mql_rate"].checks["predicts"] is False  # lag 0 predicts nothing
    won = verdicts["won_revenue"]
    assert won.verdict == "fix" and won.checks["incentive_risk"] is True
    assert any("counter-metric such as Taux de signature" in r for r in won.reasons)


def test_without_lead_lag_analysis_predicting_is_unknown(ws: Workspace) -> None:
    out = {v.key: v for v in audit_workspace(ws, [], {})}
    assert out["leads"].checks["predicts"] is None and out["leads"].checks["duplicate_of"] is None
    assert out["leads"].verdict == "delete"  # no decision and nothing known to justify it
    assert "unknown whether it predicts an outcome: run the lead-lag analysis" in out["leads"].reasons
    assert out["win_rate"].checks["predicts"] is True and out["win_rate"].verdict == "keep"
    assert out["active_subscriptions"].verdict == "delete"


def test_duplicate_board_tile_is_fixed_not_deleted(ws: Workspace) -> None:
    out = {v.key: v for v in audit_workspace(ws, EDGES, {("pipeline_generated", "demos_booked"): 0.97})}
    assert out["pipeline_generated"].verdict == "keep"  # first on the board, kept
    assert out["demos_booked"].verdict == "fix" and out["demos_booked"].duplicate_of == "pipeline_generated"


INVENTORY_FR = """\ufeffTitre;Métrique;Responsable;Décision
MRR;mrr;;
Abonnements actifs;active_subscriptions;Ventes;

Leads par semaine;leads;Marketing;
Trafic web;sesions;;
Leads (copie);leads;;
NPS;;Customer success;"Si < 30 : revue des tickets; appel des détracteurs"
"""

INVENTORY_EN = "title,metric,owner,decision,notes\nPipeline,pipeline_generated,,,weekly\nOpen rate,,marketing,,\n"


def test_parse_inventory_french_and_english_headers() -> None:
    rows = parse_inventory(INVENTORY_FR, "dash.csv")
    assert rows[0] == InventoryRow(title="MRR", metric="mrr", owner=None, decision=None, line=2)
    assert [r.line for r in rows] == [2, 3, 5, 6, 7, 8]  # blank line 4 skipped
    assert rows[-1].decision == "Si < 30 : revue des tickets; appel des détracteurs"
    en = parse_inventory(INVENTORY_EN, "tiles.csv")
    assert en == [InventoryRow("Pipeline", "pipeline_generated", None, None, 2),
                  InventoryRow("Open rate", None, "marketing", None, 3)]


def test_audit_inventory_asks_the_question(ws: Workspace) -> None:
    out = audit_inventory(parse_inventory(INVENTORY_FR, "dash.csv"), ws, EDGES, CORRELATIONS)
    got = {v.key: v for v in out}
    assert [v.verdict for v in out] == ["keep", "delete", "fix", "delete", "delete", "keep"]
    assert got["MRR"].question is None  # the workspace's decision rule answers it
    assert got["Abonnements actifs"].duplicate_of == "MRR"
    assert got["Leads par semaine"].question == "If Leads par semaine changes, what decision do we take?"
    assert "it predicts an outcome: write the decision this chart should trigger" in got["Leads par semaine"].reasons
    web = got["Trafic web"]
    assert "metric 'sesions' is not in the workspace; did you mean 'sessions'? its checks are unknown" in web.reasons
    assert web.checks["predicts"] is None and web.checks["owner"] is False
    assert "if nobody can answer the question, delete the chart" in web.reasons
    assert got["Leads (copie)"].duplicate_of == "Leads par semaine"
    assert "shows the same metric as the chart 'Leads par semaine'" in got["Leads (copie)"].reasons
    assert got["NPS"].checks == {"decision": True, "owner": True, "target": None, "predicts": None,
                                 "incentive_risk": None, "duplicate_of": None}
    json.dumps([v.to_dict() for v in out], allow_nan=False)


def test_audit_inventory_without_workspace() -> None:
    out = audit_inventory(parse_inventory(INVENTORY_EN, "tiles.csv"), None, [], {})
    assert [(v.key, v.verdict) for v in out] == [("Pipeline", "delete"), ("Open rate", "delete")]
    assert out[1].question == "If Open rate changes, what decision do we take?"


@pytest.mark.parametrize(("text", "error"), [
    ("", "dash.csv: the file is empty. Fix: write a header line"),
    ("\n  \n", "dash.csv: the file is empty."),
    ("name;metric\nMRR;mrr\n", "dash.csv:1: no title column in the header (name, metric); Fix: name the column"),
    ("tilte,metric\nMRR,mrr\n", "dash.csv:1: no title column in the header (tilte, metric); did you mean 'title'?"),
    ("title;titre\nA;B\n", "dash.csv:1: columns 'title' and 'titre' are both the 'title' column. Fix: keep one of them."),
    ("title,metric\n", "dash.csv:1: no chart under the header."),
    ("title,metric\nMRR,mrr\n,leads\n", "dash.csv:3: this chart has no title."),
    ("title,metric\nMRR,mrr,extra\n", "dash.csv:2: 3 values for 2 columns. Fix: quote the values"),
])
def test_parse_inventory_errors(text: str, error: str) -> None:
    with pytest.raises(KpilotError) as info:
        parse_inventory(text, "dash.csv")
    assert str(info.value).startswith(error)
