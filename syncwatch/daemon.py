"""The long-running loop: it wires the parts and keeps time, and decides nothing itself.

Start-up resumes unfinished probes and sweeps leftovers; then one schedule per integration and
template (run once at a jittered start, then every ``every``), one poll loop over every
destination, a clean-up cadence, a daily sweep and the self-check run side by side under one
concurrency bound. On stop (SIGTERM, SIGINT, or the demo's timer) scheduling ends, the step in
progress finishes, queued clean-up is flushed, and final counters are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import structlog
from prometheus_client import CollectorRegistry

from syncwatch.clock import WAKE_SLACK_S, Clock
from syncwatch.config import Config, Integration, TemplateRun
from syncwatch.errors import StoreError, SyncwatchError
from syncwatch.events import ApiCall, QuotaFigure
from syncwatch.http import NetworkHealth
from syncwatch.incident_log import IncidentLog
from syncwatch.incident_store import IncidentStore
from syncwatch.metrics import Metrics
from syncwatch.month_to_date import MonthToDate
from syncwatch.notify import Notifier
from syncwatch.probing import ProbeEngine, Result
from syncwatch.retention import Retention
from syncwatch.runbooks import Runbooks, default_directory
from syncwatch.status import StatusBoard
from syncwatch.store import Store
from syncwatch.vendors.base import Wiring
from syncwatch.vendors.registry import Adapters, build_adapters
from syncwatch.web import Health, WebServer, create_web_app, serve

log = structlog.get_logger("syncwatch.daemon")

MAX_CONCURRENCY = 16
START_JITTER_S = 10.0
"""A schedule's first probe starts at a random moment this long (or its period, if shorter)
after start-up, so schedules do not fire in step..."""
MAX_STARTS_PER_S = 200.0
"""...and when there are so many schedules that more than about this many would start a second,
over as much of the period as it takes: launches then stay spread over every later period too,
instead of all of them coming in the first 10 s of each minute (at 10,000 integrations the
burst outran one core while the rest of the minute sat idle)."""
IDLE_WAKE_S = 30.0
"""The poll loop wakes at least this often, which is also the readiness heartbeat."""
CLEANUP_CHECK_S = 30.0
"""A flush that leaves the clean-up due (no retry time set) is tried again after this, or after
``cleanup.flush_every`` if shorter: not at once, in a loop."""
SWEEP_EVERY = timedelta(days=1)
SELF_CHECK_EVERY_S = 30.0
SLA_REFRESH_S = 300.0
"""How often the month-to-date uptime and credit gauges are recomputed (served from cache)."""
RETENTION_EVERY_S = 3600.0
"""Retention runs at start and hourly: each run has at most an hour of raw events to fold."""
OVERDUE_EVERY_S = 10.0
"""How often ``syncwatch_probes_overdue`` is recounted (the poll loop wakes on every launch)."""
POLL_JITTER_S = 1.0
"""Ticks are spread by up to a second: no thundering herd, and Date headers sampled at varied
sub-second phases let the clock-offset bounds narrow (see ``http_timing.ClockOffset``)."""
LOOP_LAG_EVERY_S = 0.5
"""How often the event loop's lag is sampled (``syncwatch_event_loop_lag_seconds``)."""


@dataclass
class Tally:
    """What this run did, for the final log line and the demo's summary."""

    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    """Every probe's latency, only when ``keep_latencies`` (the demo's summary): a daemon that
    runs for months keeps counts, not a list growing by a probe a minute."""
    calls: Counter[str] = field(default_factory=Counter)
    """Calls by account."""
    keep_latencies: bool = False

    def add(self, result: Result) -> None:
        if result.outcome:
            self.outcomes[result.outcome] += 1
        if result.latency_s is not None and self.keep_latencies:
            self.latencies.append(result.latency_s)


