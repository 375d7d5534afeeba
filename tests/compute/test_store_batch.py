"""The batched writes of materialized aggregates and series: every row where it belongs, nothing else touched."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np

from kpilot.compute import store as st

D1, D2, D3 = date(2025, 1, 6), date(2025, 1, 13), date(2025, 1, 20)


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    st.ensure_schema(con)
    return con


def _state(as_of: date) -> st.AggState:
    return st.AggState({"events": 1}, as_of, D1, D3)


def test_aggregates_replaced_from_each_since_only() -> None:
    con = _con()
    st.write_aggregates(con, "week", [("a", {D1: 1.0, D2: 2.0, D3: 3.0}, None, _state(D3)),
                                      ("b", {D1: 10.0, D2: 20.0, D3: 30.0}, None, _state(D3))])
    st.write_aggregates(con, "month", [("a", {D1: 100.0}, None, _state(D3))])
    # "a" is refreshed from D3 on, "b" entirely (D1 disappears), NaN is stored as NULL.
    st.write_aggregates(con, "week", [("a", {D1: -1.0, D3: 4.0}, D3, _state(D3)),
                                      ("b", {D2: float("nan"), D3: 5.0}, None, _state(D2))])
    assert st.read_aggregate(con, "a", "week") == {D1: 1.0, D2: 2.0, D3: 4.0}
    assert st.read_aggregate(con, "b", "week") == {D2: None, D3: 5.0}
    assert st.read_aggregate(con, "a", "month") == {D1: 100.0}
    state = st.read_state(con, "b", "week")
    assert state is not None and state.as_of == D2 and state.versions == {"events": 1}
    assert con.execute("SELECT count(*) FROM kpilot.agg_state").fetchall() == [(3,)]


def test_series_batch_writes_changed_series_only() -> None:
    con = _con()
    vals = np.array([1.0, np.nan])
    first = [st.SeriesRows("m1", "week", [D1, D2], vals, None, None, "def1"),
             st.SeriesRows("m2", "week", [D1], np.array([5.0]), np.array([10.0]), np.array([2.0]), "def2")]
    assert st.write_series_batch(con, first, D2) == ["m1", "m2"]
    assert st.write_series_batch(con, first, D2) == []  # unchanged: nothing rewritten
    # m2's values change, m1 stays: only m2 is rewritten, with its new periods only.
    second = [first[0], st.SeriesRows("m2", "week", [D2, D3], np.array([6.0, 7.0]), None, None, "def2")]
    assert st.write_series_batch(con, second, D3) == ["m2"]
    rows = con.execute("SELECT metric, period, value, numerator, denominator FROM kpilot.series "
                       "ORDER BY metric, period").fetchall()
    assert rows == [("m1", D1, 1.0, None, None), ("m1", D2, None, None, None),
                    ("m2", D2, 6.0, None, None), ("m2", D3, 7.0, None, None)]
    states = con.execute("SELECT metric, as_of FROM kpilot.series_state ORDER BY metric").fetchall()
    assert states == [("m1", D2), ("m2", D3)]
    # A changed definition alone rewrites the series.
    assert st.write_series(con, "m1", "week", [D1, D2], vals, None, None, "def1 changed", D3)


def test_group_reads_return_each_aggregate_its_own_rows() -> None:
    con = _con()
    st.write_aggregates(con, "week", [("a", {D1: 1.0, D2: 2.0}, None, _state(D2)), ("b", {D3: 3.0}, None, _state(D3))])
    st.write_aggregates(con, "month", [("a", {D1: 9.0}, None, _state(D1))])
    assert st.read_aggregates(con, ["a", "b", "c"], "week") == {"a": {D1: 1.0, D2: 2.0}, "b": {D3: 3.0}, "c": {}}
    states = st.read_states(con, ["a", "c"], "week")
    assert list(states) == ["a"] and states["a"].as_of == D2
