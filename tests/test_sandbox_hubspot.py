"""HubSpot emulation: forms v3 submit, CRM v3 contacts, rate limits and every HubSpot fault."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock, settle
from syncwatch.sandbox import create_app
from syncwatch.sandbox.hubspot_common import epoch_ms
from syncwatch.sandbox.scenario import DEFAULT_FORM_GUID, HubSpotSpec, Scenario
from syncwatch.sandbox.world import World

TOKEN = "pat-na1-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PORTAL = "20112233"
SUBMIT = f"/hsforms/submissions/v3/integration/submit/{PORTAL}/{DEFAULT_FORM_GUID}"
SECURE_SUBMIT = f"/hsforms/submissions/v3/integration/secure/submit/{PORTAL}/{DEFAULT_FORM_GUID}"
CONTACTS = "/hubspot/crm/v3/objects/contacts"
SEARCH = f"{CONTACTS}/search"
PROBE_EMAIL = "syncwatch+abc123@probe.syncwatch.example"
PROBE = {"email": PROBE_EMAIL, "firstname": "Sync", "lastname": "Probe", "company": "syncwatch"}
RATE_HEADERS = (
    "x-hubspot-ratelimit-daily",
    "x-hubspot-ratelimit-daily-remaining",
    "x-hubspot-ratelimit-max",
    "x-hubspot-ratelimit-remaining",
    "x-hubspot-ratelimit-interval-milliseconds",
)


def form_body(**values: str) -> dict[str, Any]:
    """A documented v3 submission body: contact fields, submittedAt in ms, page context."""
    return {
        "fields": [{"objectTypeId": "0-1", "name": k, "value": v} for k, v in values.items()],
        "submittedAt": "1791190800000",
        "context": {"pageUri": "https://www.example.com/demo", "pageName": "Demo"},
    }


def world_of(app: Starlette) -> World:
    world: World = app.state.world
    return world


async def create(client: httpx.AsyncClient, **properties: str) -> httpx.Response:
    return await client.post(CONTACTS, json={"properties": properties}, headers=AUTH)


async def search(
    client: httpx.AsyncClient, clock: VirtualClock, body: dict[str, Any]
) -> httpx.Response:
    """Search one second later, keeping under the documented 4 searches per second."""
    await clock.advance(1)
    return await client.post(SEARCH, json=body, headers=AUTH)


def email_filter(operator: str, value: Any, key: str = "value") -> dict[str, Any]:
    return {
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": operator, key: value}]}]
    }


async def add_fault(client: httpx.AsyncClient, **spec: Any) -> None:
    response = await client.post("/_sandbox/faults", json={"vendor": "hubspot", **spec})
    assert response.status_code == 201, response.text


@asynccontextmanager
async def sandbox_with(
    hubspot: HubSpotSpec, clock: VirtualClock
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """A sandbox with a changed HubSpot account (limits, pinned token) on ``clock``."""
    app = create_app(Scenario(seed=7, hubspot=hubspot), clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http:
        yield app, http


# --- forms v3 ---------------------------------------------------------------------------------


async def test_open_submit_answers_inline_message_and_creates_a_contact(
    sandbox: Starlette, client: httpx.AsyncClient
) -> None:
    """The unauthenticated submit returns 200 with only the inline message and makes a contact."""
    response = await client.post(SUBMIT, json=form_body(**PROBE))
    assert response.status_code == 200
    assert response.json() == {"inlineMessage": "Thanks for submitting the form."}
    contact = world_of(sandbox).contact_by_email(PROBE_EMAIL)
    assert contact is not None
    assert contact.origin == "form"
    assert contact.properties == PROBE


async def test_resubmitting_updates_the_live_contact_instead_of_adding_one(
    sandbox: Starlette, client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """A second submission with the same email updates that contact and queues no new sync."""
    await client.post(SUBMIT, json=form_body(**PROBE))
    await clock.advance(5)
    await client.post(SUBMIT, json=form_body(**{**PROBE, "firstname": "Again"}))
    world = world_of(sandbox)
    (contact,) = world.contacts.values()
    assert contact.properties["firstname"] == "Again"
    assert contact.updated_at - contact.created_at == timedelta(seconds=5)
    assert sandbox.state.sync.pending() == 1


@pytest.mark.parametrize(
    ("fields", "error_type", "name"),
    [
        ({**PROBE, "favourite_colour": "teal"}, "FIELD_NOT_IN_FORM_DEFINITION", "favourite_colour"),
        ({"email": PROBE_EMAIL, "lastname": "Probe"}, "REQUIRED_FIELD", "company"),
        ({**PROBE, "email": "not-an-email"}, "INVALID_EMAIL", "email"),
    ],
)
async def test_open_submit_rejects_with_the_documented_error_body(
    sandbox: Starlette,
    client: httpx.AsyncClient,
    fields: dict[str, str],
    error_type: str,
    name: str,
) -> None:
    """Bad fields get 400 with status, message, correlationId and typed errors; no contact."""
    response = await client.post(SUBMIT, json=form_body(**fields))
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"status", "message", "correlationId", "errors"}
    assert body["status"] == "error"
    assert [e["errorType"] for e in body["errors"]] == [error_type]
    assert name in body["errors"][0]["message"]
    assert world_of(sandbox).contacts == {}


@pytest.mark.parametrize(
    "path",
    [
        f"/hsforms/submissions/v3/integration/submit/99999999/{DEFAULT_FORM_GUID}",
        f"/hsforms/submissions/v3/integration/submit/{PORTAL}/00000000-0000-4000-8000-000000000000",
    ],
)
async def test_unknown_portal_or_form_is_404_with_the_error_body(
    client: httpx.AsyncClient, path: str
) -> None:
    """A portal or form guid the account does not have answers 404 in the forms error shape."""
    response = await client.post(path, json=form_body(**PROBE))
    assert response.status_code == 404
    assert response.json()["status"] == "error"
    assert "correlationId" in response.json()


async def test_secure_submit_requires_a_bearer_token(client: httpx.AsyncClient) -> None:
    """The authenticated endpoint refuses a request without credentials with HubSpot's 401."""
    response = await client.post(SECURE_SUBMIT, json=form_body(**PROBE))
    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"


