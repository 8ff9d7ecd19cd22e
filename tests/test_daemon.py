"""The daemon against the in-process sandbox on a virtual clock: the probe loop end to end.

Each test runs minutes (or hours) of virtual time in well under a second. The rig (see
``daemon_support``) points the demo config at the sandbox; scenarios and config edits bend it.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import math
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from daemon_support import Rig, make_rig
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

import syncwatch.daemon as daemon_module
from syncwatch.clock import VirtualClock
from syncwatch.daemon import (
    MAX_STARTS_PER_S,
    START_JITTER_S,
    Daemon,
    start_window,
    stop_on_signals,
)
from syncwatch.errors import StoreError
from syncwatch.events import ApiCall, QuotaFigure
from syncwatch.probing import PROBE_COST_ESTIMATE
from syncwatch.sandbox.scenario import FaultSpec, SalesforceSpec, Scenario
from syncwatch.store import Store, from_db_time
from syncwatch.vendors.base import Injection, Probe, SourceRef

INTEGRATION = "hubspot-to-salesforce"
TWIN = "hubspot-to-salesforce-twin"
SALESFORCE = "salesforce-demo"
EVERY = {"demo-request": 60.0, "content-download": 300.0}
SELF_CHECK = "http://selfcheck.test/ping"


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def default_logging() -> None:
    """structlog as shipped: a CLI test may have left it printing to a stream since closed."""
    structlog.reset_defaults()


def probes(store: Store) -> list[dict[str, Any]]:
    return list(store.db.query("SELECT * FROM probes ORDER BY scheduled_at"))


def calls(store: Store, operation: str | None = None) -> list[dict[str, Any]]:
    return [c for c in store.calls() if operation is None or c["operation"] == operation]


def seconds_since(start: datetime, stamp: str) -> float:
    return (from_db_time(stamp) - start).total_seconds()


def rig_start(rig: Rig) -> datetime:
    """When the rig's virtual clock (and so its sandbox) started."""
    return rig.clock.now() - timedelta(seconds=rig.clock.monotonic())


def add_twins(count: int) -> Callable[[dict[str, Any]], None]:
    """A config edit: ``count`` more integrations on the same two accounts as the demo's."""

    def edit(raw: dict[str, Any]) -> None:
        original = raw["integrations"][0]
        for n in range(count):
            twin = copy.deepcopy(original)
            twin["name"] = TWIN if count == 1 else f"{TWIN}-{n}"
            raw["integrations"].append(twin)

    return edit


def scenario(*faults: FaultSpec, salesforce: SalesforceSpec | None = None) -> Scenario:
    return Scenario(seed=5, faults=list(faults), salesforce=salesforce or SalesforceSpec())


def transport_daemon(rig: Rig, transport: httpx.AsyncBaseTransport) -> Daemon:
    """A daemon like ``rig.daemon()`` whose HTTP goes through ``transport``."""
    rng = random.Random(rig.seed)
    return Daemon(rig.config, rig.store, rig.clock, transport=transport, rng=rng, serve_http=False)


class HeldSource:
    """Wraps a source so every injection takes ``hold_s`` of virtual time, and watches them."""

    def __init__(self, inner: Any, clock: VirtualClock, hold_s: float, log: list[Any]) -> None:
        self.inner, self.clock, self.hold_s = inner, clock, hold_s
        self.log = log
        self.running = 0

    async def inject(self, probe: Probe) -> Injection:
        self.log.append(("start", self.clock.monotonic(), probe.probe_id))
        self.running += 1
        try:
            await self.clock.sleep(self.hold_s)
            return await self.inner.inject(probe)  # type: ignore[no-any-return]
        finally:
            self.running -= 1
            self.log.append(("end", self.clock.monotonic(), probe.probe_id))

    async def delete(self, refs: Sequence[SourceRef]) -> None:
        await self.inner.delete(refs)

    async def sweep(self, probe_domain: str, older_than: datetime) -> list[SourceRef]:
        return await self.inner.sweep(probe_domain, older_than)  # type: ignore[no-any-return]