@dataclass
class Daemon:
    config: Config
    store: Store
    clock: Clock
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    transport: httpx.AsyncBaseTransport | None = None
    """None: real sockets. Tests pass an ``ASGITransport`` into the sandbox."""
    rng: random.Random = field(default_factory=random.Random)
    serve_http: bool = True
    offload: Callable[..., Awaitable[Any]] = asyncio.to_thread
    """Runs CPU-bound work (the month-to-date figures) off the event loop. A simulation, where
    nothing waits in real time, runs it inline: a worker thread there only adds GIL contention
    (about a tenth of a simulated day's cost). Same work, same figures, either way."""
    contract_figures: bool = True
    """Keep each contract's month-to-date uptime and credit for /metrics and /status. A
    daemon that serves neither (``syncwatch simulate``) has no one to show them to; its
    database holds the same events, and the reports compute the same figures from them."""
    probe_metrics: bool = True
    """Count probes, vendor calls, quota figures and overdue probes in the Prometheus metrics.
    A daemon that serves no /metrics (``syncwatch simulate``) has no one to read them, and
    its database holds the same events; the incident and notification gauges, set once an
    incident, are kept either way."""
    tally: Tally = field(default_factory=Tally)
    network: NetworkHealth = field(default_factory=NetworkHealth)
    metrics: Metrics = field(init=False)
    health: Health = field(init=False)
    adapters: Adapters = field(init=False)
    engine: ProbeEngine = field(init=False)
    incident_log: IncidentLog = field(init=False)
    notifier: Notifier = field(init=False)
    web: WebServer | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        wiring = Wiring(self.clock, self._record_call, self.network, self.transport)
        self.adapters = build_adapters(self.config, wiring)
        self.metrics = Metrics(self.config, self.registry, self.adapters.daily_windows)
        self.health = Health(self.clock, tick_stale_after_s=3 * IDLE_WAKE_S)
        self.health.config_loaded = True
        observer = self.metrics if self.probe_metrics else None
        self.engine = ProbeEngine(
            self.config, self.store, self.clock, self.adapters, observer, self.rng
        )
        self.notifier = Notifier(
            self.config,
            IncidentStore(self.store),
            self.clock,
            self.metrics,
            transport=self.transport,
            rng=random.Random(hash(self.rng.getstate())),  # seeded, without consuming a draw
            on_store_error=self._store_failed,
        )
        self.incident_log = IncidentLog(
            self.config,
            self.store,
            self.metrics,
            self.adapters.daily_windows,
            on_queued=self.notifier.wake,
            on_store_error=self._store_failed,
        )
        self.engine.on_result = self._probe_result
        self._limit = asyncio.Semaphore(MAX_CONCURRENCY)
        self._launches: set[asyncio.Task[None]] = set()
        self._polls: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self.month_to_date = MonthToDate(self.config) if self.contract_figures else None
        self.retention = Retention(self.config, self.store)
        self._integrations = {
            integration.name: integration for integration in self.config.integrations
        }

    def _probe_result(self, result: Result) -> None:
        """A probe finished (its outcome is in the store): count it, and let the incident
        tracks and the month to date see it."""
        self.tally.add(result)
        if self.month_to_date is not None:
            self.month_to_date.probe_concluded(result.probe_id, result.integration)
        integration = self._integrations.get(result.integration)
        if integration is not None and result.outcome is not None:
            self.incident_log.probe_finished(
                integration, result.outcome, result.error_class, self.clock.now()
            )

    def _record_call(self, call: ApiCall, other_windows: tuple[QuotaFigure, ...]) -> None:
        """The HTTP layer's sink: store and metrics. A full disk must not stop probing."""
        self.tally.calls[call.account] += 1
        if self.probe_metrics:
            self.metrics.call_recorded(call, other_windows)
        try:
            self.store.record_call(call, other_windows)
        except (StoreError, OSError, sqlite3.Error) as exc:
            self._store_failed("record an API call", exc)
        else:
            if self.month_to_date is not None:  # only once stored: the month is the store's
                self.month_to_date.call_recorded(call)
            self._store_ok()

    def _store_failed(self, what: str, exc: Exception) -> None:
        """A write failed: /readyz says so at once; the log says so once per outage (a full
        disk fails every probe's writes, and one line says it as well as a thousand)."""
        error = str(exc) or type(exc).__name__
        if self.health.store_failed(error):
            log.error(
                "store not writable; probing goes on and /readyz fails until a write succeeds",
                step=what,
                error=error,
            )
        else:
            log.debug("store still not writable", step=what, error=error)

    def _store_ok(self) -> None:
        if self.health.store_ok():
            log.info("store writable again")

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve HTTP, resume what the last run left, and sweep; then ``run`` keeps time."""
        if self.serve_http:
            listen = self.config.listen
            status = StatusBoard(
                self.config,
                self.store,
                self.clock,
                self.metrics.contracts,
                daily_windows=self.adapters.daily_windows,
            )
            runbook_base = self.config.runbook_base_url
            app = create_web_app(
                self.metrics,
                self.health,
                status=status,
                runbooks=Runbooks(self.config.runbooks_dir or default_directory()),
                runbook_base_url=None if runbook_base is None else str(runbook_base),
            )
            self.web = await serve(app, listen.host, listen.port)
            log.info("serving", metrics=f"{self.web.url}/metrics")
        still_open = self.incident_log.resume()
        resumed = self.engine.resume()
        log.info(
            "started",
            resumed=resumed,
            open_incidents=len(still_open),
            integrations=len(self.config.integrations),
        )
        await self._guarded("start-up sweep", self.engine.cleaner.sweep)
        if self.health.store_error is None:  # opened and resumed, and no write has failed yet
            self._store_ok()
        self.health.tick()

    async def run(self, stop: asyncio.Event, drain_s: float = 0.0) -> Tally:
        """Probe until ``stop`` is set; then wind down cleanly.

        With ``drain_s`` (the demo), polling goes on after scheduling stops until every probe
        in flight has concluded or ``drain_s`` has passed, so its leads can be cleaned up too.
        """
        await self.start()
        runs = [(i, run) for i in self.config.integrations for run in i.templates]
        schedules = [
            asyncio.ensure_future(self._schedule(i, run, start_window(run.every, len(runs))))
            for i, run in runs
        ]
        loops = [
            self._poll_loop(),
            self._cleanup_loop(),
            self._sweep_loop(),
            self._sla_loop(),
            self._retention_loop(),
            self.notifier.run(),
            self._loop_lag_loop(),
        ]
        if self.config.self_check_url:
            loops.append(self._self_check_loop(str(self.config.self_check_url)))
        tasks = [asyncio.ensure_future(loop) for loop in loops]
        try:
            await stop.wait()
            self._stopping = True  # before any await: a launch queued behind the bound must see it
            await self._cancel(schedules)
            if drain_s > 0:
                await self._drain(drain_s)
        finally:
            self._stopping = True
            await self._cancel(schedules)
            await self.shutdown(tasks)
        return self.tally

    async def _drain(self, seconds: float) -> None:
        deadline = self.clock.monotonic() + seconds
        await asyncio.gather(*self._launches, return_exceptions=True)
        while self.engine.in_flight_count() and self.clock.monotonic() < deadline:
            await self.clock.sleep(min(1.0, deadline - self.clock.monotonic()))

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        """Stop scheduling, let the step in progress finish, flush clean-up, log counters."""
        await self._cancel(tasks)
        if self._launches:
            await asyncio.gather(*self._launches, return_exceptions=True)
        if self._polls:
            await asyncio.gather(*self._polls.values(), return_exceptions=True)
        await self._guarded("final clean-up", self.engine.cleaner.flush)
        await self._guarded("final notifications", self.notifier.deliver_due)
        await self.adapters.aclose()
        await self.notifier.aclose()
        if self.web is not None:
            await self.web.stop()
        log.info(
            "stopped",
            outcomes=dict(self.tally.outcomes),
            calls=dict(self.tally.calls),
            in_flight=self.engine.in_flight_count(),
            cleanup_pending=len(self.engine.cleaner.pending),
        )

    # -- loops ---------------------------------------------------------------------------------

    async def _schedule(self, integration: Integration, run: TemplateRun, window: float) -> None:
        """Run once at a jittered start, then every ``every``, never waiting for the probe."""
        await self.clock.sleep(self.rng.uniform(0, window))
        while True:
            task = asyncio.ensure_future(self._launch(integration, run))
            self._launches.add(task)
            task.add_done_callback(self._launches.discard)
            await self.clock.sleep(run.every)

    async def _launch(self, integration: Integration, run: TemplateRun) -> None:
        async with self._limit:
            if self._stopping:
                return  # queued behind the bound when the stop came: never injected
            await self._guarded(
                f"probe {integration.name}/{run.template}",
                lambda: self.engine.launch(integration, run),
            )

    async def _poll_loop(self) -> None:
        """One loop for every destination: each is queried when its earliest probe is due."""
        overdue_counted_until = self.clock.now()
        while True:
            self.health.tick()
            now, wake = self.clock.now(), self.clock.now() + timedelta(seconds=IDLE_WAKE_S)
            if self.probe_metrics and now >= overdue_counted_until:  # scans all in flight
                self.metrics.set_overdue(self.engine.overdue(now))
                overdue_counted_until = now + timedelta(seconds=OVERDUE_EVERY_S)
            for key in self.adapters.destinations:
                due = self.engine.next_poll_at(key)
                if due is None or key in self._polls:
                    continue
                if due <= now:
                    self._start_poll(key)
                else:
                    wake = min(wake, due)
            delay = (wake - now).total_seconds() + self.rng.uniform(0, POLL_JITTER_S)
            self.engine.work_added.clear()
            await self.engine.work_added.wait(self.clock, delay)

    def _start_poll(self, key: str) -> None:
        async def poll() -> None:
            async with self._limit:
                await self._guarded(f"poll {key}", lambda: self.engine.poll(key))

        task = asyncio.ensure_future(poll())
        self._polls[key] = task
        task.add_done_callback(lambda _: self._poll_done(key))

    def _poll_done(self, key: str) -> None:
        self._polls.pop(key, None)
        self.engine.work_added.set()  # the poll loop re-plans with the new due times

    async def _cleanup_loop(self) -> None:
        """Flush when the clean-up falls due (``Cleaner.due_at``). It waits for that moment, or
        for a queued probe that brings it forward, rather than looking every few seconds."""
        cleaner = self.engine.cleaner
        while True:
            cleaner.sooner.clear()
            # Draining, the final flush takes everything at once; idle, a probe queued wakes us.
            due_at = None if self._stopping else cleaner.due_at()
            if due_at is None:
                pause = self.config.cleanup.flush_every
            else:
                pause = max(0.0, (due_at - self.clock.now()).total_seconds()) + WAKE_SLACK_S
            await cleaner.sooner.wait(self.clock, pause)
            if not self._stopping and cleaner.due():
                await self._guarded("clean-up", cleaner.flush)
                if cleaner.due():  # left due: the next try is not at once (CLEANUP_CHECK_S)
                    await self.clock.sleep(min(CLEANUP_CHECK_S, self.config.cleanup.flush_every))

    async def _sweep_loop(self) -> None:
        while True:
            await self.clock.sleep(SWEEP_EVERY.total_seconds())
            await self._guarded("daily sweep", self.engine.cleaner.sweep)

    async def _sla_loop(self) -> None:
        """Month-to-date contract figures for /metrics: read on the loop, computed off it."""
        if not self.config.contracts or self.month_to_date is None:
            return
        while True:
            await self._guarded("month-to-date SLA", self._refresh_sla)
            await self.clock.sleep(SLA_REFRESH_S)

    async def _refresh_sla(self) -> None:
        now, month_to_date = self.clock.now(), self.month_to_date
        assert month_to_date is not None  # _sla_loop runs only with contract figures
        events = month_to_date.read(self.store, now)  # the store's thread: this loop
        figures: dict[str, tuple[float | None, float | None]] = await self.offload(
            month_to_date.compute, events, now
        )
        for contract, (uptime, credit) in figures.items():
            self.metrics.set_contract_figures(contract, uptime, credit)

    async def _retention_loop(self) -> None:
        while True:
            await self._guarded("retention", self._apply_retention)
            await self.clock.sleep(RETENTION_EVERY_S)

    async def _apply_retention(self) -> None:
        done = await self.retention.run(self.clock.now())
        if done.folded or done.probes_removed or done.calls_removed or done.rollups_expired:
            log.info(
                "retention applied",
                folded=[f"{contract} {month}" for contract, month in sorted(done.folded)],
                probes_removed=done.probes_removed,
                calls_removed=done.calls_removed,
                rollups_expired=done.rollups_expired,
                raw_kept_from=done.cutoff.isoformat() if done.cutoff else None,
            )

    async def _loop_lag_loop(self) -> None:
        """How late the event loop wakes a sleeper: work that hogs the loop delays every probe,
        every API timing and every scrape by as much.

        Measured on the event loop's own clock, not the injected one: lag is a property of this
        process's loop in real time, and a virtual clock has none to measure."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(LOOP_LAG_EVERY_S)
            self.metrics.loop_lag_observed(loop.time() - started - LOOP_LAG_EVERY_S)

    async def _self_check_loop(self, url: str) -> None:
        """Our own network: while it fails, transport errors are ours, not the vendor's.

        Checked every ``SELF_CHECK_EVERY_S``, and also by any vendor call that fails to
        connect (``NetworkHealth.confirm``), so an outage of ours is noticed at once."""
        async with httpx.AsyncClient(transport=self.transport, timeout=10.0) as client:

            async def check() -> bool:
                try:
                    await client.get(url)
                except httpx.HTTPError:
                    healthy = False
                else:
                    healthy = True
                if healthy != self.network.ok:
                    log.warning("self-check changed", healthy=healthy, url=url)
                return healthy

            self.network.check = check
            try:
                while True:
                    self.network.checked_at = self.clock.monotonic()
                    self.network.ok = await check()
                    await self.clock.sleep(SELF_CHECK_EVERY_S)
            finally:
                self.network.check = None

    async def _guarded(self, what: str, step: Callable[[], Awaitable[object]]) -> None:
        """Run one step; whatever it raises is logged, and the daemon goes on."""
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except (StoreError, sqlite3.Error) as exc:  # sqlite3's own: a full disk, read-only
            self._store_failed(what, exc)
        except SyncwatchError as exc:
            log.error("step failed", step=what, error=str(exc))
        except Exception:
            log.exception("unexpected failure; carrying on", step=what)


def stop_on_signals(stop: asyncio.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT set ``stop``; returns a function that restores the defaults."""
    loop = asyncio.get_running_loop()
    handled = (signal.SIGTERM, signal.SIGINT)
    for signum in handled:
        loop.add_signal_handler(signum, stop.set)

    def restore() -> None:
        for signum in handled:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)

    return restore


def start_window(every: float, schedules: int) -> float:
    """How long after start-up a schedule's first probe may start (``MAX_STARTS_PER_S``)."""
    return min(every, max(START_JITTER_S, schedules / MAX_STARTS_PER_S))
