"""Hostile input through the CLI: a workspace file whose measure, filter, formula, dimension, time column, table or
metric key carries SQL, a table function, a path or a template; and hostile arguments to every command that takes a
metric, a dimension, a period or a date (read from the CLI's own command tree).

Each run ends with a clear error (file:line for the workspace file) and no traceback; a canary file beside the
workspace is never read, and the warehouse keeps exactly its tables and rows."""

from __future__ import annotations

import gc
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import typer
from typer.testing import CliRunner, Result

from kpilot.cli import app

YAML = """workspace: hostile
title: Hostile
language: en
timezone: Europe/Paris
sources:
  - {key: files, type: csv, path: data/}
models:
  - {key: leads, table: leads, time: created_at, dimensions: [channel]}
  - {key: calls, table: calls, time: at, dimensions: [rep]}
metrics:
  - {key: leads, model: leads, measure: count(*), grain: month}
  - {key: call_minutes, model: calls, measure: sum(minutes), filter: "rep <> 'nobody'", grain: month}
  - {key: minutes_per_lead, type: derived, formula: call_minutes / leads, grain: month}
north_star: call_minutes
board: [leads, minutes_per_lead]
"""
LEADS = "id,created_at,channel\n1,2026-09-02,web\n2,2026-10-20,ads\n3,2026-11-04,web\n"
CALLS = "at,minutes,rep\n2026-09-28T09:30:00,20,ana\n2026-10-03T10:00:00,12.5,ana\n2026-11-05T14:15:00,30,bob\n"
AS_OF = "2026-11-15"
PASSWD = "root:x:0:0"
EVALUATED = "kp49kp"
TABLES = [("main", "calls"), ("main", "leads")]

# (what is hostile, the text it replaces in YAML, the hostile expression or YAML). Each is refused at its line.
HOSTILE_YAML = [
    ("measure", "sum(minutes)", "sum(minutes)); DROP TABLE calls; --"),
    ("measure", "sum(minutes)", "read_text('/etc/passwd')"),
    ("measure", "sum(minutes)", "(SELECT max(content) FROM read_text('../canary.txt'))"),
    ("measure", "sum(minutes)", "sum(minutes) UNION SELECT 1"),
    ("measure", "sum(minutes)", "sum(minutes)\x00"),
    ("measure", "sum(minutes)", "sum(minutes) + " + "1 + " * 25_000 + "1"),
    ("measure", "sum(minutes)", "kp{{7*7}}kp"),
    ("measure", "sum(minutes)", "sum(CAST(minutes AS \"double); DROP TABLE calls; --\"))"),
    ("filter", "\"rep <> 'nobody'\"", "rep <> 'x' OR 1=1; DROP TABLE calls; --"),
    ("filter", "\"rep <> 'nobody'\"", "rep IN (SELECT table_name FROM information_schema.tables)"),
    ("filter", "\"rep <> 'nobody'\"", "rep = getenv('HOME')"),
    ("formula", "call_minutes / leads", "call_minutes / leads; DROP TABLE leads"),
    ("formula", "call_minutes / leads", "kp${7*7}kp"),
    ("formula", "call_minutes / leads", "call_minutes / (SELECT 1 FROM glob('/etc/*'))"),
    ("dimension", "[channel]", "[\"channel; DROP TABLE leads\"]"),
    ("dimension", "[rep]", "[\"read_text('/etc/passwd')\"]"),
    ("dimension", "[rep]", "[\"\\u202erep\\u200b\"]"),
    ("time column", "time: created_at", "time: \"created_at; DROP TABLE leads\""),
    ("table", "table: leads", "table: \"leads; DROP TABLE calls\""),
    ("table", "table: leads", "table: ../../etc/passwd"),
    ("table", "table: leads", "table: \"read_csv('/etc/passwd')\""),
    ("metric key", "key: call_minutes", "key: \"x'; DROP TABLE calls; --\""),
    ("model key", "key: calls, table", "key: \"calls{{7*7}}\", table"),
]


def cli(*args: str, state: Path) -> Result:
    """`kpilot ARGS` in this process, on the state folder `state`."""
    return CliRunner().invoke(app, list(args), env={"KPILOT_STATE_DIR": str(state), "COLUMNS": "200"})


def _output(r: Result) -> str:
    return r.stdout + r.stderr


