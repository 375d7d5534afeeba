"""French and English: message catalogs (gettext .po read with Babel) and locale-aware formatting.

Every user-facing string goes through `translator(lang)`; numbers, money, percentages and dates
go through the `format_*` functions so "1 234 567 €" and "€1,234,567" come from the same value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import format_date as _babel_date
from babel.messages.pofile import read_po
from babel.numbers import format_compact_currency, format_compact_decimal, format_currency, format_decimal

from kpilot.model.errors import N_
from kpilot.model.workspace import Language

LANGUAGES = tuple(lang.value for lang in Language)  # the workspace's `language:` values, one list
LOCALES = {"en": "en_US", "fr": "fr_FR"}
CATALOG_DIR = Path(__file__).parent / "locale"

Translator = Callable[[str], str]

# Messages translated from values computed at run time (statuses, load outcomes).
DYNAMIC_MESSAGES: tuple[str, ...] = (
    "green", "amber", "red", "none", "not green", "loaded", "appended", "unchanged",
    "day", "week", "month", "quarter", "year",                       # grains
    "keep", "fix", "delete", "low", "medium", "high",                # audit verdicts, anomaly severities
    "naive", "seasonal_naive", "drift", "ses", "ets_damped", "theta",  # forecast methods
    "distributed_lag", "combination", "naive_short_history",
)
# The verdict of a KPI in people's words, and its colour on the board (one verdict, every door).
VERDICT_LABELS = {"on_track": N_("On track"), "at_risk": N_("At risk"), "off_track": N_("Off track"),
                  "no_data": N_("No data")}
VERDICT_COLOURS = {"on_track": "green", "at_risk": "amber", "off_track": "red", "no_data": "none"}
# A shape per verdict, so that a verdict never rests on its colour alone.
VERDICT_SHAPES = {"on_track": "●", "at_risk": "▲", "off_track": "◆", "no_data": "○"}
# A period's status (its value against its target) in words, never a colour's name: legends, tooltips.
STATUS_WORDS = {"green": N_("On track"), "amber": N_("At risk"), "red": N_("Off track"), "none": N_("No target")}
# A number of periods, singular and plural: "1 week", "4 weeks"; "1 semaine", "4 semaines".
PERIOD_COUNTS = {"day": (N_("{n} day"), N_("{n} days")), "week": (N_("{n} week"), N_("{n} weeks")),
                 "month": (N_("{n} month"), N_("{n} months")), "quarter": (N_("{n} quarter"), N_("{n} quarters")),
                 "year": (N_("{n} year"), N_("{n} years"))}
# Counted things, singular and plural (see `counted`).
COUNTS = {"decisions_to_take": (N_("{n} decision to take this period."), N_("{n} decisions to take this period.")),
          "messages_waiting": (N_("{n} message waiting to be sent: the worker delivers it."),
                               N_("{n} messages waiting to be sent: the worker delivers them.")),
          "attempts": (N_("{n} attempt"), N_("{n} attempts")),
          "leading_indicators": (N_("{n} leading indicator"), N_("{n} leading indicators")),
          "forecasts": (N_("{n} forecast"), N_("{n} forecasts")),
          "early_warnings": (N_("{n} early warning"), N_("{n} early warnings")),
          "anomalies": (N_("{n} anomaly"), N_("{n} anomalies")),
          "metrics_audited": (N_("{n} metric audited"), N_("{n} metrics audited")),
          "new_findings": (N_("{n} new finding"), N_("{n} new findings"))}
# Forecasting methods in words (their keys are identifiers: ets_damped, seasonal_naive...).
METHOD_WORDS = {"naive": N_("naive"), "seasonal_naive": N_("seasonal naive"), "drift": N_("drift"),
                "ses": N_("simple exponential smoothing"), "ets_damped": N_("damped-trend ETS"), "theta": N_("Theta"),
                "distributed_lag": N_("distributed-lag regression"), "combination": N_("combination of methods"),
                "arima": N_("ARIMA on the changes, with drift"), "ar": N_("autoregression around a mean"),
                "naive_short_history": N_("last value (short history)"),
                "short_history": N_("last value (short history)")}
# An alert's kind and state in words (kpilot alerts, the alerts page).
ALERT_KINDS = {"kpi": N_("KPI"), "early_warning": N_("early warning"), "anomaly": N_("anomaly")}
ALERT_STATES = {"pending": N_("pending"), "firing": N_("firing"), "acknowledged": N_("acknowledged"),
                "snoozed": N_("snoozed"), "resolved": N_("resolved")}
# What a decision changed, measured at its review date (kpilot.service.decisions).
EFFECT_WORDS = {"worked": N_("it worked"), "partly": N_("it partly worked"), "no_clear_effect": N_("no clear effect"),
                "backfired": N_("it backfired"), "not_measurable": N_("not measurable yet")}
# Why a KPI has no verdict.
NO_DATA_REASONS = {"stale": N_("data stopped arriving on {day}"), "no_value": N_("no value yet this period"),
                   "no_target": N_("no target for this period")}
# Unit words translated when shown after a number (other units are shown as written).
UNIT_WORDS = ("days", "hours", "weeks", "months", "people", "customers", "orders", "leads", "sessions", "points")


@cache
def _catalog(lang: str) -> dict[str, str]:
    path = CATALOG_DIR / lang / "LC_MESSAGES" / "kpilot.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}


def translator(lang: str) -> Translator:
    """A gettext-like function for `lang`; unknown strings are returned as they are (English), and so is every
    string for a language kpilot does not speak (`lang` never names a file: `--lang ../x` reads nothing)."""
    table = _catalog(lang) if lang in LANGUAGES and lang != "en" else {}

    def tr(message: str) -> str:
        return table.get(message, message)

    setattr(tr, "decimal", "," if lang == "fr" else ".")  # noqa: B010 -- the mark Number uses in messages
    return tr


def is_currency(unit: str | None) -> bool:
    return bool(unit) and len(unit or "") == 3 and (unit or "").isalpha() and (unit or "").isupper()


FULL_UP_TO = 1e15  # the largest value written in full (a hover text's full amount)
COMPACT_FROM = 1_000_000  # from a million on, money and numbers are written short: "€1.23M", "1,23 M €"
# Units of things counted one by one: shown as whole numbers (a paced or forecast count of 41.3 reads "41").
COUNT_UNITS = ("count", "people", "customers", "orders", "leads", "sessions")


def _compact_digits(value: float) -> int:
    """Fraction digits that keep three significant digits in a short number: 1.23M, 12.3M, 123M."""
    m = abs(value)
    while m >= 1000:
        m /= 1000
    return 2 if m < 10 else 1 if m < 100 else 0


def format_value(value: float | None, unit: str | None, lang: str, *, currency: str | None = None) -> str:
    """A metric value for people, by the one rule of its unit wherever it is shown (tiles, tables, intervals,
    tooltips, messages): percent with one decimal; money and numbers in full below COMPACT_FROM and short from it
    on; counts as whole numbers; the language's separators."""
    return _format(value, unit, lang, currency, form="auto")


