"""The probe engine end to end: the in-process sandbox, the real adapters, virtual time.

Each outcome of DESIGN §4 is produced by a sandbox fault (or a config edit) and checked in the
``Result`` and in the store row, which is what a claim is later built from.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import structlog
from daemon_support import REPO, Rig, make_rig
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from syncwatch.clock import settle
from syncwatch.daemon import Daemon
from syncwatch.events import QuotaReading
from syncwatch.in_flight import InFlight, Tick, coalesced_tick
from syncwatch.probing import ProbeEngine, Result
from syncwatch.sandbox.scenario import FaultSpec, LatencySpec, SalesforceSpec, Scenario, SyncSpec
from syncwatch.store import from_db_time
from syncwatch.vendors.base import Probe, Record, probe_email
from syncwatch.vendors.registry import destination_key

T = TypeVar("T")
DEFAULT_OWNER = SalesforceSpec().default_owner_id
OTHER_OWNER = "0055e000009ZzZzAAQ"
Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(autouse=True)
def default_logging() -> None:
    """structlog as shipped: a CLI test may have left it printing to a stream since closed."""
    structlog.reset_defaults()


async def drive(clock: Any, step: Awaitable[T]) -> T:
    """Await ``step`` while moving virtual time, so retries and throttles can sleep."""
    task = asyncio.ensure_future(step)
    await settle()
    while not task.done():
        await clock.advance(1.0)
    return task.result()


def short_timeout(raw: dict[str, Any]) -> None:
    """A 10-minute timeout (content-download's objective pulled under it, as config requires)."""
    integration = raw["integrations"][0]
    integration["timeout"] = "10m"
    integration["templates"][1]["latency_objective"] = "8m"


def with_owner(tmp_path: Path, owner: str) -> Edit:
    """Templates copied to ``tmp_path`` with demo-request expecting ``owner``."""
    probes = tmp_path / "probes"
    probes.mkdir(exist_ok=True)
    for path in (REPO / "probes").glob("*.yaml"):
        shutil.copy(path, probes / path.name)
    with (probes / "demo-request.yaml").open("a", encoding="utf-8") as file:
        file.write(f"owner: {owner}\n")

    def apply(raw: dict[str, Any]) -> None:
        raw["probe_templates"] = str(probes)

    return apply


@dataclass
class Bench:
    """One daemon's engine driven by hand: launch, poll when due, follow to an outcome."""

    rig: Rig
    daemon: Daemon

    @property
    def engine(self) -> ProbeEngine:
        return self.daemon.engine

    @property
    def key(self) -> str:
        return destination_key(self.rig.config.integrations[0])

    async def launch(self, template: str = "demo-request") -> Result:
        integration = self.rig.config.integrations[0]
        run = next(r for r in integration.templates if r.template == template)
        return await drive(self.rig.clock, self.engine.launch(integration, run))

    async def poll(self) -> None:
        await drive(self.rig.clock, self.engine.poll(self.key))

    async def next_poll(self) -> datetime:
        """Move the clock to the next due poll and run it; returns when it ran."""
        due = self.engine.next_poll_at(self.key)
        assert due is not None, "nothing in flight"
        wait = (due - self.rig.clock.now()).total_seconds()
        await self.rig.clock.advance(max(wait, 0.0))
        ran_at = self.rig.clock.now()
        await self.poll()
        return ran_at

    async def conclude(self, probe_ids: Sequence[str], within_s: float) -> dict[str, Any]:
        """Poll as the daemon would until every probe has an outcome; their rows by id."""
        deadline = self.rig.clock.now() + timedelta(seconds=within_s)
        while any(self.row(p)["outcome"] is None for p in probe_ids):
            due = self.engine.next_poll_at(self.key)
            assert due is not None and due <= deadline, "no outcome in time"
            await self.next_poll()
        return {p: self.row(p) for p in probe_ids}

    def row(self, probe_id: str) -> dict[str, Any]:
        row = self.rig.store.get_probe(probe_id)
        assert row is not None
        return row

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.rig.store.calls() if operation in (None, c["operation"])]

    def true_latency(self, probe_id: str) -> float:
        """Ground truth from the sandbox: first CRM creation minus the contact's creation."""
        email = probe_email(probe_id, self.rig.config.probe_domain)
        world = self.rig.world
        contact = next(c for c in world.contacts.values() if c.email == email)
        records = [*world.crm.values(), *world.deleted_crm.values()]
        created = min(r.created_at for r in records if r.email == email)
        return (created - contact.created_at).total_seconds()


