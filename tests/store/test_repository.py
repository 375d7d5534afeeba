"""AppStore's repositories on SQLite and PostgreSQL: settings overrides, the decision log, annotations, pushes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kpilot.store import AppStore, StoreConflict, StoreInvalid, StoreNotFound


@pytest.fixture
def store(db_url: str | None, tmp_path: Path) -> AppStore:
    with AppStore(db_url, state_dir=tmp_path) as s:
        yield s


def test_overrides_are_set_replaced_and_cleared(store: AppStore) -> None:
    targets = [{"from": "2026-01", "to": "2026-06", "value": 1_600_000.0}]
    store.set_override("acme", "mrr", "targets", targets, user="ana")
    store.set_override("acme", "mrr", "bands", {"green": 1.0, "amber": 0.8})
    store.set_override("acme", "win_rate", "owners", ["sales"])
    store.set_override("other", "mrr", "owners", ["x"])
    assert store.overrides("acme") == {"mrr": {"bands": {"green": 1.0, "amber": 0.8}, "targets": targets},
                                       "win_rate": {"owners": ["sales"]}}
    store.set_override("acme", "mrr", "bands", {"green": 1.1, "amber": 0.9})
    assert store.overrides("acme")["mrr"]["bands"] == {"green": 1.1, "amber": 0.9}
    store.clear_override("acme", "mrr", "bands")
    store.clear_override("acme", "mrr", "never_set")  # nothing to clear: no error
    assert store.overrides("acme") == {"mrr": {"targets": targets}, "win_rate": {"owners": ["sales"]}}
    assert store.overrides("other") == {"mrr": {"owners": ["x"]}}
    assert store.overrides("nobody") == {}


def test_a_null_override_is_kept_apart_from_no_override(store: AppStore) -> None:
    store.set_override("acme", "mrr", "decision", None)
    assert store.overrides("acme") == {"mrr": {"decision": None}}


def test_the_decision_log(store: AppStore) -> None:
    before = datetime.now(UTC)
    first = store.add_decision("acme", "mrr", period="2026-11", action="Relaunch the partner channel",
                               owner="sales", user="ana")
    second = store.add_decision("acme", "win_rate", period="2026-W46", action="Coach the new reps", owner=None,
                                status="declined", note="no budget")
    assert first.id != second.id
    assert (first.workspace, first.metric, first.period, first.status, first.owner, first.user) == \
        ("acme", "mrr", "2026-11", "open", "sales", "ana")
    assert first.created_at >= before and first.created_at.tzinfo is not None
    assert [d.id for d in store.decisions("acme")] == [second.id, first.id]  # newest first
    assert [d.metric for d in store.decisions("acme", "mrr")] == ["mrr"]
    assert store.decisions("other") == []

    done = store.update_decision("acme", first.id, status="done", note="signed 3 partners")
    assert (done.status, done.note, done.action) == ("done", "signed 3 partners", "Relaunch the partner channel")
    assert done.updated_at >= done.created_at
    kept = store.update_decision("acme", first.id, status="open")  # no note given: the note stays
    assert kept.note == "signed 3 partners"
    as_dict = store.decisions("acme", "mrr")[0].to_dict()
    assert as_dict["status"] == "open" and as_dict["note"] == "signed 3 partners"
    assert datetime.fromisoformat(str(as_dict["created_at"])) == first.created_at


def test_decision_errors(store: AppStore) -> None:
    with pytest.raises(StoreInvalid, match="'maybe' is not a decision status"):
        store.add_decision("acme", "mrr", period="2026-11", action="x", owner=None, status="maybe")
    with pytest.raises(StoreInvalid, match="needs an action"):
        store.add_decision("acme", "mrr", period="2026-11", action="  ", owner=None)
    d = store.add_decision("acme", "mrr", period="2026-11", action="x", owner=None)
    with pytest.raises(StoreNotFound, match=f"no decision {d.id + 1} in workspace 'acme'") as found:
        store.update_decision("acme", d.id + 1, status="done")
    assert found.value.status == 404
    with pytest.raises(StoreNotFound):  # another workspace's decision is not reachable
        store.update_decision("other", d.id, status="done")
    with pytest.raises(StoreInvalid):
        store.update_decision("acme", d.id, status="closed")
    assert store.decisions("acme")[0].status == "open"


def test_annotations(store: AppStore) -> None:
    late = store.add_annotation("acme", "mrr", period="2026-10", text="price increase", user="ana")
    early = store.add_annotation("acme", "mrr", period="2026-03", text="new CRM")
    store.add_annotation("acme", "leads", period="2026-05", text="trade show")
    assert [a.text for a in store.annotations("acme", "mrr")] == ["new CRM", "price increase"]  # period order
    assert len(store.annotations("acme")) == 3
    assert late.to_dict()["user"] == "ana" and early.user is None
    with pytest.raises(StoreInvalid):
        store.add_annotation("acme", "mrr", period="2026-10", text="")


def test_remember_push_answers_the_first_response_and_refuses_another_body(store: AppStore) -> None:
    response = {"accepted": {"values": 1}}
    assert store.remember_push("acme", "key-1", "f1", response) is None
    assert store.remember_push("acme", "key-1", "f1", {"accepted": {"values": 99}}) == response
    with pytest.raises(StoreConflict, match="'key-1' was already used with another body") as conflict:
        store.remember_push("acme", "key-1", "f2", response)
    assert conflict.value.status == 409
    assert store.remember_push("other", "key-1", "f2", response) is None  # keys are per workspace


def test_pushed_values_land_once_and_the_latest_wins(store: AppStore) -> None:
    values = [("mrr", "2026-11-01", 100.0), ("mrr", "2026-10-01", 90.0)]
    assert store.record_push("acme", key="k", fingerprint="f", response={"n": 2}, values=values) is None
    # The same key and body again: nothing is stored twice, the first response comes back.
    assert store.record_push("acme", key="k", fingerprint="f", response={"n": 2}, values=values) == {"n": 2}
    assert store.record_push("acme", key=None, fingerprint="g", response={}, values=[("mrr", "2026-11-01", 120.0)]) \
        is None
    got = [(v.metric, v.period, v.value) for v in store.pushed_values("acme", "mrr")]
    assert got == [("mrr", "2026-10-01", 90.0), ("mrr", "2026-11-01", 120.0)]
    with pytest.raises(StoreConflict):
        store.record_push("acme", key="k", fingerprint="other", response={}, values=[("mrr", "2026-09-01", 1.0)])
    assert len(store.pushed_values("acme")) == 2


def test_pushed_rows(store: AppStore) -> None:
    rows = [("crm_deals", {"id": 1, "amount": 10.5, "won": True, "note": None}), ("crm_deals", {"id": 2})]
    store.record_push("acme", key="rows-1", fingerprint="f", response={}, rows=rows)
    store.record_push("acme", key="rows-1", fingerprint="f", response={}, rows=rows)
    assert store.pushed_rows("acme", "crm_deals") == [{"id": 1, "amount": 10.5, "won": True, "note": None},
                                                      {"id": 2}]
    assert store.pushed_rows("acme", "other") == []


def test_concurrent_pushes_with_one_key_are_done_once(db_url: str | None, tmp_path: Path) -> None:
    """Eight requests racing with the same key and body: one stores its values, all get the same answer."""
    with AppStore(db_url, state_dir=tmp_path) as store:
        answers: list[dict[str, object] | None] = []
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def push(i: int) -> None:
            try:
                start.wait()
                earlier = store.record_push("acme", key="race", fingerprint="f", response={"by": i},
                                            values=[("mrr", "2026-11-01", float(i))])
                answers.append(earlier or {"by": i})
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=push, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(answers) == 8 and len({str(a) for a in answers}) == 1
        stored = store.pushed_values("acme", "mrr")
        assert len(stored) == 1 and {"by": int(stored[0].value)} == answers[0]


def test_data_survives_reopening(db_url: str | None, tmp_path: Path) -> None:
    with AppStore(db_url, state_dir=tmp_path) as store:
        d = store.add_decision("acme", "mrr", period="2026-11", action="x", owner="sales")
        store.set_override("acme", "mrr", "owners", ["sales"])
    with AppStore(db_url, state_dir=tmp_path) as again:
        assert again.decisions("acme") == [d]
        assert again.overrides("acme") == {"mrr": {"owners": ["sales"]}}


def test_the_store_refuses_what_it_could_not_read_back(store: AppStore) -> None:
    with pytest.raises(StoreInvalid, match="'someday' is not a period"):
        store.add_decision("acme", "mrr", period="someday", action="x", owner=None)
    with pytest.raises(StoreInvalid, match="'2026-13' is not a period"):
        store.add_annotation("acme", "mrr", period="2026-13", text="x")
    with pytest.raises(StoreInvalid, match="the decision's owner is longer than 200 characters"):
        store.add_decision("acme", "mrr", period="2026-11", action="x", owner="o" * 201)
    with pytest.raises(StoreInvalid, match="the annotation's text holds a NUL character"):
        store.add_annotation("acme", "mrr", period="2026-11", text="a\x00b")
    d = store.add_decision("acme", "mrr", period=" 2026-11 ", action="x", owner=None)
    assert d.period == "2026-11"  # kept trimmed, as the history's periods are compared as text
    with pytest.raises(StoreInvalid, match="the decision's note holds a NUL character"):
        store.update_decision("acme", d.id, status="done", note="\x00")
    assert store.decisions("acme") == [d] and store.annotations("acme") == []
