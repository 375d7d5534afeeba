"""The Christmas-tree audit on the acme workspace, with hand-made lead-lag edges and correlations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from kpilot.analysis.audit import (
    SETTINGS_FIELDS,
    AuditVerdict,
    InventoryRow,
    audit_inventory,
    audit_workspace,
    parse_inventory,
)
from kpilot.i18n import translator
from kpilot.insights.funnel import funnel_stages
from kpilot.model.errors import KpilotError, render
from kpilot.model.loader import load_workspace
from kpilot.model.validate import dependencies
from kpilot.model.workspace import Workspace
from kpilot.templates.demo import generate_demo


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


def funnel_of(ws: Workspace) -> list[tuple[str, str]]:
    """The funnel's (stage, metric) pairs, as kpilot.insights finds them for the audit."""
    return [(s.name, s.metric) for s in funnel_stages(list(ws.metrics))]


@pytest.fixture(scope="module")
def verdicts(ws: Workspace) -> dict[str, AuditVerdict]:
    return {v.key: v for v in audit_workspace(ws, EDGES, CORRELATIONS, funnel=funnel_of(ws))}


def test_every_metric_gets_a_verdict_north_star_and_board_first(ws: Workspace) -> None:
    out = audit_workspace(ws, EDGES, CORRELATIONS, funnel=funnel_of(ws))
    assert [v.key for v in out] == ["mrr", "pipeline_generated", "demos_booked", "win_rate", "logo_churn",
                                    "active_subscriptions", "leads", "mql_rate", "sessions", "ad_spend",
                                    "won_revenue", "cost_per_demo"]
    assert [v.role for v in out[:6]] == ["north_star", "board", "board", "board", "board", "metric"]
    assert {v.key: v.verdict for v in out} == {
        "mrr": "keep", "pipeline_generated": "keep", "demos_booked": "keep", "win_rate": "keep", "logo_churn": "keep",
        "active_subscriptions": "keep", "leads": "fix", "mql_rate": "keep", "sessions": "delete",
        "ad_spend": "keep", "won_revenue": "fix", "cost_per_demo": "delete",
    }
    json.dumps([v.to_dict() for v in out], allow_nan=False)


def test_board_kpis_pass_every_check(verdicts: dict[str, AuditVerdict]) -> None:
    pipe = verdicts["pipeline_generated"]
    assert pipe.checks == {"decision": True, "owner": True, "target": True, "predicts": True,
                           "incentive_risk": False, "duplicate_of": False}
    assert ("leading indicator of Revenu récurrent mensuel (MRR), 2 months ahead (correlation 0.71)"
            in pipe.reasons)
    # Demos predict MRR through the pipeline (a chain of edges).
    assert ("leading indicator of Revenu récurrent mensuel (MRR) through Démos planifiées → Pipeline généré → "
            "Revenu récurrent mensuel (MRR)") in verdicts["demos_booked"].reasons
    assert "a lagging outcome with a target: it matters by itself" in verdicts["win_rate"].reasons
    assert verdicts["mrr"].reasons[0] == "the North Star: the outcome everything else serves"
    assert all(v.fixes == () for v in verdicts.values() if v.verdict != "fix")


def test_leads_is_pure_volume_owned_by_marketing_alone(verdicts: dict[str, AuditVerdict]) -> None:
    v = verdicts["leads"]
    assert v.verdict == "fix"
    assert v.checks == {"decision": False, "owner": True, "target": False, "predicts": True,
                        "incentive_risk": True, "duplicate_of": False}
    assert ("pure volume owned by Marketing alone: pushing it invites quantity over quality; share it with "
            "another team, or pair it with a quality counter-metric such as Taux de MQL") in v.reasons
    assert "no decision rule: if Leads changes, nobody knows what to do" in v.reasons
    assert ("leading indicator of Revenu récurrent mensuel (MRR) through Leads → Démos planifiées → Pipeline généré "
            "→ Revenu récurrent mensuel (MRR)") in v.reasons
    assert "the Leads stage of the marketing-sales funnel" in v.reasons
    assert [(f.field, f.where) for f in v.fixes] == [("decision", "settings"), ("targets", "settings"),
                                                     ("owners", "settings")]
    assert [str(f.text) for f in v.fixes] == [
        "Write its decision rule: when it moves, who acts and what they do",
        "Set the value it should reach, period by period",
        "Add a second team to its owners, so that volume alone does not win",
    ]
    # pipeline_generated, a volume too, is shared by marketing and sales: no incentive risk.
    assert verdicts["pipeline_generated"].checks["incentive_risk"] is False


