"""Alerts worded for people, in the workspace's language: the subject, the reason in one sentence, the leading
cause when known, the owner and the action of the decision rule, the facts, and a link to the KPI's page.

The words come from the alert's payload (what the board and the analysis found when it was raised), so a message
says exactly what every other door says about the same KPI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kpilot.alerting.message import Fact, Item, Message
from kpilot.i18n import (
    EFFECT_WORDS,
    alert_reason,
    format_percent,
    format_value,
    format_verdict,
    said_period,
    translator,
)
from kpilot.store.alert_log import ALERT_ID_SLOT


def kpi_link(base_url: str | None, metric: str) -> str | None:
    return f"{base_url.rstrip('/')}/metric/{metric}" if base_url else None


def _value(p: Mapping[str, Any], key: str, lang: str) -> str:
    return format_value(p.get(key), p.get("unit"), lang)


def reason(kind: str, p: Mapping[str, Any], lang: str) -> str:
    """The alert's reason in one sentence (the alerts page says the same: `kpilot.i18n.alert_reason`)."""
    return alert_reason(kind, p, lang)


def cause(kind: str, p: Mapping[str, Any], lang: str) -> str | None:
    """The leading cause when it is known: the leading indicator that moved, else the dimension value that moved
    the KPI most the wrong way."""
    tr = translator(lang)
    leader = p.get("leader_name")
    if not leader and p.get("cause_dimension"):
        return tr("Root cause: {value} ({dimension}) went from {before} to {after} between {first} and "
                  "{second}.").format(dimension=p["cause_dimension"], value=p.get("cause_value", ""),
                                      before=_value(p, "cause_before", lang), after=_value(p, "cause_after", lang),
                                      first=said_period(p, lang, "cause_from"), second=said_period(p, lang, "cause_to"))
    if not leader:
        return None
    lag_grain = p.get("lag_grain") or p.get("grain", "period")  # a weekly leader of a monthly KPI: weeks
    return tr("Leading cause: {leader} moved {change} in {period} against its usual level; it leads {name} by "
              "{lag} {grain}(s).").format(leader=leader, change=format_percent(p.get("leader_change"), lang,
                                                                                digits=0, signed=True),
                                          period=p.get("leader_label", ""), name=p.get("name", ""),
                                          lag=p.get("lag", ""), grain=tr(lag_grain))


def action(p: Mapping[str, Any], lang: str) -> str | None:
    tr = translator(lang)
    if not p.get("action"):
        return None
    return tr("{owner} decides: {action}").format(owner=p.get("owner_name") or p.get("owner", ""),
                                                  action=p["action"])


def subject(kind: str, p: Mapping[str, Any], lang: str) -> str:
    tr = translator(lang)
    name, period = p.get("name", ""), said_period(p, lang)
    if kind == "early_warning":
        return tr("{name}: projected to miss in {period}").format(name=name, period=period)
    if kind == "anomaly":
        return tr("{name}: unusual value in {period}").format(name=name, period=period)
    verdict, _ = format_verdict(p.get("verdict", "no_data"), p.get("verdict_reason"), None, lang)
    return tr("{name}: {verdict} ({period})").format(name=name, verdict=verdict.lower(), period=period)


def verdict_of(kind: str, p: Mapping[str, Any]) -> str:
    if kind == "kpi":
        return str(p.get("verdict", "no_data"))
    return "off_track" if p.get("severity") == "red" else "at_risk"


def facts(kind: str, p: Mapping[str, Any], lang: str) -> list[Fact]:
    tr = translator(lang)
    out = []
    if kind == "early_warning":
        out += [Fact(tr("Projected"), _value(p, "projected", lang)), Fact(tr("Target"), _value(p, "target", lang)),
                Fact(tr("Period"), said_period(p, lang))]
    else:
        out += [Fact(tr("Value"), _value(p, "value", lang))]
        if p.get("target") is not None:
            out.append(Fact(tr("Target"), _value(p, "target", lang)))
        if p.get("projected") is not None and kind == "kpi":
            out.append(Fact(tr("Projected at period end"), _value(p, "projected", lang)))
        out.append(Fact(tr("Period"), said_period(p, lang)))
    if p.get("owner_name") or p.get("owner"):
        out.append(Fact(tr("Owner"), str(p.get("owner_name") or p.get("owner"))))
    return out


