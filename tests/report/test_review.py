"""The weekly review of acme (in French) and of the demo (in English), in its three formats: every board KPI shows the
verdict and the value the service judged, worded as every door words them; the week's alerts and the decisions due
or measured are the ones of the review's week; the PDF is A4 and its text holds the board row by row.

Acme is loaded and reviewed once for the module (as of Friday 2026-11-20, the week of 14 to 20 November); the
application database is seeded with alerts and decisions inside and outside that week.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kpilot.cli.review import review as review_command
from kpilot.i18n import format_percent, format_value, format_verdict, period_words, translator
from kpilot.insights import Insights
from kpilot.report.render import headings, to_html, to_markdown, to_pdf
from kpilot.report.review import Review
from kpilot.service import MetricStatus, WorkspaceService
from kpilot.service.review import build_review
from kpilot.templates.demo import generate_demo

AS_OF = date(2026, 11, 20)
DEMO_TODAY = date(2026, 11, 26)


@dataclass
class Reviewed:
    svc: WorkspaceService
    state_root: Path
    board: list[MetricStatus]
    review: Review


def _seed(svc: WorkspaceService) -> None:
    """Alerts and decisions in and out of the review's week (only those in it may show)."""
    store, ws = svc.app_store(), svc.ws.workspace

    def alert(key: str, metric: str, opened: str, last_seen: str, severity: str, headline: str) -> dict[str, object]:
        return {"key": key, "kind": "kpi", "metric": metric, "state": "firing", "severity": severity,
                "opened": opened, "last_seen": last_seen, "periods_seen": 1, "needed": 1,
                "recipients": ["customer_success"], "payload": {"headline": headline}}

    store.apply_alert_run(ws, [alert("kpi:logo_churn", "logo_churn", "2026-11-16", "2026-11-20", "red",
                                     "Churn clients hors cible"),
                               alert("kpi:win_rate", "win_rate", "2026-10-01", "2026-10-09", "amber",
                                     "an alert of October")], [])
    store.add_decision(ws, "demos_booked", period="2026-W45", action="Relancer les campagnes LinkedIn",
                       owner="marketing", review_on="2026-11-24", expected_effect="+15 % de démos en 3 semaines")
    store.add_decision(ws, "win_rate", period="2026-10", action="Coaching sur la qualification", owner="sales",
                       review_on="2026-11-12")
    store.add_decision(ws, "mrr", period="2026-11", action="Revue des prix ETI", owner="sales",
                       review_on="2026-12-15")  # reviewed after the coming week: not due
    measured = store.add_decision(ws, "demos_booked", period="2026-W40", action="Webinaire mensuel",
                                  owner="marketing", status="done", review_on="2026-11-02")
    store.record_effect(ws, measured.id, {"actual_change": 0.08, "expected_change": 0.1, "counterfactual": 95.0,
                                          "verdict": "worked"})


@pytest.fixture(scope="module")
def acme(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reviewed]:
    folder = tmp_path_factory.mktemp("review") / "acme"
    shutil.copytree(acme_dir, folder)
    root = tmp_path_factory.mktemp("review-state")
    with WorkspaceService(folder, state_root=root) as svc:
        svc.load()
        _seed(svc)
        yield Reviewed(svc, root, svc.board(as_of=AS_OF), build_review(svc, as_of=AS_OF))