def test_cost_per_demo_has_no_owner_and_no_decision(verdicts: dict[str, AuditVerdict]) -> None:
    v = verdicts["cost_per_demo"]
    assert v.verdict == "delete"
    assert v.checks == {"decision": False, "owner": False, "target": False, "predicts": False,
                        "incentive_risk": False, "duplicate_of": False}
    assert "no owner: no team answers for it" in v.reasons
    assert "no decision rule: if Coût par démo changes, nobody knows what to do" in v.reasons
    assert v.reasons[-1] == ("nothing depends on it: no metric is computed from it, it is no funnel stage and it "
                             "leads no KPI")
    assert v.used_by == ()


def test_duplicates_and_edges_that_do_not_count(verdicts: dict[str, AuditVerdict]) -> None:
    subs = verdicts["active_subscriptions"]
    assert subs.duplicate_of == "mrr" and subs.checks["duplicate_of"] is True
    assert ("moves like Revenu récurrent mensuel (MRR) (correlation 0.99): no need to show both, but the metrics "
            "that use it need its definition") in subs.reasons
    assert verdicts["ad_spend"].checks["duplicate_of"] is False  # 0.61 is far from 1
    assert verdicts["sessions"].checks["predicts"] is False  # its edge has p = 0.30
    assert verdicts["mql_rate"].checks["predicts"] is False  # lag 0 predicts nothing
    won = verdicts["won_revenue"]
    assert won.verdict == "fix" and won.checks["incentive_risk"] is True
    assert any("counter-metric such as Taux de signature" in r for r in won.reasons)


def test_a_metric_that_does_a_job_is_never_deleted(verdicts: dict[str, AuditVerdict]) -> None:
    # logo_churn divides by it: a duplicate of MRR on a chart, but the definition does a job.
    subs = verdicts["active_subscriptions"]
    assert subs.verdict == "keep"
    assert "used by Churn clients as its denominator" in subs.reasons
    assert "its job needs no decision rule of its own" in subs.reasons
    assert [u.to_dict() for u in subs.used_by] == [{"by": "logo_churn", "title": "Churn clients",
                                                    "role": "denominator"}]
    # cost_per_demo = ad_spend / demos_booked; the audit deletes cost_per_demo, and says what that frees.
    spend = verdicts["ad_spend"]
    assert spend.verdict == "keep"
    assert "input of Coût par démo" in spend.reasons
    assert spend.reasons[-1] == "if Coût par démo goes, this one can go too"
    assert "input of Coût par démo" in verdicts["demos_booked"].reasons
    # The funnel's MQL stage, and the quality counter-metric of leads (a ratio over the same model).
    mql = verdicts["mql_rate"]
    assert mql.verdict == "keep"
    assert "the MQL stage of the marketing-sales funnel" in mql.reasons
    assert "quality counter-metric of Leads: it tells whether volume comes at the cost of quality" in mql.reasons
    assert {(u.by, u.role) for u in mql.used_by} == {("MQL", "funnel_stage"), ("leads", "counter_metric")}