def bench(tmp_path: Path, scenario: Scenario | None = None, edit: Edit | None = None) -> Bench:
    rig = make_rig(tmp_path, scenario or Scenario(seed=5), edit)
    return Bench(rig, rig.daemon())


def faulty(*faults: FaultSpec, seed: int = 5) -> Scenario:
    return Scenario(seed=seed, faults=list(faults))


# -- outcomes --------------------------------------------------------------------------------


async def test_healthy_probe_is_ok_with_measured_latency(tmp_path: Path) -> None:
    """A healthy probe ends ok, its latency measured from CRM creation within a second."""
    b = bench(tmp_path)
    result = await b.launch()
    assert result.outcome is None and b.engine.in_flight_count() == 1
    row = (await b.conclude([result.probe_id], within_s=3600))[result.probe_id]
    assert (row["outcome"], row["error_class"], row["detail"]) == ("ok", None, None)
    assert row["latency_method"] == "created_date"
    assert abs(row["latency_s"] - b.true_latency(result.probe_id)) <= 1.0
    assert b.engine.in_flight_count() == 0
    assert result.probe_id in b.engine.cleaner.pending


async def test_every_transition_is_persisted(tmp_path: Path, monkeypatch: Any) -> None:
    """Each state change reaches the store in order, with its timestamp, before the next step."""
    b = bench(tmp_path)
    states: list[str] = []
    insert, update = b.rig.store.insert_probe, b.rig.store.update_probe

    def spy_insert(row: dict[str, Any]) -> None:
        insert(row)
        states.append(row["state"])

    def spy(probe_id: str, **changes: Any) -> None:
        update(probe_id, **changes)
        if "state" in changes:
            states.append(changes["state"])

    monkeypatch.setattr(b.rig.store, "insert_probe", spy_insert)
    monkeypatch.setattr(b.rig.store, "update_probe", spy)
    result = await b.launch()
    row = b.row(result.probe_id)
    assert row["state"] == "in_flight" and row["accepted_at"] is not None
    await b.conclude([result.probe_id], within_s=3600)
    await b.rig.clock.advance(300)
    await drive(b.rig.clock, b.engine.cleaner.flush())
    row = b.row(result.probe_id)
    assert states == ["injecting", "in_flight", "detected", "verified", "cleaned"]
    stamps = [
        from_db_time(row[name])
        for name in (
            *("scheduled_at", "injecting_at", "accepted_at", "detected_at"),
            *("verified_at", "cleaned_at", "finished_at"),
        )
    ]
    assert stamps == sorted(stamps)
    assert row["latency_s"] > 0 and row["latency_method"] == "created_date"
    assert row["destination_ref"] and row["destination_created_at"]


async def test_slow_when_over_the_templates_objective(tmp_path: Path) -> None:
    """A probe later than its template's objective (tightened to 10 s) ends slow, not ok."""

    def tight(raw: dict[str, Any]) -> None:
        raw["integrations"][0]["templates"][0]["latency_objective"] = "10s"

    b = bench(tmp_path, edit=tight)
    result = await b.launch()
    row = (await b.conclude([result.probe_id], within_s=3600))[result.probe_id]
    assert (row["outcome"], row["error_class"]) == ("slow", None)
    assert row["latency_s"] > 10
    assert abs(row["latency_s"] - b.true_latency(result.probe_id)) <= 1.0


