"""The alert state machine, run against a real application database (SQLite): states, stories, budget, digest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from kpilot.alerting.engine import Signal, plan, week_of
from kpilot.store import AppStore
from kpilot.store.alert_log import OPEN_STATES, NewMessage

WS = "acme"
MONDAY = date(2026, 9, 7)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[AppStore]:
    with AppStore(state_dir=tmp_path) as s:
        yield s


def sig(metric: str, *, kind: str = "kpi", severity: str = "red", ready: bool = True, seen: int = 1, needed: int = 1,
        to: tuple[str, ...] = ("sales",), related: frozenset[str] = frozenset(),
        objectives: frozenset[str] = frozenset(), leading: bool = False) -> Signal:
    return Signal(key=f"{kind}:{metric}", kind=kind, metric=metric, severity=severity, ready=ready, periods_seen=seen,
                  needed=needed, recipients=to, related=related, objectives=objectives, leading=leading,
                  payload={"metric": metric, "name": metric})


def run(store: AppStore, day: date, signals: list[Signal], *, budget: int = 5,
        objectives: dict[str, frozenset[str]] | None = None) -> dict[str, list[tuple[str, str]]]:
    """One evaluation as the service does it: plan, then write the changes and one message per ping."""
    week = week_of(day).isoformat()
    p = plan(store.alerts(WS, states=OPEN_STATES), signals, as_of=day, pings_this_week=store.pings(WS, week),
             budget=budget, objectives_of=objectives or {})
    messages = [NewMessage("", x.recipient, "alert", week, {"subject": x.alert_key}, x.alert_key) for x in p.pings]
    messages += [NewMessage("", x.recipient, "held", week, {"subject": x.alert_key}, x.alert_key) for x in p.held]
    store.apply_alert_run(WS, p.changes, messages)
    return {"pinged": [(x.alert_key, x.recipient) for x in p.pings],
            "held": [(x.alert_key, x.recipient) for x in p.held], "resolved": [(k, "") for k in p.resolved]}


def state(store: AppStore, key: str) -> str:
    return next(a.state for a in store.alerts(WS) if a.key == key)


def test_a_condition_seen_again_is_the_same_alert_messaged_once(store: AppStore) -> None:
    first = run(store, MONDAY, [sig("demos")])
    again = run(store, MONDAY + timedelta(days=1), [sig("demos")])
    assert first["pinged"] == [("kpi:demos", "sales")]
    assert again["pinged"] == []
    assert [a.key for a in store.alerts(WS)] == ["kpi:demos"]
    assert store.alerts(WS)[0].last_seen == (MONDAY + timedelta(days=1)).isoformat()


def test_pending_until_the_rule_holds_for_its_periods_then_firing(store: AppStore) -> None:
    waiting = run(store, MONDAY, [sig("pipeline", ready=False, seen=1, needed=2)])
    assert state(store, "kpi:pipeline") == "pending" and waiting["pinged"] == []
    fired = run(store, MONDAY + timedelta(days=7), [sig("pipeline", ready=True, seen=2, needed=2)])
    assert state(store, "kpi:pipeline") == "firing"
    assert fired["pinged"] == [("kpi:pipeline", "sales")]


def test_a_pending_alert_whose_condition_goes_away_resolves_at_once(store: AppStore) -> None:
    run(store, MONDAY, [sig("pipeline", ready=False, needed=2)])
    out = run(store, MONDAY + timedelta(days=1), [])
    assert out["resolved"] == [("kpi:pipeline", "")]
    assert state(store, "kpi:pipeline") == "resolved"


def test_a_firing_alert_resolves_after_a_week_without_its_condition(store: AppStore) -> None:
    run(store, MONDAY, [sig("demos")])
    assert run(store, MONDAY + timedelta(days=3), [])["resolved"] == []  # a good day is not yet a recovery
    assert state(store, "kpi:demos") == "firing"
    assert run(store, MONDAY + timedelta(days=7), [])["resolved"] == [("kpi:demos", "")]
    # Off track again later: a new episode, messaged again.
    back = run(store, MONDAY + timedelta(days=21), [sig("demos")])
    assert back["pinged"] == [("kpi:demos", "sales")]
    assert [a.state for a in store.alerts(WS)] == ["firing", "resolved"]


def test_acknowledged_alerts_send_nothing_more(store: AppStore) -> None:
    run(store, MONDAY, [sig("demos")])
    alert = store.alerts(WS)[0]
    store.set_alert_state(WS, alert.id, "acknowledged", by="Claire")
    out = run(store, MONDAY + timedelta(days=8), [sig("demos")])
    assert out["pinged"] == [] and state(store, "kpi:demos") == "acknowledged"
    assert store.alerts(WS)[0].acknowledged_by == "Claire"


def test_a_snoozed_alert_fires_again_when_the_snooze_is_over(store: AppStore) -> None:
    run(store, MONDAY, [sig("demos")])
    alert = store.alerts(WS)[0]
    store.set_alert_state(WS, alert.id, "snoozed", until=(MONDAY + timedelta(days=10)).isoformat())
    assert run(store, MONDAY + timedelta(days=5), [sig("demos")])["pinged"] == []
    assert state(store, "kpi:demos") == "snoozed"
    out = run(store, MONDAY + timedelta(days=10), [sig("demos")])
    assert out["pinged"] == [("kpi:demos", "sales")]
    assert state(store, "kpi:demos") == "firing"


def test_a_resolved_alert_cannot_be_acknowledged(store: AppStore) -> None:
    run(store, MONDAY, [sig("demos", ready=False, needed=2)])
    run(store, MONDAY + timedelta(days=1), [])
    with pytest.raises(ValueError, match="resolved already"):
        store.set_alert_state(WS, store.alerts(WS)[0].id, "acknowledged")


def test_a_leading_dip_and_the_miss_it_predicts_are_one_story(store: AppStore) -> None:
    run(store, MONDAY, [sig("demos", leading=True, to=("sales", "marketing"), related=frozenset({"won"}))])
    # Three weeks later the lagging metric it leads is projected to miss: the same story, no new message to
    # the teams the story has told already.
    later = run(store, MONDAY + timedelta(days=21), [
        sig("demos", leading=True, to=("sales", "marketing"), related=frozenset({"won"})),
        sig("won", kind="early_warning", to=("sales",), related=frozenset({"demos"}))])
    alerts = {a.key: a for a in store.alerts(WS)}
    assert alerts["early_warning:won"].story == alerts["kpi:demos"].story
    assert later["pinged"] == []
    assert later["held"] == [("early_warning:won", "sales")]


def test_a_story_reaching_a_new_team_messages_it(store: AppStore) -> None:
    run(store, MONDAY, [sig("demos", to=("marketing",), related=frozenset({"won"}))])
    out = run(store, MONDAY + timedelta(days=7), [
        sig("demos", to=("marketing",), related=frozenset({"won"})),
        sig("won", kind="early_warning", to=("customer_success",), related=frozenset({"demos"}))])
    assert out["pinged"] == [("early_warning:won", "customer_success")]


def test_one_objective_opened_together_is_one_story_unrelated_metrics_are_not(store: AppStore) -> None:
    objectives = {"demos": frozenset({"pipeline_goal"}), "pipeline": frozenset({"pipeline_goal"})}
    run(store, MONDAY, [sig("demos", objectives=objectives["demos"]), sig("churn", to=("cs",))],
        objectives=objectives)
    run(store, MONDAY + timedelta(days=7), [sig("demos", objectives=objectives["demos"]), sig("churn", to=("cs",)),
                                            sig("pipeline", objectives=objectives["pipeline"])], objectives=objectives)
    alerts = {a.key: a for a in store.alerts(WS)}
    assert alerts["kpi:pipeline"].story == alerts["kpi:demos"].story
    assert alerts["kpi:churn"].story != alerts["kpi:demos"].story


def test_signals_of_one_run_link_to_each_other(store: AppStore) -> None:
    run(store, MONDAY, [sig("won", kind="early_warning", related=frozenset({"demos"})),
                        sig("demos", leading=True, related=frozenset({"won"}))])
    alerts = {a.key: a for a in store.alerts(WS)}
    # The leading KPI opens the story; the warning about what it leads joins it.
    assert alerts["kpi:demos"].story == alerts["kpi:demos"].id
    assert alerts["early_warning:won"].story == alerts["kpi:demos"].id


def test_the_weekly_budget_holds_the_rest_for_the_digest(store: AppStore) -> None:
    metrics = [f"m{i}" for i in range(7)]
    out = run(store, MONDAY, [sig(m) for m in metrics[:4]], budget=5)
    assert len(out["pinged"]) == 4
    more = run(store, MONDAY + timedelta(days=2), [sig(m) for m in metrics], budget=5)
    assert len(more["pinged"]) == 1 and len(more["held"]) == 2
    assert store.pings(WS, MONDAY.isoformat()) == {"sales": 5}
    # A new week, a new budget.
    assert store.pings(WS, (MONDAY + timedelta(days=7)).isoformat()) == {}
    held = store.held_messages(WS, before=(MONDAY + timedelta(days=7)).isoformat())
    assert [r.message["subject"] for r in held[("sales", MONDAY.isoformat())]] == ["kpi:m5", "kpi:m6"]


def test_the_plan_is_the_same_for_the_same_inputs(store: AppStore) -> None:
    signals = [sig("a", related=frozenset({"b"})), sig("b", kind="early_warning"), sig("c", to=("x", "y"))]
    one = plan([], signals, as_of=MONDAY, pings_this_week={}, budget=5, objectives_of={})
    two = plan([], list(reversed(signals)), as_of=MONDAY, pings_this_week={}, budget=5, objectives_of={})
    assert one.changes == two.changes and one.pings == two.pings


def test_week_of_follows_the_week_start() -> None:
    assert week_of(date(2026, 9, 13)) == date(2026, 9, 7)  # a Sunday, weeks from Monday
    assert week_of(date(2026, 9, 13), 6) == date(2026, 9, 13)  # weeks from Sunday
    assert week_of(date(2026, 9, 12), 6) == date(2026, 9, 6)