def test_a_funnel_stage_without_an_owner_is_fixed_in_its_settings(ws: Workspace) -> None:
    stages = [*funnel_of(ws), ("Visits", "sessions")]
    v = {v.key: v for v in audit_workspace(ws, EDGES, CORRELATIONS, funnel=stages)}["sessions"]
    assert v.verdict == "fix"
    assert "the Visits stage of the marketing-sales funnel" in v.reasons
    assert "no owner: no team answers for it" in v.reasons
    assert [(str(f.text), f.where, f.field) for f in v.fixes] == [
        ("Name the team that answers for it", "settings", "owners")]


def test_without_lead_lag_analysis_predicting_is_unknown(ws: Workspace) -> None:
    out = {v.key: v for v in audit_workspace(ws, [], {}, funnel=funnel_of(ws))}
    assert out["leads"].checks["predicts"] is None and out["leads"].checks["duplicate_of"] is None
    assert out["leads"].verdict == "fix"  # a funnel stage, pushed by one team alone
    assert out["win_rate"].checks["predicts"] is True and out["win_rate"].verdict == "keep"
    assert out["active_subscriptions"].verdict == "keep"
    assert out["sessions"].verdict == "delete"
    assert "unknown whether it predicts an outcome: run the lead-lag analysis" in out["sessions"].reasons


def test_duplicate_board_tile_is_fixed_not_deleted(ws: Workspace) -> None:
    out = {v.key: v for v in audit_workspace(ws, EDGES, {("pipeline_generated", "demos_booked"): 0.97})}
    assert out["pipeline_generated"].verdict == "keep"  # first on the board, kept
    demos = out["demos_booked"]
    assert demos.verdict == "fix" and demos.duplicate_of == "pipeline_generated"
    assert [(str(f.text), f.where, f.field) for f in demos.fixes] == [
        ("Take Démos planifiées or Pipeline généré off the board: they move together", "workspace", "board")]


def test_the_north_star_without_a_decision_is_fixed(ws: Workspace) -> None:
    bare = ws.model_copy(update={"metrics": [m.model_copy(update={"decision": None}) if m.key == "mrr" else m
                                             for m in ws.metrics]})
    v = audit_workspace(bare, EDGES, CORRELATIONS)[0]
    assert (v.key, v.verdict) == ("mrr", "fix")
    assert [f.field for f in v.fixes] == ["decision"]


def test_a_leading_kpi_that_leads_nothing_says_what_to_check(ws: Workspace) -> None:
    v = {v.key: v for v in audit_workspace(ws, [EDGES[0]], {})}["demos_booked"]
    assert v.verdict == "fix" and v.checks["predicts"] is False
    assert [(f.where, f.field) for f in v.fixes] == [("workspace", "kind")]


def _invariants(ws: Workspace, out: list[AuditVerdict], edges: list[Edge]) -> None:
    """What the rest of kpilot uses is never deleted, and every fix is said in words, with where to make it."""
    got = {v.key: v for v in out}
    assert set(got) == set(ws.metric_keys)
    for m in ws.metrics:
        for dep in dependencies(ws, m):
            assert got[dep].verdict != "delete", (dep, m.key)
            assert any(u.by == m.key for u in got[dep].used_by), (dep, m.key)
    for _, key in funnel_of(ws):
        assert got[key].verdict != "delete", key
    for e in edges:
        if e.p_value <= 0.05 and e.lag >= 1:
            assert got[e.leader].verdict != "delete", e
    for v in out:
        assert (v.verdict == "fix") == bool(v.fixes), v.key
        for f in v.fixes:
            assert "`" not in f.text and "Fix:" not in f.text and f.text[0].isupper(), f.text
            assert f.where in ("settings", "workspace") and (f.where == "settings") == (f.field in SETTINGS_FIELDS)
        assert not any("Fix:" in r or "`" in r for r in v.reasons), v.key


def test_acme_invariants(ws: Workspace) -> None:
    for edges, correlations in ((EDGES, CORRELATIONS), ([], {})):
        _invariants(ws, audit_workspace(ws, edges, correlations, funnel=funnel_of(ws)), edges)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    folder = tmp_path_factory.mktemp("demo")
    workspace, _ = load_workspace(generate_demo(folder, today=date(2026, 11, 16)))
    return workspace


