"""A file cut short through the CLI: the load is refused, reads keep the last good data and say why."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.cli.test_acme_cli import kpilot

AS_OF = "2026-11-26"


def _cut_to_header(path: Path) -> int:
    """Keep the header line alone; the number of data lines it had."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0], encoding="utf-8")
    return len(lines) - 1


def _json(r: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(r.stdout)


def test_a_csv_cut_to_its_header_is_refused_and_reads_keep_the_last_good_data(acme_copy) -> None:
    ws, state = acme_copy
    status = kpilot("status", "-w", str(ws), "--format", "json", "--as-of", AS_OF, env_state=state)
    assert status.returncode == 0, status.stderr
    series = kpilot("series", "pipeline_generated", "-w", str(ws), "--format", "json", env_state=state)
    assert series.returncode == 0, series.stderr
    deals = _cut_to_header(ws / "data" / "deals.csv")

    r = kpilot("load", "-w", str(ws), "--lang", "en", env_state=state)
    assert r.returncode == 1
    assert (f"data/deals.csv holds no rows now; loading it would empty table 'deals', which holds {deals} row(s)."
            in r.stderr), r.stderr
    assert "kpilot load --allow-shrink" in r.stderr
    assert "Nothing was loaded: every table keeps its previous data." in r.stderr

    # Reads answer from the last good data, with a warning on stderr; JSON on stdout stays JSON.
    again = kpilot("status", "-w", str(ws), "--format", "json", "--as-of", AS_OF, "--lang", "en", env_state=state)
    assert again.returncode == 0, again.stderr
    assert _json(again) == _json(status)
    assert "warning: the latest load failed" in again.stderr
    assert "table 'deals'" in again.stderr
    now = kpilot("series", "pipeline_generated", "-w", str(ws), "--format", "json", "--lang", "en", env_state=state)
    assert now.returncode == 0, now.stderr
    assert _json(now) == _json(series)
    assert "warning: the latest load failed" in now.stderr
    # In the workspace's language (acme is French).
    fr = kpilot("status", "-w", str(ws), "--as-of", AS_OF, env_state=state)
    assert fr.returncode == 0, fr.stderr
    assert "avertissement : le dernier chargement a échoué" in fr.stderr, fr.stderr

    # Meant: --allow-shrink loads it, and the warning is gone.
    r = kpilot("load", "-w", str(ws), "--allow-shrink", env_state=state)
    assert r.returncode == 0, r.stderr
    after = kpilot("series", "pipeline_generated", "-w", str(ws), "--format", "json", "--lang", "en",
                   env_state=state)
    assert after.returncode == 0, after.stderr
    assert "warning" not in after.stderr
    assert _json(after) == []  # no deal left: no period to show


def test_a_status_that_loads_the_cut_file_itself_warns_too(acme_copy) -> None:
    ws, state = acme_copy
    before = kpilot("status", "-w", str(ws), "--format", "json", "--as-of", AS_OF, env_state=state)
    (ws / "data" / "deals.csv").write_text("deal_id,created_at,closed_at,stage,amount_eur,segment,owner,"
                                           "source_channel\nD1,2024-01-01 10:00:00,,open,10.0,PME,Hugo,seo\n")
    # No `kpilot load` in between: the status's own load is refused and recorded.
    r = kpilot("status", "-w", str(ws), "--format", "json", "--lang", "en", env_state=state)
    assert r.returncode == 0, r.stderr
    assert "warning: the latest load failed" in r.stderr
    assert "data/deals.csv holds 1 row(s) where table 'deals' holds" in r.stderr
    json.loads(r.stdout)
    replay = kpilot("status", "-w", str(ws), "--format", "json", "--as-of", AS_OF, env_state=state)
    assert _json(replay) == _json(before)
