"""HubSpot emulation: forms v3 submit, bearer auth, rate limits and every HubSpot fault."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from hubspot_support import (
    AUTH,
    CONTACTS,
    PORTAL,
    PROBE,
    PROBE_EMAIL,
    SECURE_SUBMIT,
    SUBMIT,
    TOKEN,
    add_fault,
    create,
    form_body,
    sandbox_with,
    world_of,
)
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock, settle
from syncwatch.sandbox.hubspot_common import iso_ms
from syncwatch.sandbox.scenario import DEFAULT_FORM_GUID, HubSpotSpec

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


async def test_every_submission_is_counted_though_a_repeat_makes_no_contact(
    sandbox: Starlette, client: httpx.AsyncClient
) -> None:
    """``/_sandbox/submissions`` counts a repeat that HubSpot merged into the first contact (and
    a CRM create refused as a conflict): what a crash test needs to see a double injection."""
    await client.post(SUBMIT, json=form_body(**PROBE))
    await client.post(SUBMIT, json=form_body(**PROBE))
    conflict = await client.post(CONTACTS, json={"properties": PROBE}, headers=AUTH)
    assert conflict.status_code == 409
    assert len(world_of(sandbox).contacts) == 1
    counted = (await client.get("/_sandbox/submissions")).json()["submissions"]
    assert counted == {PROBE_EMAIL.lower(): 3}


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


@given(
    st.datetimes(  # hypothesis takes naive bounds and adds the zone itself
        min_value=datetime(1000, 1, 2),  # noqa: DTZ001
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
    )
)
def test_timestamps_are_written_as_hubspot_writes_them(moment: datetime) -> None:
    """``2019-10-30T03:30:17.883Z``: UTC, milliseconds truncated, four-digit year."""
    utc = moment.astimezone(UTC)
    expected = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    assert iso_ms(moment) == expected