async def test_slow_connector_against_the_configured_objective(tmp_path: Path) -> None:
    """A 10-minute connector misses demo-request's 5 m objective, meets content-download's 1 h."""
    scenario = Scenario(seed=5, sync=SyncSpec(latency=LatencySpec(median=600, p95=660)))
    b = bench(tmp_path, scenario)
    demo, content = await b.launch(), await b.launch("content-download")
    rows = await b.conclude([demo.probe_id, content.probe_id], within_s=3600)
    assert rows[demo.probe_id]["outcome"] == "slow"
    assert rows[content.probe_id]["outcome"] == "ok"
    assert rows[demo.probe_id]["latency_s"] > 300


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(FaultSpec(kind="drop"), id="drop"),
        pytest.param(FaultSpec(kind="sync_pause", duration=3600), id="sync_pause"),
    ],
)
async def test_lost_when_not_found_by_timeout(tmp_path: Path, fault: FaultSpec) -> None:
    """A probe the connector never delivers is lost (sync_lost) at the timeout, not before."""
    b = bench(tmp_path, faulty(fault), short_timeout)
    result = await b.launch()
    accepted = from_db_time(b.row(result.probe_id)["accepted_at"])
    last_open = accepted
    while b.row(result.probe_id)["outcome"] is None:
        last_open = await b.next_poll()
    row = b.row(result.probe_id)
    assert (row["outcome"], row["error_class"]) == ("lost", "sync_lost")
    assert "600" in row["detail"]
    assert last_open - accepted >= timedelta(minutes=10)
    assert last_open - accepted < timedelta(minutes=10, seconds=30)
    assert row["latency_s"] is None and row["detected_at"] is None


async def test_not_lost_while_the_destination_cannot_be_queried(tmp_path: Path) -> None:
    """Failed queries are not looks: a probe is not declared lost while Salesforce is down."""
    outage = FaultSpec(kind="outage", vendor="salesforce", after=30, duration=900)
    b = bench(tmp_path, faulty(outage), short_timeout)
    result = await b.launch()
    row = (await b.conclude([result.probe_id], within_s=3600))[result.probe_id]
    assert row["outcome"] == "ok", row["detail"]
    assert from_db_time(row["detected_at"]) >= b.rig.world.started_at + timedelta(seconds=930)
    assert abs(row["latency_s"] - b.true_latency(result.probe_id)) <= 1.0


REJECTIONS = [
    pytest.param(FaultSpec(kind="outage", vendor="hubspot"), "vendor_5xx", id="outage"),
    pytest.param(FaultSpec(kind="outage", vendor="hubspot", status=502), "vendor_5xx", id="502"),
    pytest.param(FaultSpec(kind="validation", vendor="hubspot"), "validation", id="validation"),
    pytest.param(FaultSpec(kind="token_expiry", vendor="hubspot"), "auth", id="token_expiry"),
    pytest.param(
        FaultSpec(kind="quota_exhausted", vendor="hubspot"), "quota_exhausted", id="quota"
    ),
    pytest.param(FaultSpec(kind="rate_limit", vendor="hubspot"), "rate_limited", id="rate_limit"),
    pytest.param(FaultSpec(kind="malformed", vendor="hubspot"), "malformed", id="html"),
    pytest.param(
        FaultSpec(kind="malformed", vendor="hubspot", body="truncated_json"),
        "malformed",
        id="truncated_json",
    ),
]


