"""Clean-up of synthetic data: batched flushes, retries, giving up, and the sweep.

Everything runs against the in-process sandbox on virtual time; what was deleted is read back
from the sandbox's own world, not from what syncwatch believes it did.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import structlog
from daemon_support import Rig, make_rig

from syncwatch.cleanup import FLUSH_AT, FLUSH_EVERY_S, GIVE_UP_AFTER, Cleaner
from syncwatch.clock import settle
from syncwatch.daemon import Daemon
from syncwatch.probing import Result
from syncwatch.sandbox.scenario import FaultSpec, SalesforceSpec, Scenario
from syncwatch.sandbox.world import World
from syncwatch.vendors.base import probe_email
from syncwatch.vendors.registry import destination_key

T = TypeVar("T")
DOMAIN = "probe.syncwatch.example"
OWNER = SalesforceSpec().default_owner_id
LEFTOVER = f"syncwatch+leftover00000001@{DOMAIN}"
YOUNG = f"syncwatch+young000000000001@{DOMAIN}"
CUSTOMERS = (
    "jane@customer.example",  # an ordinary lead
    f"ops@{DOMAIN}",  # at the probe domain, but not a probe address
    "syncwatch+imposter@customer.example",  # a probe-like address at someone else's domain
)


@pytest.fixture(autouse=True)
def default_logging() -> None:
    """structlog as shipped: a CLI test may have left it printing to a stream since closed."""
    structlog.reset_defaults()


async def drive(rig: Rig, step: Awaitable[T]) -> T:
    """Await ``step`` while moving virtual time, so retries and throttles can sleep."""
    task = asyncio.ensure_future(step)
    await settle()
    while not task.done():
        await rig.clock.advance(1.0)
    return task.result()


def row(rig: Rig, probe_id: str) -> dict[str, Any]:
    found = rig.store.get_probe(probe_id)
    assert found is not None
    return found


def calls(rig: Rig, operation: str) -> list[dict[str, Any]]:
    return [c for c in rig.store.calls() if c["operation"] == operation]


def outage(rig: Rig, vendor: str, seconds: float | None) -> None:
    """A live outage starting now (``None``: until cleared)."""
    rig.world.faults.schedule(
        FaultSpec(kind="outage", vendor=vendor, duration=seconds), rig.clock.now()
    )


async def launch(rig: Rig, daemon: Daemon, count: int) -> list[Result]:
    integration = rig.config.integrations[0]
    runs = integration.templates
    return [
        await drive(rig, daemon.engine.launch(integration, runs[i % len(runs)]))
        for i in range(count)
    ]


async def conclude(rig: Rig, daemon: Daemon, within_s: float = 3600) -> None:
    """Poll when due, as the daemon would, until nothing is in flight."""
    key = destination_key(rig.config.integrations[0])
    deadline = rig.clock.now() + timedelta(seconds=within_s)
    while (due := daemon.engine.next_poll_at(key)) is not None:
        assert due <= deadline, "probes still in flight"
        await rig.clock.advance(max((due - rig.clock.now()).total_seconds(), 0.0))
        await drive(rig, daemon.engine.poll(key))


def live_emails(world: World) -> tuple[set[str], set[str]]:
    """Emails of live HubSpot contacts and of live Salesforce records."""
    contacts = {c.email for c in world.contacts.values() if c.archived_at is None}
    return contacts, {r.email for r in world.crm.values()}


def synthetic(world: World) -> tuple[int, int]:
    contacts, records = live_emails(world)
    return sum(e.endswith("@" + DOMAIN) for e in contacts), sum(
        e.endswith("@" + DOMAIN) for e in records
    )


async def concluded(tmp_path: Path, count: int, scenario: Scenario | None = None) -> Rig:
    """A rig whose first daemon has ``count`` probes concluded ok and queued for clean-up."""
    rig = make_rig(tmp_path, scenario)
    daemon = rig.daemon()
    await launch(rig, daemon, count)
    await conclude(rig, daemon)
    assert len(daemon.engine.cleaner.pending) == count
    return rig


def cleaner(rig: Rig) -> Cleaner:
    return rig.daemons[0].engine.cleaner


# -- flush ------------------------------------------------------------------------------------


async def test_flush_batches_many_probes_into_one_call_per_step(tmp_path: Path) -> None:
    """Five probes are cleaned by one CRM delete, one HubSpot search and one archive call."""
    rig = await concluded(tmp_path, 5)
    before = {op: len(calls(rig, op)) for op in ("delete_records", "search_contacts")}
    assert synthetic(rig.world) == (5, 5)
    assert await drive(rig, cleaner(rig).flush()) == 5
    assert len(calls(rig, "delete_records")) - before["delete_records"] == 1
    assert len(calls(rig, "search_contacts")) - before["search_contacts"] == 1
    assert len(calls(rig, "archive_contacts")) == 1
    assert synthetic(rig.world) == (0, 0) and not cleaner(rig).pending
    rows = list(rig.store.db.query("select * from probes"))
    assert {r["state"] for r in rows} == {"cleaned"}
    assert all(r["cleaned_at"] == r["finished_at"] is not None for r in rows)


async def test_due_waits_for_companions_up_to_the_flush_cadence(tmp_path: Path) -> None:
    """A flush is due once the oldest queued probe has waited FLUSH_EVERY_S, not before."""
    rig = make_rig(tmp_path)
    daemon = rig.daemon()
    assert not daemon.engine.cleaner.due()
    await launch(rig, daemon, 2)
    await conclude(rig, daemon)
    queued = min(p.queued_at for p in daemon.engine.cleaner.pending.values())
    wait = (queued - rig.clock.now()).total_seconds() + FLUSH_EVERY_S
    await rig.clock.advance(wait - 1)
    assert not daemon.engine.cleaner.due()
    await rig.clock.advance(1)
    assert daemon.engine.cleaner.due()


async def test_a_configured_flush_cadence_cleans_sooner_while_the_daemon_runs(
    tmp_path: Path,
) -> None:
    """``cleanup.flush_every: 20s``: the running daemon deletes each concluded probe's records
    within about 20 s (its clean-up check follows the cadence), where the default waits 10 min."""

    def twenty_seconds(raw: dict[str, Any]) -> None:
        raw["cleanup"] = {"flush_every": "20s"}

    live: dict[str, list[int]] = {}  # live synthetic records, sampled each minute
    for name, edit in (("default", None), ("20s", twenty_seconds)):
        (tmp_path / name).mkdir()
        rig = make_rig(tmp_path / name, Scenario(seed=5), edit)
        world, counts = rig.world, live.setdefault(name, [])
        await rig.run_for(15 * 60, during=lambda _, w=world, c=counts: c.append(sum(synthetic(w))))
    # Sampled each minute, counting HubSpot contacts and Salesforce leads: one probe a minute
    # plus one every five. With a 20 s cadence a few records wait at any time; with the default
    # every record of the first ten minutes is still there at minute ten.
    assert max(live["20s"]) <= 5
    assert live["default"][9] >= 20 and max(live["default"]) >= 4 * max(live["20s"])


@pytest.mark.parametrize(("queued", "due"), [(FLUSH_AT - 1, False), (FLUSH_AT, True)])
async def test_due_at_once_with_a_full_batch(tmp_path: Path, queued: int, due: bool) -> None:
    """A full batch (FLUSH_AT probes) is due at once; one fewer waits for the cadence. The
    clean-up loop is woken by the first probe queued and by the one that fills the batch."""
    rig = make_rig(tmp_path)
    engine = rig.daemon().engine
    now = rig.clock.now()
    woken = []
    for n in range(queued):
        probe_id = f"batch{n:011d}"
        row = {"probe_id": probe_id, "integration": "hubspot-to-salesforce"}
        row |= {"template": "demo-request", "email": probe_email(probe_id, DOMAIN)}
        rig.store.insert_probe({**row, "state": "verified", "scheduled_at": now})
        rig.store.update_probe(probe_id, outcome="ok", verified_at=now)
        engine.cleaner.enqueue(probe_id)
        if engine.cleaner.sooner.is_set():
            woken.append(n + 1)
            engine.cleaner.sooner.clear()
    assert engine.cleaner.due() is due
    assert woken == ([1, FLUSH_AT] if due else [1])
    assert engine.cleaner.due_at() == (now if due else now + timedelta(seconds=FLUSH_EVERY_S))


async def test_the_running_daemon_flushes_when_due_without_looking_in_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each flush comes as the oldest queued probe has waited the cadence (not at the next
    look of a fixed tick), and the loop looks at the queue only when a flush may be due."""
    looks: list[float] = []
    real_due = Cleaner.due

    def due(self: Cleaner) -> bool:
        looks.append(self.clock.monotonic())
        return real_due(self)

    monkeypatch.setattr(Cleaner, "due", due)
    rig = make_rig(tmp_path)
    daemon = rig.daemon()
    flushes: list[tuple[float, float]] = []  # (when it was due, when it ran)
    real_flush = Cleaner.flush

    async def flush(self: Cleaner) -> int:
        due_at = self.due_at()
        assert due_at is not None
        flushes.append((due_at.timestamp(), self.clock.now().timestamp()))
        return await real_flush(self)

    monkeypatch.setattr(Cleaner, "flush", flush)
    await rig.run_for(45 * 60, daemon=daemon)
    *running, final = flushes  # the last is the final flush, as the daemon stops
    assert len(running) >= 3 and final[1] < final[0]
    assert all(0 < ran - due_at < 0.01 for due_at, ran in running)
    # A look as the first probe is queued, as the flush falls due and just after it: a tick
    # every 30 s would have looked 90 times.
    assert len(looks) <= 3 * len(running) + 4


