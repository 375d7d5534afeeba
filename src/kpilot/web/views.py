"""What the pages show, formatted for people: the service's results turned into text in one language.

No judgement happens here: statuses, pacing, projections and rule outcomes come from the service;
this module only words and formats them (numbers, money, percents and dates per locale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from babel.numbers import format_decimal

from kpilot.i18n import (
    LOCALES,
    STATUS_WORDS,
    VERDICT_COLOURS,
    VERDICT_LABELS,
    VERDICT_SHAPES,
    Translator,
    counted,
    format_day,
    format_evidence_list,
    format_full,
    format_percent,
    format_value,
    format_values,
    format_verdict,
    period_words,
    periods_count,
)
from kpilot.model import Direction, Grain, KpilotError
from kpilot.model.errors import msg
from kpilot.model.periods import next_start, parse_period, shift
from kpilot.model.workspace import Workspace
from kpilot.report import charts
from kpilot.service import AnnotationRecord, DecisionRecord, MetricStatus, describe_when


def N_(text: str) -> str:
    """Marks a message translated later, from a value (the i18n test finds it)."""
    return text


# Words shown from a metric's fields (its grain, its kind), translated when shown.
FIELD_WORDS = (N_("day"), N_("week"), N_("month"), N_("quarter"), N_("year"), N_("leading"), N_("lagging"))


class PageError(Exception):
    """A request kpilot cannot answer, with the status code and a message for people."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Refused(KpilotError):
    """A form field or a body field kpilot cannot take (HTTP 422), with a message for people."""

    status = 422


@dataclass
class Page:
    """What every page needs: the language, its translator, the as-of date and the workspace."""

    lang: str
    tr: Translator
    ws: Workspace
    as_of: date
    today: date

    @property
    def pinned(self) -> bool:
        """Whether the user chose a date (links then keep it)."""
        return self.as_of != self.today

    def query(self) -> str:
        return f"?as_of={self.as_of.isoformat()}" if self.pinned else ""

    def value(self, v: float | None, unit: str | None) -> str:
        return format_value(v, unit, self.lang, currency=self.ws.currency)

    def values(self, vs: Sequence[float | None], unit: str | None) -> list[str]:
        """Values read together (a forecast and its interval) in one form: see i18n.format_values."""
        return format_values(vs, unit, self.lang, currency=self.ws.currency)

    def period(self, start: date, grain: Grain | str) -> str:
        """A period as people say it in the page's language: "week of 30 Nov", "novembre 2026"."""
        return period_words(start, getattr(grain, "value", str(grain)), self.lang)

    def counted(self, what: str, n: int) -> str:
        """A count in words with its plural: "1 decision to take this period." (see i18n.COUNTS)."""
        return counted(what, n, self.lang)

    def period_text(self, text: str) -> str:
        """A period typed by someone ("2026-11", "2026-W45") as people say it; the text itself when it is none."""
        try:
            grain, start = parse_period(text)
        except ValueError:
            return text
        return self.period(start, grain)

    def number(self, v: float, digits: int = 2) -> str:
        """A plain number in the page's language: 0.62 / 0,62."""
        return format_decimal(v, format="0." + "0" * digits, locale=LOCALES.get(self.lang, "en_US"))

    def percent(self, v: float | None, *, digits: int = 0, signed: bool = False) -> str:
        return format_percent(v, self.lang, digits=digits, signed=signed) if v is not None else "—"

    def day(self, d: date | None) -> str:
        return format_day(d, self.lang)

    def team(self, key: str) -> str:
        return self.ws.team_name(key)


@dataclass
class Decision:
    condition: str
    owner_key: str
    owner: str
    action: str
    fires: bool
    evaluated: bool
    evidence: list[str]