def format_full(value: float | None, unit: str | None, lang: str, *, currency: str | None = None) -> str:
    """A value written in full even from a million on (the hover text of a short value)."""
    return _format(value, unit, lang, currency, form="full")


def format_values(values: Sequence[float | None], unit: str | None, lang: str, *, currency: str | None = None
                  ) -> list[str]:
    """Values read together (a forecast and its interval, a value and its normal range) in one form: all short
    when one of them is from a million on ("€849K – €1.15M"), else all in full."""
    short = any(v is not None and math.isfinite(v) and abs(v) >= COMPACT_FROM for v in values)
    return [_format(v, unit, lang, currency, form="short" if short else "full") for v in values]


def _format(value: float | None, unit: str | None, lang: str, currency: str | None, *, form: str) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "—"
    loc = LOCALES.get(lang, "en_US")
    u = (unit or "").strip()
    if u.lower() in ("percent", "%", "pct"):
        return format_percent(value, lang)
    # Beyond FULL_UP_TO a number has no sensible full form (and babel's decimals cannot write it): short then.
    short = form == "short" or (form == "auto" and abs(value) >= COMPACT_FROM) or abs(value) >= FULL_UP_TO
    if is_currency(u) or u.lower() == "currency":
        code = u if is_currency(u) else (currency or "EUR")
        if short:
            return format_compact_currency(value, code, locale=loc, fraction_digits=_compact_digits(value))
        digits = 0 if abs(value) >= 100 or float(value).is_integer() else 2
        pattern = "#,##0\u00a0¤" if lang == "fr" else "¤#,##0"
        if digits:
            pattern = pattern.replace("#,##0", "#,##0.00")
        return format_currency(value, code, locale=loc, format=pattern, currency_digits=False)
    if short:
        text = format_compact_decimal(value, locale=loc, fraction_digits=_compact_digits(value))
    elif u.lower() in COUNT_UNITS:
        text = format_decimal(round(value), locale=loc, format="#,##0")
    else:
        text = format_decimal(value, locale=loc, format="#,##0" if abs(value) >= 100 or value == int(value)
                              else "#,##0.##")
    if not u or u.lower() in ("count", "number"):
        return text
    if u in UNIT_WORDS:
        u = translator(lang)(u)
    return f"{text}\u00a0{u}"