# -- a healthy run -----------------------------------------------------------------------------


async def test_ten_minutes_of_the_demo_config_probe_ok_cheaply_and_leave_nothing(
    tmp_path: Path,
) -> None:
    """Ten virtual minutes: both templates ok, ≤ 3 calls per probe, nothing synthetic left."""
    rig = make_rig(tmp_path)
    with capture_logs() as logs:
        tally = await rig.run_for(600, drain_s=900)

    rows = probes(rig.store)
    by_template = Counter((row["template"], row["outcome"]) for row in rows)
    assert by_template == {("demo-request", "ok"): 10, ("content-download", "ok"): 2}
    assert tally.outcomes == {"ok": 12}
    assert all(row["latency_s"] > 0 for row in rows)
    total_calls = len(calls(rig.store))
    assert total_calls / len(rows) <= 3
    assert sum(tally.calls.values()) == total_calls
    state = await rig.sandbox_state()
    assert state["hubspot"]["synthetic"] == 0
    assert state["salesforce"]["synthetic"] == 0
    assert state["sync"]["pending"] == 0
    assert {row["state"] for row in rows} == {"cleaned"}
    assert all(row["finished_at"] for row in rows)
    probe_events = [e for e in logs if e["event"] in ("probe injected", "probe finished")]
    assert len(probe_events) == 2 * len(rows)
    assert all(e["integration"] == INTEGRATION and e["probe_id"] for e in probe_events)


async def test_two_integrations_on_one_salesforce_account_share_one_query_per_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two integrations on one Salesforce account: each poll tick is one query for both."""
    rig = make_rig(tmp_path, edit=add_twins(1))
    daemon = rig.daemon()
    assert list(daemon.adapters.destinations) == [f"{SALESFORCE}/Lead"]
    destination = daemon.adapters.destinations[f"{SALESFORCE}/Lead"]
    find = destination.find
    batches: list[tuple[float, set[str]]] = []

    async def watched_find(batch: Sequence[Probe]) -> Any:
        batches.append((rig.clock.monotonic(), {probe.integration for probe in batch}))
        return await find(batch)

    monkeypatch.setattr(destination, "find", watched_find)
    await rig.run_for(600, drain_s=900, daemon=daemon)

    queries = calls(rig.store, "query_records")
    startup_sweep = 1
    assert len(queries) == len(batches) + startup_sweep, "a poll tick made more than one query"
    assert len(queries) == len({query["at"] for query in queries}), "two queries at one instant"
    both = [names for _, names in batches if names == {INTEGRATION, TWIN}]
    assert len(both) >= len(batches) // 2, "ticks did not cover both integrations' probes"
    outcomes = Counter((row["integration"], row["outcome"]) for row in probes(rig.store))
    assert outcomes == {(INTEGRATION, "ok"): 12, (TWIN, "ok"): 12}
    assert len(batches) < 24, "batching: fewer queries than probes"


@pytest.mark.parametrize(
    ("every", "schedules", "window"),
    [
        (60.0, 3, START_JITTER_S),  # a few schedules: the first 10 s
        (5.0, 3, 5.0),  # never past the period
        (60.0, 2_000, START_JITTER_S),  # 200 a second fit in 10 s
        (60.0, 10_000, 10_000 / MAX_STARTS_PER_S),  # 50 s: 200 a second
        (60.0, 50_000, 60.0),  # the whole period, and no more
    ],
)
def test_first_starts_spread_with_the_number_of_schedules(
    every: float, schedules: int, window: float
) -> None:
    """Thousands of schedules start over as much of the period as keeps ~200 starts a second,
    so every later period is spread as evenly; a few start within 10 s, as a demo expects."""
    assert start_window(every, schedules) == pytest.approx(window)


async def test_each_schedule_runs_once_at_a_jittered_start_then_every_period(
    tmp_path: Path,
) -> None:
    """Each template's first probe comes within the start jitter, then one every ``every``."""
    rig = make_rig(tmp_path)
    start = rig.clock.now()
    await rig.run_for(900)

    first: dict[str, float] = {}
    for template, every in EVERY.items():
        offsets = [
            seconds_since(start, row["scheduled_at"])
            for row in probes(rig.store)
            if row["template"] == template
        ]
        first[template] = offsets[0]
        assert 0 <= offsets[0] <= START_JITTER_S
        gaps = [b - a for a, b in itertools.pairwise(offsets)]
        assert gaps == pytest.approx([every] * len(gaps), abs=1e-3)
        assert len(offsets) == math.floor((900 - offsets[0]) / every) + 1
    assert first["demo-request"] != first["content-download"], "starts are jittered apart"