@pytest.mark.parametrize(("fault", "error_class"), REJECTIONS)
async def test_rejected_at_injection_with_its_error_class(
    tmp_path: Path, fault: FaultSpec, error_class: str
) -> None:
    """A vendor refusal at injection ends the probe rejected, with the DESIGN §6 class."""
    b = bench(tmp_path, faulty(fault))
    result = await b.launch()
    assert (result.outcome, result.error_class) == ("rejected", error_class)
    row = b.row(result.probe_id)
    assert (row["outcome"], row["error_class"], row["state"]) == (
        "rejected",
        error_class,
        "injecting",
    )
    assert row["detail"] and row["accepted_at"] is None
    assert b.engine.in_flight_count() == 0 and b.engine.next_poll_at(b.key) is None
    assert result.probe_id in b.engine.cleaner.pending  # the vendor may have kept it
    submits = b.calls("submit_form")
    assert submits and {c["error_class"] for c in submits} == {error_class}


async def test_mismatch_names_the_corrupted_field(tmp_path: Path) -> None:
    """A field the connector damages makes the probe a mismatch whose detail names that field."""
    corrupt = FaultSpec(kind="corrupt", field="Title", value="Chief Everything Officer")
    b = bench(tmp_path, faulty(corrupt))
    result = await b.launch()
    row = (await b.conclude([result.probe_id], within_s=3600))[result.probe_id]
    assert (row["outcome"], row["error_class"]) == ("mismatch", None)
    assert row["detail"] == "Title: want 'Head of Operations', got 'Chief Everything Officer'"
    assert row["latency_s"] is not None


async def test_misrouted_only_after_the_routing_timeout(tmp_path: Path) -> None:
    """A wrong owner is tolerated for routing_timeout from detection, then it is misrouted."""
    b = bench(tmp_path, edit=with_owner(tmp_path, OTHER_OWNER))
    result = await b.launch()
    while b.row(result.probe_id)["detected_at"] is None:
        await b.next_poll()
    detected = from_db_time(b.row(result.probe_id)["detected_at"])
    last_open = detected
    while b.row(result.probe_id)["outcome"] is None:
        assert b.row(result.probe_id)["state"] == "detected"
        last_open = await b.next_poll()
    row = b.row(result.probe_id)
    assert (row["outcome"], row["error_class"]) == ("misrouted", None)
    assert row["detail"] == f"OwnerId: want {OTHER_OWNER!r}, got {DEFAULT_OWNER!r}"
    assert timedelta(minutes=10) <= last_open - detected < timedelta(minutes=10, seconds=30)
    assert from_db_time(row["verified_at"]) == last_open


async def test_owner_assigned_within_the_routing_timeout_is_ok(tmp_path: Path) -> None:
    """Assignment rules that set the expected owner before routing_timeout make the probe ok."""
    b = bench(tmp_path, edit=with_owner(tmp_path, OTHER_OWNER))
    result = await b.launch()
    while b.row(result.probe_id)["detected_at"] is None:
        await b.next_poll()
    await b.next_poll()
    assert b.row(result.probe_id)["outcome"] is None
    lead = next(r for r in b.rig.world.crm.values() if result.probe_id in r.email)
    lead.fields["OwnerId"] = OTHER_OWNER
    await b.next_poll()
    row = b.row(result.probe_id)
    assert (row["outcome"], row["detail"]) == ("ok", None)


async def test_expected_owner_as_15_characters_matches(tmp_path: Path) -> None:
    """A 15-character expected owner matches the CRM's 18-character OwnerId at once."""
    b = bench(tmp_path, edit=with_owner(tmp_path, DEFAULT_OWNER[:15]))
    result = await b.launch()
    row = (await b.conclude([result.probe_id], within_s=3600))[result.probe_id]
    assert row["outcome"] == "ok"
    assert row["verified_at"] == row["detected_at"]


# -- skipped ---------------------------------------------------------------------------------