async def test_a_flush_that_breaks_is_tried_again_after_a_pause_not_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the flush (no retry time set, still due) costs a try every 30 s, not a busy
    loop at one instant."""
    attempts: list[float] = []

    async def broken(self: Cleaner) -> int:
        attempts.append(self.clock.monotonic())
        raise RuntimeError("a bug")

    monkeypatch.setattr(Cleaner, "flush", broken)
    rig = make_rig(tmp_path)
    with structlog.testing.capture_logs() as logged:  # tracebacks, captured, not rendered
        await rig.run_for(FLUSH_EVERY_S + 5 * 60)
    *running, _final = attempts  # the last is the final flush, as the daemon stops
    assert 2 <= len(running) <= 12
    failed = [e for e in logged if e["log_level"] == "error" and "clean-up" in str(e.values())]
    assert len(failed) == len(attempts)
    assert all(b - a >= 30 for a, b in itertools.pairwise(running))


async def test_failed_flush_keeps_items_and_a_later_flush_finishes(tmp_path: Path) -> None:
    """A CRM outage leaves the CRM side queued (HubSpot side done); the next flush finishes."""
    rig = await concluded(tmp_path, 3)
    outage(rig, "salesforce", 600)
    assert await drive(rig, cleaner(rig).flush()) == 0
    pending = cleaner(rig).pending.values()
    assert len(pending) == 3
    assert all(p.source_done and not p.destination_done for p in pending)
    assert synthetic(rig.world) == (0, 3)
    assert {r["finished_at"] for r in rig.store.db.query("select * from probes")} == {None}
    await rig.clock.advance(600)
    assert await drive(rig, cleaner(rig).flush()) == 3
    assert synthetic(rig.world) == (0, 0)
    assert len(calls(rig, "archive_contacts")) == 1  # the done side is not redone
    deletes = calls(rig, "delete_records")
    assert [c["error_class"] for c in deletes][-1] is None
    assert {r["state"] for r in rig.store.db.query("select * from probes")} == {"cleaned"}


async def test_gives_up_after_a_day_and_says_so(tmp_path: Path) -> None:
    """Clean-up failing for a day finishes the probe with a detail, leaving it to the sweep."""
    rig = await concluded(tmp_path, 2)
    outage(rig, "salesforce", None)
    await rig.clock.advance(GIVE_UP_AFTER.total_seconds() - 3600)
    assert await drive(rig, cleaner(rig).flush()) == 0
    assert len(cleaner(rig).pending) == 2
    await rig.clock.advance(3600)
    assert await drive(rig, cleaner(rig).flush()) == 2
    assert not cleaner(rig).pending
    for given_up in rig.store.db.query("select * from probes"):
        assert given_up["finished_at"] is not None and given_up["cleaned_at"] is None
        assert (given_up["state"], given_up["outcome"]) == ("verified", "ok")
        assert given_up["detail"] == "clean-up kept failing for a day; left for the sweep"
    assert synthetic(rig.world) == (0, 2)


async def test_lost_probe_gets_a_full_day_of_cleanup_attempts(tmp_path: Path) -> None:
    """With a timeout over a day, a lost probe's first failed clean-up does not end its retries."""

    def two_days(raw: dict[str, Any]) -> None:
        raw["integrations"][0]["timeout"] = "2d"

    rig = make_rig(tmp_path, Scenario(seed=5, faults=[FaultSpec(kind="drop")]), two_days)
    daemon = rig.daemon()
    [result] = await launch(rig, daemon, 1)
    await rig.clock.advance(2 * 86400 + 60)
    await drive(rig, daemon.engine.poll(destination_key(rig.config.integrations[0])))
    assert row(rig, result.probe_id)["outcome"] == "lost"
    outage(rig, "hubspot", 600)
    assert await drive(rig, daemon.engine.cleaner.flush()) == 0
    assert row(rig, result.probe_id)["finished_at"] is None
    assert len(daemon.engine.cleaner.pending) == 1
    await rig.clock.advance(600)
    assert await drive(rig, daemon.engine.cleaner.flush()) == 1
    assert row(rig, result.probe_id)["state"] == "cleaned"
    assert synthetic(rig.world) == (0, 0)