@pytest.mark.parametrize("bound", [1, 3])
async def test_the_concurrency_bound_caps_injections_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bound: int
) -> None:
    """With eight schedules starting together, at most MAX_CONCURRENCY inject at once."""
    monkeypatch.setattr(daemon_module, "MAX_CONCURRENCY", bound)
    rig = make_rig(tmp_path, edit=add_twins(3))
    daemon = rig.daemon()
    log: list[Any] = []
    held = {
        name: HeldSource(source, rig.clock, 20.0, log)
        for name, source in daemon.adapters.sources.items()
    }
    daemon.adapters.sources.update(held)
    await rig.run_for(300, daemon=daemon)

    concurrent = running = 0
    for kind, _at, _probe in log:  # in the order they happened
        running += 1 if kind == "start" else -1
        concurrent = max(concurrent, running)
    assert concurrent == bound
    starts = [entry[2] for entry in log if entry[0] == "start"]
    assert len(starts) >= 8
    assert sorted(starts) == sorted(entry[2] for entry in log if entry[0] == "end")


# -- stopping --------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_stops_scheduling_finishes_the_step_and_persists(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """SIGTERM/SIGINT: no new injection, the one in progress completes, in-flight stays stored."""
    rig = make_rig(tmp_path)
    daemon = rig.daemon()
    log: list[Any] = []
    source = HeldSource(daemon.adapters.sources[INTEGRATION], rig.clock, 20.0, log)
    daemon.adapters.sources[INTEGRATION] = source
    stop = asyncio.Event()
    restore = stop_on_signals(stop)
    try:
        with capture_logs() as logs:
            task = asyncio.ensure_future(daemon.run(stop))
            await rig.clock.advance(180)
            while source.running == 0:
                await rig.clock.advance(1)
            await rig.clock.advance(5)  # into the held injection
            held_probe = log[-1][2]
            os.kill(os.getpid(), signum)
            for _ in range(1000):
                if stop.is_set():
                    break
                await asyncio.sleep(0)
            assert stop.is_set(), f"{signum.name} did not set the stop event"
            signalled = rig.clock.monotonic()
            while not task.done():
                await rig.clock.advance(1)
            tally = task.result()
    finally:
        restore()

    assert all(at <= signalled for kind, at, _ in log if kind == "start")
    ended = [at for kind, at, probe_id in log if kind == "end" and probe_id == held_probe]
    assert ended and ended[0] > signalled, "the injection in progress was not finished"
    held_row = rig.store.get_probe(held_probe)
    assert held_row is not None
    assert held_row["state"] == "in_flight" and held_row["accepted_at"] is not None
    unfinished = [row for row in rig.store.unfinished_probes() if row["outcome"] is None]
    assert held_probe in {row["probe_id"] for row in unfinished}
    assert all(row["finished_at"] is None for row in unfinished)
    stopped = [event for event in logs if event["event"] == "stopped"]
    assert len(stopped) == 1 and logs[-1] is stopped[0]
    assert stopped[0]["outcomes"] == dict(tally.outcomes)
    assert stopped[0]["in_flight"] == len(unfinished)
    assert stopped[0]["calls"] == dict(tally.calls)
    assert sum(stopped[0]["calls"].values()) == len(calls(rig.store))
    assert rig.daemon().engine.resume() == len(rig.store.unfinished_probes())