async def test_quota_guard_skips_below_the_reserve(tmp_path: Path) -> None:
    """With fewer daily calls left than the reserve, the probe is skipped without any call."""
    b = bench(tmp_path)
    reading = QuotaReading(
        "hubspot-demo", "daily", "hubspot", 999_500, 1_000_000, b.rig.clock.now()
    )
    b.rig.store.save_quota(reading)
    result = await b.launch()
    assert (result.outcome, result.error_class) == ("skipped", "quota_guard")
    row = b.row(result.probe_id)
    assert (row["state"], row["outcome"], row["error_class"]) == (
        "scheduled",
        "skipped",
        "quota_guard",
    )
    assert "hubspot-demo" in row["detail"] and "reserve of 1000" in row["detail"]
    assert row["finished_at"] is not None and row["injecting_at"] is None
    assert b.calls() == [] and not b.rig.world.contacts
    assert result.probe_id not in b.engine.cleaner.pending


async def test_quota_guard_reads_what_the_vendor_reports(tmp_path: Path) -> None:
    """An org whose reported allowance is under the reserve stops probes after the first look."""
    scenario = Scenario(seed=5, salesforce=SalesforceSpec(daily_limit=400))
    b = bench(tmp_path, scenario)
    first = await b.launch()
    await b.conclude([first.probe_id], within_s=3600)
    assert b.rig.store.quota_reading("salesforce-demo", "api-usage") is not None
    second = await b.launch()
    assert (second.outcome, second.error_class) == ("skipped", "quota_guard")
    assert "salesforce-demo" in (second.detail or "")
    assert len(b.calls("submit_form")) == 1


async def test_quota_guard_caps_the_monitors_own_share(tmp_path: Path) -> None:
    """Once the monitor's calls today would pass max_share of the limit, probes are skipped."""

    def tiny_share(raw: dict[str, Any]) -> None:
        raw["accounts"][0]["quota"] = {"reserve": 1000, "max_share": 0.00001}  # 10 of 1,000,000

    b = bench(tmp_path, edit=tiny_share)
    now = b.rig.clock.now()
    b.rig.store.save_quota(QuotaReading("hubspot-demo", "daily", "hubspot", 0, 1_000_000, now))
    outcomes = []
    for _ in range(3):
        await b.rig.clock.advance(10)
        outcomes.append((await b.launch()).outcome)
    # spent + (in flight + 1) * 3 held + 3 for this probe: 0 + 3 + 3 and 1 + 6 + 3 fit in 10
    # calls; 2 + 9 + 3 does not.
    assert outcomes == [None, None, "skipped"]
    row = next(b.rig.store.db.query("select * from probes where outcome = 'skipped'"))
    assert row["error_class"] == "quota_guard"
    assert "hubspot-demo" in row["detail"] and "share" in row["detail"]
    assert len(b.calls("submit_form")) == 2


class Unplugged(httpx.AsyncBaseTransport):
    """The sandbox behind a cable that can be pulled: connect errors while ``down``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("[Errno 101] Network is unreachable", request=request)
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize(
    ("network_ok", "outcome", "error_class"),
    [
        pytest.param(False, "skipped", "monitor", id="our-network-down"),
        pytest.param(True, "rejected", "connection", id="vendor-unreachable"),
    ],
)
async def test_connect_errors_blame_whoever_is_down(
    tmp_path: Path, network_ok: bool, outcome: str, error_class: str
) -> None:
    """A refused connection is ours (skipped) while our self-check fails, else the vendor's."""
    rig = make_rig(tmp_path, Scenario(seed=5))
    cable = Unplugged(rig.transport())
    daemon = Daemon(
        rig.config,
        rig.store,
        rig.clock,
        CollectorRegistry(),
        cable,
        random.Random(3),
        serve_http=False,
    )
    b = Bench(rig, daemon)
    cable.down, daemon.network.ok = True, network_ok
    result = await b.launch()
    assert (result.outcome, result.error_class) == (outcome, error_class)
    row = b.row(result.probe_id)
    assert (row["outcome"], row["error_class"]) == (outcome, error_class)
    assert not rig.world.contacts


# -- batching --------------------------------------------------------------------------------


