"""The web app's access to a workspace: a small pool of services, a refresh when files change, a cache.

DuckDB connections are not thread-safe, so each `WorkspaceService` is used by one request at a time
(a pool of `pool_size`, default 1: a lock). Pages always ask for an explicit as-of date (default: today
in the workspace's timezone), which makes every answer a pure function of (workspace files, warehouse,
as-of): answers are cached under a fingerprint of the files (kpilot.yaml and the data files' sizes and
times) and of the changes other processes made to the warehouse, so a changed file is loaded on the next
request and nothing stale is served.

The warehouse is a DuckDB file that one process at a time may open. The server opens it when a request
needs it and closes it as soon as no request is using or waiting for it (a burst of requests shares one
opening), so that the CLI can run beside the server: opening waits while a CLI command holds the file
(`kpilot.compute.engine.connect_duckdb`). What the CLI writes (a load, a compute, a sync, an analysis) is
noticed from the file's size and time: while the server holds nothing, at the same look as the data files;
and on each opening, under the file's lock, against the print the server took when it last opened it.

The analysis (kpilot.insights: leading indicators, forecasts, early warnings, anomalies, audit) takes a few
hundred milliseconds to seconds: it runs once per (files, as-of) behind the services' lock, and is kept
apart from the answer cache (which a busy site churns) in a small store cleared with it.

Settings edited in the web app are overrides kept in the application database (`kpilot.store`): every
service serves kpilot.yaml with them applied (`kpilot.model.overrides`), and they are part of the
fingerprint, so a saved setting is served on the next request and nothing computed before it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from kpilot.insights import AuditVerdict, Explanation, Insights, KpiForecast, LeadLagEdge
from kpilot.insights.findings import AnomalyFinding, EarlyWarningFinding
from kpilot.model import KpilotError, Workspace, WorkspaceInvalid
from kpilot.model.periods import period_start
from kpilot.service import LoadFailure, MetricStatus, WorkspaceService, open_store

T = TypeVar("T")
ANALYSES_KEPT = 8  # as-of dates whose analysis is kept (today and a few dates looked back at)
log = logging.getLogger("kpilot.web")


@dataclass(frozen=True)
class Analysis:
    """The workspace's analysis as of a date, computed once by `kpilot.insights` (values, not a live service).

    `errors` holds, per part that could not be computed ('leads', 'forecasts', 'warnings', 'anomalies',
    'audit'), the reason for people; that part is then empty and the pages say why."""

    as_of: date
    edges: list[LeadLagEdge]
    forecasts: dict[str, KpiForecast]
    warnings: list[EarlyWarningFinding]
    anomalies: list[AnomalyFinding]
    audit: list[AuditVerdict]
    errors: dict[str, str] = field(default_factory=dict)

    def leaders_of(self, key: str) -> list[LeadLagEdge]:
        return [e for e in self.edges if e.follower == key]

    def led_by(self, key: str) -> list[LeadLagEdge]:
        """The edges where `key` is the leader (what this metric leads)."""
        return [e for e in self.edges if e.leader == key]

    def warnings_on(self, key: str) -> list[EarlyWarningFinding]:
        return [w for w in self.warnings if w.metric == key]

    def anomalies_of(self, key: str) -> list[AnomalyFinding]:
        return [a for a in self.anomalies if a.metric == key]


def analyse(svc: WorkspaceService, as_of: date) -> Analysis:
    """Every analysis of the workspace as of a date (a part that fails leaves the others standing)."""
    ins = Insights(svc, as_of=as_of)
    errors: dict[str, str] = {}

    def attempt(part: str, run: Callable[[], T], empty: T) -> T:
        try:
            return run()
        except KpilotError as exc:
            errors[part] = exc.message
            return empty

    edges: list[LeadLagEdge] = attempt("leads", ins.leads, [])
    forecasts: dict[str, KpiForecast] = attempt(
        "forecasts", lambda: {f.metric: f for f in ins.forecasts()}, {})
    warnings: list[EarlyWarningFinding] = attempt("warnings", lambda: ins.warnings(), [])
    anomalies: list[AnomalyFinding] = attempt("anomalies", lambda: ins.anomalies(), [])
    audit: list[AuditVerdict] = attempt("audit", ins.audit, [])
    return Analysis(as_of, edges, forecasts, warnings, anomalies, audit, errors)


class WorkspaceGate:
    """One workspace served to concurrent requests: pooled services, loads on change, cached answers."""

    def __init__(self, workspace_dir: Path, *, state_dir: Path | None = None, pool_size: int = 1,
                 cache_size: int = 256, check_every: float = 1.0, db_url: str | None = None):
        self.workspace_dir = Path(workspace_dir)
        self.state_dir = state_dir
        self.pool_size = max(1, pool_size)
        self.cache_size = cache_size
        self.check_every = check_every  # seconds between two looks at the files' sizes and times
        self._checked = 0.0
        self._pool: queue.Queue[WorkspaceService] = queue.Queue()
        self._refresh = threading.Lock()
        self._cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._analyses: OrderedDict[tuple[str | None, date], Analysis] = OrderedDict()
        self._analysis_lock = threading.Lock()  # one analysis at a time, even with a pool of services
        self._fingerprint: str | None = None
        self._spec_fingerprint: str | None = None
        self._files_loaded: str | None = None  # the files' part of the fingerprint at the last load
        # The warehouse between requests (see the module's docstring). `_use_lock` counts the users (the last
        # out closes the warehouse, with `_open_lock` too); `_open_lock` guards the rest, and is held while an
        # opening waits for another process (taken after `_use_lock` when both are).
        self._use_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._users = 0  # requests, page renders and refreshes using the warehouse or waiting for it
        self._open = False  # whether this server holds the warehouse open (from a first use to the last user out)
        self._left: str | None = None  # the warehouse file's print as this server last opened or changed it
        self._outside_changes = 0  # changes to the warehouse by other processes, noticed so far
        first = WorkspaceService(self.workspace_dir, state_dir=state_dir)
        self.state_dir = first.state_dir
        # The application database: settings overrides, the decision log (default: SQLite in the state dir).
        self.store = open_store(self.state_dir, db_url)
        first.store = self.store  # pushed data is read from the same database on each load
        self.override_error: WorkspaceInvalid | None = None  # stored settings kpilot.yaml no longer accepts
        self._base: Workspace = first.base  # kpilot.yaml as read, before the settings overrides
        self._overrides_print = ""
        self._services = [first]
        # Warming (see `warm_soon`): off unless the server turns it on.
        self.warm = False
        self._warm_state = threading.Lock()
        self._warm_due = False
        self._warmer: threading.Thread | None = None
        self._read_overrides()
        self._effective(first)
        self._pool.put(first)

    # --- the pool -------------------------------------------------------------------------------

    @property
    def primary(self) -> WorkspaceService:
        """A service for reading the workspace's definitions (no database access)."""
        return self._services[0]

    @contextmanager
    def service(self) -> Iterator[WorkspaceService]:
        """A service of the pool for this thread alone, its warehouse open, on data that matches the files on
        disk."""
        self.refresh()
        svc = self._acquire()
        try:
            yield svc
        finally:
            self._give_back([svc])

    def close(self) -> None:
        self.warm = False
        warmer = self._warmer
        if warmer is not None:
            warmer.join(timeout=30)
        for svc in self._services:
            svc.close()
        self.store.close()

    def _acquire(self) -> WorkspaceService:
        """A service of the pool with the warehouse open. The first opening after the server let the warehouse
        go waits while another process holds it, then looks whether that process changed it."""
        with self._use_lock:
            self._users += 1
        try:
            svc = self._pool.get()
        except BaseException:
            self._give_back([])
            raise
        try:
            with self._open_lock:
                fresh = not self._open
                svc.con  # noqa: B018 -- opens the warehouse (waiting politely), or finds it open
                self._open = True
                if fresh:
                    self._notice(self._warehouse_print(), lock_held=True)
        except BaseException:
            self._give_back([svc])
            raise
        return svc

    def _give_back(self, services: list[WorkspaceService]) -> None:
        """Services back into the pool; the last user out closes the warehouse, for other processes to use."""
        for svc in services:
            self._pool.put(svc)
        with self._use_lock:
            self._users -= 1
            if self._users == 0:  # nobody opens meanwhile: an opening is done by a user
                with self._open_lock:
                    was_open = self._open
                    for svc in self._services:
                        svc.release_warehouse()
                    self._open = False
                    if was_open:
                        # Whatever changed the file while this server held it is this server's own doing (its
                        # schema, its stored analyses): no other process could write meanwhile.
                        self._left = self._warehouse_print()

    def _take_all(self) -> list[WorkspaceService]:
        """Every service of the pool, their warehouse connections closed: a load opens the warehouse with file
        access, which DuckDB allows only when no sandboxed connection of this process holds it."""
        with self._use_lock:
            self._users += 1
        services = [self._pool.get() for _ in self._services]
        with self._open_lock:
            for svc in services:
                svc.release_warehouse()
            self._open = False
        return services

    def _settle(self, services: list[WorkspaceService]) -> None:
        """After this server changed the warehouse itself (a load, a sync, pushed data): the print of the
        warehouse as it is now, taken with the file's lock held, is this server's own; the caller then drops the
        caches (anything another process wrote before this point is in what the next answers read)."""
        with self._open_lock:
            for svc in services:
                svc.release_warehouse()  # the last close writes what was pending into the file
            services[0].con  # noqa: B018 -- waits while another process holds the warehouse
            self._open = True
            self._left = self._warehouse_print()

    # --- the warehouse's changes by other processes ----------------------------------------------

    def _warehouse_print(self) -> str:
        """Sizes, times and inodes of the warehouse file and of its write-ahead log (two stat calls)."""
        base = Path(self.state_dir or self.primary.state_dir) / "warehouse.duckdb"
        parts = []
        for path in (base, base.with_name(base.name + ".wal")):
            try:
                st = path.stat()
                parts.append(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
            except OSError:
                parts.append("-")
        return "/".join(parts)

    def _notice(self, found: str, *, lock_held: bool) -> None:
        """Compare the warehouse's print with the one this server left (`_open_lock` held): a difference is
        a change by another process (a CLI load, compute, sync or analysis), which moves the fingerprint on.
        Found with the file's lock held (on opening), the caches are dropped at once: the request about to read
        must not combine its new answer with older ones."""
        if self._left is None:
            self._left = found  # the first look: nothing is cached yet
            return
        if found == self._left:
            return
        self._left = found
        self._outside_changes += 1
        if lock_held:
            self._checked = 0.0  # `peek` serves nothing until the next refresh takes the new fingerprint
            self.clear_cache()

    def _look_at_warehouse(self) -> None:
        """While the server holds nothing of the warehouse, another process may change it: look (cheap). Not
        while an opening waits for another process: that opening will notice what it wrote."""
        if not self._open_lock.acquire(blocking=False):
            return
        try:
            if not self._open:
                self._notice(self._warehouse_print(), lock_held=False)
        finally:
            self._open_lock.release()

    @contextmanager
    def _burst(self) -> Iterator[None]:
        """Answers computed together (a page's): the warehouse, once opened, stays open until they are all done,
        instead of being opened again for each."""
        with self._use_lock:
            self._users += 1
        try:
            yield
        finally:
            self._give_back([])

    # --- refresh --------------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """The version of what answers are computed from: the files' (below), and the count of the warehouse's
        changes by other processes (cheap: stat calls only)."""
        self._look_at_warehouse()
        return f"{self._files_fingerprint()}:{self._outside_changes}"

    def _files_fingerprint(self) -> str:
        """Sizes and modification times of kpilot.yaml and of every data file, the settings overrides, and the
        runs of `exclusive`."""
        h = hashlib.sha1()
        files = [self.primary.file, *(tf.path for tf in self.primary.table_files())]
        for f in files:
            try:
                st = Path(f).stat()
                h.update(f"{f}:{st.st_size}:{st.st_mtime_ns};".encode())
            except OSError:
                h.update(f"{f}:missing;".encode())
        h.update(self._overrides_print.encode())
        h.update(f"scheduled:{self._scheduled_runs};".encode())
        return h.hexdigest()

    # --- settings overrides ---------------------------------------------------------------------

    @property
    def base(self) -> Workspace:
        """kpilot.yaml as read, without the settings overrides (what the settings page compares with)."""
        return self._base

    def overrides(self) -> dict[str, dict[str, object]]:
        """The settings saved in the web app or through the API (metric key -> field -> value)."""
        return self.primary.settings()

    def _read_overrides(self) -> dict[str, dict[str, object]]:
        found = self.overrides()
        self._overrides_print = json.dumps(found, sort_keys=True, default=str)
        return found

    def _effective(self, svc: WorkspaceService) -> Workspace:
        """The workspace the service serves every door: kpilot.yaml with the saved settings, or kpilot.yaml alone
        when they no longer fit it (the settings page then shows why)."""
        ws = svc.apply_settings()
        self.override_error = svc.settings_problem
        if svc.settings_problem is not None:
            log.warning("settings overrides ignored: %s", svc.settings_problem)
        return ws

    def settings_changed(self) -> None:
        """Serve the stored overrides from now on (called after a setting is saved): caches are dropped."""
        self._checked = 0.0
        self._fingerprint = None if self._fingerprint is None else ""
        self.refresh()

    def _spec_print(self) -> str:
        st = self.primary.file.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"

    def refresh(self) -> None:
        """Reload the definitions when kpilot.yaml changed and load the data files that changed."""
        now = time.monotonic()
        if self._fingerprint is not None and now - self._checked < self.check_every:
            return
        self._read_overrides()
        current = self.fingerprint()
        self._checked = now
        if current == self._fingerprint:
            return
        with self._refresh:
            current = self.fingerprint()
            if current == self._fingerprint:
                return
            files = self._files_fingerprint()
            if self._fingerprint is not None and files == self._files_loaded:
                # Only the warehouse changed, by another process (it loaded, computed, synced or analysed):
                # nothing to load, every answer to compute again.
                self.clear_cache()
                self._fingerprint = current
                self.warm_soon()
                return
            services = self._take_all()  # no request reads while the warehouse changes
            try:
                spec = self._spec_print()
                if spec != self._spec_fingerprint and self._spec_fingerprint is not None:
                    for svc in services:
                        svc.close()
                    services = [WorkspaceService(self.workspace_dir, state_dir=self.state_dir, store=self.store)]
                    self._services = services  # the pool's services from now on, whatever happens below
                    self._base = services[0].base
                effective = self._effective(services[0])
                services[0].load()
                while len(services) < self.pool_size:
                    services.append(WorkspaceService(self.workspace_dir, state_dir=self.state_dir, store=self.store))
                for svc in services:
                    svc.ws = effective
                self._services = services
                self._settle(services)
                with self._cache_lock:
                    self._cache.clear()
                    self._analyses.clear()
                self._spec_fingerprint = spec
                self._files_loaded = files
                self._fingerprint = f"{files}:{self._outside_changes}"
            finally:
                self._give_back(services)
        self.warm_soon()

    # --- warming ------------------------------------------------------------------------------------

    def warm_soon(self) -> None:
        """Compute today's analysis and board in a background thread (when `warm` is on), so that the first
        person to open the board after a start or a load does not wait for the analysis. A request arriving
        meanwhile waits for the part it needs, as it would have computed it anyway."""
        if not self.warm:
            return
        with self._warm_state:
            self._warm_due = True
            if self._warmer is not None:
                return  # the running warmer sees the flag and goes round again
            self._warmer = threading.Thread(target=self._warm_loop, name="kpilot-warm", daemon=True)
            self._warmer.start()

    @property
    def warming(self) -> bool:
        """Whether today's analysis and board are being computed in the background."""
        return self._warmer is not None

    def _warm_loop(self) -> None:
        while True:
            with self._warm_state:
                if not self._warm_due or not self.warm:
                    self._warmer = None
                    return
                self._warm_due = False
            try:
                today = self.today()
                self.analysis(today)
                self.board(today)
            except KpilotError as exc:  # the page will say it when asked; the log says it now
                log.warning("warming the board failed: %s", exc.message)
            except Exception:  # a background thread must not die silently
                log.exception("warming the board failed")

    # --- cached answers -------------------------------------------------------------------------

    def _cached(self, key: tuple[Any, ...], compute: Callable[[WorkspaceService], T]) -> T:
        self.refresh()
        full = (self._fingerprint, *key)
        found, value = self._lookup(full)
        if found:
            return value  # type: ignore[no-any-return]
        svc = self._acquire()
        try:
            found, value = self._lookup(full)  # another request may have computed it while this one waited
            if not found:
                value = compute(svc)
        finally:
            self._give_back([svc])
        self._store(full, value)
        return value  # type: ignore[no-any-return]

    def _lookup(self, key: tuple[Any, ...]) -> tuple[bool, Any]:
        if not self.cache_size:
            return False, None
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return True, self._cache[key]
        return False, None

    def peek(self, key: tuple[Any, ...]) -> Any | None:
        """A cached answer without waiting for anything (safe on the event loop); None when absent or when
        the files are due for a look (the caller then goes through `remember` in a worker thread)."""
        if self._fingerprint is None or time.monotonic() - self._checked >= self.check_every:
            return None
        found, value = self._lookup((self._fingerprint, *key))
        return value if found else None

    def remember(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """An answer computed from other answers (e.g. a rendered page), cached like them; holds no service, and
        keeps the warehouse open from the first answer it needs to the last."""
        self.refresh()
        full = (self._fingerprint, *key)
        found, value = self._lookup(full)
        if found:
            return value  # type: ignore[no-any-return]
        with self._burst():
            value = compute()
        self._store(full, value)
        return value

    def _store(self, key: tuple[Any, ...], value: Any) -> None:
        with self._cache_lock:
            self._cache[key] = value
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()
            self._analyses.clear()

    _scheduled_runs = 0  # runs of `exclusive`: part of the fingerprint, so no answer from before one is served

    @contextmanager
    def exclusive(self) -> Iterator[WorkspaceService]:
        """A service while no request reads the warehouse (a scheduled sync changes it). Afterwards the
        fingerprint moves on (a database sync changes no file it would see) and the caches are dropped."""
        with self._refresh:
            services = self._take_all()
            try:
                yield services[0]
            finally:
                self._scheduled_runs += 1
                self._checked = 0.0  # `peek` serves nothing until the next refresh takes the new fingerprint
                try:
                    self._settle(services)
                finally:
                    self.clear_cache()
                    self._give_back(services)
            self.warm_soon()

    def pushed(self) -> dict[str, int]:
        """Materialize the pushed data into the warehouse now (after a push), while no request reads it; the
        caches are dropped. Table -> rows."""
        with self.exclusive() as svc:
            return svc.load_pushed()

    def today(self) -> date:
        return self.primary.today()

    def load_failure(self) -> LoadFailure | None:
        """The latest load that failed, while no load has succeeded since (the pages then show the last good data,
        and say so)."""
        return self._cached(("load_failure",), lambda svc: svc.last_load_failure())

    def board(self, as_of: date) -> list[MetricStatus]:
        statuses = self._cached(("board", as_of), lambda svc: svc.board(as_of=as_of))
        # Each board KPI's status is the one its page shows: kept for `status` too (one verdict, computed once).
        fingerprint = self._fingerprint
        if self.cache_size:
            with self._cache_lock:
                for s in statuses:
                    self._cache.setdefault((fingerprint, "status", s.key, as_of), s)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return statuses

    def status(self, key: str, as_of: date) -> MetricStatus:
        """One metric judged at its current period (any metric, on the board or not)."""
        ws = self.primary.ws
        role = "north_star" if key == ws.north_star else "board" if key in ws.board else "metric"
        return self._cached(("status", key, as_of), lambda svc: svc.metric_status(svc.computer(as_of), key, role))

    def series(self, key: str, as_of: date) -> list[dict[str, object]]:
        judged = self.status(key, as_of)  # cached: the series does not judge the metric a second time
        return self._cached(("series", key, as_of), lambda svc: svc.series(key, as_of=as_of, judged=judged))

    def dimensions(self, key: str, as_of: date) -> list[str]:
        """The dimensions a metric can be sliced by."""
        return self._cached(("dimensions", key), lambda svc: svc.computer(as_of).allowed_dimensions(key))

    def breakdown(self, key: str, dim: str, first: date, last: date, as_of: date) -> list[dict[str, object]]:
        return self._cached(("breakdown", key, dim, first, last, as_of),
                            lambda svc: svc.breakdown(key, [dim], first=first, last=last, as_of=as_of))

    # --- the analysis -----------------------------------------------------------------------------

    def analysis(self, as_of: date) -> Analysis:
        """The analysis as of a date: computed once per version of the files (whatever `cache_size`)."""
        self.refresh()
        with self._analysis_lock:
            key = (self._fingerprint, as_of)
            with self._cache_lock:
                found = self._analyses.get(key)
            if found is not None:
                return found
            with self.service() as svc:
                result = analyse(svc, as_of)
            with self._cache_lock:
                self._analyses[key] = result
                while len(self._analyses) > ANALYSES_KEPT:
                    self._analyses.popitem(last=False)
            return result

    def forecast(self, key: str, as_of: date) -> KpiForecast | None:
        """A metric's forecast: the KPIs' from the analysis, any other metric's computed on demand."""
        found = self.analysis(as_of)
        if key in found.forecasts or "forecasts" in found.errors:
            return found.forecasts.get(key)
        return self._cached(("forecast", key, as_of),
                            lambda svc: Insights(svc, as_of=as_of).forecast(key, edges=found.edges))

    def explain(self, key: str, before: date, after: date, as_of: date) -> Explanation | str:
        """What each dimension value contributed to a metric's change between two periods (no pairs), or
        why it cannot be split (the KpilotError's message, kept like an answer)."""
        def compute(svc: WorkspaceService) -> Explanation | str:
            try:
                return Insights(svc, as_of=as_of).explain(key, before, after, pairs=False)
            except KpilotError as exc:
                return exc.message

        return self._cached(("explain", key, before, after, as_of), compute)

    def current_period(self, key: str, as_of: date) -> date:
        ws = self.primary.ws
        return period_start(as_of, ws.metric(key).grain, ws.week_start)


__all__ = ["Analysis", "WorkspaceGate", "analyse"]