@pytest.fixture(scope="module")
def acme_pdf_text(acme: Reviewed, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(pdfinfo, pdftotext -layout) of the acme review's PDF."""
    pdf = tmp_path_factory.mktemp("pdf") / "review.pdf"
    pdf.write_bytes(to_pdf(acme.review))
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return info, text


def _spaces(text: str) -> str:
    """Non-breaking spaces as spaces (pdftotext writes them so)."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def expected_row(s: MetricStatus, lang: str) -> list[str]:
    """A board row as the service's values are worded at every door: name, period (* in progress), value, target,
    verdict, change, projection."""
    verdict, _ = format_verdict(s.verdict.value, s.verdict_reason, s.data_through, lang)
    projected = format_value(s.projected, s.unit, lang) if not s.complete and s.projected is not None else "—"
    return [s.name, period_words(s.period, s.grain.value, lang) + ("" if s.complete else "*"), format_value(s.value, s.unit, lang),
            format_value(s.target, s.unit, lang), verdict,
            format_percent(s.change, lang, signed=True) if s.change is not None else "—", projected]


def html_board(page: str) -> list[list[str]]:
    """The cells of the HTML board's rows, as text."""
    table = re.search(r'<table class="board">(.*?)</table>', page, re.S)
    assert table is not None
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1).split("<tbody>")[1], re.S)
    return [[" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in re.findall(r"<td[^>]*>(.*?)</td>",
                                                                                             r, re.S)] for r in rows]


def _name_cell(s: MetricStatus) -> str:
    return ("★ " if s.role == "north_star" else "") + s.name + (" ⚑" if s.fires else "")


# --- acme, in French


def test_the_board_is_the_services_in_every_format(acme: Reviewed) -> None:
    rows = [expected_row(s, "fr") for s in acme.board]
    assert [s.key for s in acme.board] == ["mrr", "pipeline_generated", "demos_booked", "win_rate", "logo_churn"]
    page = to_html(acme.review)
    assert html_board(page) == [[_name_cell(s), *_spaces_row(row)[1:]] for s, row in zip(acme.board, rows, strict=True)]
    markdown = to_markdown(acme.review).splitlines()
    for row in rows:
        row[4] = f"**{row[4]}**"
        assert "| " + " | ".join(row) + " |" in markdown, row


def _spaces_row(row: Sequence[str]) -> list[str]:
    return [" ".join(_spaces(c).split()) for c in row]


def test_the_pdf_is_a4_and_holds_each_kpi_with_its_verdict_and_value(acme: Reviewed,
                                                                     acme_pdf_text: tuple[str, str]) -> None:
    info, text = acme_pdf_text
    assert re.search(r"Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)", info)
    assert 1 <= int(re.search(r"Pages:\s+(\d+)", info).group(1)) <= 3  # type: ignore[union-attr]
    flat = " ".join(_spaces(text).split())
    board = _spaces(text).split("Tableau de bord", 1)[1]
    for s in acme.board:
        name, period, value, target, verdict, change, projected = _spaces_row(expected_row(s, "fr"))
        assert name in flat, name
        # The row's line: the name's first word, then its period, value, target, verdict, change and projection.
        row = (rf"^\W*{re.escape(name.split()[0])}.*{re.escape(period)}\s+{re.escape(value)}\s+{re.escape(target)}\s+"
               rf"{re.escape(verdict)}\s+{re.escape(change)}\s+{re.escape(projected)}\s*$")
        assert re.search(row, board, re.M), (s.key, row)


def test_what_changed_states_each_verdict_change_against_a_week_earlier(acme: Reviewed) -> None:
    before = {s.key: s for s in acme.svc.board(as_of=AS_OF - timedelta(days=7))}
    changed = [s for s in acme.board if s.verdict is not before[s.key].verdict]
    assert [s.key for s in changed] == ["logo_churn"]  # on track on the 13th, off track on the 20th
    s = changed[0]
    assert acme.review.changes[0] == (
        f"Churn clients est passé de « Dans la cible » à « Hors cible » : {format_value(s.value, s.unit, 'fr')} pour "
        f"un objectif de {format_value(s.target, s.unit, 'fr')} (novembre 2026).")
    # Its decision rule fires since: that is said too.
    assert acme.review.changes[1].startswith("La règle de décision de Churn clients se déclenche : Customer success :")
    assert len(acme.review.changes) == 2


