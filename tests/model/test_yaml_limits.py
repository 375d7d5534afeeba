"""Hostile workspace files: alias bombs, self-referencing anchors, NUL bytes, deep nesting, huge files.

Each ends in a clear file:line error quickly, in bounded memory, never in a traceback.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from kpilot.model import WorkspaceInvalid, load_workspace
from kpilot.model.yamlsrc import MAX_BYTES, MAX_NODES, load_yaml

# 358 bytes: nine levels of nine aliases each, 9**9 = 387 million strings once expanded.
BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _error(text: str) -> str:
    with pytest.raises(WorkspaceInvalid) as err:
        load_yaml(text, "kpilot.yaml")
    assert len(err.value.issues) == 1
    return str(err.value.issues[0])


def test_an_alias_bomb_is_refused_in_bounded_time_and_memory() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    text = _error(BOMB)
    assert text.startswith("kpilot.yaml:")
    assert f"expands to more than {MAX_NODES} values through its aliases" in text
    assert time.perf_counter() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: under 200 MB more


def test_a_few_aliases_still_work() -> None:
    data, _ = load_yaml("base: &base {grain: month, unit: EUR}\nm1: *base\nm2: {<<: *base, grain: week}\n", "k.yaml")
    assert data["m1"] == {"grain": "month", "unit": "EUR"}
    assert data["m2"] == {"grain": "week", "unit": "EUR"}


def test_an_anchor_that_refers_to_itself_is_named_at_its_line() -> None:
    text = _error("workspace: x\nloop: &a [1, *a]\n")
    assert text.startswith("kpilot.yaml:2:")
    assert "an anchor refers to itself through an alias" in text


def test_a_nul_byte_is_named_at_its_line_and_column() -> None:
    text = _error("workspace: x\nname: a\x00b\n")
    assert text.startswith("kpilot.yaml:2:8:")
    assert "U+0000" in text


def test_deep_nesting_is_a_clear_error() -> None:
    text = _error("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert "nested too deeply" in text


def test_an_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    f = tmp_path / "kpilot.yaml"
    f.write_text("workspace: x\n# " + "x" * MAX_BYTES + "\n", encoding="utf-8")
    with pytest.raises(WorkspaceInvalid) as err:
        load_workspace(f)
    assert f"kpilot reads at most {MAX_BYTES}" in str(err.value.issues[0])
