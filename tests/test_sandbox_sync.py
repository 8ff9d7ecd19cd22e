"""The pretend connector: latency distribution, mapping, and every sync-side fault."""

from __future__ import annotations

import statistics
from datetime import timedelta

import pytest
from sandbox_support import app_client
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import FaultSpec, LatencySpec, Scenario, SyncSpec
from syncwatch.sandbox.sync import SyncEngine
from syncwatch.sandbox.world import Contact, World, salesforce_id, with_checksum

PROBE = {
    "email": "syncwatch+abc123@probe.syncwatch.example",
    "firstname": "Sync",
    "lastname": "Probe abc123",
    "company": "syncwatch",
    "jobtitle": "Tester",
}


def world_of(app: Starlette) -> tuple[World, SyncEngine]:
    return app.state.world, app.state.sync


def add_contact(app: Starlette, **overrides: str) -> Contact:
    world, sync = world_of(app)
    contact = world.new_contact({**PROBE, **overrides}, "api")
    sync.enqueue(contact)
    return contact


def fault(app: Starlette, **spec: object) -> None:
    world, _ = world_of(app)
    world.faults.schedule(FaultSpec.model_validate(spec), world.clock.now())


async def test_a_contact_becomes_a_lead_with_the_connector_mapping(
    sandbox: Starlette, clock: VirtualClock
) -> None:
    """Mapped fields arrive under Salesforce names, with owner, source and status set."""
    contact = add_contact(sandbox)
    world, sync = world_of(sandbox)
    await clock.advance(3600)
    sync.run_due()
    (lead,) = world.crm.values()
    assert lead.sobject == "Lead"
    assert lead.origin_contact_id == contact.id
    assert lead.fields == {
        "Email": PROBE["email"],
        "FirstName": "Sync",
        "LastName": "Probe abc123",
        "Company": "syncwatch",
        "Title": "Tester",
        "OwnerId": world.scenario.salesforce.default_owner_id,
        "LeadSource": "HubSpot",
        "Status": "Open - Not Contacted",
    }
    assert lead.created_at > contact.created_at


async def test_records_are_created_at_their_due_time_not_when_someone_looks(
    sandbox: Starlette, clock: VirtualClock
) -> None:
    """The true creation time is the drawn due time, however late the next request comes."""
    add_contact(sandbox)
    world, sync = world_of(sandbox)
    due = sync.queue[0].due_at
    await clock.advance(86_400)
    sync.run_due()
    (lead,) = world.crm.values()
    assert lead.created_at == due


def test_latency_follows_the_configured_median_and_p95() -> None:
    """Over many draws the median and 95th percentile match the scenario within a few percent."""
    scenario = Scenario(sync=SyncSpec(latency=LatencySpec(median=60, p95=180)))
    world = World.create(scenario, VirtualClock(), seed=11)
    draws = sorted(SyncEngine(world).draw_latency() for _ in range(20_000))
    assert statistics.median(draws) == pytest.approx(60, rel=0.04)
    assert draws[int(0.95 * len(draws))] == pytest.approx(180, rel=0.06)