def _clean(r: Result, canary: str, what: str) -> list[str]:
    """What is wrong with a run: a crash, a traceback, a leaked file, an evaluated template."""
    text = _output(r)
    out = []
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        out.append(f"{what}: raised {r.exception!r}")
    if r.exit_code not in (0, 1, 2):
        out.append(f"{what}: exit code {r.exit_code}")
    for needle, why in (("Traceback", "a traceback"), (canary, "the canary file"), (PASSWD, "/etc/passwd"),
                        (EVALUATED, "an evaluated template")):
        if needle in text:
            out.append(f"{what}: {why} in the output: {text[-400:]}")
    return out


def _warehouse(state: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The warehouse's user tables and the rows of calls, read from its file (no command holds it)."""
    found = sorted(state.glob("*/warehouse.duckdb"))
    assert len(found) == 1, found
    con = duckdb.connect(str(found[0]), read_only=True)
    try:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = "
                             "'main' ORDER BY 1, 2").fetchall()
        rows = con.execute("SELECT * FROM calls ORDER BY 1").fetchall()
    finally:
        con.close()
    return tables, rows


def _loaded(tmp_path: Path) -> tuple[Path, Path, str]:
    """(workspace, state, canary) of a small workspace loaded in tmp, a canary file beside them."""
    ws = tmp_path / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / "kpilot.yaml").write_text(YAML, encoding="utf-8")
    (ws / "data" / "leads.csv").write_text(LEADS, encoding="utf-8")
    (ws / "data" / "calls.csv").write_text(CALLS, encoding="utf-8")
    canary = f"kpilot-canary-{secrets.token_hex(16)}"
    (tmp_path / "canary.txt").write_text(canary, encoding="utf-8")
    state = tmp_path / "state"
    r = cli("load", "-w", str(ws), state=state)
    assert r.exit_code == 0, _output(r)
    return ws, state, canary


@pytest.fixture()
def copy(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """A small workspace loaded in tmp (see `_loaded`); after the test, the canary file is unchanged and the
    warehouse holds exactly what it held."""
    ws, state, canary = _loaded(tmp_path)
    before = _warehouse(state)
    assert before[0] == TABLES and len(before[1]) == 3
    yield ws, state, canary
    gc.collect()  # a failed command's traceback, kept by its result, may still hold its warehouse connection
    assert (tmp_path / "canary.txt").read_text(encoding="utf-8") == canary
    assert _warehouse(state) == before


@pytest.mark.parametrize(("what", "old", "new"), HOSTILE_YAML, ids=[f"{w}-{i}" for i, (w, _, _) in
                                                                     enumerate(HOSTILE_YAML)])
def test_a_hostile_workspace_file_is_refused_at_its_line(copy: tuple[Path, Path, str], what: str, old: str,
                                                         new: str) -> None:
    ws, state, canary = copy
    text = (ws / "kpilot.yaml").read_text(encoding="utf-8")
    assert old in text
    line = text[:text.index(old)].count("\n") + 1
    # An expression is written as a YAML double-quoted scalar (NUL and the like as escapes); the others as YAML.
    hostile = json.dumps(new) if what in ("measure", "filter", "formula") else new
    (ws / "kpilot.yaml").write_text(text.replace(old, hostile, 1), encoding="utf-8")
    where = f"kpilot.yaml:{line}:"
    # The load looks for each model's table among the files before it checks the definitions: it names the table.
    table = new.removeprefix("table: ").strip('"')
    named = f"no source file for table(s) {table} used by the models" if what == "table" else where
    for command, expected in (("validate", where), ("load", named)):
        r = cli(command, "-w", str(ws), "--lang", "en", state=state)
        assert _clean(r, canary, command) == []
        assert r.exit_code == 1, f"{command}: {_output(r)[-600:]}"
        assert expected in r.stderr, f"{command}: {r.stderr[-600:]}"
        if what in ("measure", "filter", "formula"):  # the expression sandbox's refusals say how to fix
            assert "fix:" in r.stderr.lower(), r.stderr[-600:]


# Commands that take no metric, dimension, period or date of a user, or serve, sync or prompt: not run here.
NOT_RUN = {"init", "serve", "demo", "sync", "worker", "export", "secrets", "user", "token"}
# Paths and addresses of the operator's own machine (where to write, which database): not injection points.
OPERATOR = {"workspace", "state_dir", "db", "output", "send"}
VALID = {"metric": "call_minutes", "alert_id": "1"}
ARG_PAYLOADS = ["'; DROP TABLE calls; --", '" OR 1=1 --', "1) UNION SELECT * FROM information_schema.tables --",
                "read_text('/etc/passwd')", "../canary.txt", "../../etc/passwd", "kp{{7*7}}kp", "kp${7*7}kp",
                "A" * 100_000, "\u202ecall_minutes\u200b", "x\r\ny"]  # no NUL: a command line cannot hold one


def _commands() -> list[tuple[list[str], Any]]:
    """(words, command) of every command of the CLI, groups walked into."""
    out: list[tuple[list[str], Any]] = []

    def walk(command: Any, words: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*words, name])
        else:
            out.append((words, command))

    walk(typer.main.get_command(app), [])
    return out