# -- sweep ------------------------------------------------------------------------------------


async def leftovers(tmp_path: Path) -> tuple[Rig, Daemon, str]:
    """Old and young synthetic records, customer records, and one probe still in flight.

    The old ones are three hours old against a two-hour timeout; so is the probe in flight,
    which nobody has polled since (its records are old, but they are not leftovers).
    """
    rig = make_rig(tmp_path)
    world = rig.world
    for email in (LEFTOVER, *CUSTOMERS):
        world.new_contact({"email": email, "lastname": "Doe", "company": "ACME"}, "api")
        lead = {"Email": email, "LastName": "Doe", "Company": "ACME", "OwnerId": OWNER}
        world.new_crm_record("Lead", lead, rig.clock.now())
    daemon = rig.daemon()
    [in_flight] = await launch(rig, daemon, 1)
    await rig.clock.advance(3 * 3600)
    world.new_contact({"email": YOUNG, "lastname": "Doe", "company": "ACME"}, "api")
    lead = {"Email": YOUNG, "LastName": "Doe", "Company": "ACME", "OwnerId": OWNER}
    world.new_crm_record("Lead", lead, rig.clock.now())
    return rig, daemon, probe_email(in_flight.probe_id, DOMAIN)


async def test_sweep_deletes_only_old_synthetic_records(tmp_path: Path) -> None:
    """The sweep removes old probe records on both sides; customers, young and busy ones stay."""
    rig, daemon, busy = await leftovers(tmp_path)
    report = await drive(rig, daemon.engine.cleaner.sweep())
    assert (report.source, report.destination, report.errors) == (1, 1, [])
    contacts, records = live_emails(rig.world)
    keep = {*CUSTOMERS, YOUNG, busy}
    assert contacts == keep and records == keep
    assert [r.email for r in rig.world.deleted_crm.values()] == [LEFTOVER]