@dataclass
class Tile:
    """One KPI as the board shows it."""

    key: str
    name: str
    role: str
    status: str  # the verdict's colour: green | amber | red | none
    status_label: str  # the verdict in words
    verdict: str
    no_data_reason: str  # why there is no verdict ("" otherwise)
    period_label: str
    complete: bool
    value: str
    target: str
    expected: str
    pacing: str
    projected: str | None
    change: str | None
    change_good: bool | None
    decision: Decision | None
    owners: list[str]
    kind: str | None
    spark: dict[str, Any]  # the sparkline's Vega-Lite spec
    data_through: str
    raw: MetricStatus = field(repr=False)
    forecast: Any = None  # insight_views.ForecastPoint: the forecast of the first period not fully known
    warnings: list[Any] = field(default_factory=list)  # insight_views.WarningView: early warnings on this KPI
    decided: str | None = None  # "Decided by ... on ..., review on ...": an open decision of the current period
    shape: str = ""  # the verdict's shape (● ▲ ◆ ○): the verdict never rests on colour alone
    spark_alt: str = ""  # the sparkline's text alternative: the latest value, target and verdict in words
    reason: str = ""  # the verdict's reason in one line
    leads: list[LeadLink] = field(default_factory=list)  # measured leading indicators of this KPI (or what it leads)
    value_full: str = ""  # the value in full when `value` is short ("1,82 M €" -> "1 822 148 €"): its hover text


@dataclass(frozen=True)
class LeadLink:
    """A measured lead-lag edge as a tile shows it: the other metric (linked) and the sentence."""

    key: str
    text: str


def tile_reason(s: MetricStatus, page: Page, no_data: str) -> str:
    """Why the verdict, in one line: the period's value against its target (at pace while in progress)."""
    tr = page.tr
    if s.verdict.value == "no_data":
        return no_data
    value, target = page.value(s.value, s.unit), page.value(s.target, s.unit)
    if not s.complete and s.expected is not None and s.pacing is not None and s.expected != s.target:
        return tr("{period} so far: {value}, {pace} of the {expected} expected by now (target {target}).").format(
            period=page.period(s.period, s.grain), value=value, pace=page.percent(s.pacing, digits=0),
            expected=page.value(s.expected, s.unit), target=target)
    return tr("{period}: {value} against a target of {target}.").format(period=page.period(s.period, s.grain),
                                                                         value=value,
                                                                         target=target)


def lead_links(key: str, leaders: Sequence[Any], followers: Sequence[Any], page: Page) -> list[LeadLink]:
    """The measured leading indicators of a KPI ("Led by Demos booked, 4 weeks ahead"), else what it leads."""
    tr = page.tr
    out: list[LeadLink] = []
    for e in sorted(leaders, key=lambda e: -abs(e.correlation))[:2]:
        lag = lag_words(e, page)
        out.append(LeadLink(e.leader, tr("Led by {metric}, {lag} ahead (r = {r})").format(
            metric=page.ws.metric(e.leader).label, lag=lag, r=page.number(e.correlation))))
    if out:
        return out
    for e in sorted(followers, key=lambda e: -abs(e.correlation))[:2]:
        lag = lag_words(e, page)
        out.append(LeadLink(e.follower, tr("Leads {metric} by {lag} (r = {r})").format(
            metric=page.ws.metric(e.follower).label, lag=lag, r=page.number(e.correlation))))
    return out


def decision_of(s: MetricStatus, page: Page) -> Decision | None:
    d = s.decision
    if d is None:
        return None
    condition = describe_when(d.when, Direction(s.direction), page.tr, lambda x: page.percent(x))
    evidence = format_evidence_list(d.evidence, d.projected, s.unit, page.lang, s.grain)
    return Decision(condition=condition, owner_key=d.owner, owner=page.team(d.owner), action=d.action,
                    fires=d.fires, evaluated=d.evaluated, evidence=evidence)