async def test_launches_queued_behind_the_bound_when_stopped_are_never_injected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped with probes waiting for a slot: the one injecting ends, the queued never start."""
    monkeypatch.setattr(daemon_module, "MAX_CONCURRENCY", 1)
    rig = make_rig(tmp_path, edit=add_twins(3))
    daemon = rig.daemon()
    log: list[Any] = []
    daemon.adapters.sources.update(
        {
            name: HeldSource(source, rig.clock, 20.0, log)
            for name, source in daemon.adapters.sources.items()
        }
    )
    await rig.run_for(150, daemon=daemon)

    starts = [at for kind, at, _ in log if kind == "start"]
    assert starts and max(starts) < 150
    assert sum(1 for kind, *_ in log if kind == "end") == len(starts)
    never_started = [row for row in probes(rig.store) if row["state"] == "scheduled"]
    assert not never_started, "a queued launch wrote its probe row after the stop"
    assert len(starts) < 150 / 20 + 1


# -- quota -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reserve", "max_share", "reason"),
    [(990, 1.0, "under the reserve of 990"), (0, 0.01, "share today")],
    ids=["reserve", "max_share"],
)
async def test_the_quota_guard_skips_probes_before_the_salesforce_allowance_runs_low(
    tmp_path: Path, reserve: int, max_share: float, reason: str
) -> None:
    """A 1,000-call Salesforce day: probes are skipped (quota_guard) before the monitor hurts."""

    def edit(raw: dict[str, Any]) -> None:
        raw["accounts"][1]["quota"] = {"reserve": reserve, "max_share": max_share}

    rig = make_rig(tmp_path, scenario(salesforce=SalesforceSpec(daily_limit=1000)), edit)
    start = rig.clock.now()
    await rig.run_for(1800, drain_s=900)

    rows = probes(rig.store)
    skipped = [row for row in rows if row["outcome"] == "skipped"]
    assert skipped and all(row["error_class"] == "quota_guard" for row in skipped)
    assert all(reason in row["detail"] and SALESFORCE in row["detail"] for row in skipped)
    assert {row["outcome"] for row in rows} == {"ok", "skipped"}
    first_skip = min(from_db_time(row["scheduled_at"]) for row in skipped)
    ran_after = [
        row
        for row in rows
        if row["outcome"] != "skipped" and from_db_time(row["scheduled_at"]) > first_skip
    ]
    # The share holds calls back for the probes in flight: a probe launched while another is
    # out may be skipped and the next one, once it is in, run; never more than that.
    assert len(ran_after) <= (1 if reason == "share today" else 0)
    spent = rig.store.count_calls(SALESFORCE, start, start + timedelta(days=1))
    assert spent == len(list(rig.store.calls(SALESFORCE)))
    assert spent <= 10 + 2 * PROBE_COST_ESTIMATE, "the monitor kept spending the allowance"
    skipped_ids = {row["probe_id"] for row in skipped}
    assert not [c for c in rig.store.calls() if c["probe_id"] in skipped_ids]


async def test_probes_resume_once_the_salesforce_allowance_has_recovered(tmp_path: Path) -> None:
    """Skipped for the reserve, probing resumes within hours of the vendor's rolling day passing."""

    def edit(raw: dict[str, Any]) -> None:
        raw["accounts"][1]["quota"] = {"reserve": 990, "max_share": 1.0}
        integration = raw["integrations"][0]
        integration["templates"] = [
            {"template": "demo-request", "every": "10m", "latency_objective": "5m"}
        ]

    rig = make_rig(tmp_path, scenario(salesforce=SalesforceSpec(daily_limit=1000)), edit)
    await rig.run_for(27 * 3600, step_s=3600)

    rows = probes(rig.store)
    tripped = min(r["scheduled_at"] for r in rows if r["error_class"] == "quota_guard")
    assert seconds_since(rig_start(rig), tripped) < 2 * 3600
    last_call = max(c["at"] for c in rig.store.calls(SALESFORCE) if c["at"] < tripped)
    recovered = seconds_since(rig_start(rig), last_call) + 24 * 3600  # out of the rolling day
    late = [r for r in rows if seconds_since(rig_start(rig), r["scheduled_at"]) > recovered + 3600]
    assert late and any(r["outcome"] == "ok" for r in late)


