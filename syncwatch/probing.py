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

import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

import structlog

from syncwatch.cleanup import Cleaner
from syncwatch.clock import Clock, Wakeup
from syncwatch.config import Config, Integration, QuotaPolicy, TemplateRun
from syncwatch.errors import StoreError, VendorError, attribution
from syncwatch.in_flight import InFlight, Tick
from syncwatch.lifecycle import (
    DETECTED,
    IN_FLIGHT,
    INJECTING,
    SCHEDULED,
    VERIFIED,
    Latency,
    field_differences,
    measure_latency,
    outcome_for,
    owner_matches,
    typical_latency,
)
from syncwatch.quota import READING_TRUSTED_FOR, guard_verdict
from syncwatch.store import Store, from_db_time
from syncwatch.vendors.base import Probe, Record, probe_email
from syncwatch.vendors.registry import Adapters, destination_key

log = structlog.get_logger("syncwatch.probing")

PROBE_COST_ESTIMATE = 3.0
"""Calls one probe is expected to cost an account (the target of issue #3), for the guard."""
TRAILING_DAY = timedelta(days=1)
"""The window of our own calls the quota guard counts against the share."""
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
    observer: ProbeObserver | None
    """None: a daemon that keeps no probe metrics (``syncwatch simulate``)."""
    rng: random.Random = field(default_factory=random.Random)
    in_flight: dict[str, dict[str, InFlight]] = field(default_factory=dict)
    """By destination key, then probe id."""
    _per_integration: Counter[str] = field(default_factory=Counter, init=False)
    _per_account: Counter[str] = field(default_factory=Counter, init=False)
    _ticks: dict[str, Tick] = field(default_factory=dict, init=False)
    _guarded: dict[str, list[tuple[str, QuotaPolicy, str]]] = field(
        default_factory=dict, init=False
    )
    recent: dict[str, deque[float]] = field(default_factory=dict)
    on_result: Callable[[Result], None] = lambda _result: None
    work_added: Wakeup = field(default_factory=Wakeup)
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
        row = {
            "probe_id": probe_id,
            "integration": integration.name,
            "template": run.template,
            "email": email,
            "scheduled_at": now,
        }
        refusal = self._guard(integration)
        if refusal is not None:
            self.store.insert_probe({**row, "state": SCHEDULED})
            bound.warning("probe skipped by the quota guard", reason=refusal)
            return self._conclude(result, "skipped", "quota_guard", None, refusal, clean=False)
        # Written, and committed, before the inject call is sent: a crash from here on leaves
        # an ``injecting`` probe that the next start looks for before it would ever inject.
        self.store.insert_probe({**row, "state": INJECTING, "injecting_at": now})
        template = self.config.templates[run.template]
        fields = template.render(template.fields, probe_id, email, self.config.probe_domain)
        probe = Probe(probe_id, email, integration.name, fields)
        try:
            injection = await self.adapters.sources[integration.name].inject(probe)
        except VendorError as exc:
            outcome = "skipped" if attribution(exc.error_class) == "monitor" else "rejected"
            bound.warning("injection failed", error_class=exc.error_class, error=str(exc))
            return self._conclude(result, outcome, exc.error_class, None, str(exc), clean=True)
        except Exception as exc:  # a bug of ours: the probe must still end, and be cleaned up
            bound.exception("injection crashed")
            why = f"internal error while injecting: {type(exc).__name__}"
            return self._conclude(result, "skipped", "monitor", None, why, clean=True)
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
        for name, quota, window in self._guarded_accounts(integration):
            daily = self.store.quota_reading(name, window)
            # Only a call refreshes a figure: once it is stale the reserve lets one probe
            # through to look again; the share, counted from our own calls, still applies.
            fresh = daily is not None and now - daily.observed_at <= READING_TRUSTED_FOR
            verdict = guard_verdict(
                reserve=quota.reserve,
                max_share=quota.max_share,
                daily=daily.as_figure() if daily else None,
                own_calls_today=self.store.calls_since(name, now - TRAILING_DAY),
                probe_cost=PROBE_COST_ESTIMATE,
                # What the probes still in flight have yet to spend (their polls and deletes),
                # and one probe's worth kept for the calls no guard stops (the daily sweep, a
                # token refresh): the share holds once all of them are made.
                committed=PROBE_COST_ESTIMATE * (self._in_flight_on(name) + 1),
                remaining_known=fresh,
            )
            if verdict is not None:
                return f"{name}: {verdict}"
        return None

    def _guarded_accounts(self, integration: Integration) -> list[tuple[str, QuotaPolicy, str]]:
        """The source's and the destination's name, quota policy and daily window: fixed by
        the config, so looked up once per integration rather than before every probe."""
        found = self._guarded.get(integration.name)
        if found is None:
            found = []
            for name in (integration.source.account, integration.destination.account):
                account = self.config.account(name)
                assert account is not None
                found.append((name, account.quota, self.adapters.daily_windows[name]))
            self._guarded[integration.name] = found
        return found

    def _in_flight_on(self, account: str) -> int:
        """Probes in flight whose source or destination is ``account``."""
        return self._per_account[account]

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
        self._add_in_flight(destination_key(probe.integration), probe)
        self.work_added.set()

    # -- the probes in flight, and counts kept beside them ------------------------------------
    # The guard, the in-flight gauge and the poll loop ask on every launch; counting by scanning
    # every probe in flight made each launch cost O(probes in flight), a square law that stopped
    # the daemon between 1,000 and 10,000 integrations (bench/RESULTS.md).

    def _add_in_flight(self, key: str, probe: InFlight) -> None:
        self.in_flight.setdefault(key, {})[probe.probe_id] = probe
        self._count_in_flight(probe, 1)
        tick = self._ticks.get(key)
        if tick is not None:
            tick.add(probe)

    def _drop_in_flight(self, key: str, probe: InFlight) -> None:
        del self.in_flight[key][probe.probe_id]
        self._count_in_flight(probe, -1)
        self._ticks.pop(key, None)

    def _count_in_flight(self, probe: InFlight, step: int) -> None:
        integration = probe.integration
        self._per_integration[integration.name] += step
        for account in {integration.source.account, integration.destination.account}:
            self._per_account[account] += step
        self._report_in_flight(integration.name)

    # -- polling -----------------------------------------------------------------------------

    def overdue(self, now: datetime) -> Counter[tuple[str, str]]:
        """In-flight probes older than their template's latency objective, by (integration,
        template): whatever happens next they are slow, so a stalled sync shows here long
        before its first probe is declared lost at the timeout."""
        counts: Counter[tuple[str, str]] = Counter()
        for probes in self.in_flight.values():
            for probe in probes.values():
                if probe.detected_at is None and (
                    (now - probe.accepted_at).total_seconds() > probe.run.latency_objective
                ):
                    counts[probe.integration.name, probe.run.template] += 1
        return counts

    def in_flight_count(self) -> int:
        return sum(len(probes) for probes in self.in_flight.values())

    def next_poll_at(self, key: str) -> datetime | None:
        """When the destination ``key`` next needs a query; None while nothing is in flight."""
        probes = self.in_flight.get(key)
        if not probes:
            return None
        tick = self._ticks.get(key)
        if tick is None:
            tick = self._ticks[key] = Tick.of(probes.values())
        return tick.when()

    async def poll(self, key: str) -> None:
        """One batched query for every probe in flight at this destination, then decide."""
        # Only the probes this query asks about are judged by it: one launched while it is out
        # keeps its own first look.
        probes = list(self.in_flight.get(key, {}).values())
        if not probes:
            return
        batch = [Probe(p.probe_id, p.email, p.integration.name) for p in probes]
        try:
            found = await self.adapters.destinations[key].find(batch)
        except VendorError as exc:
            # A failed query is not a look: nobody is lost on it (the sync may be fine while the
            # CRM's API is down). Look again at the steady cadence.
            log.warning("destination query failed", destination=key, error_class=exc.error_class)
            for probe in probes:
                probe.last_look = self.clock.now()
            self._ticks.pop(key, None)
            return
        now, tracked = self.clock.now(), self.in_flight.get(key, {})
        looked = [probe for probe in probes if probe.probe_id in tracked]  # not concluded meanwhile
        for probe in looked:
            probe.last_look = now  # first, so a failing write cannot make the next tick come early
        self._ticks.pop(key, None)
        failure: StoreError | None = None
        for probe in looked:
            try:
                self._judge(key, probe, found.get(probe.probe_id), now)
            except StoreError as exc:  # this probe stays in flight; the others go on
                failure = failure or exc
        for name in {p.integration.name for p in probes}:
            self._report_in_flight(name)
        if failure is not None:
            raise failure

    def _judge(self, key: str, probe: InFlight, record: Record | None, now: datetime) -> None:
        if record is not None:
            self._examine(key, probe, record, now)
        elif now - probe.accepted_at >= timedelta(seconds=probe.integration.timeout):
            self._lose(key, probe)

    def _examine(self, key: str, probe: InFlight, record: Record, now: datetime) -> None:
        """A found probe: measure once, then verify fields and (within its window) the owner.

        The store is written before memory changes, so a store that refuses a write leaves the
        probe in flight, to be examined again at the next tick, never forgotten.
        """
        template = self.config.templates[probe.run.template]
        if probe.latency is None or probe.detected_at is None:
            self._detect(probe, record, now)
        assert probe.latency is not None and probe.detected_at is not None
        render = partial(template.render, probe_id=probe.probe_id, email=probe.email)
        domain = self.config.probe_domain
        differences = field_differences(render(template.expect, domain=domain), record)
        owner = (
            render({"owner": template.owner}, domain=domain)["owner"] if template.owner else None
        )
        routed = owner_matches(owner, record)
        waiting = now - probe.detected_at < timedelta(seconds=probe.integration.routing_timeout)
        if not differences and not routed and waiting:
            return  # assignment rules may still run; look again next tick
        outcome = outcome_for(
            probe.latency.seconds, probe.run.latency_objective, differences, routed
        )
        notes = [*differences]
        if not routed:
            notes.append(f"OwnerId: want {owner!r}, got {record.owner!r}")
        if record.duplicate_ids:
            notes.append(f"the connector created {1 + len(record.duplicate_ids)} records")
        result = Result(probe.probe_id, probe.integration.name, probe.run.template)
        self._conclude(
            result,
            outcome,
            None,
            probe.latency.seconds,
            "; ".join(notes) or None,
            clean=True,
            state=VERIFIED,
            verified_at=now,
            destination_ref=",".join((record.record_id, *record.duplicate_ids)),
        )
        self._drop_in_flight(key, probe)

    def _detect(self, probe: InFlight, record: Record, now: datetime) -> None:
        detected_at = record.observed_at or now
        latency = measure_latency(probe.accepted_at, detected_at, record)
        self.store.update_probe(
            probe.probe_id,
            state=DETECTED,
            detected_at=detected_at,
            destination_created_at=record.created_at,
            destination_ref=record.record_id,
            latency_s=latency.seconds,
            latency_method=latency.method,
        )
        probe.detected_at, probe.latency = detected_at, latency
        self.recent.setdefault(probe.integration.name, deque(maxlen=RECENT_LATENCIES))
        self.recent[probe.integration.name].append(latency.seconds)

    def _lose(self, key: str, probe: InFlight) -> None:
        """Not found by ``timeout``: lost, or skipped when we cannot prove it was accepted."""
        result = Result(probe.probe_id, probe.integration.name, probe.run.template)
        if probe.uncertain:
            why = "the daemon stopped while injecting; the source may never have accepted it"
            self._conclude(result, "skipped", "monitor", None, why, clean=True)
        else:
            why = f"not found within {probe.integration.timeout:g}s"
            self._conclude(result, "lost", "sync_lost", None, why, clean=True)
        self._drop_in_flight(key, probe)

    def _conclude(
        self,
        result: Result,
        outcome: str,
        error_class: str | None,
        latency_s: float | None,
        detail: str | None,
        *,
        clean: bool,
        **more: Any,
    ) -> Result:
        """Record a probe's outcome (with ``more`` columns, in one write), count it, and queue
        its clean-up (or finish it)."""
        now = self.clock.now()
        changes: dict[str, Any] = {
            "outcome": outcome,
            "error_class": error_class,
            "detail": detail,
            **more,
        }
        if not clean:
            changes["finished_at"] = now
        self.store.update_probe(result.probe_id, **changes)
        if self.observer is not None:
            self.observer.probe_finished(
                result.integration, result.template, outcome, error_class, latency_s, now
            )
        if clean:
            self.cleaner.enqueue(result.probe_id, queued_at=now)
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
        if self.observer is not None:
            self.observer.set_in_flight(integration, self._per_integration[integration])

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
    if row["detected_at"] and row["latency_s"] is not None:
        probe.detected_at = from_db_time(row["detected_at"])
        probe.latency = Latency(row["latency_s"], row["latency_method"])
    return probe
