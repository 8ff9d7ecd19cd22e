"""Salesforce emulation: SOQL queries, sObject rows, collections, quota, faults, end to end."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from salesforce_support import (
    DATA,
    INVALID_SESSION,
    LIMIT_INFO,
    SF,
    TOKEN_URL,
    add_lead,
    bearer,
    create,
    fault,
    get_token,
    sandbox_client,
    soql,
    world_of,
)
from sandbox_support import json_values, send_once
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock, settle
from syncwatch.sandbox import create_app
from syncwatch.sandbox.salesforce_data import format_datetime
from syncwatch.sandbox.scenario import SalesforceSpec, Scenario

# -- query ------------------------------------------------------------------------------------


async def test_query_email_in_finds_exactly_the_listed_leads(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """WHERE Email IN (...) returns the matching Leads with attributes and selected fields."""
    world = world_of(sandbox)
    a = add_lead(world, "a@probe.syncwatch.example", clock.now())
    b = add_lead(world, "B@probe.syncwatch.example", clock.now())
    add_lead(world, "c@probe.syncwatch.example", clock.now())
    token = await get_token(client)
    query = (
        "SELECT Id, Email FROM Lead "
        "WHERE Email IN ('a@probe.syncwatch.example','b@probe.syncwatch.example','z@x.com')"
    )
    response = await soql(client, token, query)
    assert response.status_code == 200
    assert response.json() == {
        "totalSize": 2,
        "done": True,
        "records": [
            {
                "attributes": {"type": "Lead", "url": f"/services/data/v62.0/sobjects/Lead/{r.id}"},
                "Id": r.id,
                "Email": r.email,
            }
            for r in (a, b)
        ],
    }


async def test_query_email_equals_and_limit(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """WHERE Email = 'x' matches regardless of case, and LIMIT caps totalSize."""
    world = world_of(sandbox)
    for _ in range(3):
        add_lead(world, "same@x.com", clock.now())
    token = await get_token(client)
    found = (await soql(client, token, "select Id from LEAD where email = 'SAME@x.com'")).json()
    assert found["totalSize"] == 3
    limited = await soql(client, token, "SELECT Id FROM Lead WHERE Email = 'same@x.com' LIMIT 2")
    assert limited.json()["totalSize"] == 2
    assert len(limited.json()["records"]) == 2


@pytest.mark.parametrize(
    "cutoff", ["2026-10-05T09:00:00Z", "2026-10-05T11:00:00+02:00", "2026-10-05T04:00:00-05:00"]
)
async def test_sweep_query_like_domain_and_created_before(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock, cutoff: str
) -> None:
    """The sweep shape finds only records at the probe domain created before the cutoff."""
    world = world_of(sandbox)
    old = add_lead(world, "syncwatch+old@probe.syncwatch.example", clock.now() - timedelta(hours=2))
    add_lead(world, "syncwatch+new@probe.syncwatch.example", clock.now() + timedelta(seconds=1))
    add_lead(world, "customer@elsewhere.example", clock.now() - timedelta(hours=2))
    token = await get_token(client)
    query = (
        "SELECT Id FROM Lead WHERE Email LIKE '%@probe.syncwatch.example' "
        f"AND CreatedDate < {cutoff}"
    )
    response = await soql(client, token, query)
    assert [r["Id"] for r in response.json()["records"]] == [old.id]


async def test_query_from_contact_sees_only_contacts(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """FROM Contact and FROM Lead are separate sObjects with their own attributes type."""
    world = world_of(sandbox)
    add_lead(world, "p@x.com", clock.now())
    contact = world.new_crm_record("Contact", {"Email": "p@x.com", "LastName": "C"}, clock.now())
    token = await get_token(client)
    body = (await soql(client, token, "SELECT Id FROM Contact WHERE Email = 'p@x.com'")).json()
    assert [r["Id"] for r in body["records"]] == [contact.id]
    assert body["records"][0]["attributes"]["type"] == "Contact"


async def test_query_selects_custom_fields_the_records_carry(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """A field present on the org's records (e.g. a __c field) can be selected and filtered."""
    add_lead(world_of(sandbox), "p@x.com", clock.now(), Probe_Id__c="ab12")
    token = await get_token(client)
    body = await soql(client, token, "SELECT probe_id__c FROM Lead WHERE Probe_Id__c = 'ab12'")
    assert body.json()["records"][0]["Probe_Id__c"] == "ab12"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q": "SELECT Id FROM Lead WHERE Email = 'a' OR Email = 'b'"}, "MALFORMED_QUERY"),
        ({"q": "DELETE FROM Lead"}, "MALFORMED_QUERY"),
        ({}, "MALFORMED_QUERY"),
        ({"q": "SELECT Id, Shoe_Size FROM Lead"}, "INVALID_FIELD"),
        ({"q": "SELECT Id FROM Lead WHERE Emial = 'a'"}, "INVALID_FIELD"),
    ],
)
async def test_query_errors_are_error_arrays(
    client: httpx.AsyncClient, params: dict[str, str], code: str
) -> None:
    """Unsupported SOQL is 400 MALFORMED_QUERY; an unknown field is 400 INVALID_FIELD."""
    token = await get_token(client)
    response = await client.get(DATA + "/query", params=params, headers=bearer(token))
    assert response.status_code == 400
    [entry] = response.json()
    assert entry["errorCode"] == code
    assert entry["message"]