async def test_one_query_covers_every_probe_in_flight(tmp_path: Path, monkeypatch: Any) -> None:
    """Each poll is exactly one destination query, carrying every probe then in flight."""
    b = bench(tmp_path)
    destination = b.engine.adapters.destinations[b.key]
    find = destination.find
    batches: list[int] = []

    async def counting(probes: Sequence[Probe]) -> dict[str, Record]:
        batches.append(len(probes))
        return await find(probes)

    monkeypatch.setattr(destination, "find", counting)
    results = [await b.launch(t) for t in ["demo-request", "content-download"] * 4]
    in_flight = b.engine.in_flight_count()
    await b.conclude([r.probe_id for r in results], within_s=3600)
    assert batches[0] == in_flight == 8
    assert len(b.calls("query_records")) == len(batches) < 8
    assert all(c["error_class"] is None for c in b.calls("query_records"))


async def test_no_polling_while_nothing_is_in_flight(tmp_path: Path) -> None:
    """With nothing in flight no poll is due; the first look is first_after past acceptance."""
    b = bench(tmp_path)
    assert b.engine.next_poll_at(b.key) is None
    result = await b.launch()
    accepted = from_db_time(b.row(result.probe_id)["accepted_at"])
    assert b.engine.next_poll_at(b.key) == accepted + timedelta(seconds=45)
    await b.poll()
    assert b.calls("query_records")  # an early poll still asks, and then waits its cadence
    assert b.engine.next_poll_at(b.key) == accepted + timedelta(seconds=45)


async def test_latency_accuracy_over_an_hour(tmp_path: Path) -> None:
    """Over a virtual hour of daemon probing, measured latency is within 1 s of truth at p95."""

    def every_2m(raw: dict[str, Any]) -> None:
        raw["integrations"][0]["templates"][0]["every"] = "2m"

    rig = make_rig(tmp_path, Scenario(seed=9), every_2m)
    tally = await rig.run_for(3600, drain_s=900)
    rows = list(rig.store.db.query("select * from probes"))
    assert 30 <= len(rows) <= 50 and sum(tally.outcomes.values()) == len(rows)
    b = Bench(rig, rig.daemons[0])
    errors = sorted(abs(r["latency_s"] - b.true_latency(r["probe_id"])) for r in rows)
    assert {r["latency_method"] for r in rows} == {"created_date"}
    assert errors[round(0.95 * len(errors)) - 1] <= 1.0


# -- resume ----------------------------------------------------------------------------------


def unsent(b: Bench, probe_id: str, state: str) -> None:
    """A probe row the crashed daemon wrote but never sent (as if it died right after)."""
    now = b.rig.clock.now()
    b.rig.store.insert_probe(
        {
            "probe_id": probe_id,
            "integration": "hubspot-to-salesforce",
            "template": "demo-request",
            "email": probe_email(probe_id, b.rig.config.probe_domain),
            "state": "scheduled",
            "scheduled_at": now,
        }
    )
    if state == "injecting":
        b.rig.store.update_probe(probe_id, state="injecting", injecting_at=now)


async def test_resume_after_a_crash_never_reinjects(tmp_path: Path) -> None:
    """A new daemon resumes every unfinished probe: polls, concludes, never re-injects."""
    a = bench(tmp_path, edit=short_timeout)
    launched = [await a.launch(t) for t in ("demo-request", "content-download", "demo-request")]
    ids = [r.probe_id for r in launched]
    await a.rig.clock.advance(5)
    a.rig.store.update_probe(ids[2], state="injecting", accepted_at=None)  # accepted after all
    unsent(a, "neverinjected001", "injecting")
    unsent(a, "neverscheduled01", "scheduled")
    # daemon A is abandoned here: no shutdown, no flush, its in-memory state is gone
    b = Bench(a.rig, a.rig.daemon())
    calls_before = len(b.calls())
    assert b.engine.resume() == 5
    assert b.engine.in_flight_count() == 4
    scheduled = b.row("neverscheduled01")
    assert (scheduled["outcome"], scheduled["error_class"]) == ("skipped", "monitor")
    assert scheduled["finished_at"] is not None
    rows = await b.conclude([*ids, "neverinjected001"], within_s=3600)
    assert [rows[p]["outcome"] for p in ids] == ["ok", "ok", "ok"]
    never = rows["neverinjected001"]
    assert (never["outcome"], never["error_class"]) == ("skipped", "monitor")
    assert len(b.rig.world.contacts) == 3
    new_calls = b.calls()[calls_before:]
    assert all(c["operation"] != "submit_form" for c in new_calls)
    assert not [c for c in new_calls if c["probe_id"] == "neverscheduled01"]
    assert not [
        c for c in new_calls if c["probe_id"] == "neverinjected001" and c["vendor"] == "hubspot"
    ]
    for probe_id in ids[:2]:
        assert abs(rows[probe_id]["latency_s"] - b.true_latency(probe_id)) <= 1.0