async def test_secure_submit_accepts_fields_not_listed_on_the_form(
    sandbox: Starlette, client: httpx.AsyncClient
) -> None:
    """The secure endpoint does not require submitted fields to be in the form definition."""
    fields = {**PROBE, "favourite_colour": "teal"}
    response = await client.post(SECURE_SUBMIT, json=form_body(**fields), headers=AUTH)
    assert response.status_code == 200
    contact = world_of(sandbox).contact_by_email(PROBE_EMAIL)
    assert contact is not None
    assert contact.properties["favourite_colour"] == "teal"


async def test_open_submit_allows_50_per_10_seconds_per_account(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """The 51st unauthenticated submission in 10 s is refused with 429; the window then rolls."""
    for n in range(50):
        fields = {**PROBE, "email": f"lead{n}@customer.example"}
        assert (await client.post(SUBMIT, json=form_body(**fields))).status_code == 200
    refused = await client.post(SUBMIT, json=form_body(**PROBE))
    assert refused.status_code == 429
    assert refused.json()["errorType"] == "RATE_LIMIT"
    await clock.advance(10)
    assert (await client.post(SUBMIT, json=form_body(**PROBE))).status_code == 200


async def test_a_submitted_probe_becomes_a_salesforce_lead_after_the_sync_latency(
    sandbox: Starlette, client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """The form's new contact is queued to the connector and shows up in Salesforce later."""
    await client.post(SUBMIT, json=form_body(**PROBE))
    contact = world_of(sandbox).contact_by_email(PROBE_EMAIL)
    assert contact is not None
    before = (await client.get("/_sandbox/state")).json()
    assert before["salesforce"]["records"] == 0
    assert before["sync"]["pending"] == 1
    await clock.advance(3600)
    after = (await client.get("/_sandbox/state")).json()
    assert after["salesforce"] == {"records": 1, "synthetic": 1}
    (lead,) = world_of(sandbox).crm.values()
    assert lead.email == PROBE_EMAIL
    assert lead.origin_contact_id == contact.id
    assert lead.created_at > contact.created_at


# --- CRM v3: auth -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer ", TOKEN])
async def test_missing_or_malformed_authorization_gets_hubspots_401(
    client: httpx.AsyncClient, header: str | None
) -> None:
    """No bearer credential means 401 with status, message, correlationId and the category."""
    headers = {"Authorization": header} if header is not None else {}
    response = await client.get(f"{CONTACTS}/101", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"status", "message", "correlationId", "category"}
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found")
    assert "x-hubspot-ratelimit-daily" not in response.headers


async def test_a_pinned_token_refuses_any_other(clock: VirtualClock) -> None:
    """When the scenario pins the private-app token, only that token is accepted."""
    async with sandbox_with(HubSpotSpec(token=TOKEN), clock) as (_, http):
        wrong = await http.post(
            CONTACTS, json={"properties": PROBE}, headers={"Authorization": "Bearer pat-other"}
        )
        assert wrong.status_code == 401
        assert wrong.json()["category"] == "INVALID_AUTHENTICATION"
        assert wrong.json()["message"].startswith("Authentication credentials not found")
        assert (await create(http, **PROBE)).status_code == 201


# --- CRM v3: create, read, archive ------------------------------------------------------------


async def test_create_answers_201_with_a_simple_public_object(
    sandbox: Starlette, client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """Create returns id, properties, ms-precision UTC createdAt equal to createdate, archived."""
    await clock.advance(0.123)
    response = await create(client, **PROBE)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert body["createdAt"] == "2026-10-05T09:00:00.123Z"
    assert body["properties"]["createdate"] == body["createdAt"]
    assert body["properties"]["lastmodifieddate"] == body["updatedAt"]
    assert body["properties"]["hs_object_id"] == body["id"]
    assert body["properties"]["email"] == PROBE_EMAIL
    assert body["archived"] is False
    assert world_of(sandbox).contacts[body["id"]].origin == "api"


async def test_create_with_an_existing_email_is_409_naming_the_contact(
    client: httpx.AsyncClient,
) -> None:
    """Email is the unique key: a second create answers 409 CONFLICT with the existing id."""
    first = (await create(client, **PROBE)).json()
    response = await create(client, **PROBE)
    assert response.status_code == 409
    body = response.json()
    assert body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {first['id']}"


async def test_an_api_contact_also_syncs_to_salesforce(
    sandbox: Starlette, client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """A contact created through the CRM API is queued to the connector like a form's."""
    contact_id = (await create(client, **PROBE)).json()["id"]
    await clock.advance(3600)
    await client.get("/_sandbox/state")
    (lead,) = world_of(sandbox).crm.values()
    assert lead.origin_contact_id == contact_id


async def test_get_by_id_returns_the_default_properties(client: httpx.AsyncClient) -> None:
    """Without ``properties`` a read returns exactly HubSpot's six default contact properties."""
    created = (await create(client, **PROBE, phone="+1 555 0100")).json()
    response = await client.get(f"{CONTACTS}/{created['id']}", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == created["id"]
    assert sorted(body["properties"]) == [
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ]


async def test_get_by_email_with_id_property(client: httpx.AsyncClient) -> None:
    """``?idProperty=email`` reads the contact by its email instead of its id."""
    created = (await create(client, **PROBE)).json()
    response = await client.get(
        f"{CONTACTS}/{PROBE_EMAIL}", params={"idProperty": "email"}, headers=AUTH
    )
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]


async def test_get_returns_the_requested_properties_with_nulls(client: httpx.AsyncClient) -> None:
    """``?properties=a,b`` returns those (null when unset) plus createdate, id and modified."""
    created = (await create(client, **PROBE)).json()
    response = await client.get(
        f"{CONTACTS}/{created['id']}", params={"properties": "company,phone"}, headers=AUTH
    )
    properties = response.json()["properties"]
    assert properties["company"] == "syncwatch"
    assert properties["phone"] is None
    assert set(properties) == {"company", "phone", "createdate", "hs_object_id", "lastmodifieddate"}


async def test_get_of_an_unknown_contact_is_404_object_not_found(
    client: httpx.AsyncClient,
) -> None:
    """A missing id answers 404 with the CRM error body and category OBJECT_NOT_FOUND."""
    response = await client.get(f"{CONTACTS}/424242", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["category"] == "OBJECT_NOT_FOUND"
    assert response.json()["status"] == "error"


async def test_archive_answers_204_and_the_contact_is_then_not_found(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """After DELETE the contact is 404 by id and by email and no longer found by search."""
    contact_id = (await create(client, **PROBE)).json()["id"]
    response = await client.delete(f"{CONTACTS}/{contact_id}", headers=AUTH)
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"{CONTACTS}/{contact_id}", headers=AUTH)).status_code == 404
    by_email = await client.get(
        f"{CONTACTS}/{PROBE_EMAIL}", params={"idProperty": "email"}, headers=AUTH
    )
    assert by_email.status_code == 404
    found = await search(client, clock, email_filter("EQ", PROBE_EMAIL))
    assert found.json()["total"] == 0
    archived = await client.get(
        f"{CONTACTS}/{contact_id}", params={"archived": "true"}, headers=AUTH
    )
    assert archived.json()["archived"] is True


async def test_batch_archive_answers_204_and_archives_every_input(
    sandbox: Starlette, client: httpx.AsyncClient
) -> None:
    """``batch/archive`` with ``inputs`` of ids archives them all and answers 204."""
    ids = [
        (await create(client, email=f"p{n}@probe.syncwatch.example")).json()["id"] for n in range(3)
    ]
    response = await client.post(
        f"{CONTACTS}/batch/archive", json={"inputs": [{"id": i} for i in ids[:2]]}, headers=AUTH
    )
    assert response.status_code == 204
    contacts = world_of(sandbox).contacts
    assert [contacts[i].archived_at is not None for i in ids] == [True, True, False]


# --- CRM v3: search -----------------------------------------------------------------------------


async def test_search_eq_on_email_returns_the_documented_collection(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """An EQ filter finds the contact; the body is total plus SimplePublicObject results."""
    created = (await create(client, **PROBE)).json()
    await create(client, email="jane@customer.example")
    response = await search(client, clock, email_filter("EQ", PROBE_EMAIL.upper()))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"total", "results"}
    assert body["total"] == 1
    (result,) = body["results"]
    assert result["id"] == created["id"]
    assert result["properties"]["createdate"] == created["createdAt"]
    assert set(result) == {"id", "properties", "createdAt", "updatedAt", "archived"}


async def test_search_in_finds_every_listed_email_in_one_call(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """IN with ``values`` covers several probes in one query (batched polling)."""
    emails = [f"syncwatch+p{n}@probe.syncwatch.example" for n in range(4)]
    for email in emails:
        await create(client, email=email)
    response = await search(client, clock, email_filter("IN", emails[1:3], key="values"))
    found = [r["properties"]["email"] for r in response.json()["results"]]
    assert found == emails[1:3]


async def test_search_filter_groups_are_ored_and_filters_anded(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """Two groups match either; two filters in a group must both hold."""
    await create(client, email="a@customer.example", lastname="Alpha")
    await create(client, email="b@customer.example", lastname="Beta")
    await create(client, email="c@customer.example", lastname="Gamma")
    groups = [
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "a@customer.example"}]},
        {
            "filters": [
                {"propertyName": "email", "operator": "EQ", "value": "b@customer.example"},
                {"propertyName": "lastname", "operator": "EQ", "value": "Gamma"},
            ]
        },
    ]
    body = (await search(client, clock, {"filterGroups": groups})).json()
    assert [r["properties"]["lastname"] for r in body["results"]] == ["Alpha"]


async def test_search_compares_createdate_as_ms_epoch(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """GT/LT and GTE/LTE on createdate take ms epoch strings, as sweeps need."""
    stamps = []
    for name in ("old", "mid", "new"):
        await create(client, email=f"{name}@probe.syncwatch.example")
        stamps.append(epoch_ms(clock.now()))
        await clock.advance(60)

    def between(low_op: str, low: int, high_op: str, high: int) -> dict[str, Any]:
        filters = [
            {"propertyName": "createdate", "operator": low_op, "value": str(low)},
            {"propertyName": "createdate", "operator": high_op, "value": str(high)},
        ]
        return {"filterGroups": [{"filters": filters}]}

    strict = await search(client, clock, between("GT", stamps[0], "LT", stamps[2]))
    assert [r["properties"]["email"] for r in strict.json()["results"]] == [
        "mid@probe.syncwatch.example"
    ]
    inclusive = await search(client, clock, between("GTE", stamps[0], "LTE", stamps[1]))
    assert inclusive.json()["total"] == 2


async def test_search_sweep_by_domain_wildcard_and_age(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """CONTAINS_TOKEN ``*@domain`` with LT createdate finds old probes only (unconfirmed op)."""
    await create(client, email="syncwatch+old@probe.syncwatch.example")
    await create(client, email="jane@customer.example")
    await clock.advance(3600)
    await create(client, email="syncwatch+new@probe.syncwatch.example")
    cutoff = epoch_ms(clock.now() - timedelta(minutes=30))
    filters = [
        {
            "propertyName": "email",
            "operator": "CONTAINS_TOKEN",
            "value": "*@probe.syncwatch.example",
        },
        {"propertyName": "createdate", "operator": "LT", "value": str(cutoff)},
    ]
    body = (await search(client, clock, {"filterGroups": [{"filters": filters}]})).json()
    assert [r["properties"]["email"] for r in body["results"]] == [
        "syncwatch+old@probe.syncwatch.example"
    ]


async def test_search_pages_with_after_until_no_paging_is_left(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """``limit`` caps a page; ``paging.next.after`` leads on; the last page has no paging."""
    for n in range(5):
        await create(client, email=f"p{n}@probe.syncwatch.example")
    seen: list[str] = []
    request: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        body = (await search(client, clock, request)).json()
        pages += 1
        assert body["total"] == 5
        seen += [r["properties"]["email"] for r in body["results"]]
        if "paging" not in body:
            break
        assert set(body["paging"]["next"]) == {"after", "link"}
        request = {"limit": 2, "after": body["paging"]["next"]["after"]}
    assert pages == 3
    assert seen == [f"p{n}@probe.syncwatch.example" for n in range(5)]


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 201},
        {"filterGroups": [{"filters": []}] * 7},
        email_filter("SOUNDS_LIKE", "x"),
        {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "createdate", "operator": "GT", "value": "yesterday"}
                    ]
                }
            ]
        },
    ],
    ids=["limit-over-200", "seven-groups", "unknown-operator", "createdate-not-ms"],
)
async def test_search_rejects_invalid_requests_with_validation_error(
    client: httpx.AsyncClient, clock: VirtualClock, body: dict[str, Any]
) -> None:
    """Past the documented limits (200 per page, 6 groups) search answers 400 VALIDATION_ERROR."""
    response = await search(client, clock, body)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