def test_the_same_seed_gives_the_same_latencies() -> None:
    """Runs are reproducible for a seed and differ across seeds."""

    def draws(seed: int) -> list[float]:
        engine = SyncEngine(World.create(Scenario(), VirtualClock(), seed=seed))
        return [engine.draw_latency() for _ in range(5)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


async def test_a_sync_pause_holds_the_backlog_until_it_ends(
    sandbox: Starlette, clock: VirtualClock
) -> None:
    """Records due during a pause all arrive when the pause ends (backlog flush)."""
    fault(sandbox, kind="sync_pause", **{"for": "2h"})
    for i in range(3):
        add_contact(sandbox, email=f"syncwatch+p{i}@probe.syncwatch.example")
    world, sync = world_of(sandbox)
    await clock.advance(3600)
    sync.run_due()
    assert not world.crm
    assert sync.pending() == 3
    await clock.advance(3601)
    sync.run_due()
    pause_end = world.started_at + timedelta(hours=2)
    assert [r.created_at for r in world.crm.values()] == [pause_end] * 3


async def test_dropped_records_never_arrive(sandbox: Starlette, clock: VirtualClock) -> None:
    """A drop fault loses the record and counts it."""
    fault(sandbox, kind="drop")
    add_contact(sandbox)
    world, sync = world_of(sandbox)
    await clock.advance(3600)
    sync.run_due()
    assert not world.crm
    assert (sync.dropped, sync.pending()) == (1, 0)


async def test_a_drop_rate_loses_about_that_share(clock: VirtualClock) -> None:
    """rate: 0.3 drops roughly 30% of records, reproducibly for the seed."""
    app = create_app(Scenario(seed=5), clock)
    fault(app, kind="drop", rate=0.3)
    for i in range(400):
        add_contact(app, email=f"syncwatch+d{i}@probe.syncwatch.example")
    await clock.advance(86_400)
    _, sync = world_of(app)
    sync.run_due()
    assert 90 <= sync.dropped <= 150
    assert sync.delivered == 400 - sync.dropped


@pytest.mark.parametrize(("value", "expected"), [("", None), ("ACME Corp", "ACME Corp")])
async def test_corruption_damages_one_mapped_field(
    sandbox: Starlette, clock: VirtualClock, value: str, expected: str | None
) -> None:
    """A corrupt fault empties or rewrites the named Salesforce field and nothing else."""
    fault(sandbox, kind="corrupt", field="Title", value=value)
    add_contact(sandbox)
    await clock.advance(3600)
    world, sync = world_of(sandbox)
    sync.run_due()
    (lead,) = world.crm.values()
    assert lead.fields["Title"] == expected
    assert lead.fields["LastName"] == "Probe abc123"


async def test_a_validation_rule_rejects_records_and_logs_a_sync_error(
    sandbox: Starlette, clock: VirtualClock
) -> None:
    """The connector's insert fails with Salesforce's validation error; no Lead is created."""
    fault(sandbox, kind="validation", vendor="salesforce", field="Phone")
    add_contact(sandbox)
    await clock.advance(3600)
    world, sync = world_of(sandbox)
    sync.run_due()
    assert not world.crm
    (error,) = sync.errors
    assert error["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert error["fields"] == ["Phone"]


async def test_a_lead_without_company_fails_as_salesforce_requires(
    sandbox: Starlette, clock: VirtualClock
) -> None:
    """Lead needs LastName and Company; the connector's insert fails without them."""
    add_contact(sandbox, company="")
    await clock.advance(3600)
    world, sync = world_of(sandbox)
    sync.run_due()
    assert not world.crm
    assert sync.errors[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sync.errors[0]["fields"] == ["Company"]


async def test_duplicate_creation_makes_two_leads(sandbox: Starlette, clock: VirtualClock) -> None:
    """A duplicate fault creates the Lead twice, with distinct ids and the same email."""
    fault(sandbox, kind="duplicate")
    add_contact(sandbox)
    await clock.advance(3600)
    world, sync = world_of(sandbox)
    sync.run_due()
    first, second = world.crm.values()
    assert first.id != second.id
    assert first.email == second.email == PROBE["email"]


async def test_a_contact_archived_before_it_syncs_never_arrives(
    sandbox: Starlette, clock: VirtualClock
) -> None:
    """Deleting in HubSpot first leaves nothing for the connector to send."""
    contact = add_contact(sandbox)
    world, sync = world_of(sandbox)
    assert world.archive_contact(contact.id)
    await clock.advance(3600)
    sync.run_due()
    assert not world.crm


async def test_deleting_on_one_side_does_not_delete_on_the_other(
    sandbox: Starlette, clock: VirtualClock
) -> None:
    """Once synced, archiving the contact leaves the Lead, and removing the Lead the contact."""
    contact = add_contact(sandbox)
    await clock.advance(3600)
    world, sync = world_of(sandbox)
    sync.run_due()
    assert world.archive_contact(contact.id)
    assert len(world.crm) == 1
    world.crm.clear()
    assert world.contacts[contact.id].email == PROBE["email"]


async def test_faults_outside_their_window_do_nothing(clock: VirtualClock) -> None:
    """A drop scheduled for later does not touch records delivered before it starts."""
    later_drop = FaultSpec.model_validate({"kind": "drop", "after": "1d"})
    app = create_app(Scenario(faults=[later_drop]), clock)
    add_contact(app)
    await clock.advance(3600)
    world, sync = world_of(app)
    sync.run_due()
    assert len(world.crm) == 1


async def test_requests_deliver_due_records_first(sandbox: Starlette, clock: VirtualClock) -> None:
    """Any request to the sandbox first lets the connector catch up with the clock."""
    add_contact(sandbox)
    await clock.advance(3600)
    async with app_client(sandbox) as http:
        state = (await http.get("/_sandbox/state")).json()
    assert state["salesforce"] == {"records": 1, "synthetic": 1}
    assert state["sync"]["pending"] == 0


@pytest.mark.parametrize(
    ("short", "full"),
    [
        ("001A0000006Vm9r", "001A0000006Vm9rIAC"),  # the widely quoted 15→18 example
        ("00Q000000000000", "00Q000000000000EAA"),
        ("aaaaaAAAAAaAaAa", "aaaaaAAAAAaAaAaA5K"),
    ],
)
def test_ids_carry_the_case_folding_checksum(short: str, full: str) -> None:
    """The 18-character form encodes which characters of each chunk are upper case."""
    assert with_checksum(short) == full


def test_generated_ids_are_distinct_18_character_lead_ids() -> None:
    """Counter-based ids keep the key prefix and never repeat."""
    ids = {salesforce_id("00Q", n) for n in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 18 and i.startswith("00Q") for i in ids)