async def test_resume_requeues_concluded_probes_for_cleanup(tmp_path: Path) -> None:
    """A probe concluded before the crash but not yet cleaned is cleaned by the next daemon."""
    a = bench(tmp_path)
    result = await a.launch()
    await a.conclude([result.probe_id], within_s=3600)
    b = Bench(a.rig, a.rig.daemon())
    assert b.engine.resume() == 1 and b.engine.in_flight_count() == 0
    assert result.probe_id in b.engine.cleaner.pending
    assert await drive(b.rig.clock, b.engine.cleaner.flush()) == 1
    assert b.row(result.probe_id)["state"] == "cleaned"
    state = await b.rig.sandbox_state()
    assert state["hubspot"]["synthetic"] == 0 and state["salesforce"]["synthetic"] == 0


async def test_a_probe_launched_during_a_query_is_not_counted_as_looked_for(
    tmp_path: Path,
) -> None:
    """A probe injected while a slow query is out keeps its own first look: it was not asked for."""

    def quick_first_look(raw: dict[str, Any]) -> None:
        raw["integrations"][0]["poll"] = {"first_after": "10s", "every": "1m"}

    slow = FaultSpec(kind="slow", vendor="salesforce", delay=20)
    b = bench(tmp_path, faulty(slow), quick_first_look)
    first = await b.launch()
    await b.rig.clock.advance(10)
    polling = asyncio.ensure_future(b.engine.poll(b.key))
    await b.rig.clock.advance(5)
    assert not polling.done()
    second = await b.launch()
    accepted = from_db_time(b.row(second.probe_id)["accepted_at"])
    await drive(b.rig.clock, polling)
    assert first.outcome is None
    assert b.engine.in_flight[b.key][second.probe_id].last_look is None
    assert b.engine.next_poll_at(b.key) == accepted + timedelta(seconds=10)


async def test_resume_keeps_the_routing_window_from_the_first_detection(tmp_path: Path) -> None:
    """A probe awaiting its owner when the daemon died is judged from its original detection."""
    a = bench(tmp_path, edit=with_owner(tmp_path, OTHER_OWNER))
    result = await a.launch()
    while a.row(result.probe_id)["detected_at"] is None:
        await a.next_poll()
    stored = a.row(result.probe_id)
    detected = from_db_time(stored["detected_at"])
    await a.rig.clock.advance(240)  # the crash: four minutes pass with no daemon
    b = Bench(a.rig, a.rig.daemon())
    assert b.engine.resume() == 1
    row = (await b.conclude([result.probe_id], within_s=3600))[result.probe_id]
    assert row["outcome"] == "misrouted"
    assert timedelta(minutes=10) <= from_db_time(row["verified_at"]) - detected
    assert from_db_time(row["verified_at"]) - detected < timedelta(minutes=10, seconds=30)
    assert (row["detected_at"], row["latency_s"]) == (stored["detected_at"], stored["latency_s"])


