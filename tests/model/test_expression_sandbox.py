"""The expression sandbox: a `measure`, `filter` or `formula` can never carry SQL of its own into a query.

Each case is an attack that was seen to work, or a class of them: a cast to a quoted type name (SQLGlot keeps a
type it does not know as raw text and writes it back verbatim), text no parser should see (NUL bytes, very long
or deeply nested input), and what each engine's SQL reads back as.
"""

from __future__ import annotations

import time

import duckdb
import pytest

from kpilot.model.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    ExpressionError,
    FormulaRef,
    parse_filter,
    parse_formula,
    parse_measure,
)

# A quoted "type" that closes the cast and reads a system file, then reopens a cast to keep the SQL valid.
ESCAPES = [
    "sum(cast(amount as \"x) + (select length(content) from read_text('/etc/passwd')) + cast(1 as x\"))",
    "sum(try_cast(amount as \"x) + (select count(*) from glob('/tmp/*')) + try_cast(1 as x\"))",
    "sum(amount::\"x) + (select 1 from pg_catalog.pg_user limit 1) + cast(1 as x\")",
    "sum(cast(amount as \"foo bar\"))",
    "sum(cast(amount as struct(x int)))",
    "sum(cast(amount as int[]))",
    "sum(cast(amount as \"ENUM('a')\"))",
]


@pytest.mark.parametrize("text", ESCAPES)
def test_a_cast_to_anything_but_a_builtin_scalar_type_is_refused(text: str) -> None:
    with pytest.raises(ExpressionError) as err:
        parse_measure(text)
    assert "is not allowed in a cast" in str(err.value.message)


def test_the_same_escape_in_a_filter_is_refused() -> None:
    with pytest.raises(ExpressionError, match="is not allowed in a cast"):
        parse_filter("cast(status as \"x) = 'a' or (select 1) = 1 or cast(1 as x\") = 'b'")


@pytest.mark.parametrize("text", [
    "sum(cast(amount as double))", "sum(cast(amount as decimal(18, 2)))", "sum(try_cast(amount as integer))",
    "sum(amount::bigint)", "count_if(cast(created_at as date) >= '2026-01-01')",
    "sum(cast(flag as boolean)::int)", "max(cast(created_at as timestamp))", "sum(cast(code as varchar(10)) = 'x')",
])
def test_casts_to_builtin_types_still_work(text: str) -> None:
    """The checked expression, as kpilot writes it, computes what the hand-written one does in DuckDB."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (2.5, true, TIMESTAMP '2026-01-02 03:04:05', 'x'), "
                "(4.0, false, TIMESTAMP '2025-12-31 23:00:00', 'y')) v(amount, flag, created_at, code)")
    ours = con.execute(f"SELECT {parse_measure(text).sql(dialect='duckdb')} FROM t").fetchall()
    assert ours == con.execute(f"SELECT {text} FROM t").fetchall()
    assert ours[0][0] is not None


def test_a_nul_byte_is_named_with_its_position() -> None:
    with pytest.raises(ExpressionError) as err:
        parse_filter("status = 'paid'\x00 or 1 = 1")
    assert str(err.value.message) == "a filter cannot hold the control character U+0000 (at character 16)"
    assert err.value.position == 15


def test_deep_nesting_is_refused_quickly_and_cleanly() -> None:
    text = "sum(" + "(" * 1500 + "amount" + ")" * 1500 + ")"
    started = time.perf_counter()
    with pytest.raises(ExpressionError) as err:
        parse_measure(text)
    assert f"nest parentheses {MAX_DEPTH} deep at most; this one nests 1501" in str(err.value.message)
    assert time.perf_counter() - started < 5  # a bound on the attack, not a speed claim


def test_parentheses_inside_strings_do_not_count_as_nesting() -> None:
    parse_filter("status in ('" + "(" * 200 + "', 'b')")


def test_overlong_expressions_are_refused_before_parsing() -> None:
    text = "sum(amount)" + " + sum(amount)" * (MAX_LENGTH // 14 + 1)
    with pytest.raises(ExpressionError) as err:
        parse_measure(text)
    assert f"limited to {MAX_LENGTH} characters; this one has {len(text)}" in str(err.value.message)


def test_quotes_and_backslashes_read_back_as_written_in_every_dialect() -> None:
    """A backslash before a quote is an escape in MySQL: the emitted SQL must still hold one string."""
    tree = parse_filter("status = 'x\\' or 1 = 1 or \"we\"\"ird\" = 'it''s'")
    assert tree.sql(dialect="mysql") == "status = 'x\\\\' OR 1 = 1 OR `we\"ird` = 'it''s'"


def test_comments_never_reach_the_engine() -> None:
    tree = parse_measure("sum(amount) -- */ + (select 1) /*")
    assert tree.sql(dialect="duckdb") == "SUM(amount)"


def test_a_formula_cannot_hide_a_cast_or_a_subquery() -> None:
    known = {"mrr": FormulaRef("mrr")}
    for text in ["mrr + cast(1 as \"x) + (select 1) + cast(1 as x\")", "mrr + (select 1)"]:
        with pytest.raises(ExpressionError):
            parse_formula(text, known)