async def test_sweep_dry_run_counts_but_deletes_nothing(tmp_path: Path) -> None:
    """A dry run reports what it would delete and leaves every record in place."""
    rig, daemon, busy = await leftovers(tmp_path)
    report = await drive(rig, daemon.engine.cleaner.sweep(dry_run=True))
    assert (report.source, report.destination) == (1, 1)
    contacts, records = live_emails(rig.world)
    assert contacts == records == {LEFTOVER, *CUSTOMERS, YOUNG, busy}
    assert not calls(rig, "delete_records") and not calls(rig, "archive_contacts")


async def test_sweep_goes_on_past_a_failing_side(tmp_path: Path) -> None:
    """A CRM outage is reported as a sweep error; the HubSpot side is still swept."""
    rig, daemon, _ = await leftovers(tmp_path)
    outage(rig, "salesforce", None)
    report = await drive(rig, daemon.engine.cleaner.sweep())
    assert (report.source, report.destination) == (1, 0)
    assert len(report.errors) == 1 and report.errors[0].startswith("salesforce-demo/Lead")
    contacts, records = live_emails(rig.world)
    assert LEFTOVER not in contacts and LEFTOVER in records


async def test_a_run_leaves_nothing_synthetic_behind(tmp_path: Path) -> None:
    """After ten minutes of probing and a drained stop, neither side holds a synthetic record."""
    rig = make_rig(tmp_path)
    tally = await rig.run_for(600, drain_s=1800)
    assert sum(tally.outcomes.values()) >= 10
    state = await rig.sandbox_state()
    assert state["hubspot"]["synthetic"] == 0 and state["salesforce"]["synthetic"] == 0
    assert state["sync"]["pending"] == 0 and state["sync"]["delivered"] >= 10
    rows = list(rig.store.db.query("select * from probes"))
    assert {r["state"] for r in rows} == {"cleaned"}
    assert all(r["finished_at"] for r in rows)


async def test_a_lead_the_connector_delivered_twice_is_noted_and_both_records_deleted(
    tmp_path: Path,
) -> None:
    """Under the connector's duplicate fault every probe has two Leads: both are deleted, and
    the probe's detail says so (the earlier one is the probe's record)."""
    rig = make_rig(tmp_path, Scenario(seed=5, faults=[FaultSpec(kind="duplicate")]))
    tally = await rig.run_for(600, drain_s=1800)
    assert tally.outcomes["ok"] >= 10
    rows = list(rig.store.db.query("SELECT detail, destination_ref FROM probes"))
    assert all(row["detail"] == "the connector created 2 records" for row in rows)
    assert all(len(row["destination_ref"].split(",")) == 2 for row in rows)
    state = await rig.sandbox_state()
    assert (state["hubspot"]["synthetic"], state["salesforce"]["synthetic"]) == (0, 0)