def format_percent(value: float | None, lang: str, *, digits: int = 1, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "—"
    loc = LOCALES.get(lang, "en_US")
    shown = abs(value) * 100 if signed else value * 100
    if abs(shown) >= FULL_UP_TO:  # no sensible full form (babel's decimals cannot write it): short
        body = format_compact_decimal(shown, locale=loc, fraction_digits=1)
    else:
        body = format_decimal(shown, locale=loc, format="#,##0" + ("." + "0" * digits if digits else ""))
    sign = ("+" if value >= 0 else "−") if signed else ""
    return f"{sign}{body}\u202f%" if lang == "fr" else f"{sign}{body}%"


def format_change(x: float | None, unit: str | None, lang: str, *, currency: str | None = None) -> str:
    """A signed change in a metric's unit: "+€57,800", "−2,458 €"; percentage points for a share ("−0.6 pts")."""
    if x is None:
        return "—"
    if (unit or "").lower() in ("percent", "%", "pct"):
        return translator(lang)("{points} pts").format(points=format_percent(x, lang, digits=1, signed=True)
                                                       .rstrip("%\u202f "))
    return ("+" if x >= 0 else "−") + format_value(abs(x), unit, lang, currency=currency)


def format_day(d: date | None, lang: str) -> str:
    if d is None:
        return "—"
    return _babel_date(d, format="medium", locale=LOCALES.get(lang, "en_US"))


def format_evidence(period_label: str, value: float | None, target: float | None, status: str, unit: str | None,
                    lang: str, *, period: date | None = None, grain: str | None = None) -> str:
    """One period a decision rule read, for people: "November 2026: 2.4% (target 2.0%, off track)" (the period in
    words when its start and grain are given, else its label; the status in words, never a colour's name)."""
    tr = translator(lang)
    if period is not None and grain is not None:
        period_label = period_words(period, grain, lang)
    shown = format_value(value, unit, lang)
    if target is None:
        return tr("{period}: {value}").format(period=period_label, value=shown)
    if status == "none":  # not judged (no data yet in the period)
        return tr("{period}: {value} (target {target})").format(period=period_label, value=shown,
                                                               target=format_value(target, unit, lang))
    return tr("{period}: {value} (target {target}, {status})").format(
        period=period_label, value=shown, target=format_value(target, unit, lang),
        status=tr(STATUS_WORDS.get(status, status)).lower())


def format_evidence_list(evidence: Iterable[Any], projected: float | None, unit: str | None, lang: str,
                         grain: object = None) -> list[str]:
    """A decision rule's evidence for people, one entry per period it read (items with period, label, value,
    target and status; the period said in words when `grain` is given), then the projection a forecast condition
    compared."""
    said = None if grain is None else str(getattr(grain, "value", grain))  # a Grain or its name
    out = [format_evidence(e.label, e.value, e.target, e.status, unit, lang, period=getattr(e, "period", None),
                           grain=said) for e in evidence]
    if projected is not None:
        out.append(translator(lang)("projected at period end: {value}").format(value=format_value(projected, unit,
                                                                                                   lang)))
    return out


def format_verdict(verdict: str, reason: str | None, data_through: date | None, lang: str) -> tuple[str, str]:
    """A verdict's label and, for "no data", why: ("No data", "data stopped arriving on 22 Nov 2026")."""
    tr = translator(lang)
    label = tr(VERDICT_LABELS.get(verdict, verdict))
    why = NO_DATA_REASONS.get(reason or "") if verdict == "no_data" else None
    return label, tr(why).format(day=format_day(data_through, lang)) if why else ""


def alert_reason(kind: str, p: Mapping[str, Any], lang: str,
                 value: Callable[[Any, str | None], str] | None = None) -> str:
    """An alert's reason in one sentence, from its payload: the same words in the message and on the alerts page.
    `value` formats a number in the payload's unit (default: `format_value` in `lang`)."""
    tr = translator(lang)
    unit = p.get("unit")

    def shown(key: str) -> str:
        return value(p.get(key), unit) if value is not None else format_value(p.get(key), unit, lang)

    name, period = p.get("name", ""), said_period(p, lang)
    if kind == "early_warning":
        return tr("{name} is projected at {projected} in {period}, against a target of {target} ({chance} chance "
                  "of missing it).").format(name=name, projected=shown("projected"), period=period,
                                            target=shown("target"),
                                            chance=format_percent(p.get("confidence"), lang, digits=0))
    if kind == "anomaly":
        return tr("{period}: {value} is outside the usual range of {name} ({low} to {high}).").format(
            period=period, value=shown("value"), name=name, low=shown("lower"), high=shown("upper"))
    verdict, _ = format_verdict(p.get("verdict", "no_data"), p.get("verdict_reason"), None, lang)
    if p.get("target") is None:
        return tr("{period}: {name} is {verdict} at {value}.").format(period=period, name=name,
                                                                       verdict=verdict.lower(), value=shown("value"))
    return tr("{period}: {name} is {verdict} at {value}, against a target of {target}.").format(
        period=period, name=name, verdict=verdict.lower(), value=shown("value"), target=shown("target"))


def method_words(method: str, lang: str) -> str:
    """A forecasting method as people say it: "damped-trend ETS", "naïve saisonnière"."""
    tr = translator(lang)
    if method in METHOD_WORDS:
        return tr(METHOD_WORDS[method])
    said = tr(method)
    return said if said != method else method.replace("_", " ")


def format_forecast_evidence(ev: Mapping[str, Any], name: str, lang: str) -> str:
    """What backs a forecast, in words (kpilot.analysis.forecast.Forecast.evidence): its backtest error beside
    its yardstick's, and its interval's measured coverage. The same sentence in the CLI and on the KPI page."""
    tr = translator(lang)
    if ev.get("error") is None:
        return tr("{kpi}: too little history to backtest: no measured error or coverage yet.").format(kpi=name)
    said = tr("{kpi}: backtest error {error} ({metric}) over {origins} past origins").format(
        kpi=name, error=format_value(ev["error"], None, lang), metric=ev["error_metric"], origins=ev["origins"])
    if ev.get("relative_error") is not None:
        said += tr(", {ratio} of the {baseline} forecast's ({baseline_error})").format(
            ratio=format_percent(ev["relative_error"], lang, digits=0), baseline=method_words(ev["baseline"], lang),
            baseline_error=format_value(ev["baseline_error"], None, lang))
    if ev.get("coverage") is None:
        return said + tr("; too few origins yet to measure its interval's coverage.")
    return said + tr("; its {level} interval held {coverage} of {count} past outcomes.").format(
        level=format_percent(ev["level"], lang, digits=0), coverage=format_percent(ev["coverage"], lang, digits=0),
        count=ev["coverage_points"])


def cause_sentences(result: Any, ws: Any, unit: str | None, lang: str) -> list[str]:
    """What moved a metric between two periods (a kpilot.analysis.rootcause.Explanation), in words: a headline,
    then one sentence per combination of dimension values (`ws.label_of` names them); the headline alone says so
    when no combination stands out; nothing when the metric did not move. The CLI and the KPI page say the same."""
    tr = translator(lang)
    if result.total_change == 0:
        return []
    if not result.causes:
        return [tr("No combination of dimension values stands out from the others: see each value's contribution "
                   "below.")]

    def percent(x: float | None) -> str:
        return format_percent(x, lang, digits=0) if x is not None else "—"

    share = result.explained / result.total_change if result.explained is not None else None
    lines = [tr("What moved it ({explained}, {share} of the change), combination by combination:").format(
        explained=format_value(result.explained, unit, lang), share=percent(share))]
    for c in result.causes:
        words = {"element": " & ".join(f"{ws.label_of(d)} = {ws.label_of(v)}"
                                       for d, v in zip(c.dimensions, c.values, strict=True)),
                 "before": format_value(c.before, unit, lang), "after": format_value(c.after, unit, lang),
                 "change": format_value(c.change, unit, lang), "share": percent(c.share),
                 "weight_before": percent(c.weight_before), "weight_after": percent(c.weight_after)}
        if c.effect == "rate":
            text = tr("{element}: its own rate {before} → {after}, {change} on the total ({share} of the change)")
        elif c.effect == "mix":
            text = tr("{element}: its weight {weight_before} → {weight_after} at a rate of {after}, {change} on the "
                      "total ({share} of the change)")
        else:
            text = tr("{element}: {before} → {after} ({change}, {share} of the change)")
        lines.append(text.format(**words))
    return lines


def format_weights(weights: Mapping[str, float], lang: str, most: int = 3) -> str:
    """A combination's main methods with their shares: "Theta 45 %, damped-trend ETS 30 %"."""
    top = sorted(((w, m) for m, w in weights.items() if w and w > 0), reverse=True)[:most]
    return ", ".join(f"{method_words(m, lang)} {format_percent(w, lang, digits=0)}" for w, m in top)


def counted(what: str, n: int, lang: str) -> str:
    """A count of something in COUNTS, singular or plural by the language's rule (French: 0 and 1 are singular)."""
    one, many = COUNTS[what]
    singular = n in (0, 1) if lang == "fr" else n == 1
    return translator(lang)(one if singular else many).format(n=n)


def periods_count(n: int, grain: str, lang: str) -> str:
    """`n` periods of a grain in words, singular or plural by the language's rule (French: 0 and 1 are singular)."""
    one, many = PERIOD_COUNTS.get(grain, ("{n}", "{n}"))
    singular = n in (0, 1) if lang == "fr" else n == 1
    return translator(lang)(one if singular else many).format(n=n)


def period_words(start: date, grain: str, lang: str) -> str:
    """A period as people say it: "week of 30 Nov", "November 2026", "Q3 2026", "2026"; "semaine du 30 nov.",
    "novembre 2026", "T3 2026" in French."""
    tr = translator(lang)
    loc = LOCALES.get(lang, "en_US")
    if grain == "week":
        return tr("week of {day}").format(day=_babel_date(start, format="d MMM", locale=loc))
    if grain == "month":
        return _babel_date(start, format="LLLL y", locale=loc)
    if grain == "quarter":
        return tr("Q{n} {year}").format(n=(start.month - 1) // 3 + 1, year=start.year)
    if grain == "year":
        return str(start.year)
    return format_day(start, lang)


def said_period(p: Mapping[str, Any], lang: str, key: str = "period") -> str:
    """The period an alert's payload is about, as people say it when its start and grain are known, else its
    label."""
    start, grain = p.get(key), p.get("grain")
    if isinstance(start, str) and isinstance(grain, str):
        try:
            return period_words(date.fromisoformat(start), grain, lang)
        except ValueError:
            pass
    return str(p.get(f"{key}_label", ""))
