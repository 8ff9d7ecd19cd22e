"""Probes from injection to clean-up (DESIGN §4): the engine the daemon drives.

Every transition is written to the store before the next step starts, so a restarted daemon
resumes exactly where the last one stopped: an in-flight probe is looked for again, never
injected twice and never forgotten. Polling is batched: one query per destination (account and
object) per tick covers every probe in flight there, whatever integration sent it. Clean-up is
batched too, and flushed on its own cadence, because deleting one lead at a time would spend
more of the customer's API quota than probing itself. The rules (latency, verification,
outcomes, cadence) are pure functions in ``lifecycle.py``.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from syncwatch.cleanup import Cleaner
from syncwatch.clock import Clock
from syncwatch.config import Config, Integration, TemplateRun
from syncwatch.errors import VendorError, attribution
from syncwatch.lifecycle import (
    DETECTED,
    IN_FLIGHT,
    INJECTING,
    SCHEDULED,
    VERIFIED,
    field_differences,
    measure_latency,
    next_look,
    outcome_for,
    owner_matches,
    typical_latency,
)
from syncwatch.quota import guard_verdict
from syncwatch.store import Store, from_db_time
from syncwatch.vendors.base import Probe, Record, probe_email
from syncwatch.vendors.registry import Adapters, destination_key

log = structlog.get_logger("syncwatch.probing")

PROBE_COST_ESTIMATE = 3.0
"""Calls one probe is expected to cost an account (the target of issue #3), for the guard."""
RECENT_LATENCIES = 50


class ProbeObserver(Protocol):
    """Where probe results go besides the store (the Prometheus metrics)."""

    def probe_finished(
        self,
        integration: str,
        template: str,
        outcome: str,
        error_class: str | None,
        latency_s: float | None,
        finished_at: datetime,
    ) -> None: ...

    def set_in_flight(self, integration: str, count: int) -> None: ...


@dataclass
class InFlight:
    """A probe the destination has not (fully) shown us yet."""

    probe_id: str
    email: str
    integration: Integration
    run: TemplateRun
    accepted_at: datetime
    uncertain: bool = False
    """Resumed from ``injecting``: we cannot prove the source accepted it."""
    last_look: datetime | None = None
    detected_at: datetime | None = None
    first_after_s: float = 0.0

    def due(self, every_s: float) -> datetime:
        return next_look(self.accepted_at, self.first_after_s, self.last_look, every_s)


@dataclass
class Result:
    """What ``launch`` and the polls report back (for ``syncwatch probe`` and the demo)."""

    probe_id: str
    integration: str
    template: str
    outcome: str | None = None
    error_class: str | None = None
    latency_s: float | None = None
    detail: str | None = None


@dataclass
class ProbeEngine:
    config: Config
    store: Store
    clock: Clock
    adapters: Adapters
    observer: ProbeObserver
    rng: random.Random = field(default_factory=random.Random)
    in_flight: dict[str, dict[str, InFlight]] = field(default_factory=dict)
    """By destination key, then probe id."""
    recent: dict[str, deque[float]] = field(default_factory=dict)
    on_result: Callable[[Result], None] = lambda _result: None
    work_added: asyncio.Event = field(default_factory=asyncio.Event)
    cleaner: Cleaner = field(init=False)

    def __post_init__(self) -> None:
        self.cleaner = Cleaner(self.config, self.store, self.clock, self.adapters)

    # -- injection ---------------------------------------------------------------------------

    async def launch(self, integration: Integration, run: TemplateRun) -> Result:
        """Inject one probe now (unless the quota guard says no) and track it until found."""
        probe_id = self._new_probe_id()
        email = probe_email(probe_id, self.config.probe_domain)
        now = self.clock.now()
        result = Result(probe_id, integration.name, run.template)
        bound = log.bind(integration=integration.name, probe_id=probe_id)
        row = {"probe_id": probe_id, "integration": integration.name, "template": run.template}
        self.store.insert_probe({**row, "email": email, "state": SCHEDULED, "scheduled_at": now})
        refusal = self._guard(integration)
        if refusal is not None:
            bound.warning("probe skipped by the quota guard", reason=refusal)
            return self._conclude(result, "skipped", "quota_guard", None, refusal, clean=False)
        self.store.update_probe(probe_id, state=INJECTING, injecting_at=self.clock.now())
        template = self.config.templates[run.template]
        fields = template.render(template.fields, probe_id, email, self.config.probe_domain)
        probe = Probe(probe_id, email, integration.name, fields)
        try:
            injection = await self.adapters.sources[integration.name].inject(probe)
        except VendorError as exc:
            outcome = "skipped" if attribution(exc.error_class) == "monitor" else "rejected"
            bound.warning("injection failed", error_class=exc.error_class, error=str(exc))
            return self._conclude(result, outcome, exc.error_class, None, str(exc), clean=True)
        self.store.update_probe(
            probe_id,
            state=IN_FLIGHT,
            accepted_at=injection.accepted_at,
            source_ref=injection.source_ref,
        )
        self._track(InFlight(probe_id, email, integration, run, injection.accepted_at))
        bound.info("probe injected", template=run.template)
        return result

    def _guard(self, integration: Integration) -> str | None:
        """The first reason either account of the integration gives to skip this probe."""
        now = self.clock.now()
        for name in (integration.source.account, integration.destination.account):
            account = self.config.account(name)
            assert account is not None
            daily = self.store.quota_reading(name, self.adapters.daily_windows[name])
            verdict = guard_verdict(
                reserve=account.quota.reserve,
                max_share=account.quota.max_share,
                daily=daily.as_figure() if daily else None,
                own_calls_today=self.store.count_calls(name, now - timedelta(days=1), now),
                probe_cost=PROBE_COST_ESTIMATE,
            )
            if verdict is not None:
                return f"{name}: {verdict}"
        return None

    def _new_probe_id(self) -> str:
        """80 random bits in 16 lower-case base-32 characters: short, and unique for years."""
        alphabet = "abcdefghijklmnopqrstuvwxyz234567"
        bits = self.rng.getrandbits(80)
        return "".join(alphabet[(bits >> (5 * i)) & 31] for i in range(16))

    def _track(self, probe: InFlight) -> None:
        history = self.recent.get(probe.integration.name, ())
        poll = probe.integration.poll
        probe.first_after_s = typical_latency(
            list(history), poll.first_after, probe.integration.timeout / 2
        )
        key = destination_key(probe.integration)
        self.in_flight.setdefault(key, {})[probe.probe_id] = probe
        self._report_in_flight(probe.integration.name)
        self.work_added.set()

    # -- polling -----------------------------------------------------------------------------

    def in_flight_count(self) -> int:
        return sum(len(probes) for probes in self.in_flight.values())

    def next_poll_at(self, key: str) -> datetime | None:
        """When the destination ``key`` next needs a query; None while nothing is in flight."""
        probes = self.in_flight.get(key)
        if not probes:
            return None
        return min(probe.due(probe.integration.poll.every) for probe in probes.values())

    async def poll(self, key: str) -> None:
        """One batched query for every probe in flight at this destination, then decide."""
        probes = self.in_flight.get(key, {})
        if not probes:
            return
        batch = [Probe(p.probe_id, p.email, p.integration.name) for p in probes.values()]
        try:
            found = await self.adapters.destinations[key].find(batch)
        except VendorError as exc:
            log.warning("destination query failed", destination=key, error_class=exc.error_class)
            found = {}
        now = self.clock.now()
        for probe in list(probes.values()):
            probe.last_look = now
            record = found.get(probe.probe_id)
            if record is not None:
                self._examine(key, probe, record, now)
            elif now - probe.accepted_at >= timedelta(seconds=probe.integration.timeout):
                self._lose(key, probe)
        for name in {p.integration.name for p in probes.values()} | {b.integration for b in batch}:
            self._report_in_flight(name)

    def _examine(self, key: str, probe: InFlight, record: Record, now: datetime) -> None:
        """A found probe: measure once, then verify fields and (within its window) the owner."""
        template = self.config.templates[probe.run.template]
        first_sight = probe.detected_at is None
        detected_at = probe.detected_at = probe.detected_at or record.observed_at or now
        latency = measure_latency(probe.accepted_at, detected_at, record)
        if first_sight:
            self.store.update_probe(
                probe.probe_id,
                state=DETECTED,
                detected_at=detected_at,
                destination_created_at=record.created_at,
                destination_ref=record.record_id,
                latency_s=latency.seconds,
                latency_method=latency.method,
            )
            self.recent.setdefault(probe.integration.name, deque(maxlen=RECENT_LATENCIES))
            self.recent[probe.integration.name].append(latency.seconds)
        expected = template.render(
            template.expect, probe.probe_id, probe.email, self.config.probe_domain
        )
        differences = field_differences(expected, record)
        owner = (
            template.owner
            and template.render(
                {"owner": template.owner}, probe.probe_id, probe.email, self.config.probe_domain
            )["owner"]
        )
        routed = owner_matches(owner, record)
        waiting = now - detected_at < timedelta(seconds=probe.integration.routing_timeout)
        if not differences and not routed and waiting:
            return  # assignment rules may still run; look again next tick
        outcome = outcome_for(latency.seconds, probe.run.latency_objective, differences, routed)
        detail = "; ".join(differences) or (
            None if routed else f"OwnerId: want {owner!r}, got {record.owner!r}"
        )
        del self.in_flight[key][probe.probe_id]
        self.store.update_probe(probe.probe_id, state=VERIFIED, verified_at=now)
        result = Result(probe.probe_id, probe.integration.name, probe.run.template)
        self._conclude(result, outcome, None, latency.seconds, detail, clean=True)

    def _lose(self, key: str, probe: InFlight) -> None:
        """Not found by ``timeout``: lost, or skipped when we cannot prove it was accepted."""
        del self.in_flight[key][probe.probe_id]
        result = Result(probe.probe_id, probe.integration.name, probe.run.template)
        if probe.uncertain:
            why = "the daemon stopped while injecting; the source may never have accepted it"
            self._conclude(result, "skipped", "monitor", None, why, clean=True)
        else:
            why = f"not found within {probe.integration.timeout:g}s"
            self._conclude(result, "lost", "sync_lost", None, why, clean=True)

    def _conclude(
        self,
        result: Result,
        outcome: str,
        error_class: str | None,
        latency_s: float | None,
        detail: str | None,
        *,
        clean: bool,
    ) -> Result:
        """Record a probe's outcome, count it, and queue its clean-up (or finish it)."""
        now = self.clock.now()
        changes: dict[str, Any] = {"outcome": outcome, "error_class": error_class, "detail": detail}
        if not clean:
            changes["finished_at"] = now
        self.store.update_probe(result.probe_id, **changes)
        self.observer.probe_finished(
            result.integration, result.template, outcome, error_class, latency_s, now
        )
        if clean:
            self.cleaner.enqueue(result.probe_id)
        result.outcome, result.error_class = outcome, error_class
        result.latency_s, result.detail = latency_s, detail
        self.on_result(result)
        log.info(
            "probe finished",
            integration=result.integration,
            probe_id=result.probe_id,
            outcome=outcome,
            error_class=error_class,
            latency_s=None if latency_s is None else round(latency_s, 3),
        )
        return result

    def _report_in_flight(self, integration: str) -> None:
        count = sum(
            1
            for probes in self.in_flight.values()
            for probe in probes.values()
            if probe.integration.name == integration
        )
        self.observer.set_in_flight(integration, count)

    # -- resume --------------------------------------------------------------------------------

    def resume(self) -> int:
        """Pick up every unfinished probe from the store; returns how many were resumed."""
        resumed = 0
        for row in self.store.unfinished_probes():
            resumed += 1
            if row["outcome"] is not None:
                self.cleaner.enqueue(row["probe_id"])
                continue
            integration = self.config.integration(row["integration"])
            runs = integration.templates if integration else []
            run = next((r for r in runs if r.template == row["template"]), None)
            result = Result(row["probe_id"], row["integration"], row["template"])
            if integration is None or run is None:
                why = "its integration or template is no longer in the config"
                self._conclude(result, "skipped", "monitor", None, why, clean=True)
            elif row["state"] == SCHEDULED:
                why = "the daemon stopped before injecting it"
                self._conclude(result, "skipped", "monitor", None, why, clean=False)
            else:
                self._track(_in_flight_from_row(row, integration, run))
        return resumed


def _in_flight_from_row(
    row: dict[str, Any], integration: Integration, run: TemplateRun
) -> InFlight:
    uncertain = row["state"] == INJECTING
    accepted = row["accepted_at"] or row["injecting_at"]
    probe = InFlight(
        row["probe_id"], row["email"], integration, run, from_db_time(accepted), uncertain
    )
    if row["detected_at"]:
        probe.detected_at = from_db_time(row["detected_at"])
    return probe
