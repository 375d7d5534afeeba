"""`kpilot serve` starts the web app on the given address and port, and fails clearly without a workspace."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.web.conftest import _free_port


def test_kpilot_serve_answers_on_its_port(acme_dir: Path, tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kpilot.cli", "serve", "-w", str(acme_dir), "--state-dir",
                             str(tmp_path / "state"), "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/?as_of=2026-11-15", timeout=10)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        assert r.status_code == 200 and 'data-key="mrr"' in r.text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in out.decode()  # the URL is printed, in the workspace's language
    assert "est servi sur" in out.decode()


def test_kpilot_serve_without_a_workspace(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "kpilot.cli", "serve", "-w", str(tmp_path / "none"), "--port", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no such file" in r.stderr and "kpilot init" in r.stderr
