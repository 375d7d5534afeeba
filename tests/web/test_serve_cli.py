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


def test_a_port_in_use_is_an_error_for_people(acme_dir: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "kpilot.cli", "serve", "-w", str(acme_dir), "--state-dir",
                            str(tmp_path / "state"), "--port", str(port)], capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, COLUMNS="200"))
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "Errno" not in r.stderr, r.stderr
    assert f"port {port}" in r.stderr and "--port" in r.stderr, r.stderr  # what, and how to fix it (in French)
    assert "est servi sur" not in r.stdout  # nothing claims to serve


def test_the_demo_lets_other_commands_read_its_workspace_while_it_serves(tmp_path: Path) -> None:
    port = _free_port()
    env = dict(os.environ, KPILOT_STATE_DIR=str(tmp_path / "state"), COLUMNS="200", KPILOT_WAREHOUSE_WAIT="5")
    demo = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "kpilot.cli", "demo", "--dir", str(demo), "--today", "2026-11-26",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/", timeout=30).status_code == 200
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.5)
        # What the demo tells a newcomer to do next, in another terminal, while it serves.
        r = subprocess.run([sys.executable, "-m", "kpilot.cli", "status", "-w", str(demo), "--as-of", "2026-11-26",
                            "--format", "json"], capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stderr
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out.decode()


def test_the_demo_says_a_taken_port_before_building_anything(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "kpilot.cli", "demo", "--dir", str(tmp_path / "demo"), "--port",
                            str(port)], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, KPILOT_STATE_DIR=str(tmp_path / "state"), COLUMNS="200"))
    assert r.returncode == 1, r.stderr
    assert f"port {port}" in r.stderr and "--port" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "demo").exists()  # nothing generated, nothing computed
