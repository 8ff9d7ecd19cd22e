"""The pretend middleware connectors into HubSpot: Marketo people and Account Engagement
prospects become HubSpot contacts, with their mapping, owner, due time and faults."""

from __future__ import annotations

from typing import Any

import pytest
from hubspot_support import AUTH, CONTACTS, SEARCH, email_filter
from sandbox_support import app_client
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import FaultSpec, Scenario
from syncwatch.sandbox.sync import SyncEngine
from syncwatch.sandbox.world import World

DOMAIN = "probe.syncwatch.example"
MARKETO = {
    "firstName": "Sync",
    "lastName": "Probe mk1",
    "company": "syncwatch",
    "title": "CTO",
    "country": "US",
    "leadSource": "Web",
}


def email(probe_id: str) -> str:
    return f"syncwatch+{probe_id}@{DOMAIN}"


def connector_app(clock: VirtualClock, **scenario: Any) -> Starlette:
    raw = {"seed": 3, "marketo": {"sync_to": "hubspot"}, **scenario}
    return create_app(Scenario.model_validate(raw), clock)


def parts(app: Starlette) -> tuple[World, SyncEngine]:
    return app.state.world, app.state.sync


def fault(app: Starlette, **spec: Any) -> None:
    world, _ = parts(app)
    world.faults.schedule(FaultSpec.model_validate(spec), world.clock.now())


async def synced_marketo(app: Starlette, clock: VirtualClock, probe_id: str = "mk1") -> None:
    world, sync = parts(app)
    sync.enqueue_marketo(world.new_marketo_lead({"email": email(probe_id), **MARKETO}, "leads"))
    await clock.advance(3600)
    sync.run_due()


async def test_a_marketo_person_becomes_a_hubspot_contact_at_its_due_time(
    clock: VirtualClock,
) -> None:
    """The mapping's HubSpot properties, the scenario's owner, ``createdate`` = the due time
    (not when someone looked), and the source record named in its origin; not Salesforce."""
    app = connector_app(clock)
    world, sync = parts(app)
    lead = world.new_marketo_lead({"email": email("mk1"), **MARKETO}, "leads")
    due = sync.enqueue_marketo(lead).due_at
    await clock.advance(86_400)
    sync.run_due()
    (contact,) = world.contacts.values()
    assert contact.properties == {
        "email": email("mk1"),
        "firstname": "Sync",
        "lastname": "Probe mk1",
        "company": "syncwatch",
        "jobtitle": "CTO",
        "country": "US",
        "hubspot_owner_id": world.scenario.hubspot.default_owner_id,
    }
    assert (contact.created_at, contact.origin) == (due, f"marketo:{lead.id}")
    assert world.crm == {} and world.dataverse == {}
    assert sync.pending() == 0 and sync.delivered == 1


async def test_the_contact_is_found_by_the_in_search_with_its_owner_and_ms_createdate(
    clock: VirtualClock,
) -> None:
    """What the destination adapter asks: ``email IN``, ``createdate`` and ``hubspot_owner_id``."""
    app = connector_app(clock)
    await synced_marketo(app, clock)
    world, _ = parts(app)
    (contact,) = world.contacts.values()
    body = {**email_filter("IN", [email("mk1")], key="values")}
    body["properties"] = ["email", "createdate", "hubspot_owner_id"]
    async with app_client(app) as client:
        found = (await client.post(SEARCH, json=body, headers=AUTH)).json()
    (result,) = found["results"]
    created = contact.created_at
    assert result["properties"]["createdate"] == (
        created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z"
    )
    assert result["properties"]["hubspot_owner_id"] == world.scenario.hubspot.default_owner_id