def tile(s: MetricStatus, rows: list[dict[str, object]], page: Page, *, big: bool = False) -> Tile:
    """A metric's tile: value against target, status, pace, projection, change and decision."""
    tr = page.tr
    verdict_label, reason = format_verdict(s.verdict.value, s.verdict_reason, s.data_through, page.lang)
    if s.stale and s.data_through is not None:
        # The periods after the data stopped would draw a cliff that never happened.
        rows = [r for r in rows if str(r["period"]) <= s.data_through.isoformat()]
    change_good: bool | None = None
    if s.change is not None and s.change != 0:
        change_good = (s.change > 0) == (s.direction == "up")
    projected = None
    if not s.complete and s.projected is not None:
        projected = page.value(s.projected, s.unit)
    return Tile(
        key=s.key, name=s.name, role=s.role, status=VERDICT_COLOURS[s.verdict.value],
        status_label=verdict_label, verdict=s.verdict.value, no_data_reason=reason,
        period_label=page.period(s.period, s.grain), complete=s.complete,
        value=page.value(s.value, s.unit), target=page.value(s.target, s.unit),
        expected=page.value(s.expected, s.unit),
        pacing=page.percent(s.pacing) if s.pacing is not None else "—",
        projected=projected,
        change=page.percent(s.change, digits=1, signed=True) if s.change is not None else None,
        change_good=change_good, decision=decision_of(s, page), owners=[page.team(o) for o in s.owners],
        kind=tr(s.kind) if s.kind else None,
        spark=charts.sparkline(rows, unit=s.unit, height=84 if big else 44, lang=page.lang,
                               currency=page.ws.currency),
        shape=VERDICT_SHAPES[s.verdict.value], reason=tile_reason(s, page, reason),
        data_through=page.day(s.data_through), raw=s, spark_alt=spark_alt(s, verdict_label, page),
        value_full=_full_if_short(s.value, s.unit, page),
    )


def _full_if_short(v: float | None, unit: str | None, page: Page) -> str:
    full = format_full(v, unit, page.lang, currency=page.ws.currency)
    return full if full != page.value(v, unit) else ""


def spark_alt(s: MetricStatus, verdict_label: str, page: Page) -> str:
    """A chart's words for screen readers: "Demos booked: 83 in week of 21 Sep against a target of 100, off track"."""
    if s.value is None:
        return page.tr("{metric}: {verdict}").format(metric=s.name, verdict=verdict_label)
    return page.tr("{metric}: {value} in {period} against a target of {target}, {verdict}").format(
        metric=s.name, value=page.value(s.value, s.unit), period=page.period(s.period, s.grain),
        target=page.value(s.target, s.unit), verdict=verdict_label)


def lag_words(e: Any, page: Page) -> str:
    """A lead-lag edge's lag in periods of the grain it was measured at (the finer of the two metrics' when the
    coarser one can be computed at it; the follower's for edges stored without one): "1 week", "5 weeks"."""
    grain = e.grain if getattr(e, "grain", None) is not None else page.ws.metric(e.follower).grain
    return periods_count(e.lag, grain.value, page.lang)


def decided_by(d: DecisionRecord, page: Page) -> str:
    """"Decided by Sales on Sep 13, 2026, review on Oct 4, 2026.": who (the person, else the team that acts), the
    decision's day (the one its counterfactual forecast was made on) and its review date."""
    who = d.user or (page.team(d.owner) if d.owner else "—")
    made = (d.baseline or {}).get("made_on")
    day = page.day(date.fromisoformat(made) if made else d.created_at.date())
    if not d.review_on:
        return page.tr("Decided by {who} on {day}.").format(who=who, day=day)
    return page.tr("Decided by {who} on {day}, review on {review}.").format(
        who=who, day=day, review=page.day(date.fromisoformat(d.review_on)))


def decided_now(s: MetricStatus, decisions: Sequence[DecisionRecord]) -> DecisionRecord | None:
    """The newest open decision on a KPI recorded for its current period (the log is newest first)."""
    end = next_start(s.period, s.grain)
    for d in decisions:
        if d.metric != s.key or d.status != "open":
            continue
        try:
            _, start = parse_period(d.period)
        except ValueError:
            continue
        if s.period <= start < end:
            return d
    return None


def with_decision(t: Tile, decisions: Sequence[DecisionRecord], page: Page) -> Tile:
    """The tile saying who decided, when its KPI has an open decision for the current period."""
    found = decided_now(t.raw, decisions)
    t.decided = decided_by(found, page) if found is not None else None
    return t


def to_decide(tiles: Sequence[Tile]) -> int:
    """The KPIs whose rule fires and on which nothing is decided yet this period."""
    return sum(1 for t in tiles if t.decision is not None and t.decision.fires and t.decided is None)


def log_version(decisions: Sequence[DecisionRecord]) -> str:
    """Changes whenever a decision is added, closed, noted or measured (part of a page's cache key)."""
    return repr([(d.id, d.status, d.note, d.updated_at, d.review_on, d.effect is not None) for d in decisions])


