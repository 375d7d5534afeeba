"""`kpilot init` and `kpilot demo` end to end: a new workspace computes and shows its board; bad input
and folders kpilot cannot write to give an error for people, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_acme_cli import kpilot
from tests.conftest import files_under

TODAY = "2026-11-26"  # a Thursday: every board KPI has data in its period (not so on the 1st, or a Monday)


def unwritable(tmp_path: Path) -> Path:
    """A folder in which nothing can be created: read-only for a user; /sys/kernel for root, who ignores
    permission bits but may not create folders in sysfs."""
    if os.geteuid() == 0:
        return Path("/sys/kernel")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def assert_clean_error(r: subprocess.CompletedProcess[str], *texts: str) -> None:
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    for text in texts:
        assert text in r.stderr, r.stderr


@pytest.mark.parametrize(("template", "language"), [("saas", "en"), ("esn", "fr"), ("smarketing", "en"),
                                                    ("ecommerce", "fr")])
def test_init_then_status(tmp_path: Path, template: str, language: str) -> None:
    ws = tmp_path / template
    r = kpilot("init", str(ws), "--template", template, "--language", language, "--today", TODAY,
               env_state=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert (ws / "kpilot.yaml").exists() and any((ws / "data").iterdir())
    r = kpilot("validate", "-w", str(ws), "--format", "json", env_state=tmp_path / "s")
    assert json.loads(r.stdout)["valid"] is True
    assert kpilot("load", "-w", str(ws), env_state=tmp_path / "s").returncode == 0  # --as-of replays loaded data
    r = kpilot("status", "-w", str(ws), "--format", "json", "--as-of", TODAY, env_state=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    board = json.loads(r.stdout)
    assert board[0]["role"] == "north_star"
    assert 4 <= len(board) <= 6
    assert all(b["value"] is not None for b in board)
    assert all(b["decision"] is not None for b in board)  # templates teach: every KPI has a decision
    # A second init refuses to overwrite.
    r = kpilot("init", str(ws), "--template", template, env_state=tmp_path / "s")
    assert r.returncode == 1 and "kpilot.yaml" in r.stderr


def test_demo_prints_the_board(tmp_path: Path) -> None:
    r = kpilot("demo", "--dir", str(tmp_path / "demo"), "--no-serve", "--today", TODAY, env_state=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert "Northwind Cloud" in r.stdout and "board as of" in r.stdout
    assert "Nov 26, 2026" in r.stdout, "the board is judged on the day the data ends"
    assert "Monthly recurring revenue (MRR)" in r.stdout
    assert "Decisions" in r.stdout
    # Running it again regenerates the same folder; a foreign folder is refused.
    assert kpilot("demo", "--dir", str(tmp_path / "demo"), "--no-serve", "--today", TODAY,
                  env_state=tmp_path / "s").returncode == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    r = kpilot("demo", "--dir", str(tmp_path / "mine"), "--no-serve", env_state=tmp_path / "s")
    assert r.returncode == 1 and "not a kpilot demo folder" in r.stderr


def test_demo_bad_input_is_an_error_for_people(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    state = tmp_path / "s"
    for where in ("afile", "afile/sub"):
        r = kpilot("demo", "--dir", str(tmp_path / where), "--no-serve", env_state=state)
        assert_clean_error(r, f"{tmp_path / 'afile'} is a file, not a folder")
    r = kpilot("demo", "--dir", str(tmp_path / "d"), "--seed", "-1", "--no-serve", env_state=state)
    assert_clean_error(r, "the seed must be 0 or more, not -1")
    r = kpilot("demo", "--dir", str(tmp_path / "d"), "--language", "de", "--no-serve", env_state=state)
    assert_clean_error(r, "unknown language 'de'; languages: 'en', 'fr'")
    r = kpilot("demo", "--dir", str(tmp_path / "d"), "--language", "fre", "--no-serve", env_state=state)
    assert_clean_error(r, "did you mean 'fr'?")
    assert files_under(tmp_path) == ["afile"]


@pytest.mark.parametrize("command", ["init", "demo"])
def test_a_folder_kpilot_may_not_write_to_is_an_error_for_people(tmp_path: Path, command: str) -> None:
    target = unwritable(tmp_path) / "kpilot-ws"
    args = ["init", str(target)] if command == "init" else ["demo", "--dir", str(target), "--no-serve"]
    r = kpilot(*args, "--today", TODAY, env_state=tmp_path / "s")
    assert_clean_error(r, f"kpilot may not write to {target} (permission denied); nothing was written")
    assert not target.exists()


def test_init_force_over_a_folder_named_like_a_sample_file(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "data" / "leads.csv").mkdir(parents=True)
    r = kpilot("init", str(ws), "--force", "--today", TODAY, env_state=tmp_path / "s")
    assert_clean_error(r, f"{ws / 'data' / 'leads.csv'} is a folder, but the saas template writes a file there")
    assert files_under(ws) == ["data", "data/leads.csv"]