# -- faults: the daemon survives, classifies, and recovers -------------------------------------


class OurNetwork(httpx.AsyncBaseTransport):
    """The sandbox behind our own network, which is down during ``down`` (monotonic seconds).

    The self-check host answers 204 while the network is up. Vendor hosts fail only once a
    self-check has seen the outage: the daemon can know it is its own fault from then on.
    """

    def __init__(
        self, inner: httpx.AsyncBaseTransport, clock: VirtualClock, down: tuple[float, float]
    ) -> None:
        self.inner, self.clock, self.down = inner, clock, down
        self.check_failing = False
        self.checks: list[tuple[float, bool]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.monotonic()
        down = self.down[0] <= now < self.down[1]
        if request.url.host == "selfcheck.test":
            self.checks.append((now, not down))
            self.check_failing = down
            if not down:
                return httpx.Response(204, request=request)
        if down and self.check_failing:
            raise httpx.ConnectError("[Errno 101] Network is unreachable", request=request)
        return await self.inner.handle_async_request(request)


async def test_while_the_self_check_fails_transport_errors_are_the_monitors(
    tmp_path: Path,
) -> None:
    """Our network down (self-check failing too): calls are `monitor`, probes `skipped`."""

    def edit(raw: dict[str, Any]) -> None:
        raw["self_check_url"] = SELF_CHECK

    rig = make_rig(tmp_path, edit=edit)
    network = OurNetwork(rig.transport(), rig.clock, down=(120.0, 330.0))
    daemon = transport_daemon(rig, network)
    with capture_logs() as logs:
        await rig.run_for(900, drain_s=900, daemon=daemon)

    assert any(not healthy for _, healthy in network.checks)
    assert network.checks[-1][1] and daemon.network.ok
    failed = [call for call in calls(rig.store) if call["error_class"] is not None]
    assert failed and {call["error_class"] for call in failed} == {"monitor"}
    assert {call["operation"] for call in failed} >= {"submit_form"}
    rows = probes(rig.store)
    outcomes = Counter((row["outcome"], row["error_class"]) for row in rows)
    assert outcomes[("skipped", "monitor")] >= 2
    assert set(outcomes) == {("ok", None), ("skipped", "monitor")}
    assert all(
        row["outcome"] == "ok"
        for row in rows
        if seconds_since(rig_start(rig), row["scheduled_at"]) > 360
    )
    changes = [event["healthy"] for event in logs if event["event"] == "self-check changed"]
    assert changes == [False, True]


async def test_a_malformed_salesforce_does_not_kill_the_daemon(tmp_path: Path) -> None:
    """Five minutes of HTML instead of JSON from Salesforce: recorded `malformed`, then ok."""
    rig = make_rig(
        tmp_path, scenario(FaultSpec(kind="malformed", vendor="salesforce", duration=300))
    )
    with capture_logs() as logs:
        tally = await rig.run_for(900, drain_s=900)

    malformed = [call for call in calls(rig.store) if call["error_class"] == "malformed"]
    assert malformed and all(seconds_since(rig_start(rig), c["at"]) < 300 for c in malformed)
    assert {call["account"] for call in malformed} == {SALESFORCE}
    assert tally.outcomes == {"ok": len(probes(rig.store))}
    assert not [event for event in logs if event["event"] == "unexpected failure; carrying on"]
    assert {row["state"] for row in probes(rig.store)} == {"cleaned"}
    state = await rig.sandbox_state()
    assert state["hubspot"]["synthetic"] == state["salesforce"]["synthetic"] == 0


async def test_an_expired_salesforce_token_costs_one_token_call(tmp_path: Path) -> None:
    """Salesforce revokes our token mid-run: one 401, one new token, the call retried, all ok."""
    rig = make_rig(
        tmp_path, scenario(FaultSpec(kind="token_expiry", vendor="salesforce", after=300))
    )
    tally = await rig.run_for(900, drain_s=900)

    salesforce = list(rig.store.calls(SALESFORCE))
    tokens = [i for i, call in enumerate(salesforce) if call["operation"] == "request_token"]
    refused = [i for i, call in enumerate(salesforce) if call["error_class"] is not None]
    assert len(tokens) == 2 and len(refused) == 1
    assert (
        salesforce[refused[0]]["error_class"] == "auth" and salesforce[refused[0]]["status"] == 401
    )
    assert tokens[1] == refused[0] + 1, "the new token was not fetched right after the 401"
    retried = salesforce[tokens[1] + 1]
    assert retried["operation"] == salesforce[refused[0]]["operation"]
    assert retried["error_class"] is None
    assert tally.outcomes["ok"] > 0
    assert sum(tally.outcomes.values()) == len(probes(rig.store))
    assert set(tally.outcomes) <= {"ok", "slow"}, "the expiry cost a probe"


class RetryAfterUntil(httpx.AsyncBaseTransport):
    """Adds ``Retry-After`` to the sandbox's 429s: the seconds left until ``until``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: VirtualClock, until: float) -> None:
        self.inner, self.clock, self.until = inner, clock, until
        self.sent: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if response.status_code == 429:
            wait = math.ceil(self.until - self.clock.monotonic())
            response.headers["Retry-After"] = str(wait)
            self.sent.append(wait)
        return response


async def test_a_hubspot_429_is_retried_after_its_retry_after(tmp_path: Path) -> None:
    """A 30 s HubSpot burst limit whose 429 says Retry-After: the retry waits that long, ok."""
    burst = FaultSpec(kind="rate_limit", vendor="hubspot", after=120, duration=30)
    rig = make_rig(tmp_path, scenario(burst))
    transport = RetryAfterUntil(rig.transport(), rig.clock, until=150.0)
    daemon = transport_daemon(rig, transport)
    tally = await rig.run_for(600, drain_s=900, daemon=daemon)

    submits = calls(rig.store, "submit_form")
    limited = [i for i, call in enumerate(submits) if call["error_class"] == "rate_limited"]
    assert len(limited) == 1 and len(transport.sent) == 1
    first, retry = submits[limited[0]], submits[limited[0] + 1]
    assert retry["probe_id"] == first["probe_id"] and retry["error_class"] is None
    waited = (from_db_time(retry["at"]) - from_db_time(first["at"])).total_seconds()
    assert waited == pytest.approx(transport.sent[0], abs=1e-3)
    assert tally.outcomes == {"ok": len(probes(rig.store))}


# -- what the daemon reports -------------------------------------------------------------------


def samples(daemon: Daemon) -> list[tuple[str, dict[str, str], float]]:
    body, _ = daemon.metrics.render()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    ]


def value(found: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    matches = [v for n, got, v in found if n == name and got == labels]
    assert len(matches) == 1, f"{name}{labels}: {len(matches)} samples"
    return matches[0]


async def test_metrics_after_a_run_add_up_to_the_store(tmp_path: Path) -> None:
    """/metrics after ten minutes: probes, latencies, calls and quota match the store."""
    rig = make_rig(tmp_path)
    daemon = rig.daemon()
    await rig.run_for(600, drain_s=900, daemon=daemon)
    found = samples(daemon)
    rows = probes(rig.store)

    for template in EVERY:
        ok = sum(1 for row in rows if row["template"] == template and row["outcome"] == "ok")
        assert ok > 0
        labels = {"integration": INTEGRATION, "template": template}
        assert value(found, "syncwatch_probes_total", **labels, outcome="ok") == ok
        assert value(found, "syncwatch_probes_total", **labels, outcome="lost") == 0
        assert value(found, "syncwatch_sync_latency_seconds_count", **labels) == ok
    stored = Counter(
        (c["vendor"], c["account"], c["operation"], c["error_class"] or "ok")
        for c in rig.store.calls()
    )
    counted = {
        (got["vendor"], got["account"], got["operation"], got["result"]): v
        for name, got, v in found
        if name == "syncwatch_api_requests_total" and v
    }
    assert counted == stored
    quota = rig.store.quota_reading(SALESFORCE, "api-usage")
    assert quota is not None
    window = {"account": SALESFORCE, "window": "api-usage"}
    assert value(found, "syncwatch_api_quota_used", **window) == quota.used
    assert value(found, "syncwatch_api_quota_limit", **window) == 100_000
    assert value(found, "syncwatch_probes_in_flight", integration=INTEGRATION) == 0
    last = max(from_db_time(row["verified_at"]) for row in rows)
    assert value(
        found, "syncwatch_last_probe_timestamp_seconds", integration=INTEGRATION
    ) == pytest.approx(last.timestamp())
    ids = {row["probe_id"] for row in rows}
    for _name, labels, _value in found:
        for label in labels.values():
            assert "syncwatch+" not in label and label not in ids


async def test_a_blocked_event_loop_shows_as_lag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lag sampler runs on the real loop: 0.2 s of blocking work is a sample of >= 0.1 s."""
    monkeypatch.setattr(daemon_module, "LOOP_LAG_EVERY_S", 0.02)
    rig = make_rig(tmp_path)
    daemon = rig.daemon()
    stop = asyncio.Event()
    task = asyncio.ensure_future(daemon.run(stop))
    await asyncio.sleep(0.05)  # real time: the sampler has slept at least once
    time.sleep(0.2)  # noqa: ASYNC251 - the point: work that blocks the loop
    await asyncio.sleep(0.05)
    stop.set()
    while not task.done():
        await rig.clock.advance(1.0)
    await task
    found = samples(daemon)
    assert value(found, "syncwatch_event_loop_lag_seconds_count") >= 2
    assert value(found, "syncwatch_event_loop_lag_seconds_bucket", le="0.1") < value(
        found, "syncwatch_event_loop_lag_seconds_count"
    )


async def test_a_failing_store_makes_the_daemon_unready_not_dead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes failing for three minutes: /readyz says the store is not writable, then recovers."""
    rig = make_rig(tmp_path)
    daemon = rig.daemon()
    record = rig.store.record_call

    def failing(call: ApiCall, other_windows: tuple[QuotaFigure, ...] = ()) -> None:
        if 120 <= rig.clock.monotonic() < 300:
            raise StoreError("disk I/O error")
        record(call, other_windows)

    monkeypatch.setattr(rig.store, "record_call", failing)
    readiness: dict[float, dict[str, Any]] = {}

    def sample(elapsed: float) -> None:
        readiness[elapsed] = daemon.health.ready()[1]

    tally = await rig.run_for(600, drain_s=900, daemon=daemon, during=sample, step_s=30)

    for elapsed, body in readiness.items():
        if 180 <= elapsed <= 300:
            assert body["checks"]["store"] is False, elapsed
            assert "disk I/O error" in body["reasons"]["store"]
        elif elapsed >= 390 or elapsed <= 90:
            assert body["status"] == "ready", (elapsed, body)
    lost = [c for c in rig.store.calls() if 120 <= seconds_since(rig_start(rig), c["at"]) < 300]
    assert not lost
    assert sum(tally.calls.values()) > len(calls(rig.store))
    assert tally.outcomes == {"ok": len(probes(rig.store))}
    assert daemon.health.ready()[0]


async def test_a_store_outage_while_probes_are_found_forgets_none_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every store write failing for 200 s: afterwards every probe concludes, nothing is left."""
    rig = make_rig(tmp_path)
    daemon = rig.daemon()
    for name in ("insert_probe", "update_probe", "record_call"):
        write = getattr(rig.store, name)

        def failing(*args: Any, _write: Any = write, **kwargs: Any) -> Any:
            if 100 <= rig.clock.monotonic() < 300:
                raise StoreError("database or disk is full")
            return _write(*args, **kwargs)

        monkeypatch.setattr(rig.store, name, failing)
    await rig.run_for(900, drain_s=900, daemon=daemon)

    assert not [row for row in rig.store.unfinished_probes() if row["outcome"] is None]
    state = await rig.sandbox_state()
    assert state["hubspot"]["synthetic"] == state["salesforce"]["synthetic"] == 0


async def test_a_store_failing_from_the_start_is_reported_after_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the start-up sweep's calls cannot be recorded, start-up does not claim a good store."""
    rig = make_rig(tmp_path)
    daemon = rig.daemon()

    def failing(call: ApiCall, other_windows: tuple[QuotaFigure, ...] = ()) -> None:
        raise StoreError("database or disk is full")

    monkeypatch.setattr(rig.store, "record_call", failing)
    await daemon.start()
    try:
        ok, body = daemon.health.ready()
        assert not ok and body["checks"] == {"config": True, "store": False, "scheduler": True}
        assert "disk is full" in body["reasons"]["store"]
    finally:
        await daemon.shutdown([])


async def test_a_paused_sync_shows_as_overdue_probes_long_before_any_is_lost(
    tmp_path: Path,
) -> None:
    """With the connector paused, probes in flight past their 5-minute objective are counted
    in syncwatch_probes_overdue within minutes (the 2 h timeout is far off), and the count
    falls back to zero once the backlog is delivered."""
    pause = FaultSpec.model_validate({"kind": "sync_pause", "after": "10m", "for": "30m"})
    rig = make_rig(tmp_path, Scenario(seed=5, faults=[pause]))
    daemon = rig.daemon()
    seen: list[float] = []

    def overdue(_elapsed: float) -> None:
        seen.append(
            value(
                samples(daemon),
                "syncwatch_probes_overdue",
                integration=INTEGRATION,
                template="demo-request",
            )
        )

    await rig.run_for(75 * 60, daemon=daemon, during=overdue)
    assert max(seen[:9]) == 0  # before the pause (and its first five minutes)
    assert seen[24] >= 10  # minute 25: every demo-request probe since minute 10, less five
    assert seen[-1] == 0
    assert not [row for row in probes(rig.store) if row["outcome"] == "lost"]


async def test_a_daemon_without_figures_or_probe_metrics_keeps_none_and_probes_the_same(
    tmp_path: Path,
) -> None:
    """``syncwatch simulate`` serves no /metrics or /status, so its daemon keeps no month to
    date and counts no probes or calls in metrics; what it probes, calls and stores is the
    same as with both kept."""
    rows: list[list[tuple[Any, ...]]] = []
    for kept in (True, False):
        (tmp_path / str(kept)).mkdir()
        rig = make_rig(tmp_path / str(kept))
        daemon = rig.daemon(contract_figures=kept, probe_metrics=kept)
        await rig.run_for(1800, daemon=daemon, drain_s=600)
        figures = daemon.metrics.contracts.figures()
        assert (daemon.month_to_date is not None) is kept
        assert (figures.get("hubspot-demo", (None, None))[0] is not None) is kept
        counted = [
            v
            for name, _, v in samples(daemon)
            if name in ("syncwatch_probes_total", "syncwatch_api_requests_total") and v
        ]
        assert bool(counted) is kept
        rows.append(
            rig.store.db.execute(
                "SELECT integration, template, scheduled_at, outcome, latency_s FROM probes "
                "ORDER BY scheduled_at"
            ).fetchall()
            + rig.store.db.execute(
                "SELECT at, operation, status, error_class FROM api_calls ORDER BY id"
            ).fetchall()
        )
    assert rows[0] == rows[1] and len(rows[0]) > 20
