"""``syncwatch demo``: the real daemon watching the built-in sandbox, then a short report.

The demo config (config/demo.yaml) points every vendor host at the sandbox's usual address; here
it is re-pointed at the sandbox actually in use, given a fresh database unless told otherwise
(probes left in flight by an earlier demo would be looked for in a sandbox that never saw them),
and its secret references are filled with placeholders, which the sandbox accepts.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import structlog

from syncwatch.clock import Clock
from syncwatch.config import Config, config_from_data, secret_refs
from syncwatch.daemon import Tally
from syncwatch.errors import SyncwatchError
from syncwatch.incident_store import IncidentStore
from syncwatch.runner import run_daemon, summarise_latency
from syncwatch.sandbox.scenario import Scenario
from syncwatch.store import Store
from syncwatch.yamlfile import read_yaml

log = structlog.get_logger("syncwatch.demo")

DEMO_ORIGIN = "http://127.0.0.1:8900"
"""Where config/demo.yaml expects the sandbox (``syncwatch sandbox``'s default address)."""
URL_KEYS = ("base_url", "forms_url", "auth_url", "events_url")
DEMO_SECRETS = {
    "SYNCWATCH_DEMO_WEBHOOK_URL": "{origin}/webhook/demo",
    "SYNCWATCH_DEMO_SLACK_WEBHOOK_URL": "{origin}/slack/services/T0DEMO000/B0DEMO000/demo",
    "SYNCWATCH_DEMO_PAGERDUTY_ROUTING_KEY": "0123456789abcdef0123456789abcdef",
}
"""Placeholders for config/demo.yaml's notification secrets: the sandbox's own receivers (a
PagerDuty routing key is 32 characters). Every other secret gets any non-empty value."""
SIDES = ("hubspot", "marketo", "salesforce")
"""The sandbox's sides the demo's integrations touch, for "synthetic leads left"."""
NAIVE_POLL_S = 10.0
NAIVE_CLEANUP_CALLS = 3
"""A per-probe poller deletes alone: find the source contact, archive it, delete the lead."""


def demo_config(
    path: Path, sandbox_origin: str, database: Path, listen: str | None = None
) -> Config:
    """config/demo.yaml, re-pointed at ``sandbox_origin`` and writing to ``database``."""
    raw: Any = read_yaml(path)
    if isinstance(raw, dict):
        raw = {**raw, "database": str(database.resolve())}
        if listen is not None:
            raw["listen"] = listen
        for section in ("accounts", "notifications"):
            raw[section] = [_repoint(item, sandbox_origin) for item in raw.get(section, [])]
    config = config_from_data(raw, path)
    origin = sandbox_origin.rstrip("/")
    for _, ref in secret_refs(config):
        if ref.env is not None and not os.environ.get(ref.env, "").strip():
            placeholder = DEMO_SECRETS.get(ref.env, f"sandbox-{ref.env.lower()}")
            os.environ[ref.env] = placeholder.format(origin=origin)
    return config


def _repoint(account: Any, origin: str) -> Any:
    if not isinstance(account, dict):
        return account
    moved = dict(account)
    for key in URL_KEYS:
        value = moved.get(key)
        if isinstance(value, str) and value.startswith(DEMO_ORIGIN):
            moved[key] = origin.rstrip("/") + value[len(DEMO_ORIGIN) :]
    return moved


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
        tally = await run_daemon(config, store, clock, stop, transport=transport, drain_s=drain_s)
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


def fresh_database() -> Path:
    """A new database file in a new temporary directory (left for inspection)."""
    return Path(tempfile.mkdtemp(prefix="syncwatch-demo-")) / "syncwatch.db"


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