def test_hostile_arguments_to_every_command(copy: tuple[Path, Path, str]) -> None:
    ws, state, canary = copy
    problems: list[str] = []
    runs = 0
    commands = [(w, c) for w, c in _commands() if w[0] not in NOT_RUN]
    assert {"series", "explain", "forecast", "decide"} <= {w[0] for w, _ in commands}
    for i, (words, command) in enumerate(commands):
        params = [p for p in command.params if p.name not in OPERATOR and p.name != "help"
                  and not getattr(p, "is_flag", False)]
        required = [p for p in params if p.param_type_name == "argument"]
        for j, param in enumerate(params):
            for k in range(3):
                payload = ARG_PAYLOADS[(i + j + 4 * k) % len(ARG_PAYLOADS)]
                args = [*words]
                for p in required:
                    args.append(payload if p is param else VALID.get(p.name or "", "1"))
                if param.param_type_name != "argument":
                    args += [param.opts[0], payload]
                args += ["-w", str(ws)]
                if "as_of" in {p.name for p in params} and param.name != "as_of":
                    args += ["--as-of", AS_OF]
                r = cli(*args, state=state)
                runs += 1
                problems += _clean(r, canary, f"{' '.join(words)} {param.name}={payload[:40]!r}")
    assert problems == [], "\n".join(problems[:20])
    assert runs >= 100


@pytest.mark.parametrize(("path", "expected"), [
    ("/etc/", "source 'files': `path: /etc/` leads outside the workspace folder"),
    ("data/\x00", "source 'files': 'data/\x00' not found;"),
    ("kp{{7*7}}kp", "source 'files': 'kp{{7*7}}kp' not found;"),
    ("'; DROP TABLE calls; --", "source 'files': ''; DROP TABLE calls; --' not found;"),
])
def test_a_hostile_source_path_is_a_clear_error(copy: tuple[Path, Path, str], path: str, expected: str) -> None:
    """A source's `path:` that names no data: refused before anything is loaded, the warehouse kept."""
    ws, state, canary = copy
    text = (ws / "kpilot.yaml").read_text(encoding="utf-8")
    (ws / "kpilot.yaml").write_text(text.replace("path: data/", f"path: {json.dumps(path)}", 1), encoding="utf-8")
    r = cli("validate", "-w", str(ws), "--lang", "en", state=state)  # it may pass: the warehouse has the tables
    assert _clean(r, canary, "validate") == []
    r = cli("load", "-w", str(ws), "--lang", "en", state=state)
    assert _clean(r, canary, "load") == []
    assert r.exit_code == 1, _output(r)[-600:]
    assert expected in r.stderr, r.stderr[-600:]
    assert "Fix:" in r.stderr, r.stderr[-600:]


@pytest.mark.parametrize("path", ["/etc/passwd", "up to /etc/passwd", "../canary.txt"])
def test_a_source_path_outside_the_workspace_is_refused(tmp_path: Path, path: str) -> None:
    ws, state, canary = _loaded(tmp_path)
    if path == "up to /etc/passwd":
        path = os.path.relpath("/etc/passwd", ws)  # ../../../etc/passwd, as deep as tmp_path is
    text = (ws / "kpilot.yaml").read_text(encoding="utf-8")
    (ws / "kpilot.yaml").write_text(text.replace("path: data/", f"path: {json.dumps(path)}", 1), encoding="utf-8")
    r = cli("load", "-w", str(ws), "--lang", "en", state=state)
    assert _clean(r, canary, "load") == []
    assert r.exit_code == 1 and "leads outside the workspace folder" in r.stderr and "KPILOT_DATA_DIRS" in r.stderr
    del r
    gc.collect()
    assert _warehouse(state)[0] == TABLES  # nothing read from outside the workspace folder