def test_predicted_misses_are_the_kpis_below_one_chance_in_two(acme: Reviewed) -> None:
    ins = Insights(acme.svc, as_of=AS_OF, computer=acme.svc.computer(AS_OF))
    chances = {}
    for s in acme.board:
        f = ins.forecast(s.key)
        assert f is not None
        chances[s.name] = next(p["probability"] for p in f.points if p["period"] == s.period.isoformat())
    assert [m.kpi for m in acme.review.misses] == [name for name, p in chances.items() if p < 0.5]
    churn = next(m for m in acme.review.misses if m.kpi == "Churn clients")
    assert churn.chance == format_percent(chances["Churn clients"], "fr", digits=0)
    assert churn.action is not None and churn.action.startswith("Customer success : Appeler chaque client PME")
    assert churn.cause.startswith("aucun indicateur avancé n'a bougé")  # no early warning on acme at this date


def test_only_the_weeks_alerts_and_the_decisions_due_or_measured(acme: Reviewed) -> None:
    r = acme.review
    assert [(a.kpi, a.severity_label, a.state, a.opened, a.text) for a in r.alerts] == [
        ("Churn clients", "◆ Hors cible", "active", "16 nov. 2026", "Churn clients hors cible")]  # words, not "rouge"
    assert [(d.kpi, d.owner, d.review_on, d.overdue, d.expected) for d in r.due] == [
        ("Taux de signature", "Ventes", "12 nov. 2026", True, None),
        ("Démos planifiées", "Marketing", "24 nov. 2026", False, "+15 % de démos en 3 semaines")]
    assert [(e.kpi, e.action, e.facts) for e in r.effects] == [
        ("Démos planifiées", "Webinaire mensuel", (("Évolution mesurée", "+8,0\u202f%"),
                                                   ("Évolution attendue", "+10,0\u202f%"),
                                                   ("Sans la décision (prévision)", "95"), ("Verdict", "efficace")))]
    assert [(d.kpi, d.owner) for d in r.to_take] == [("Churn clients", "Customer success")]


def test_the_page_is_self_contained_in_french_with_its_charts(acme: Reviewed) -> None:
    page = to_html(acme.review)
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing fetched from anywhere
    english, french = headings(translator("en")), headings(translator("fr"))
    for key in ("review", "changed", "misses", "to_take", "alerts", "due", "effects", "trends"):
        assert french[key] != english[key] and html.escape(french[key]) in page, key
    images = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert len(images) == 1 + len(acme.review.board)  # the North Star's, then each board KPI's
    svg = base64.b64decode(images[0]).decode("utf-8")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "sept. 2026" in texts and "1,8\u00a0M\u00a0€" in texts, texts  # French months and money on the axes


def test_the_command_writes_the_same_review(acme: Reviewed, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(review_command)
    runner = CliRunner()
    args = ["-w", str(acme.svc.dir), "--state-dir", str(acme.state_root), "--as-of", AS_OF.isoformat()]
    refused = runner.invoke(app, [*args, "--format", "pdf"])
    assert refused.exit_code == 1
    assert "un PDF ne s'écrit pas dans le terminal" in refused.output
    done = runner.invoke(app, [*args, "--format", "md"])
    assert done.exit_code == 0, done.output
    assert done.stdout == to_markdown(acme.review)


# --- the demo, in English


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reviewed]:
    yaml = generate_demo(tmp_path_factory.mktemp("demo") / "northwind", today=DEMO_TODAY)
    root = tmp_path_factory.mktemp("demo-state")
    with WorkspaceService(yaml.parent, state_root=root) as svc:
        svc.load()
        yield Reviewed(svc, root, svc.board(as_of=DEMO_TODAY), build_review(svc, as_of=DEMO_TODAY))


def test_the_demo_review_is_in_english(demo: Reviewed) -> None:
    assert demo.review.language == "en"
    page = to_html(demo.review)
    assert html_board(page) == [[_name_cell(s), *_spaces_row(expected_row(s, "en"))[1:]] for s in demo.board]
    markdown = to_markdown(demo.review)
    assert markdown.startswith("# Weekly review — ")
    assert "## What changed this week" in markdown and "## Predicted misses" in markdown
    # No application database was ever opened for the demo: the review says so, and creates none.
    assert "No alert or decision is recorded for this workspace yet." in markdown
    assert not (demo.svc.state_dir / "app.db").exists()
