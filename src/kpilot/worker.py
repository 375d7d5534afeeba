"""The worker: sync each source on its `schedule:` (cron), then recompute the metrics that read it, run the
analysis and evaluate the alerts; queue the weekly review on `review: schedule:`; at every tick, deliver the
messages waiting in the outbox.

One `Scheduler` drives `kpilot worker` and the background thread of `kpilot serve`. A tick runs the sources
that are due, one at a time, through a `session`: a context manager lending a `WorkspaceService` (the
worker opens its own; the web app lends its services behind their lock, so no request reads the warehouse
while it changes). A source that fails is recorded and stays due, so the next tick tries it again; nothing
raised by a source, the computation or the analysis stops the loop. Clock and sleep are injected (tests).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kpilot.alerting.outbox import DeliveryReport
from kpilot.compute.compiler import aggregates_of
from kpilot.insights import Insights
from kpilot.model import KpilotError, Workspace
from kpilot.model.errors import msg
from kpilot.model.schedule import Cron, parse_cron
from kpilot.model.workspace import FILE_SOURCE_TYPES, SQL_SOURCE_TYPES, Source
from kpilot.service import WorkspaceService
from kpilot.service import alerts as service_alerts
from kpilot.service.review import queue_review
from kpilot.sources.sync import sync_sources

log = logging.getLogger("kpilot.scheduler")
Session = Callable[[], AbstractContextManager[WorkspaceService]]
RETRY_SECONDS = 60.0  # a failed source is tried again at the next tick, this long after
MAX_SLEEP = 60.0  # look at kpilot.yaml's schedules at least this often
REVIEW = "weekly-review"  # the review's key among the schedules (no source key holds a hyphen)

# Sources being synced in this process, by (warehouse folder, source key): one sync of a source at a time.
_running: set[tuple[str, str]] = set()
_running_lock = threading.Lock()


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SourceRun:
    """One scheduled sync of one source: the tables it changed, or why it failed."""

    source: str
    started: datetime
    seconds: float
    changed: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class TickReport:
    """What one tick did: the sources it ran (and skipped because already running), what it recomputed."""

    at: datetime
    runs: list[SourceRun] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    analysis: dict[str, Any] | None = None
    alerts: int | None = None  # messages queued by the alerts evaluated after the recompute
    review: int | None = None  # messages queued by the weekly review, when it was due
    delivery: DeliveryReport | None = None  # the outbox delivered at this tick
    error: str | None = None  # recomputing or analysing failed (the syncs' data stays)

    @property
    def failed(self) -> list[SourceRun]:
        return [r for r in self.runs if not r.ok]


def schedules(ws: Workspace) -> dict[str, Cron]:
    """Source key -> its parsed schedule, for the sources that have one."""
    return {s.key: parse_cron(s.schedule) for s in ws.sources if s.schedule}


def tables_of_metric(ws: Workspace, key: str) -> set[str]:
    """The warehouse tables a metric reads: its models' (through ratio parts and formulas) and their joins'."""
    models = {agg.model for agg in aggregates_of(ws, ws.metric(key))}
    tables: set[str] = set()
    seen: set[str] = set()
    while models:
        model_key = models.pop()
        if model_key in seen:
            continue
        seen.add(model_key)
        try:
            model = ws.model_by_key(model_key)
        except KeyError:
            continue
        tables.add(model.table)
        models.update(j.model for j in model.joins)
    return tables


def metrics_reading(ws: Workspace, tables: set[str]) -> list[str]:
    """Keys of the metrics that read any of `tables`, in the workspace's order."""
    return [m.key for m in ws.metrics if tables_of_metric(ws, m.key) & tables]


