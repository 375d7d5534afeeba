"""The weekly steering review gathered through the service: the board now and a week earlier, the forecasts and
early warnings, the week's alerts and the decision log, worded by `kpilot.report.review` and laid out by
`kpilot.report.render`. The doors (`kpilot review`, the worker's schedule, the web) call these functions.

Sending: `queue_review` writes one message per target of `review: to:` into the outbox (a channel key, or an e-mail
address queued as `mailto:<address>`), which `kpilot.service.alerts.deliver` or the worker then delivers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

from kpilot.alerting.compose import kpi_link
from kpilot.alerting.message import Item, Message
from kpilot.alerting.outbox import MAILTO
from kpilot.i18n import VERDICT_LABELS, format_day, translator
from kpilot.model import KpilotError, WorkspaceInvalid
from kpilot.model.channels import is_email
from kpilot.model.errors import did_you_mean, msg, one_of
from kpilot.model.periods import shift
from kpilot.report.render import ReviewFormat, headings, render
from kpilot.report.review import CHART_PERIODS, Review, colon, make_review
from kpilot.store import DecisionRecord
from kpilot.store.alert_log import AlertRecord, NewMessage

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
        from kpilot.service.decisions import review_due

        review_due(svc, day, store=store)  # the decisions whose review date has come are measured first
        alerts, decisions = store.alerts(svc.ws.workspace), store.decisions(svc.ws.workspace)
    else:
        tr = translator(language)
        notes.append(tr("No alert or decision is recorded for this workspace yet."))
    return make_review(svc.ws, as_of=day, board=board, week_before=week_before, forecasts=forecasts,
                       warnings=ins.warnings(edges), alerts=alerts, decisions=decisions, history=history,
                       lang=language, notes=notes)


def default_day(svc: WorkspaceService) -> date | None:
    """The day a review asked for without a date ends on: on the first day of a week, the week that just ended (its
    Monday has barely begun); other days, None (today, the week so far)."""
    today = svc.today()
    return today - timedelta(days=1) if today.isoweekday() == svc.ws.week_start.isodow else None


def render_review(review: Review, fmt: ReviewFormat | str) -> bytes:
    """The review as HTML, PDF or Markdown bytes (see kpilot.report.render)."""
    return render(review, fmt)


# The validation errors that stop a message from leaving (kpilot.model.channel_checks).
SENDING_CHECKS = ("no_smtp", "bad_smtp", "env_not_set", "unknown_channel")


def review_message(review: Review, pdf: bytes, *, base_url: str | None = None) -> Message:
    """The review as one outbox message, in the review's language: the verdict count as headline, what changed as
    lines, each board KPI with its verdict as an item, the board's link, and the PDF attached."""
    tr = translator(review.language)
    h, c = headings(tr), colon(tr)
    first = review.as_of - timedelta(days=6)
    counts = Counter(k.verdict for k in review.kpis)
    headline = " · ".join(f"{c(tr(label))} {counts[v]}" for v, label in VERDICT_LABELS.items() if counts[v])
    subject = tr("Weekly review — {title}, week of {date}").format(title=review.title,
                                                                    date=format_day(first, review.language))
    items = tuple(Item(title=k.name, verdict=k.verdict, link=kpi_link(base_url, k.key),
                       text=f"{k.verdict_label} — {k.value} ({h['target'].lower()} {k.target}, {k.period})"
                            + (f"; {k.why}" if k.why else "")) for k in review.kpis)
    return Message(delivery_id="", kind="review", language=review.language, workspace=review.workspace,
                   subject=subject, headline=headline or subject, lines=review.changes, items=items, link=base_url,
                   link_text=tr("Open the board"), attachment=pdf,
                   attachment_name=f"kpilot-review-{review.as_of.isoformat()}.pdf",
                   data={"kind": "review", "as_of": review.as_of.isoformat(), "week": first.isoformat(),
                         "verdicts": {k.key: k.verdict for k in review.kpis}})


def review_targets(svc: WorkspaceService) -> list[str]:
    """The targets of `review: to:` (channel keys and e-mail addresses), each once; an error when there is none."""
    review = svc.ws.review
    if review is None or not review.to:
        raise KpilotError(msg("{file} does not say whom the weekly review goes to. Fix: declare its targets, "
                              "channel keys or e-mail addresses, e.g. {example}", file=str(svc.file),
                              example="review: {to: [direction, ceo@example.com]}"))
    return list(dict.fromkeys(review.to))


def check_sending(svc: WorkspaceService, environ: Mapping[str, str]) -> None:
    """Raise WorkspaceInvalid, at kpilot.yaml's lines, when the review cannot reach one of its targets: no or a bad
    KPILOT_SMTP_URL for an e-mail target, a target's webhook variable unset, a target that names nothing."""
    targets = set(review_targets(svc))
    used = {f"channels[{i}]" for i, ch in enumerate(svc.ws.channels) if ch.key in targets}
    mail = any(is_email(t) for t in targets) or any(ch.type == "email" and ch.key in targets
                                                    for ch in svc.ws.channels)

    def concerns(code: str, path: str) -> bool:
        # Other channels' problems (a webhook only alerts use) do not stop the review.
        if code in ("no_smtp", "bad_smtp"):
            return mail
        if code == "env_not_set":
            return path.split(".")[0] in used
        return path.startswith("review")

    issues = [i for i in svc.validate(with_data=False, environ={**environ, **svc.alert_secrets()})
              if i.severity == "error" and i.code in SENDING_CHECKS and concerns(i.code, i.path)]
    if issues:
        raise WorkspaceInvalid(issues)


def queue_review(svc: WorkspaceService, *, as_of: date | None = None, review: Review | None = None,
                 once: bool = False) -> int:
    """Queue the review (of the week ending on `as_of`, default today; or `review`, already built) in the outbox,
    one message per target of `review: to:`; returns the messages queued. E-mails carry the PDF; chat channels
    and webhooks get the text and the link. Nothing is sent here: `kpilot.service.alerts.deliver` sends.
    `once`: queue nothing if the review of that week is in the outbox already (a schedule run by two processes,
    the worker and the web app, sends it once)."""
    ws = svc.ws
    if once:
        ending = review.as_of if review is not None else as_of or svc.today()
        week = (ending - timedelta(days=6)).isoformat()
        if any(m.kind == "review" and m.week == week for m in svc.app_store().outbox(ws.workspace, limit=1000)):
            return 0
    channels = {ch.key: ch for ch in ws.channels}
    targets = review_targets(svc)
    for target in targets:
        if target not in channels and not is_email(target):
            raise KpilotError(msg("the review goes to '{target}', which is neither a channel nor an e-mail address;"
                                  "{hint} channels: {channels}", target=target, hint=did_you_mean(target, channels),
                                  channels=one_of(channels)))
    review = review or build_review(svc, as_of=as_of)
    mail = review_message(review, render_review(review, ReviewFormat.pdf), base_url=ws.base_url)
    chat = replace(mail, attachment=None, attachment_name=None)  # only e-mail carries a file
    week = (review.as_of - timedelta(days=6)).isoformat()
    messages = []
    for target in targets:
        channel = channels.get(target)
        key = target if channel is not None else MAILTO + target
        message = mail if channel is None or channel.type == "email" else chat
        messages.append(NewMessage(key, target, "review", week, message.to_dict()))
    svc.app_store().apply_alert_run(ws.workspace, [], messages)
    return len(messages)


__all__ = ["Review", "ReviewFormat", "build_review", "check_sending", "default_day", "queue_review", "render_review",
           "review_message", "review_targets"]
