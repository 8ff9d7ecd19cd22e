"""``syncwatch demo``: the real daemon watching the built-in sandbox, then a short report.

The demo config (config/demo.yaml) points every vendor host at the sandbox's usual address; here
it is re-pointed at the sandbox actually in use, given a fresh database unless told otherwise
(probes left in flight by an earlier demo would be looked for in a sandbox that never saw them),
and its secret references are filled with placeholders, which the sandbox accepts.

``sandbox_config.py`` does the re-pointing, for this config and any other (``syncwatch
simulate``).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import structlog

from syncwatch.clock import Clock
from syncwatch.config import Config
from syncwatch.daemon import Tally
from syncwatch.errors import SyncwatchError
from syncwatch.incident_store import IncidentStore
from syncwatch.runner import run_daemon, summarise_latency
from syncwatch.sandbox.scenario import Scenario
from syncwatch.sandbox_config import sandbox_config
from syncwatch.store import Store

log = structlog.get_logger("syncwatch.demo")

SIDES = ("hubspot", "marketo", "salesforce")
"""The sandbox's sides the demo's integrations touch, for "synthetic leads left"."""
NAIVE_POLL_S = 10.0
NAIVE_CLEANUP_CALLS = 3
"""A per-probe poller deletes alone: find the source contact, archive it, delete the lead."""


def demo_config(
    path: Path, sandbox_origin: str, database: Path, listen: str | None = None
) -> Config:
    """config/demo.yaml, re-pointed at ``sandbox_origin`` and writing to ``database``."""
    return sandbox_config(path, sandbox_origin, database, listen)


@dataclass
class DemoReport:
    tally: Tally
    probes: int
    calls: int
    left: dict[str, int] = field(default_factory=dict)
    """Synthetic records still in the sandbox, per side."""
    in_flight: int = 0
    cleanup_pending: int = 0
    incidents: Counter[str] = field(default_factory=Counter)
    """Incidents this run opened, by cause."""
    still_open: int = 0
    notified: int = 0
    """Notifications delivered; ``notify_pending`` still queued."""
    notify_pending: int = 0

    @property
    def calls_per_probe(self) -> float | None:
        return self.calls / self.probes if self.probes else None

    @property
    def naive_calls_per_probe(self) -> float | None:
        """What a per-probe poller (every 10 s, no batching) would have spent on these probes:
        one create, one query per 10 s until found, and its own three clean-up calls."""
        latencies = self.tally.latencies
        if not latencies:
            return None
        per_probe = [
            1 + max(1, -(-latency // NAIVE_POLL_S)) + NAIVE_CLEANUP_CALLS for latency in latencies
        ]
        return sum(per_probe) / len(per_probe)

    def lines(self) -> list[str]:
        latency = summarise_latency(self.tally.latencies)
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(self.tally.outcomes.items())) or "none"
        lines = [f"probes: {outcomes}"]
        if latency.p50_s is not None and latency.p95_s is not None:
            lines.append(
                f"sync latency: p50 {latency.p50_s:.1f}s, p95 {latency.p95_s:.1f}s "
                f"over {latency.probes} probes"
            )
        if self.calls_per_probe is not None:
            naive = self.naive_calls_per_probe
            versus = f" (a naive per-probe poller: {naive:.1f})" if naive else ""
            lines.append(
                f"vendor API calls: {self.calls} for {self.probes} probes, "
                f"{self.calls_per_probe:.2f} per probe{versus}"
            )
        if self.incidents:
            causes = ", ".join(f"{n} {cause}" for cause, n in sorted(self.incidents.items()))
            lines.append(
                f"incidents: {causes} ({self.still_open} still open); notifications: "
                f"{self.notified} delivered, {self.notify_pending} pending"
            )
        else:
            lines.append("incidents: none")
        left = ", ".join(f"{side} {n}" for side, n in self.left.items())
        lines.append(f"synthetic leads left in the sandbox: {left or 'unknown'}")
        if any(self.left.values()):
            lines.append(
                f"  why: {self.in_flight} probes still in flight and {self.cleanup_pending} "
                "awaiting clean-up; the next start resumes them and its sweep removes the rest"
            )
        return lines


async def run_demo(
    config: Config,
    store: Store,
    clock: Clock,
    duration_s: float,
    *,
    drain_s: float,
    sandbox: httpx.AsyncClient,
    transport: httpx.AsyncBaseTransport | None = None,
    on_stop: Callable[[asyncio.Event], object] = lambda _stop: None,
) -> DemoReport:
    """Run the daemon for ``duration_s``, drain, and report; ``sandbox`` reaches /_sandbox."""
    stop = asyncio.Event()
    on_stop(stop)
    started = clock.now()

    async def timer() -> None:
        await clock.sleep(duration_s)
        stop.set()

    timing = asyncio.ensure_future(timer())
    try:
        tally = await run_daemon(
            config, store, clock, stop, transport=transport, drain_s=drain_s, keep_latencies=True
        )
    finally:
        timing.cancel()
    probes = sum(n for outcome, n in tally.outcomes.items() if outcome != "skipped")
    report = DemoReport(tally, probes, sum(tally.calls.values()))
    report.in_flight = len([r for r in store.unfinished_probes() if r["outcome"] is None])
    report.cleanup_pending = len(store.unfinished_probes()) - report.in_flight
    _count_incidents(report, IncidentStore(store), started)
    try:
        response = await sandbox.get("/_sandbox/state")
        response.raise_for_status()
        state = response.json()
        sides = [side for side in SIDES if isinstance(state.get(side), dict)]
        report.left = {side: int(state[side]["synthetic"]) for side in sides}
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        # The sandbox went away (or is not one): the probes' report still stands; "left" reads
        # "unknown" rather than the whole demo ending in a traceback.
        log.warning("cannot read the sandbox's state", error=str(exc))
    return report


def _count_incidents(report: DemoReport, incidents: IncidentStore, since: datetime) -> None:
    """This run's incidents and their notifications, from the store."""
    opened = [
        i
        for i in incidents.incidents_between(since, datetime.max.replace(tzinfo=UTC))
        if i.opened_at >= since
    ]
    report.incidents = Counter(incident.cause for incident in opened)
    report.still_open = sum(incident.is_open for incident in opened)
    messages = [m for i in opened for m in incidents.outbox(i.key)]
    report.notified = sum(m.delivered_at is not None for m in messages)
    report.notify_pending = len(messages) - report.notified