async def test_search_carries_no_rate_limit_headers(client: httpx.AsyncClient) -> None:
    """Search responses have none of the X-HubSpot-RateLimit headers other CRM calls carry."""
    created = await create(client, **PROBE)
    found = await client.post(SEARCH, json=email_filter("EQ", PROBE_EMAIL), headers=AUTH)
    assert all(name in created.headers for name in RATE_HEADERS)
    assert not any(name in found.headers for name in RATE_HEADERS)


async def test_search_allows_four_requests_per_second_per_token(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """The fifth search within one second is refused with 429; the next second it passes."""
    statuses = [(await client.post(SEARCH, json={}, headers=AUTH)).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    await clock.advance(1)
    assert (await client.post(SEARCH, json={}, headers=AUTH)).status_code == 200


# --- rate limits --------------------------------------------------------------------------------


async def test_crm_responses_carry_rate_headers_that_count_down(
    client: httpx.AsyncClient,
) -> None:
    """Each CRM call reports the daily and 10-second window figures after itself."""
    first = await create(client, **PROBE)
    second = await client.get(f"{CONTACTS}/424242", headers=AUTH)
    assert first.headers["x-hubspot-ratelimit-daily"] == "1000000"
    assert first.headers["x-hubspot-ratelimit-daily-remaining"] == "999999"
    assert first.headers["x-hubspot-ratelimit-max"] == "190"
    assert first.headers["x-hubspot-ratelimit-remaining"] == "189"
    assert first.headers["x-hubspot-ratelimit-interval-milliseconds"] == "10000"
    assert second.headers["x-hubspot-ratelimit-daily-remaining"] == "999998"
    assert second.headers["x-hubspot-ratelimit-remaining"] == "188"


async def test_burst_over_the_window_is_429_ten_secondly_rolling(clock: VirtualClock) -> None:
    """Past ``burst_max`` calls in the rolling window HubSpot answers 429 until it rolls on."""
    async with sandbox_with(HubSpotSpec(burst_max=3), clock) as (_, http):
        for n in range(3):
            assert (await create(http, email=f"p{n}@probe.syncwatch.example")).status_code == 201
        refused = await create(http, email="late@probe.syncwatch.example")
        assert refused.status_code == 429
        body = refused.json()
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["errorType"] == "RATE_LIMIT"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert set(body) == {
            "status",
            "message",
            "errorType",
            "correlationId",
            "policyName",
            "requestId",
        }
        assert refused.headers["x-hubspot-ratelimit-remaining"] == "0"
        await clock.advance(10)
        assert (await create(http, email="late@probe.syncwatch.example")).status_code == 201


async def test_daily_limit_is_429_daily_until_utc_midnight() -> None:
    """When the day's calls are spent HubSpot answers 429 DAILY; the count resets at midnight."""
    clock = VirtualClock(datetime(2026, 10, 5, 23, 59, 50, tzinfo=UTC))
    async with sandbox_with(HubSpotSpec(daily_limit=2), clock) as (_, http):
        await create(http, email="a@probe.syncwatch.example")
        last = await create(http, email="b@probe.syncwatch.example")
        assert last.headers["x-hubspot-ratelimit-daily-remaining"] == "0"
        refused = await create(http, email="c@probe.syncwatch.example")
        assert refused.status_code == 429
        assert refused.json()["policyName"] == "DAILY"
        assert refused.json()["message"] == "You have reached your daily limit."
        await clock.advance(10)
        fresh = await create(http, email="c@probe.syncwatch.example")
        assert fresh.status_code == 201
        assert fresh.headers["x-hubspot-ratelimit-daily-remaining"] == "1"


# --- faults -------------------------------------------------------------------------------------


async def test_outage_answers_the_spec_status_until_the_window_ends(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """An outage fault makes every HubSpot call fail with its status and a JSON error body."""
    await add_fault(client, kind="outage", status=502, **{"for": "60s"})
    for response in (
        await create(client, **PROBE),
        await client.post(SUBMIT, json=form_body(**PROBE)),
    ):
        assert response.status_code == 502
        assert response.json()["status"] == "error"
    await clock.advance(60)
    assert (await create(client, **PROBE)).status_code == 201


async def test_a_salesforce_fault_leaves_hubspot_alone(client: httpx.AsyncClient) -> None:
    """Faults are per vendor: a Salesforce outage does not touch HubSpot."""
    await add_fault(client, kind="outage", vendor="salesforce")
    assert (await create(client, **PROBE)).status_code == 201


async def test_rate_limit_fault_answers_429_ten_secondly_rolling(
    client: httpx.AsyncClient,
) -> None:
    """A rate_limit fault answers the documented 429 body with policyName TEN_SECONDLY_ROLLING."""
    await add_fault(client, kind="rate_limit")
    response = await create(client, **PROBE)
    assert response.status_code == 429
    assert response.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert response.headers["x-hubspot-ratelimit-remaining"] == "0"


async def test_quota_exhausted_fault_answers_429_daily(client: httpx.AsyncClient) -> None:
    """A quota_exhausted fault answers 429 DAILY and shows no daily calls remaining."""
    await add_fault(client, kind="quota_exhausted")
    response = await create(client, **PROBE)
    assert response.status_code == 429
    assert response.json()["policyName"] == "DAILY"
    assert response.headers["x-hubspot-ratelimit-daily-remaining"] == "0"


async def test_slow_fault_holds_the_response_for_its_delay(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """A slow fault delays the answer by ``delay`` on the sandbox clock, not in real time."""
    await add_fault(client, kind="slow", delay="45s")
    task = asyncio.create_task(create(client, **PROBE))
    await settle()
    await clock.advance(44)
    assert not task.done()
    await clock.advance(1)
    response = await task
    assert response.status_code == 201


@pytest.mark.parametrize("body", ["html", "truncated_json"])
async def test_malformed_fault_garbles_a_success_body(client: httpx.AsyncClient, body: str) -> None:
    """A malformed fault turns a 2xx body into an HTML page or cut-off JSON."""
    await add_fault(client, kind="malformed", body=body)
    response = await client.post(SUBMIT, json=form_body(**PROBE))
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


async def test_malformed_fault_leaves_error_bodies_intact(client: httpx.AsyncClient) -> None:
    """Only successful answers are garbled; a 404 keeps its JSON error body."""
    await add_fault(client, kind="malformed", body="truncated_json")
    response = await client.get(f"{CONTACTS}/424242", headers=AUTH)
    assert response.json()["category"] == "OBJECT_NOT_FOUND"


async def test_token_expiry_fault_answers_401_expired_authentication(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """During a token_expiry window bearer calls get 401 EXPIRED_AUTHENTICATION; then pass."""
    await add_fault(client, kind="token_expiry", **{"for": "5m"})
    response = await create(client, **PROBE)
    assert response.status_code == 401
    body = response.json()
    assert body["category"] == "EXPIRED_AUTHENTICATION"
    assert body["message"] == "The OAuth token used to make this call expired 0 second(s) ago."
    assert body["context"] == {"expire time": [clock.now().strftime("%Y-%m-%dT%H:%M:%S.000Z")]}
    assert (await client.post(SUBMIT, json=form_body(**PROBE))).status_code == 200
    await clock.advance(300)
    assert (
        await client.get(f"{CONTACTS}/{PROBE_EMAIL}?idProperty=email", headers=AUTH)
    ).status_code == 200


async def test_validation_fault_rejects_form_and_crm_create_missing_its_field(
    sandbox: Starlette, client: httpx.AsyncClient
) -> None:
    """A validation fault on ``phone`` gives REQUIRED_FIELD on the form, 400 on CRM create."""
    await add_fault(client, kind="validation", field="phone")
    form = await client.post(SUBMIT, json=form_body(**PROBE))
    assert form.status_code == 400
    assert form.json()["errors"][0]["errorType"] == "REQUIRED_FIELD"
    created = await create(client, **PROBE)
    assert created.status_code == 400
    assert created.json()["category"] == "VALIDATION_ERROR"
    assert world_of(sandbox).contacts == {}
    assert (await create(client, **PROBE, phone="+1 555 0100")).status_code == 201


async def test_correlation_ids_repeat_for_the_same_seed(clock: VirtualClock) -> None:
    """Correlation ids come from the seeded dice, so two runs give the same error bodies."""
    bodies = []
    for _ in range(2):
        async with sandbox_with(HubSpotSpec(), clock) as (_, http):
            bodies.append((await http.get(f"{CONTACTS}/1")).json()["correlationId"])
    assert bodies[0] == bodies[1]
    assert len(bodies[0]) == 36