async def test_account_engagement_prospects_can_go_to_hubspot_too(clock: VirtualClock) -> None:
    """``pardot.sync_to: hubspot``: the prospect's v5 names mapped onto HubSpot properties."""
    app = connector_app(clock, pardot={"sync_to": "hubspot"})
    world, sync = parts(app)
    fields = {"email": email("pa1"), "firstName": "P", "lastName": "A", "jobTitle": "VP"}
    prospect = world.new_pardot_prospect(fields, "api")
    sync.enqueue_pardot(prospect)
    await clock.advance(3600)
    sync.run_due()
    (contact,) = world.contacts.values()
    assert contact.origin == f"pardot:{prospect.id}"
    assert {k: v for k, v in contact.properties.items() if k != "hubspot_owner_id"} == {
        "email": email("pa1"),
        "firstname": "P",
        "lastname": "A",
        "jobtitle": "VP",
    }


async def test_a_person_deleted_before_the_sync_never_arrives(clock: VirtualClock) -> None:
    """Nothing to send: the connector reads the source when the record falls due."""
    app = connector_app(clock)
    world, sync = parts(app)
    lead = world.new_marketo_lead({"email": email("gone"), **MARKETO}, "leads")
    sync.enqueue_marketo(lead)
    del world.marketo_leads[lead.id]
    await clock.advance(3600)
    sync.run_due()
    assert world.contacts == {} and sync.delivered == 0


async def test_an_existing_contact_is_updated_not_duplicated(clock: VirtualClock) -> None:
    """HubSpot keys contacts by email: the connector's create meets the live contact and
    updates it (its ``createdate`` stays the original)."""
    app = connector_app(clock)
    world, _ = parts(app)
    existing = world.new_contact({"email": email("mk1"), "firstname": "Old"}, "form")
    await synced_marketo(app, clock)
    assert list(world.contacts.values()) == [existing]
    assert existing.properties["firstname"] == "Sync"
    assert existing.created_at < existing.updated_at


@pytest.mark.parametrize(
    ("spec", "contacts", "check"),
    [
        ({"kind": "drop"}, 0, lambda sync, found: sync.dropped == 1),
        (
            {"kind": "corrupt", "vendor": "hubspot", "field": "lastname", "value": "X"},
            1,
            lambda sync, found: found[0].properties["lastname"] == "X",
        ),
        (
            {"kind": "validation", "vendor": "hubspot", "field": "phone"},
            0,
            lambda sync, found: sync.errors[0]["category"] == "VALIDATION_ERROR",
        ),
        (
            {"kind": "duplicate", "vendor": "hubspot"},
            1,
            lambda sync, found: sync.errors[0]["category"] == "CONFLICT",
        ),
        ({"kind": "duplicate", "vendor": "salesforce"}, 1, lambda sync, found: not sync.errors),
    ],
)
async def test_connector_faults_reach_hubspot_deliveries(
    clock: VirtualClock, spec: dict[str, Any], contacts: int, check: Any
) -> None:
    """Drop, corrupt, validation and duplicate faults for ``hubspot`` (or no vendor) act on the
    connector's contacts; a duplicate is HubSpot's 409 on the second create, one contact kept;
    a Salesforce-only fault does nothing here."""
    app = connector_app(clock)
    fault(app, **spec)
    await synced_marketo(app, clock)
    world, sync = parts(app)
    found = list(world.contacts.values())
    assert len(found) == contacts and check(sync, found)


async def test_state_counts_the_connectors_contacts(clock: VirtualClock) -> None:
    """``/_sandbox/state`` counts them as HubSpot's synthetic contacts until archived."""
    app = connector_app(clock)
    await synced_marketo(app, clock)
    async with app_client(app) as client:
        state = (await client.get("/_sandbox/state")).json()
        assert state["hubspot"] == {"records": 1, "synthetic": 1, "archived": 0}
        (contact_id,) = parts(app)[0].contacts
        archive = {"inputs": [{"id": contact_id}]}
        response = await client.post(f"{CONTACTS}/batch/archive", json=archive, headers=AUTH)
        assert response.status_code == 204
        state = (await client.get("/_sandbox/state")).json()
    assert state["hubspot"] == {"records": 0, "synthetic": 0, "archived": 1}


def test_hubspot_is_no_destination_for_hubspots_own_connector() -> None:
    """HubSpot → HubSpot makes no sense: ``sync.destination`` refuses it."""
    with pytest.raises(ValueError, match="destination"):
        Scenario.model_validate({"sync": {"destination": "hubspot"}})