class Scheduler:
    """Runs the due syncs of a workspace, then recomputes what they changed; see the module's docstring."""

    def __init__(self, session: Session, workspace: Callable[[], Workspace], *,
                 clock: Callable[[], datetime] = utc_now, sleep: Callable[[float], object] = time.sleep,
                 retry_seconds: float = RETRY_SECONDS, on_tick: Callable[[TickReport], None] | None = None):
        self.session = session
        self.workspace = workspace
        self.clock = clock
        self.sleep = sleep
        self.retry_seconds = retry_seconds
        self.on_tick = on_tick
        self.last: dict[str, SourceRun] = {}  # the last run of each source
        self._next: dict[str, tuple[str, str, datetime]] = {}  # key -> (schedule, time zone, next run, UTC)
        self._ws: Workspace | None = None

    # --- when ---------------------------------------------------------------------------------------

    def _current(self) -> Workspace:
        """The workspace as it is now; the last good one while kpilot.yaml does not read."""
        try:
            self._ws = self.workspace()
        except Exception as exc:  # an invalid kpilot.yaml must not stop the loop: keep the last good one
            if self._ws is None:
                raise
            log.warning("kpilot.yaml could not be read, the previous schedules are kept: %s", exc)
        return self._ws

    def next_runs(self) -> dict[str, datetime]:
        """Source key (and REVIEW) -> its next run (UTC); a new or changed schedule counts from now."""
        ws = self._current()
        crons = schedules(ws)
        if ws.review is not None and ws.review.schedule:
            crons[REVIEW] = parse_cron(ws.review.schedule)
        now = self.clock()
        for key in list(self._next):
            if key not in crons:
                del self._next[key]
        for key, cron in crons.items():
            known = self._next.get(key)
            if known is None or known[:2] != (cron.text, ws.timezone):
                self._next[key] = (cron.text, ws.timezone, cron.next_after(now, ws.timezone))
        return {k: v[2] for k, v in self._next.items()}

    def due(self) -> list[str]:
        now = self.clock()
        return [k for k, at in self.next_runs().items() if at <= now]

    # --- what -----------------------------------------------------------------------------------------

    def tick(self, sources: Sequence[str] | None = None) -> TickReport:
        """Run the due sources (or exactly `sources`), then recompute and analyse if something changed."""
        report = TickReport(self.clock())
        review = False
        try:
            keys = list(sources) if sources is not None else self.due()
            review = REVIEW in keys
            keys = [k for k in keys if k != REVIEW]
            if keys:
                self._run(keys, report)
        except Exception as exc:  # the loop outlives anything: say what happened and go on
            log.exception("scheduled run failed")
            report.error = _reason(exc)
        if review:
            self._review(report)
        try:
            ws = self._current()
            if ws.channels or (ws.review is not None and ws.review.to):
                with self.session() as svc:
                    report.delivery = service_alerts.deliver(svc, os.environ)
        except Exception as exc:  # the outbox keeps every message: the next tick tries again
            log.warning("delivering the outbox failed: %s", exc)
            report.error = report.error or _reason(exc)
        if self.on_tick is not None:
            self.on_tick(report)
        return report

    def _run(self, keys: Sequence[str], report: TickReport) -> None:
        ws = self._current()
        by_key = {s.key: s for s in ws.sources}
        # Databases first: a file load checks the definitions against every table, copied ones included.
        ordered = sorted((by_key[k] for k in keys if k in by_key), key=lambda s: s.type in FILE_SOURCE_TYPES)
        with self.session() as svc:
            changed: set[str] = set()
            for source in ordered:
                key = source.key
                claim = (str(svc.state_dir.resolve()), key)
                with _running_lock:
                    if claim in _running:
                        report.busy.append(key)
                        continue
                    _running.add(claim)
                try:
                    run = self._sync(svc, source)
                finally:
                    with _running_lock:
                        _running.discard(claim)
                report.runs.append(run)
                self.last[key] = run
                if run.ok:
                    changed.update(run.changed)
                    if key in self._next:
                        text, tz, _ = self._next[key]
                        self._next[key] = (text, tz, parse_cron(text).next_after(self.clock(), tz))
                else:
                    log.warning("source %s failed; it is tried again at the next tick: %s", key, run.error)
            if changed:
                self._recompute(svc, changed, report)

    def _sync(self, svc: WorkspaceService, source: Source) -> SourceRun:
        started = self.clock()
        t0 = time.perf_counter()
        run = SourceRun(source.key, started, 0.0)
        try:
            if source.type in FILE_SOURCE_TYPES:
                loaded = svc.load(source=source.key, strict=True)
                run.changed = [t.table for t in loaded.tables if t.status != "unchanged"]
            else:
                synced = (svc.sync(source.key) if source.type in SQL_SOURCE_TYPES
                          else sync_sources(svc.con, [source], svc.dir))
                if not synced.tables and source.type not in SQL_SOURCE_TYPES:
                    run.error = msg("source '{source}': kpilot cannot sync {type} sources yet; remove its "
                                    "`schedule:`.", source=source.key, type=source.type)
                elif synced.failed:
                    run.error = "\n".join(dict.fromkeys(t.error or "" for t in synced.failed))
                run.changed = [t.table for t in synced.tables if t.status != "failed"]
        except Exception as exc:
            run.error = _reason(exc)
        run.seconds = time.perf_counter() - t0
        return run

    def _review(self, report: TickReport) -> None:
        """Queue the weekly review (after the syncs, so it reads their data); the outbox delivery that ends the tick
        sends it. A failed review stays due and is tried again at the next tick, like a failed source."""
        try:
            with self.session() as svc:
                svc.load()  # unchanged files are skipped
                # The week that just ended: a Monday-morning review covers Monday to Sunday.
                report.review = queue_review(svc, as_of=svc.today() - timedelta(days=1), once=True)
        except Exception as exc:
            log.warning("the weekly review failed; it is tried again at the next tick: %s", exc)
            report.error = report.error or _reason(exc)
            return
        if REVIEW in self._next:
            text, tz, _ = self._next[REVIEW]
            self._next[REVIEW] = (text, tz, parse_cron(text).next_after(self.clock(), tz))

    @staticmethod
    def _recompute(svc: WorkspaceService, changed: set[str], report: TickReport) -> None:
        """Materialize the metrics that read the changed tables, then run the analysis as of today."""
        try:
            affected = metrics_reading(svc.ws, changed)
            if affected:
                svc.computer().materialize(affected)
            report.metrics = affected
            report.analysis = Insights(svc, as_of=svc.today()).run_all()
            report.alerts = service_alerts.evaluate(svc).queued
        except Exception as exc:
            log.warning("recomputing after the scheduled syncs failed: %s", exc)
            report.error = _reason(exc)

    # --- the loop -------------------------------------------------------------------------------------

    def seconds_to_wait(self) -> float:
        """Until the next run: at most MAX_SLEEP (schedules may change), a retry's delay when one failed."""
        now = self.clock()
        runs = self.next_runs()
        if not runs:
            return MAX_SLEEP
        wake = min(runs.values())
        if wake <= now:
            wake = now + timedelta(seconds=self.retry_seconds)
        return max(0.0, min((wake - now).total_seconds(), MAX_SLEEP))

    def run_forever(self, stop: threading.Event | None = None, *, ticks: int | None = None) -> None:
        """Tick and sleep until `stop` is set (or `ticks` ticks were run)."""
        done = 0
        while not (stop is not None and stop.is_set()) and (ticks is None or done < ticks):
            self.tick()
            done += 1
            if ticks is not None and done >= ticks:
                break
            try:
                wait = self.seconds_to_wait()
            except Exception as exc:
                log.warning("the schedules could not be read: %s", exc)
                wait = MAX_SLEEP
            self.sleep(wait)


def _reason(exc: BaseException) -> str:
    """The text of an error for people (a KpilotError's message keeps its translations)."""
    if isinstance(exc, KpilotError):
        return exc.message
    return str(exc).strip() or type(exc).__name__


def background(scheduler: Scheduler, name: str = "kpilot-scheduler") -> tuple[threading.Thread, threading.Event]:
    """Run a scheduler in a daemon thread; set the event to stop it (it stops within one sleep)."""
    stop = threading.Event()
    scheduler.sleep = stop.wait
    thread = threading.Thread(target=scheduler.run_forever, args=(stop,), name=name, daemon=True)
    thread.start()
    return thread, stop


__all__ = ["REVIEW", "Scheduler", "SourceRun", "TickReport", "background", "metrics_reading", "schedules",
           "tables_of_metric"]