DEMO_EDGES = [Edge("leads", "won_revenue", 5, 0.28, 0.002), Edge("sessions", "won_revenue", 6, 0.18, 0.01),
              Edge("ad_spend", "won_revenue", 6, 0.18, 0.03), Edge("pipeline_generated", "won_revenue", 5, 0.22, 0.002),
              Edge("demos_booked", "won_revenue", 6, 0.21, 0.0096)]  # the demo's measured edges (kpilot leads)


def test_demo_verdicts(demo: Workspace) -> None:
    out = audit_workspace(demo, DEMO_EDGES, {("active_customers", "mrr"): 0.96}, funnel=funnel_of(demo))
    _invariants(demo, out, DEMO_EDGES)
    assert {v.key: v.verdict for v in out} == {
        "mrr": "keep", "pipeline_generated": "keep", "demos_booked": "keep", "net_new_mrr": "keep",
        "logo_churn": "keep", "active_customers": "keep", "active_seat_rate": "fix", "leads": "fix",
        "mql_rate": "keep", "sessions": "fix", "ad_spend": "fix", "cost_per_demo": "delete", "won_revenue": "fix",
        "bookings_ytd": "delete", "pipeline_13_weeks": "delete", "win_rate": "fix", "sales_cycle": "delete",
        "mrr_growth": "delete",
    }
    got = {v.key: v for v in out}
    assert "used by Logo churn as its denominator" in got["active_customers"].reasons
    assert "input of Net new MRR, MRR growth rate" in got["mrr"].reasons
    assert "input of MRR growth rate" in got["net_new_mrr"].reasons


def test_french_reasons_read_naturally(verdicts: dict[str, AuditVerdict]) -> None:
    tr = translator("fr")
    subs = [render(r, tr) for r in verdicts["active_subscriptions"].reasons]
    assert "utilisé par Churn clients comme dénominateur" in subs
    assert "son rôle ne demande pas de règle de décision propre" in subs
    assert "entre dans le calcul de Coût par démo" in [render(r, tr) for r in verdicts["ad_spend"].reasons]
    mql = [render(r, tr) for r in verdicts["mql_rate"].reasons]
    assert "l'étape « MQL » de l'entonnoir marketing-ventes" in mql
    assert ("contre-indicateur de qualité de Leads : il dit si le volume se fait au détriment de la qualité"
            in mql)
    pipe = [render(r, tr) for r in verdicts["pipeline_generated"].reasons]
    assert "indicateur avancé de Revenu récurrent mensuel (MRR), avec 2 mois d'avance (corrélation 0,71)" in pipe
    assert [render(f.text, tr) for f in verdicts["leads"].fixes] == [
        "Écrivez sa règle de décision : quand il bouge, qui agit et comment",
        "Fixez la valeur qu'il doit atteindre, période par période",
        "Ajoutez une deuxième équipe à ses responsables, pour que le volume seul ne l'emporte pas",
    ]


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
    out = audit_inventory(parse_inventory(INVENTORY_FR, "dash.csv"), ws, EDGES, CORRELATIONS, funnel=funnel_of(ws))
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
    assert [(str(f.text), f.where, f.field) for f in got["Leads par semaine"].fixes] == [
        ("Write in the decision column what this chart should trigger", "inventory", "decision"),
        ("Set the value Leads should reach, period by period", "settings", "targets"),
        ("Add a second team to the owners of Leads, so that volume alone does not win", "settings", "owners"),
    ]
    assert got["Leads par semaine"].metric == "leads"
    # The chart goes; the metric behind it stays, for what uses it.
    assert ("the chart goes, the metric stays: used by Churn clients as its denominator"
            in got["Abonnements actifs"].reasons)
    assert all((v.verdict == "fix") == bool(v.fixes) for v in out)
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
