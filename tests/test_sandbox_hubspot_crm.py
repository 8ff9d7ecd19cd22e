"""HubSpot emulation: CRM v3 contacts create, read, archive and search."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from hubspot_support import (
    AUTH,
    CONTACTS,
    PROBE,
    PROBE_EMAIL,
    RATE_HEADERS,
    SEARCH,
    SECURE_SUBMIT,
    SUBMIT,
    create,
    email_filter,
    search,
    world_of,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sandbox_support import json_values, send_once
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.sandbox import create_app
from syncwatch.sandbox.hubspot_common import epoch_ms
from syncwatch.sandbox.scenario import Scenario

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
        {"filterGroups": [{"filters": []}] * 6},
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
    ids=["limit-over-200", "six-groups", "unknown-operator", "createdate-not-ms"],
)
async def test_search_rejects_invalid_requests_with_validation_error(
    client: httpx.AsyncClient, clock: VirtualClock, body: dict[str, Any]
) -> None:
    """Past the documented limits (200 per page, 5 groups) search answers 400 VALIDATION_ERROR."""
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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from([CONTACTS, SEARCH, f"{CONTACTS}/batch/archive", SUBMIT, SECURE_SUBMIT]),
    body=json_values,
    raw=st.binary(max_size=64),
)
def test_any_body_gets_an_answer_never_a_crash(path: str, body: Any, raw: bytes) -> None:
    """Whatever JSON (or bytes) a client sends, the sandbox answers 4xx/2xx, never crashes."""
    app = create_app(Scenario(seed=3), VirtualClock())
    as_json = send_once(app, "POST", path, json=body, headers=AUTH)
    assert as_json.status_code < 500, as_json.text
    headers = {**AUTH, "Content-Type": "application/json"}
    as_bytes = send_once(app, "POST", path, content=raw, headers=headers)
    assert as_bytes.status_code < 500, as_bytes.text