def fresh_database(prefix: str = "syncwatch-demo-") -> Path:
    """A new database file in a new temporary directory (left for inspection)."""
    return Path(tempfile.mkdtemp(prefix=prefix)) / "syncwatch.db"


async def demo_session(
    config_path: Path,
    scenario: Scenario | None,
    sandbox_url: str | None,
    db: Path | None,
    listen: str | None,
    duration: float,
    drain: float,
    echo: Callable[[str], object],
) -> list[str]:
    """The whole ``syncwatch demo``: sandbox (unless ``sandbox_url``), daemon, report lines."""
    from syncwatch.clock import RealClock
    from syncwatch.daemon import stop_on_signals
    from syncwatch.sandbox import create_app
    from syncwatch.web import serve

    clock = RealClock()
    server = None
    if scenario is not None:
        server = await serve(create_app(scenario, clock), "127.0.0.1", 0, date_header=False)
    origin = sandbox_url or (server.url if server else "")
    try:
        config = demo_config(config_path, origin, db or fresh_database(), listen)
        store = Store.open(config.database)
        echo(f"sandbox:  {origin}/_sandbox/state")
        echo(f"metrics:  http://{config.listen}/metrics")
        echo(f"database: {config.database}")
        echo(f"probing for {duration:g}s, then draining for up to {drain:g}s ...")
        try:
            async with httpx.AsyncClient(base_url=origin, timeout=10.0) as sandbox:
                try:  # before probing, so a wrong --sandbox-url fails now, not after --duration
                    (await sandbox.get("/_sandbox/state")).raise_for_status()
                except httpx.HTTPError as exc:
                    raise SyncwatchError(
                        f"no sandbox answers at {origin}/_sandbox/state: {exc}"
                    ) from exc
                report = await run_demo(
                    config,
                    store,
                    clock,
                    duration,
                    drain_s=drain,
                    sandbox=sandbox,
                    on_stop=stop_on_signals,
                )
        finally:
            store.close()
        return report.lines()
    finally:
        if server is not None:
            await server.stop()
