"""Fuzzing the two parsers that read what users write: expressions and the workspace YAML.

Whatever the text, the answer is a clean error for people (ExpressionError, WorkspaceInvalid, KpilotError) or a
valid result: never another exception, and within a bound on time per case. The generators mix SQL-looking
tokens with arbitrary characters, so that both plausible mistakes and hostile input are tried.
"""

from __future__ import annotations

import contextlib
import resource
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpilot.model import KpilotError, WorkspaceInvalid, parse_workspace
from kpilot.model.expressions import ExpressionError, FormulaRef, parse_filter, parse_formula, parse_measure
from kpilot.model.yamlsrc import load_yaml

TOKENS = ["sum(", "count(", "cast(", " as ", '"x) + (select 1) + cast(1 as x"', "amount", "status", "'", '"',
          "(", ")", ",", " ", "+", "*", "/", "-", "=", "<>", " and ", " or ", " not ", "null", "1", "2.5", "1e308",
          "::", "double", "int[]", "struct(a int)", "read_text('/etc/passwd')", "select", " from ", "--", "/*", "*/",
          ";", "\\", "\x00", "\n", "é", "offset(", "mrr", "filter (where ", "case when ", " then ", " end", "||"]
expressions = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)), max_size=40).map("".join)
SECONDS = 2.0  # per case: a bound against pathological input, far above the usual milliseconds
LIMITS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _bounded(fn: object, text: str) -> None:
    started = time.perf_counter()
    with contextlib.suppress(ExpressionError, KpilotError):
        fn(text)  # type: ignore[operator]
    assert time.perf_counter() - started < SECONDS, text


@LIMITS
@given(expressions)
def test_measures_and_filters_end_in_a_result_or_a_clean_error(text: str) -> None:
    parse_measure.cache_clear()
    parse_filter.cache_clear()
    _bounded(parse_measure, text)
    _bounded(parse_filter, text)


@LIMITS
@given(expressions)
def test_formulas_end_in_a_result_or_a_clean_error(text: str) -> None:
    known = {"mrr": FormulaRef("mrr"), "amount": FormulaRef("amount")}
    _bounded(lambda t: parse_formula(t, known), text)


YAML_TOKENS = ["workspace: w\n", "metrics:\n", "  - key: m\n", "    measure: ", "sum(amount)\n", "&a ", "*a", "<<: ",
               "[", "]", "{", "}", ": ", "- ", "\n", "  ", "'", '"', "#", "!!python/object:os.system", "!!binary",
               "\x00", "\t", "? ", "|", ">", "%YAML 1.1\n", "---\n", "...\n", "~", "null", "1e999", "é"]
documents = st.lists(st.one_of(st.sampled_from(YAML_TOKENS), st.text(max_size=8)), max_size=60).map("".join)


@LIMITS
@given(documents)
def test_workspace_yaml_ends_in_a_workspace_or_a_clean_error(text: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with contextlib.suppress(WorkspaceInvalid, KpilotError):
        load_yaml(text, "kpilot.yaml")
        parse_workspace(text, "kpilot.yaml")
    assert time.perf_counter() - started < SECONDS, text
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000, text  # KiB
