"""The weekly steering review gathered through the service: the board now and a week earlier, the forecasts and
early warnings, the week's alerts and the decision log, worded by `kpilot.report.review` and laid out by
`kpilot.report.render`. The doors (`kpilot review`, the worker's schedule, the web) call these two functions."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from kpilot.i18n import translator
from kpilot.model.periods import shift
from kpilot.report.render import ReviewFormat, render
from kpilot.report.review import CHART_PERIODS, Review, make_review
from kpilot.store import DecisionRecord
from kpilot.store.alert_log import AlertRecord

if TYPE_CHECKING:
    from kpilot.service import WorkspaceService


def build_review(svc: WorkspaceService, *, as_of: date | None = None, lang: str | None = None) -> Review:
    """The review of the week ending on `as_of` (default: today, after loading and computing), in `lang` (default:
    the workspace's language). Values and verdicts are the board's, as `svc.board` judges them."""
    from kpilot.insights import Insights
    from kpilot.service import tables

    language = lang or svc.ws.language.value
    board = svc.board(as_of=as_of)  # today: loads and computes first
    day = as_of or svc.today()
    week_before = svc.board(as_of=day - timedelta(days=7))
    ins = Insights(svc, as_of=as_of, computer=svc.computer(as_of))
    edges = ins.edges()
    forecasts = {s.key: f for s in board if (f := ins.forecast(s.key, edges=edges)) is not None}
    history = {s.key: tables.series_rows(ins, s.key, s.grain, shift(s.period, s.grain, -CHART_PERIODS[s.grain]),
                                         s.period) for s in board}
    alerts: list[AlertRecord] = []
    decisions: list[DecisionRecord] = []
    notes: list[str] = []
    if svc.has_app_store():  # no application database is created just to read an empty one
        store = svc.app_store()
        alerts, decisions = store.alerts(svc.ws.workspace), store.decisions(svc.ws.workspace)
    else:
        tr = translator(language)
        notes.append(tr("No alert or decision is recorded for this workspace yet."))
    return make_review(svc.ws, as_of=day, board=board, week_before=week_before, forecasts=forecasts,
                       warnings=ins.warnings(edges), alerts=alerts, decisions=decisions, history=history,
                       lang=language, notes=notes)


def render_review(review: Review, fmt: ReviewFormat | str) -> bytes:
    """The review as HTML, PDF or Markdown bytes (see kpilot.report.render)."""
    return render(review, fmt)


__all__ = ["ReviewFormat", "build_review", "render_review"]