def a_day(text: str) -> date:
    """A YYYY-MM-DD date from a form or a body (Refused, for people, otherwise)."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Refused(msg("'{text}' is not a date. Fix: write it as YYYY-MM-DD, e.g. 2026-12-14.",
                          text=text)) from None


def history_chart(rows: list[dict[str, object]], unit: str | None, grain: Grain | str, page: Page,
                  forecast: Sequence[Mapping[str, object]] = (),
                  annotations: Sequence[AnnotationRecord] = ()) -> dict[str, Any]:
    """The history chart's spec (with the forecast's points ahead, if any, and the annotations within the
    periods shown as rules), its legend, tooltips and periods in the page's language."""
    def said(r: Mapping[str, object]) -> dict[str, object]:
        return {**r, "label": page.period(date.fromisoformat(str(r["period"])[:10]), grain)}

    rows = [said(r) for r in rows]
    return charts.history(rows, unit=unit, labels=charts.history_labels(page.tr), lang=page.lang,
                          currency=page.ws.currency, forecast=[said(p) for p in forecast],
                          annotations=annotation_marks(annotations, rows, page))


RANGES = ("13w", "12m", "all")  # what the history chart can show: 13 weeks, 12 months, everything
DEFAULT_RANGE = "12m"


def chart_range(asked: str | None) -> str:
    """The history's range a request asks for (`?range=`), the default when it names none we know."""
    return asked if asked in RANGES else DEFAULT_RANGE


def in_range(rows: list[dict[str, object]], span: str, current: date) -> list[dict[str, object]]:
    """The rows whose period starts within the range ending at the current period (all of them for "all")."""
    if span == "all":
        return rows
    first = current - timedelta(weeks=13 if span == "13w" else 52)
    return [r for r in rows if date.fromisoformat(str(r["period"])[:10]) > first]


def annotation_marks(annotations: Sequence[AnnotationRecord], rows: Sequence[Mapping[str, object]],
                     page: Page) -> list[dict[str, object]]:
    """The annotations placed at their period's first day, those within the chart's periods only (one outside
    would stretch the time axis)."""
    if not rows:
        return []
    first, last = str(rows[0]["period"]), str(rows[-1]["period"])
    out: list[dict[str, object]] = []
    for a in annotations:
        try:
            own, start = parse_period(a.period)
        except ValueError:
            continue
        if first <= start.isoformat() <= last:
            out.append({"period": start.isoformat(), "label": page.period(start, own), "text": a.text})
    return out


@dataclass(frozen=True)
class Notes:
    """A KPI's decision log (newest first) and annotations (in period order), from the application database."""

    decisions: list[DecisionRecord]
    annotations: list[AnnotationRecord]

    @property
    def version(self) -> str:
        """Changes whenever a decision or an annotation is added or changed (part of the page's cache key)."""
        return log_version(self.decisions) + repr([a.id for a in self.annotations])


@dataclass
class HistoryRow:
    label: str
    value: str
    target: str
    status: str
    status_label: str
    complete: bool


def judged_rows(s: Any, page: Page) -> list[dict[str, object]]:
    """A judged metric's periods (`MetricStatus.history`) as chart rows, the period it is judged on in its verdict's
    colour and words (a firing decision rule makes a period on track "at risk"), as the service's series has it."""
    rows: list[dict[str, object]] = []
    for j in s.history:
        row: dict[str, object] = {"period": j.period.isoformat(), "label": page.period(j.period, s.grain),
                                  "value": j.value, "target": j.target, "status": j.status, "complete": j.complete}
        if j.period == s.period:
            row.update(status=VERDICT_COLOURS[s.verdict.value], verdict=s.verdict.value)
        rows.append(row)
    return rows


def history_rows(rows: list[dict[str, object]], unit: str | None, grain: Grain | str, page: Page,
                 last: int = 12) -> list[HistoryRow]:
    """The last periods, newest first, for the table under the chart: periods and statuses in words."""
    out = []
    for r in reversed(rows[-last:]):
        status = str(r.get("status") or "none")
        out.append(HistoryRow(label=page.period(date.fromisoformat(str(r["period"])[:10]), grain),
                              value=page.value(_num(r.get("value")), unit),
                              target=page.value(_num(r.get("target")), unit), status=status,
                              status_label=page.tr(_status_words(r, status)),
                              complete=bool(r.get("complete", True))))
    return out