def alert_message(kind: str, payload: Mapping[str, Any], *, workspace: str, lang: str, base_url: str | None,
                  chart_png: bytes | None = None) -> Message:
    """The message of one alert (its delivery id is set when it is queued)."""
    tr = translator(lang)
    verdict = verdict_of(kind, payload)
    label, _ = format_verdict(verdict, None, None, lang)
    lines = [reason(kind, payload, lang)]
    for extra in (cause(kind, payload, lang), action(payload, lang)):
        if extra:
            lines.append(extra)
    evidence = payload.get("evidence_text")
    if evidence:
        lines.append(tr("Evidence: {evidence}").format(evidence=" · ".join(evidence)))
    metric = str(payload.get("metric", ""))
    if base_url:  # the decision form, about this alert (its id is filled in when the message is queued)
        lines.append(tr("Record the decision: {link}").format(
            link=f"{base_url.rstrip('/')}/decisions?metric={metric}&alert={ALERT_ID_SLOT}#decide"))
    return Message(
        delivery_id="", kind="alert", language=lang, workspace=workspace, subject=subject(kind, payload, lang),
        headline=f"{payload.get('name', metric)} — {label}",
        verdict=verdict, metric=metric, lines=tuple(lines), facts=tuple(facts(kind, payload, lang)),
        link=kpi_link(base_url, metric), link_text=tr("Open the KPI page"), chart_png=chart_png,
        chart_alt=payload.get("chart_alt"),
        data={"kind": kind, **{k: v for k, v in payload.items() if k not in ("evidence_text", "chart_alt")}})


def digest_message(items: Sequence[tuple[str, Mapping[str, Any]]], *, workspace: str, week_label: str, lang: str,
                   base_url: str | None, team: str) -> Message:
    """The week's digest for one team: the alerts held back by the budget or told already in their story."""
    tr = translator(lang)
    entries = tuple(Item(title=subject(kind, p, lang), text=reason(kind, p, lang), verdict=verdict_of(kind, p),
                         link=kpi_link(base_url, str(p.get("metric", "")))) for kind, p in items)
    count = len(entries)
    headline = (tr("{n} alert for {team} this week") if count == 1 else
                tr("{n} alerts for {team} this week")).format(n=count, team=team)
    return Message(delivery_id="", kind="digest", language=lang, workspace=workspace,
                   subject=tr("Weekly digest, week of {week}: {headline}").format(week=week_label, headline=headline),
                   headline=headline, items=entries, link=base_url, link_text=tr("Open the board"),
                   data={"kind": "digest", "week": week_label, "team": team,
                         "alerts": [p.get("metric") for _, p in items]})




def effect_sentence(effect: Mapping[str, Any], unit: str | None, lang: str) -> str:
    """A decision's measured effect in one sentence."""
    tr = translator(lang)
    verdict = tr(EFFECT_WORDS.get(str(effect.get("verdict")), str(effect.get("verdict"))))
    if effect.get("actual") is None:
        return verdict[:1].upper() + verdict[1:] + "."
    expected = effect.get("expected_change")
    text = tr("{verdict}: {actual} on average over {periods}, {change} against before the decision; the forecast "
              "made before it said {forecast}").format(
        verdict=verdict[:1].upper() + verdict[1:], actual=format_value(effect.get("actual"), unit, lang),
        periods=", ".join(effect.get("periods") or []),
        change=format_percent(effect.get("actual_change"), lang, digits=0, signed=True),
        forecast=format_value(effect.get("counterfactual"), unit, lang))
    if expected is not None:
        text += tr(" (expected: {expected})").format(expected=format_percent(expected, lang, digits=0, signed=True))
    return text + "."


def decision_review_message(decision: Mapping[str, Any], metric_name: str, unit: str | None, *, workspace: str,
                            lang: str, base_url: str | None) -> Message:
    """The message telling a decision's owner what it changed, at its review date."""
    tr = translator(lang)
    effect = decision.get("effect") or {}
    verdict = {"worked": "on_track", "partly": "at_risk", "backfired": "off_track"}.get(str(effect.get("verdict")),
                                                                                        "no_data")
    lines = [tr("Decided on {day}: {action}").format(day=str(decision.get("created_at", ""))[:10],
                                                    action=decision.get("action", "")),
             effect_sentence(effect, unit, lang)]
    if decision.get("expected_effect"):
        lines.insert(1, tr("Expected: {effect}").format(effect=decision["expected_effect"]))
    metric = str(decision.get("metric", ""))
    return Message(
        delivery_id="", kind="decision_review", language=lang, workspace=workspace,
        subject=tr("Decision review: {name}, {verdict}").format(
            name=metric_name, verdict=tr(EFFECT_WORDS.get(str(effect.get("verdict")), ""))),
        headline=tr("Decision review: {name}").format(name=metric_name), verdict=verdict, metric=metric,
        lines=tuple(lines), link=kpi_link(base_url, metric), link_text=tr("Open the KPI page"),
        data={"kind": "decision_review", "decision": decision.get("id"), "effect": dict(effect)})


__all__ = ["alert_message", "decision_review_message", "digest_message", "effect_sentence", "kpi_link", "reason",
           "subject"]