# -- tick coalescing ----------------------------------------------------------------------------

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def in_flight(rig: Rig, accepted_s: float, last_look_s: float | None) -> InFlight:
    integration = rig.config.integrations[0]  # poll.every 30s
    probe = InFlight(
        f"p{accepted_s:g}",
        "x@probe.syncwatch.example",
        integration,
        integration.templates[0],
        T0 + timedelta(seconds=accepted_s),
    )
    probe.first_after_s = 45.0
    if last_look_s is not None:
        probe.last_look = T0 + timedelta(seconds=last_look_s)
    return probe


@pytest.mark.parametrize(
    ("second_accepted_s", "tick_s"),
    [
        (60.0, 105.0),  # straggler due at 75 waits for the first look at 105 (within 30 s)
        (45.0, 90.0),  # first look at 90: the straggler waits 15 s
        (61.0, 75.0),  # first look at 106 is more than a cadence away: no waiting
        (20.0, 65.0),  # the first look (65) comes before the straggler (75) anyway
    ],
)
def test_steady_looks_wait_at_most_one_cadence_for_a_first_look(
    tmp_path: Path, second_accepted_s: float, tick_s: float
) -> None:
    """A straggler's look shares the tick of another probe's first look within ``every``."""
    rig = make_rig(tmp_path)
    straggler = in_flight(rig, 0.0, 45.0)  # looked for at its first look; due again at 75
    newcomer = in_flight(rig, second_accepted_s, None)
    assert coalesced_tick([straggler, newcomer]) == T0 + timedelta(seconds=tick_s)
    assert coalesced_tick([straggler]) == T0 + timedelta(seconds=75)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.integers(0, 600), st.one_of(st.none(), st.integers(0, 900))),
        min_size=1,
        max_size=8,
    )
)
def test_a_tick_kept_up_launch_by_launch_is_the_coalesced_tick(
    tmp_path: Path, probes: list[tuple[int, int | None]]
) -> None:
    """``Tick`` (updated in O(1) per launch) plans exactly what ``coalesced_tick`` would."""
    rig = make_rig(tmp_path)
    flying = [in_flight(rig, accepted, look) for accepted, look in probes]
    tick = Tick.of(flying[:1])
    for count, probe in enumerate(flying[1:], start=2):
        tick.add(probe)
        assert tick.when() == coalesced_tick(flying[:count])
    assert Tick.of(flying).when() == coalesced_tick(flying)


async def test_in_flight_counts_follow_launches_and_conclusions(tmp_path: Path) -> None:
    """The per-account and per-integration counts the guard and gauge read stay exact."""
    rig = make_rig(tmp_path)
    daemon = rig.daemon()
    engine = daemon.engine
    integration = rig.config.integrations[0]
    first = await engine.launch(integration, integration.templates[0])
    second = await engine.launch(integration, integration.templates[0])
    assert first.outcome is None and second.outcome is None
    source, destination = integration.source.account, integration.destination.account
    assert engine._in_flight_on(source) == engine._in_flight_on(destination) == 2
    await rig.clock.advance(600)
    key = next(iter(engine.in_flight))
    await engine.poll(key)
    left = sum(len(probes) for probes in engine.in_flight.values())
    assert engine._in_flight_on(source) == left < 2


async def test_a_crashing_adapter_ends_the_probe_skipped_and_queued_for_clean_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in an adapter (not a vendor error) never leaves a probe half-done in memory."""
    rig = make_rig(tmp_path)
    daemon = rig.daemon()
    integration = rig.config.integrations[0]

    async def crash(probe: Probe) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(daemon.adapters.sources[integration.name], "inject", crash)
    result = await daemon.engine.launch(integration, integration.templates[0])
    assert (result.outcome, result.error_class) == ("skipped", "monitor")
    assert result.detail == "internal error while injecting: KeyError"
    assert result.probe_id in daemon.engine.cleaner.pending
    row = rig.store.get_probe(result.probe_id)
    assert row is not None and row["outcome"] == "skipped"