def _status_words(row: dict[str, object], status: str) -> str:
    """A period's status in words; the judged period's, its verdict's ("No data" for a source that stopped)."""
    verdict = str(row.get("verdict") or "")
    return VERDICT_LABELS[verdict] if verdict in VERDICT_LABELS else STATUS_WORDS.get(status, status)


@dataclass
class Slice:
    name: str
    value: str
    previous: str
    change: str | None
    bar: float  # 0..100: the value's width against the largest slice


@dataclass
class Breakdown:
    dimension: str
    slices: list[Slice]
    error: str | None = None
    label: str = ""  # the dimension in people's words


def breakdown(dim: str, rows: list[dict[str, object]], current: date, previous: date, unit: str | None,
              page: Page) -> Breakdown:
    """One dimension's values in the current period beside the previous one, largest first."""
    now: dict[str, float | None] = {}
    before: dict[str, float | None] = {}
    for r in rows:
        name = "—" if r.get(dim) is None else str(r[dim])
        period = date.fromisoformat(str(r["period"]))
        if period == current:
            now[name] = _num(r.get("value"))
        elif period == previous:
            before[name] = _num(r.get("value"))
    names = sorted(set(now) | set(before), key=lambda n: -(now.get(n) or 0.0))
    top = max([abs(v) for v in now.values() if v is not None] or [0.0])
    slices = []
    for n in names:
        v, p = now.get(n), before.get(n)
        change = page.percent(v / p - 1, digits=0, signed=True) if v is not None and p else None
        slices.append(Slice(name=page.ws.label_of(n) if n != "—" else n,
                            value=page.value(v, unit), previous=page.value(p, unit), change=change,
                            bar=round(100 * abs(v) / top, 1) if v is not None and top else 0.0))
    return Breakdown(dimension=dim, slices=slices, label=page.ws.label_of(dim))


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) else None


__all__ = ["Breakdown", "Decision", "HistoryRow", "Page", "PageError", "Refused", "Slice", "Tile", "a_day", "breakdown",
           "decided_by", "decided_now", "decision_of", "history_chart", "history_rows", "log_version", "tile",
           "to_decide", "with_decision"]


def week_moves(statuses: Sequence[MetricStatus], warnings: Sequence[Any], anomalies: Sequence[Any], page: Page,
               most: int = 3) -> list[str]:
    """The board's most important moves, in one sentence each: a KPI whose verdict changed against its previous
    period (a fall to off track first), an early warning, an unusual value in its latest periods."""
    tr = page.tr
    ranked: list[tuple[float, str]] = []
    rank = {"on_track": 0, "at_risk": 1, "off_track": 2}
    by_colour = {"green": "on_track", "amber": "at_risk", "red": "off_track"}
    for s in statuses:
        done = [j for j in s.history if j.complete and j.period < s.period and j.status in by_colour]
        if s.verdict.value == "no_data" or not done:
            continue
        before, now = by_colour[done[-1].status], s.verdict.value
        if before == now:
            continue
        words = {v: tr(VERDICT_LABELS[v]).lower() for v in (before, now)}
        sentence = tr("{kpi} went from {before} to {after}: {value} against a target of {target} ({period}).").format(
            kpi=s.name, before=words[before], after=words[now], value=page.value(s.value, s.unit),
            target=page.value(s.target, s.unit), period=page.period(s.period, s.grain))
        worse = rank[now] - rank[before]
        ranked.append((3.0 if now == "off_track" and worse > 0 else 1.5 if worse > 0 else 1.0, sentence))
    for w in warnings:
        ranked.append((2.5 if w.severity == "red" else 2.0, f"{w.headline} {w.because}."))
    shown = {s.key: s for s in statuses}
    for a in anomalies:
        kpi = shown.get(a.metric)
        if kpi is None or a.period < shift(kpi.period, kpi.grain, -1):
            continue  # an old unusual value is not this week's news
        ranked.append((2.2 if a.severity == "high" else 1.2, tr(
            "{period}: {value} is outside the usual range of {name} ({low} to {high}).").format(
            period=a.label, value=page.value(a.anomaly.value, kpi.unit), name=kpi.name,
            low=page.value(a.anomaly.lower, kpi.unit), high=page.value(a.anomaly.upper, kpi.unit))))
    ranked.sort(key=lambda r: -r[0])
    return [text for _, text in ranked[:most]]
