"""The web app under load: the board and a KPI page, N concurrent clients, for a fixed time.

Starts `kpilot.web` on the acme workspace in a uvicorn subprocess on 127.0.0.1 (a fresh warehouse in a
temporary folder), waits until the server has computed today's analysis in the background (as `kpilot serve`
does after each load), measures the first answer of each page, then runs N asyncio/httpx clients that each
request the board and a KPI page in turn, as fast as they can, for the given duration (lean asyncio-stream
clients by default, httpx.AsyncClient with --client httpx). Prints p50/p95/p99 latency per page and the error
count (non-200 answers and failed requests).

    python3 benchmarks/web.py                      # the shipped set-up: one service behind a lock, cache on
    python3 benchmarks/web.py --compare            # lock vs a pool of 2, cache on vs off, side by side
    python3 benchmarks/web.py --clients 20 --seconds 30 --pool-size 2 --no-cache

The load generator runs on the same machine (2 cores here) and takes CPU from the server: the figures are
an upper bound on what a remote client would see.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ACME = Path(os.environ.get("KPILOT_SHARED", ROOT.parent / "shared")) / "examples" / "acme"
GOAL_P95_MS = 150.0
GOAL_FIRST_MS = 300.0  # the first board a person opens after a start or a load


@dataclass
class Sample:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)  # ms of each page's first answer (computed, not cached)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to measure the server's own cost per request
    whatever else runs on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(args: argparse.Namespace) -> None:
    """The server side (run in a subprocess): the app on the workspace, until killed."""
    import uvicorn

    from kpilot.web import create_app

    app = create_app(Path(args.workspace), state_dir=Path(args.state_dir), pool_size=args.pool_size,
                     cache_size=0 if args.no_cache else 256, warm=True)
    app.state.gate.refresh()  # as `kpilot serve` does: the data is loaded before the first request, and today's
    # analysis and board are computed in the background (the first board waits for nothing once that is done)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


def _start(workspace: Path, state_dir: Path, port: int, pool_size: int, no_cache: bool) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--serve", "--workspace", str(workspace), "--state-dir", str(state_dir),
           "--port", str(port), "--pool-size", str(pool_size)] + (["--no-cache"] if no_cache else [])
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            if r.status_code == 200 and not r.json().get("warming"):
                return proc
            time.sleep(0.2)
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


async def _client(http: httpx.AsyncClient, pages: dict[str, str], until: float, sample: Sample) -> None:
    names = list(pages)
    i = 0
    while time.monotonic() < until:
        name = names[i % len(names)]
        i += 1
        t0 = time.perf_counter()
        try:
            r = await http.get(pages[name])
            ok = r.status_code == 200
        except httpx.HTTPError:
            ok = False
        ms = (time.perf_counter() - t0) * 1000
        if ok:
            sample.latencies.setdefault(name, []).append(ms)
        else:
            sample.errors[name] = sample.errors.get(name, 0) + 1


async def _raw_client(port: int, pages: dict[str, str], until: float, sample: Sample) -> None:
    """A lean HTTP/1.1 keep-alive client on asyncio streams: httpx costs the load generator ~1 ms of CPU a
    request, which on 2 cores shows up as the server's latency."""
    names = list(pages)
    i = 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            name = names[i % len(names)]
            i += 1
            t0 = time.perf_counter()
            try:
                writer.write(f"GET {pages[name]} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
                ok = status == 200
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                ok = False
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            ms = (time.perf_counter() - t0) * 1000
            if ok:
                sample.latencies.setdefault(name, []).append(ms)
            else:
                sample.errors[name] = sample.errors.get(name, 0) + 1
    finally:
        writer.close()


async def _load(port: int, pages: dict[str, str], clients: int, seconds: float, server_pid: int, kind: str
                ) -> tuple[Sample, float]:
    """The samples, and the server's CPU seconds during the measured part."""
    sample = Sample()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as http:
        for name, url in pages.items():  # warm-up: the first answer computes (the data is loaded at start)
            t0 = time.perf_counter()
            (await http.get(url)).raise_for_status()
            sample.first[name] = (time.perf_counter() - t0) * 1000
        cpu0 = _cpu_seconds(server_pid)
        until = time.monotonic() + seconds
        if kind == "httpx":
            await asyncio.gather(*[_client(http, pages, until, sample) for _ in range(clients)])
        else:
            await asyncio.gather(*[_raw_client(port, pages, until, sample) for _ in range(clients)])
        cpu = _cpu_seconds(server_pid) - cpu0
    return sample, cpu


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def run(config: str, pool_size: int, no_cache: bool, args: argparse.Namespace) -> list[tuple[str, ...]]:
    with tempfile.TemporaryDirectory(prefix="kpilot-web-bench-") as state:
        port = _free_port()
        proc = _start(Path(args.workspace), Path(state), port, pool_size, no_cache)
        try:
            query = f"?as_of={args.as_of}" if args.as_of else ""
            pages = {"board": f"/{query}", f"kpi ({args.metric})": f"/metric/{args.metric}{query}"}
            sample, cpu = asyncio.run(_load(port, pages, args.clients, args.seconds, proc.pid, args.client))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    total = sum(len(v) for v in sample.latencies.values()) + sum(sample.errors.values())
    cpu_ms = f"{1000 * cpu / total:.2f}" if total else "nan"
    rows = []
    for name in pages:
        lat = sample.latencies.get(name, [])
        rows.append((config, name, str(len(lat)), f"{len(lat) / args.seconds:.0f}", f"{_pct(lat, 50):.1f}",
                     f"{_pct(lat, 95):.1f}", f"{_pct(lat, 99):.1f}", str(sample.errors.get(name, 0)), cpu_ms,
                     f"{sample.first[name]:.0f}"))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", default=str(ACME))
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--metric", default="pipeline_generated")
    p.add_argument("--as-of", default="", help="YYYY-MM-DD (default: today, as a user opens the board)")
    p.add_argument("--pool-size", type=int, default=1)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--compare", action="store_true", help="lock vs pool of 2, cache on vs off")
    p.add_argument("--client", choices=["raw", "httpx"], default="raw",
                   help="load generator: lean asyncio streams (default) or httpx.AsyncClient")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--state-dir", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        _serve(args)
        return
    configs = [("lock, cache", 1, False), ("pool 2, cache", 2, False), ("lock, no cache", 1, True),
               ("pool 2, no cache", 2, True)] if args.compare else \
        [(("lock" if args.pool_size == 1 else f"pool {args.pool_size}") + (", no cache" if args.no_cache else ", cache"),
          args.pool_size, args.no_cache)]
    print(f"kpilot web: {args.clients} clients for {args.seconds:.0f} s each, board + /metric/{args.metric}, "
          f"as of {args.as_of or 'today'}, {args.client} client, {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    header = ("config", "page", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "server CPU ms/req",
              "first answer ms")
    rows: list[tuple[str, ...]] = []
    for name, pool, no_cache in configs:
        rows += run(name, pool, no_cache, args)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    board = [r for r in rows if r[1] == "board"]
    for r in board:
        verdict = "met" if float(r[5]) < GOAL_P95_MS and r[7] == "0" else "not met"
        print(f"goal (board p95 < {GOAL_P95_MS:.0f} ms, zero errors) with {r[0]}: {verdict}")
        first = "met" if float(r[9]) < GOAL_FIRST_MS else "not met"
        print(f"goal (first board < {GOAL_FIRST_MS:.0f} ms once the server is ready) with {r[0]}: {first}")


if __name__ == "__main__":
    main()
