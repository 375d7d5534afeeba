"""Alerts, decisions and the outbox keep what they are given on both engines, an unknown number included: PostgreSQL's
JSON refuses NaN and infinity, so they are kept as nulls rather than losing the alert or the decision."""

from __future__ import annotations

import math
from pathlib import Path

from kpilot.store import AppStore
from kpilot.store.alert_log import NewMessage


def test_a_number_that_is_not_finite_is_kept_as_null(db_url: str | None, tmp_path: Path) -> None:
    with AppStore(db_url, state_dir=tmp_path) as store:
        change = {"key": "kpi:mrr", "kind": "kpi", "metric": "mrr", "state": "firing", "severity": "red",
                  "opened": "2026-09-13", "last_seen": "2026-09-13", "periods_seen": 1, "needed": 1,
                  "recipients": ["sales"], "payload": {"value": math.nan, "projected": math.inf, "target": 1.5,
                                                       "evidence": [1.0, -math.inf]}}
        message = NewMessage("", "sales", "alert", "2026-09-07", {"subject": "MRR", "data": {"value": math.nan}},
                             "kpi:mrr")
        ids = store.apply_alert_run("acme", [change], [message])
        (alert,) = store.alerts("acme")
        assert alert.id == ids["kpi:mrr"]
        assert alert.payload == {"value": None, "projected": None, "target": 1.5, "evidence": [1.0, None]}
        (queued,) = store.outbox("acme")
        assert queued.message["data"] == {"value": None} and queued.alert_id == alert.id
        d = store.add_decision("acme", "mrr", period="2026-09", action="x", owner=None,
                               baseline={"before": math.nan, "periods": [{"value": math.inf}]})
        assert d.baseline == {"before": None, "periods": [{"value": None}]}
        measured = store.record_effect("acme", d.id, {"actual": math.nan, "verdict": "not_measurable"})
        assert measured.effect == {"actual": None, "verdict": "not_measurable"}