async def test_query_pages_beyond_two_thousand_records(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """More than 2000 matches come in batches linked by nextRecordsUrl until done."""
    world = world_of(sandbox)
    ids = [add_lead(world, f"p{n}@bulk.example", clock.now()).id for n in range(2500)]
    token = await get_token(client)
    first = await soql(client, token, "SELECT Id FROM Lead WHERE Email LIKE '%@bulk.example'")
    page = first.json()
    assert (page["totalSize"], page["done"], len(page["records"])) == (2500, False, 2000)
    assert re.fullmatch(r"/services/data/v62\.0/query/01g\w{12}-2000", page["nextRecordsUrl"])
    second = await client.get(SF + page["nextRecordsUrl"], headers=bearer(token))
    rest = second.json()
    assert (rest["totalSize"], rest["done"], len(rest["records"])) == (2500, True, 500)
    assert "nextRecordsUrl" not in rest
    assert [r["Id"] for r in page["records"] + rest["records"]] == ids


async def test_exactly_two_thousand_records_fit_one_batch(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """A result of exactly 2000 is one batch, done, without nextRecordsUrl."""
    world = world_of(sandbox)
    for n in range(2000):
        add_lead(world, f"p{n}@bulk.example", clock.now())
    token = await get_token(client)
    page = (await soql(client, token, "SELECT Id FROM Lead")).json()
    assert (page["done"], len(page["records"])) == (True, 2000)
    assert "nextRecordsUrl" not in page


async def test_unknown_query_locator_is_refused(client: httpx.AsyncClient) -> None:
    """A locator the org never issued is a 400 error array, not an empty page."""
    token = await get_token(client)
    response = await client.get(DATA + "/query/01gXXXXXXXXXXXX-2000", headers=bearer(token))
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


async def test_created_date_is_truncated_to_whole_seconds(
    client: httpx.AsyncClient, sandbox: Starlette
) -> None:
    """CreatedDate drops the true instant's fraction and reads ``.000+0000`` in UTC."""
    true_instant = datetime(2026, 10, 3, 14, 5, 12, 987654, tzinfo=UTC)
    record = add_lead(world_of(sandbox), "p@x.com", true_instant)
    token = await get_token(client)
    body = (await soql(client, token, "SELECT CreatedDate FROM Lead")).json()
    assert body["records"][0]["CreatedDate"] == "2026-10-03T14:05:12.000+0000"
    assert record.created_at == true_instant  # the sandbox keeps the truth for accuracy checks


async def test_created_date_filters_use_the_truncated_value(
    client: httpx.AsyncClient, sandbox: Starlette
) -> None:
    """A record created at 09:00:00.5 has CreatedDate 09:00:00, so it is not < 09:00:00Z."""
    add_lead(world_of(sandbox), "p@x.com", datetime(2026, 10, 5, 9, 0, 0, 500000, tzinfo=UTC))
    token = await get_token(client)
    before = await soql(
        client, token, "SELECT Id FROM Lead WHERE CreatedDate < 2026-10-05T09:00:00Z"
    )
    equal = await soql(
        client, token, "SELECT Id FROM Lead WHERE CreatedDate = 2026-10-05T09:00:00Z"
    )
    assert (before.json()["totalSize"], equal.json()["totalSize"]) == (0, 1)


# -- sObject rows -----------------------------------------------------------------------------


async def test_create_lead_returns_201_and_stores_the_record(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """POST sobjects/Lead/ answers 201 {id, errors, success} and the Lead exists at now."""
    token = await get_token(client)
    response = await create(client, token, {"LastName": "Probe", "Company": "Co", "Email": "e@x"})
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "errors": [], "success": True}
    assert re.fullmatch(r"00Q\w{15}", body["id"])
    record = world_of(sandbox).crm[body["id"]]
    assert record.created_at == clock.now()
    assert record.fields["OwnerId"] == "0055e000001AbCdAAK"


@pytest.mark.parametrize(
    ("sobject", "body", "missing"),
    [
        ("Lead", {}, ["LastName", "Company"]),
        ("Lead", {"LastName": "P"}, ["Company"]),
        ("Lead", {"Company": "C", "LastName": ""}, ["LastName"]),
        ("Contact", {"Email": "e@x"}, ["LastName"]),
    ],
)
async def test_create_requires_fields(
    client: httpx.AsyncClient, sobject: str, body: dict[str, str], missing: list[str]
) -> None:
    """A Lead needs LastName and Company, a Contact LastName: else REQUIRED_FIELD_MISSING."""
    token = await get_token(client)
    response = await create(client, token, body, sobject)
    assert response.status_code == 400
    assert response.json() == [
        {
            "message": f"Required fields are missing: [{', '.join(missing)}]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": missing,
        }
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Id": "00Q000000000001", "LastName": "P", "Company": "C"}, "INVALID_FIELD"),
        ({"Shoe_Size": 9, "LastName": "P", "Company": "C"}, "INVALID_FIELD"),
        ({"CreatedDate": "2026-01-01T00:00:00.000Z", "LastName": "P", "Company": "C"},
         "INVALID_FIELD_FOR_INSERT_UPDATE"),
        (["not", "an", "object"], "JSON_PARSER_ERROR"),
    ],
)  # fmt: skip
async def test_create_refuses_bad_bodies(client: httpx.AsyncClient, body: Any, code: str) -> None:
    """Id or read-only fields, unknown fields, or a non-object body are 400 error arrays."""
    token = await get_token(client)
    response = await client.post(DATA + "/sobjects/Lead/", json=body, headers=bearer(token))
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == code


async def test_create_with_id_uses_the_documented_message(client: httpx.AsyncClient) -> None:
    """Specifying Id on create answers the vendor's documented INVALID_FIELD message."""
    token = await get_token(client)
    response = await create(client, token, {"Id": "x", "LastName": "P", "Company": "C"})
    assert response.json() == [
        {
            "message": "The Id field should not be specified in the sobject data.",
            "errorCode": "INVALID_FIELD",
        }
    ]


async def test_get_lead_by_18_and_15_char_id(client: httpx.AsyncClient) -> None:
    """GET sobjects/Lead/{id} returns every field, CreatedDate in the vendor's format."""
    token = await get_token(client)
    body = {"LastName": "Probe", "Company": "Co", "Email": "e@x.com"}
    lead_id = (await create(client, token, body)).json()["id"]
    for record_id in (lead_id, lead_id[:15]):
        response = await client.get(f"{DATA}/sobjects/Lead/{record_id}", headers=bearer(token))
        assert response.status_code == 200
        record = response.json()
        assert record["attributes"] == {
            "type": "Lead",
            "url": f"/services/data/v62.0/sobjects/Lead/{lead_id}",
        }
        assert (record["Id"], record["Email"], record["FirstName"]) == (lead_id, "e@x.com", None)
        assert record["CreatedDate"] == "2026-10-05T09:00:00.000+0000"


@pytest.mark.parametrize("path", ["Lead/00Q000000000000AAA", "Contact/{lead}", "Account/{lead}"])
async def test_get_unknown_record_is_not_found(client: httpx.AsyncClient, path: str) -> None:
    """An unknown id, a Lead id under Contact, or an unknown sObject is 404 NOT_FOUND."""
    token = await get_token(client)
    lead_id = (await create(client, token, {"LastName": "P", "Company": "C"})).json()["id"]
    url = f"{DATA}/sobjects/{path.format(lead=lead_id)}"
    response = await client.get(url, headers=bearer(token))
    assert response.status_code == 404
    assert response.json()[0]["errorCode"] == "NOT_FOUND"


async def test_delete_lead_is_204_then_gone(client: httpx.AsyncClient, sandbox: Starlette) -> None:
    """DELETE answers 204 with no body; the Lead is gone; a second delete is refused."""
    token = await get_token(client)
    lead_id = (await create(client, token, {"LastName": "P", "Company": "C"})).json()["id"]
    url = f"{DATA}/sobjects/Lead/{lead_id}"
    deleted = await client.delete(url, headers=bearer(token))
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert lead_id not in world_of(sandbox).crm
    assert (await client.get(url, headers=bearer(token))).status_code == 404
    again = await client.delete(url, headers=bearer(token))
    assert again.status_code == 404
    assert again.json()[0]["errorCode"] == "ENTITY_IS_DELETED"


async def test_contact_create_get_delete(client: httpx.AsyncClient) -> None:
    """Contacts follow the same create, get and delete shapes with their own 003 ids."""
    token = await get_token(client)
    created = await create(client, token, {"LastName": "P", "Email": "c@x.com"}, "Contact")
    contact_id = created.json()["id"]
    assert (created.status_code, contact_id[:3]) == (201, "003")
    url = f"{DATA}/sobjects/Contact/{contact_id}"
    fetched = (await client.get(url, headers=bearer(token))).json()
    assert (fetched["attributes"]["type"], fetched["Email"]) == ("Contact", "c@x.com")
    assert "Company" not in fetched
    assert (await client.delete(url, headers=bearer(token))).status_code == 204


# -- composite collections delete -------------------------------------------------------------


async def test_collection_delete_reports_each_id(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """Each id gets a SaveResult in order; unknown and already-deleted ids fail on their own."""
    world = world_of(sandbox)
    a, b, gone = (add_lead(world, f"{n}@x.com", clock.now()).id for n in "abc")
    token = await get_token(client)
    await client.delete(f"{DATA}/sobjects/Lead/{gone}", headers=bearer(token))
    ids = f"{a},{b},{gone},00Q000000000000AAA"
    response = await client.delete(
        f"{DATA}/composite/sobjects",
        params={"ids": ids, "allOrNone": "false"},
        headers=bearer(token),
    )
    assert response.status_code == 200
    results = response.json()
    assert results[:2] == [
        {"id": a, "success": True, "errors": []},
        {"id": b, "success": True, "errors": []},
    ]
    assert [r["success"] for r in results[2:]] == [False, False]
    codes = [r["errors"][0]["statusCode"] for r in results[2:]]
    assert codes == ["ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"]
    assert world.crm == {}


async def test_collection_delete_all_or_none_rolls_back(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """With allOrNone=true one bad id keeps every record and fails every entry."""
    world = world_of(sandbox)
    lead = add_lead(world, "a@x.com", clock.now())
    token = await get_token(client)
    params = {"ids": f"{lead.id},00Q000000000000AAA", "allOrNone": "true"}
    response = await client.delete(
        f"{DATA}/composite/sobjects", params=params, headers=bearer(token)
    )
    assert [r["success"] for r in response.json()] == [False, False]
    assert response.json()[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert lead.id in world.crm


@pytest.mark.parametrize(("count", "status"), [(200, 200), (201, 400), (0, 400)])
async def test_collection_delete_takes_at_most_200_ids(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock, count: int, status: int
) -> None:
    """Up to 200 ids are accepted in one call; more, or none, is a 400 error array."""
    world = world_of(sandbox)
    ids = [add_lead(world, f"{n}@x.com", clock.now()).id for n in range(count)]
    token = await get_token(client)
    params = {"ids": ",".join(ids)}
    response = await client.delete(
        f"{DATA}/composite/sobjects", params=params, headers=bearer(token)
    )
    assert response.status_code == status
    if status == 400:
        assert response.json()[0]["errorCode"]
        assert len(world.crm) == count
    else:
        assert all(r["success"] for r in response.json())


# -- limits and quota -------------------------------------------------------------------------


async def test_limits_report_daily_api_requests(client: httpx.AsyncClient) -> None:
    """limits/ reports Max as the org's allowance and Remaining after this call."""
    token = await get_token(client)
    await client.get(DATA + "/limits/", headers=bearer(token))
    response = await client.get(DATA + "/limits", headers=bearer(token))
    assert response.json() == {"DailyApiRequests": {"Max": 100_000, "Remaining": 99_998}}


async def _every_rest_call(client: httpx.AsyncClient, token: str) -> list[httpx.Response]:
    auth = bearer(token)
    lead_id = (await create(client, token, {"LastName": "P", "Company": "C"})).json()["id"]
    return [
        await create(client, token, {"LastName": "P", "Company": "C"}),
        await create(client, token, {}),
        await soql(client, token, "SELECT Id FROM Lead"),
        await soql(client, token, "SELECT nonsense"),
        await client.get(f"{DATA}/sobjects/Lead/{lead_id}", headers=auth),
        await client.get(f"{DATA}/sobjects/Lead/00Q000000000000AAA", headers=auth),
        await client.delete(f"{DATA}/sobjects/Lead/{lead_id}", headers=auth),
        await client.delete(f"{DATA}/composite/sobjects", params={"ids": lead_id}, headers=auth),
        await client.get(DATA + "/limits/", headers=auth),
        await client.get(DATA + "/no/such/resource", headers=auth),
        await client.get(DATA + "/limits/"),
    ]


async def test_every_rest_response_carries_sforce_limit_info(client: httpx.AsyncClient) -> None:
    """Success, error, 204 and 401 answers all carry Sforce-Limit-Info; the token call does not."""
    token_response = await client.post(
        TOKEN_URL, data={"grant_type": "client_credentials", "client_id": "i", "client_secret": "s"}
    )
    assert "Sforce-Limit-Info" not in token_response.headers
    for response in await _every_rest_call(client, token_response.json()["access_token"]):
        assert LIMIT_INFO.match(response.headers.get("Sforce-Limit-Info", "")), response.url


async def test_each_rest_call_counts_once(client: httpx.AsyncClient) -> None:
    """api-usage goes up by one per REST call, and the token endpoint is not counted."""
    token = await get_token(client)
    usages = [
        (await client.get(DATA + "/limits/", headers=bearer(token))).headers["Sforce-Limit-Info"]
        for _ in range(3)
    ]
    await get_token(client)
    after = await soql(client, token, "SELECT Id FROM Lead")
    assert usages == ["api-usage=1/100000", "api-usage=2/100000", "api-usage=3/100000"]
    assert after.headers["Sforce-Limit-Info"] == "api-usage=4/100000"


async def test_daily_limit_refuses_with_403_until_the_window_rolls(clock: VirtualClock) -> None:
    """Past daily_limit calls are 403 REQUEST_LIMIT_EXCEEDED until 24 h have rolled by."""
    small = Scenario(salesforce=SalesforceSpec(daily_limit=3, token_lifetime=200_000))
    async with sandbox_client(small, clock) as http:
        token = await get_token(http)
        for _ in range(3):
            assert (await http.get(DATA + "/limits/", headers=bearer(token))).status_code == 200
        refused = await http.get(DATA + "/limits/", headers=bearer(token))
        assert refused.status_code == 403
        assert refused.json() == [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]
        assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"
        await clock.advance(24 * 3600 - 60)
        assert (await http.get(DATA + "/limits/", headers=bearer(token))).status_code == 403
        await clock.advance(60)
        again = await http.get(DATA + "/limits/", headers=bearer(token))
    assert again.status_code == 200
    assert again.headers["Sforce-Limit-Info"] == "api-usage=1/3"


# -- faults -----------------------------------------------------------------------------------


async def test_outage_fault_answers_its_status_then_recovers(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """During an outage REST and login answer the fault's 5xx; afterwards they work again."""
    token = await get_token(client)
    fault(world_of(sandbox), kind="outage", vendor="salesforce", status=502, **{"for": 60})
    response = await client.get(DATA + "/limits/", headers=bearer(token))
    assert response.status_code == 502
    assert response.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    login = await client.post(TOKEN_URL, data={"grant_type": "client_credentials"})
    assert login.status_code == 502
    await clock.advance(60)
    assert (await client.get(DATA + "/limits/", headers=bearer(token))).status_code == 200


async def test_rate_limit_fault_is_the_concurrency_403(
    client: httpx.AsyncClient, sandbox: Starlette
) -> None:
    """A rate_limit fault answers 403 REQUEST_LIMIT_EXCEEDED with the concurrency message."""
    token = await get_token(client)
    fault(world_of(sandbox), kind="rate_limit", vendor="salesforce")
    response = await client.get(DATA + "/limits/", headers=bearer(token))
    assert response.status_code == 403
    [entry] = response.json()
    assert entry["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert entry["message"].startswith("ConcurrentRequests")


async def test_quota_exhausted_fault_is_the_daily_403(
    client: httpx.AsyncClient, sandbox: Starlette
) -> None:
    """A quota_exhausted fault answers the daily 403 and shows the allowance as spent."""
    token = await get_token(client)
    fault(world_of(sandbox), kind="quota_exhausted", vendor="salesforce")
    response = await client.get(DATA + "/limits/", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()[0]["message"] == "TotalRequests Limit exceeded."
    assert response.headers["Sforce-Limit-Info"] == "api-usage=100000/100000"


async def test_slow_fault_holds_the_response_on_the_sandbox_clock(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """A slow fault answers only once its delay has passed on the virtual clock."""
    token = await get_token(client)
    fault(world_of(sandbox), kind="slow", vendor="salesforce", delay=45)
    pending = asyncio.create_task(client.get(DATA + "/limits/", headers=bearer(token)))
    await clock.advance(44)
    assert not pending.done()
    await clock.advance(1)
    await settle()
    assert pending.done()
    assert (await pending).status_code == 200


@pytest.mark.parametrize("body", ["html", "truncated_json"])
async def test_malformed_fault_garbles_successful_bodies(
    client: httpx.AsyncClient, sandbox: Starlette, body: str
) -> None:
    """Under a malformed fault a 2xx body is not the documented JSON; error bodies are intact."""
    token = await get_token(client)
    fault(world_of(sandbox), kind="malformed", vendor="salesforce", body=body)
    response = await client.get(DATA + "/limits/", headers=bearer(token))
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.text)
    assert (await client.get(DATA + "/limits/")).json() == INVALID_SESSION
    login = await client.post(
        TOKEN_URL, data={"grant_type": "client_credentials", "client_id": "i", "client_secret": "s"}
    )
    with pytest.raises(ValueError):
        json.loads(login.text)


async def test_validation_fault_rejects_records_without_its_field(
    client: httpx.AsyncClient, sandbox: Starlette
) -> None:
    """A validation fault rejects creates lacking its field: FIELD_CUSTOM_VALIDATION_EXCEPTION."""
    token = await get_token(client)
    fault(world_of(sandbox), kind="validation", vendor="salesforce", field="Phone")
    refused = await create(client, token, {"LastName": "P", "Company": "C"})
    assert refused.status_code == 400
    [entry] = refused.json()
    assert (entry["errorCode"], entry["fields"]) == ("FIELD_CUSTOM_VALIDATION_EXCEPTION", ["Phone"])
    accepted = await create(client, token, {"LastName": "P", "Company": "C", "Phone": "1"})
    assert accepted.status_code == 201


async def test_duplicate_fault_blocks_the_save_with_duplicate_resut(
    client: httpx.AsyncClient, sandbox: Starlette
) -> None:
    """A duplicate fault answers DUPLICATES_DETECTED under the vendor's ``duplicateResut`` key."""
    token = await get_token(client)
    body = {"LastName": "P", "Company": "C", "Email": "twin@x.com"}
    first = (await create(client, token, body)).json()["id"]
    fault(world_of(sandbox), kind="duplicate", vendor="salesforce")
    refused = await create(client, token, body)
    assert refused.status_code == 400
    [entry] = refused.json()
    assert (entry["errorCode"], entry["message"]) == (
        "DUPLICATES_DETECTED",
        "Use one of these records?",
    )
    result = entry["duplicateResut"]
    assert result["allowSave"] is False
    assert result["duplicateRuleEntityType"] == "Lead"
    [match] = result["matchResults"]
    assert [m["record"]["Id"] for m in match["matchRecords"]] == [first]
    assert (match["size"], match["success"]) == (1, True)
    allowed = await client.post(
        DATA + "/sobjects/Lead/",
        json=body,
        headers={**bearer(token), "Sforce-Duplicate-Rule-Header": "allowSave=true"},
    )
    assert allowed.status_code == 201


async def test_faults_for_another_vendor_leave_salesforce_alone(
    client: httpx.AsyncClient, sandbox: Starlette
) -> None:
    """An outage scheduled for HubSpot does not touch the Salesforce endpoints."""
    token = await get_token(client)
    fault(world_of(sandbox), kind="outage", vendor="hubspot")
    assert (await client.get(DATA + "/limits/", headers=bearer(token))).status_code == 200


# -- end to end -------------------------------------------------------------------------------


async def test_hubspot_contact_becomes_a_lead_found_by_soql(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """A synced HubSpot contact is found as a Lead by Email IN, with its mapped fields."""
    world = world_of(sandbox)
    email = "syncwatch+e2e1@probe.syncwatch.example"
    properties = {"email": email, "firstname": "Pro", "lastname": "Be", "company": "Syncwatch"}
    sandbox.state.sync.enqueue(world.new_contact(properties, "api"))
    token = await get_token(client)
    query = (
        "SELECT Id, Email, FirstName, LastName, Company, OwnerId, CreatedDate FROM Lead "
        f"WHERE Email IN ('{email}')"
    )
    assert (await soql(client, token, query)).json()["totalSize"] == 0
    await clock.advance(600)
    body = (await soql(client, token, query)).json()
    assert body["totalSize"] == 1
    [lead] = body["records"]
    [record] = world.crm.values()
    expected_created = record.created_at.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")
    assert lead["CreatedDate"] == expected_created + ".000+0000"
    assert world.started_at < record.created_at <= clock.now()
    assert {k: lead[k] for k in ("Email", "FirstName", "LastName", "Company", "OwnerId")} == {
        "Email": email,
        "FirstName": "Pro",
        "LastName": "Be",
        "Company": "Syncwatch",
        "OwnerId": "0055e000001AbCdAAK",
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=json_values, query=st.text(max_size=80))
def test_any_body_or_query_gets_an_answer_never_a_crash(body: Any, query: str) -> None:
    """Garbage creates and queries are refused with Salesforce's error array, never a crash."""
    app = create_app(Scenario(seed=3), VirtualClock())
    grant = {"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"}
    token = send_once(app, "POST", TOKEN_URL, data=grant).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    for method, url, kwargs in (
        ("POST", f"{DATA}/sobjects/Lead/", {"json": body}),
        ("GET", f"{DATA}/query", {"params": {"q": query}}),
        ("POST", TOKEN_URL, {"data": {"grant_type": query, "assertion": query}}),
    ):
        response = send_once(app, method, url, headers=auth, **kwargs)
        assert response.status_code < 500, response.text


@given(
    st.datetimes(  # hypothesis takes naive bounds and adds the zone itself
        min_value=datetime(1000, 1, 2),  # noqa: DTZ001
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    )
)
def test_datetimes_are_written_as_the_rest_api_writes_them(moment: datetime) -> None:
    """``2026-10-03T14:05:12.000+0000``: UTC, whole seconds, ``.000``, offset without colon."""
    expected = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    assert format_datetime(moment) == expected
