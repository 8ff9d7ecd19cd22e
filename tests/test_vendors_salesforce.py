"""The Salesforce destination adapter, against the in-process sandbox and vendor-shaped bodies."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from salesforce_support import add_lead, fault, world_of
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock, settle
from syncwatch.config.accounts import SalesforceAccount
from syncwatch.config.model import Destination
from syncwatch.errors import AuthError, MalformedResponse, ValidationRejected, VendorError
from syncwatch.events import ApiCall, QuotaFigure
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import SalesforceSpec, Scenario
from syncwatch.sandbox.world import World
from syncwatch.vendors.base import Destination as DestinationProtocol
from syncwatch.vendors.base import Probe, Record, Wiring, probe_email
from syncwatch.vendors.salesforce import (
    MAX_URL_CHARS,
    SalesforceDestination,
    account_http,
    classify,
    soql_ends_with,
    soql_string,
)
from syncwatch.vendors.salesforce_auth import rsa_private_key

DOMAIN = "probe.syncwatch.example"
SECRET = "sandbox-client-secret-7f3a9c2e41"
SANDBOX_URL = "http://sandbox.test/salesforce"
FIELDS = ("FirstName", "LastName", "Company", "Title", "LeadSource")
T = TypeVar("T")


class Recording(httpx.AsyncBaseTransport):
    """Passes requests on and keeps them, so tests can read URLs, forms and headers."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


@dataclass
class Rig:
    """A destination wired to a sandbox, with every recorded call and every sent request."""

    destination: SalesforceDestination
    calls: list[ApiCall]
    transport: Recording
    world: World
    clock: VirtualClock

    def operations(self) -> list[tuple[str, str | None]]:
        return [(call.operation, call.error_class) for call in self.calls]

    def queries(self) -> list[httpx.Request]:
        return [r for r in self.transport.requests if "/query" in r.url.path]

    async def run(self, work: Awaitable[T]) -> T:
        return await run(self.clock, work)


async def run(clock: VirtualClock, work: Awaitable[T]) -> T:
    """Await ``work`` while moving the virtual clock, so retries' back-off sleeps can end."""
    task = asyncio.ensure_future(work)
    await settle()
    for _ in range(600):
        if task.done():
            break
        await clock.advance(1.0)
    return task.result()


def account_of(tmp_path: Path, **auth: Any) -> SalesforceAccount:
    secret = tmp_path / "client_secret"
    secret.write_text(SECRET)
    auth = auth or {
        "flow": "client_credentials",
        "client_id": "syncwatch-test",
        "client_secret": {"file": str(secret)},
    }
    return SalesforceAccount.model_validate(
        {"name": "sf-test", "vendor": "salesforce", "base_url": SANDBOX_URL, "auth": auth}
    )


def rig_for(sandbox: Starlette, clock: VirtualClock, account: SalesforceAccount) -> Rig:
    calls: list[ApiCall] = []

    def sink(call: ApiCall, _others: tuple[QuotaFigure, ...]) -> None:
        calls.append(call)

    transport = Recording(httpx.ASGITransport(app=sandbox))
    http = account_http(account, Wiring(clock=clock, sink=sink, transport=transport))
    settings = Destination(account=account.name, object="Lead")
    destination = SalesforceDestination(account, settings, http, fields=FIELDS)
    return Rig(destination, calls, transport, world_of(sandbox), clock)


@pytest.fixture
def rig(sandbox: Starlette, clock: VirtualClock, tmp_path: Path) -> Rig:
    return rig_for(sandbox, clock, account_of(tmp_path))


def probe(probe_id: str, integration: str = "hs-sf") -> Probe:
    return Probe(probe_id, probe_email(probe_id, DOMAIN), integration)


def lead(rig: Rig, probe_id: str, age_s: float = 60) -> str:
    """A probe's Lead created ``age_s`` ago, straight into the sandbox's CRM; its id."""
    created = rig.clock.now() - timedelta(seconds=age_s)
    return add_lead(rig.world, probe_email(probe_id, DOMAIN), created).id


# -- find -------------------------------------------------------------------------------------


async def test_find_returns_connector_synced_leads_from_one_query(
    rig: Rig, sandbox: Starlette
) -> None:
    """Leads the connector created are found by one query, with CreatedDate, owner and fields."""
    sync = sandbox.state.sync
    ids = [f"p{n:03d}" for n in range(20)]
    for probe_id in ids:
        properties = {"email": probe_email(probe_id, DOMAIN), "lastname": probe_id}
        sync.enqueue(rig.world.new_contact({**properties, "company": "Syncwatch"}, "form"))
    await rig.clock.advance(3600)

    found = await rig.run(rig.destination.find([probe(i) for i in ids]))

    assert sorted(found) == ids
    owner = rig.world.scenario.salesforce.default_owner_id
    for probe_id, record in found.items():
        truth = rig.world.crm[record.record_id]
        assert record.created_at == truth.created_at.replace(microsecond=0)
        assert record.created_resolution_s == 1.0
        assert record.owner == owner
        assert record.fields["LastName"] == probe_id
        assert record.fields["LeadSource"] == "HubSpot"
        assert "attributes" not in record.fields
        assert record.observed_at == rig.clock.now()
    assert rig.operations() == [("request_token", None), ("query_records", None)]
    assert rig.calls[-1].integration == "hs-sf"


async def test_find_leaves_out_probes_not_yet_synced_and_other_people(rig: Rig) -> None:
    """Only probes with a record come back; a non-probe lead with a similar email is ignored."""
    lead(rig, "here")
    add_lead(rig.world, "someone@example.com", rig.clock.now())
    found = await rig.run(rig.destination.find([probe("here"), probe("missing")]))
    assert list(found) == ["here"]


async def test_duplicates_resolve_to_the_earliest_created_record(rig: Rig) -> None:
    """When the connector created a probe twice, the earlier record is the probe's."""
    lead(rig, "dup", age_s=10)
    first = lead(rig, "dup", age_s=30)
    lead(rig, "dup", age_s=20)
    found = await rig.run(rig.destination.find([probe("dup")]))
    assert found["dup"].record_id == first


def _find_only() -> SalesforceDestination:
    """A destination that only builds queries (no call is made: the secret is never read)."""
    auth = {"flow": "client_credentials", "client_id": "x", "client_secret": {"env": "UNSET"}}
    account = SalesforceAccount.model_validate(
        {"name": "sf-test", "vendor": "salesforce", "base_url": SANDBOX_URL, "auth": auth}
    )
    wiring = Wiring(clock=VirtualClock(), sink=lambda _call, _others: None)
    settings = Destination(account=account.name, object="Lead")
    return SalesforceDestination(account, settings, account_http(account, wiring), FIELDS)


FIND_ONLY = _find_only()


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=5))
def test_the_find_query_is_encoded_from_its_pieces_as_a_whole_query_would_be(
    emails: list[str],
) -> None:
    """The find query's path, joined from each literal's encoding, is byte for byte what
    encoding the whole SOQL text gives: quotes, backslashes, commas, any character."""
    destination = FIND_ONLY
    whole = destination._query_path(destination._find_soql(emails))
    assert destination._find_path(emails) == whole


async def test_find_splits_only_when_the_url_budget_would_be_passed(rig: Rig) -> None:
    """600 long emails need several queries, each URL within budget; 40 short ones need one."""
    long_ids = [f"{n:04d}-{'x' * 60}" for n in range(600)]
    for probe_id in long_ids:
        lead(rig, probe_id)
    found = await rig.run(rig.destination.find([probe(i) for i in long_ids]))

    queries = rig.queries()
    assert len(found) == 600
    assert len(queries) > 1
    assert all(len(str(request.url)) <= MAX_URL_CHARS for request in queries)
    assert sum(request.url.params["q"].count("@") for request in queries) == 600
    # Full batches: every one but the last is within one encoded email (~110 chars) of the limit.
    assert all(len(str(request.url)) > MAX_URL_CHARS - 150 for request in queries[:-1])

    rig.transport.requests.clear()
    await rig.run(rig.destination.find([probe(f"s{n}") for n in range(40)]))
    assert len(rig.queries()) == 1


async def test_sweep_pages_through_next_records_url(rig: Rig) -> None:
    """2,500 old synthetic leads come back over two batches (2,000 is the batch size)."""
    for n in range(2500):
        lead(rig, f"old{n}", age_s=7200)
    swept = await rig.run(rig.destination.sweep(DOMAIN, rig.clock.now() - timedelta(hours=1)))
    assert len(swept) == 2500
    assert [call.operation for call in rig.calls].count("query_records") == 2
    assert "/query/" in rig.queries()[-1].url.path


async def test_sweep_finds_only_old_synthetic_leads(rig: Rig) -> None:
    """Young probes, other domains and non-probe addresses at the probe domain are left alone."""
    old = lead(rig, "old", age_s=7200)
    lead(rig, "young", age_s=60)
    add_lead(rig.world, "syncwatch+x@elsewhere.example", rig.clock.now() - timedelta(days=1))
    add_lead(rig.world, f"sales@{DOMAIN}", rig.clock.now() - timedelta(days=1))
    swept = await rig.run(rig.destination.sweep(DOMAIN, rig.clock.now() - timedelta(hours=1)))
    assert [record.record_id for record in swept] == [old]
    assert swept[0].probe_id == "old"


# -- tokens -----------------------------------------------------------------------------------


async def test_one_token_serves_many_finds(rig: Rig) -> None:
    """The token is cached: three finds cost one token call."""
    for _ in range(3):
        await rig.run(rig.destination.find([probe("a")]))
    assert [op for op, _ in rig.operations()].count("request_token") == 1


async def test_a_revoked_token_is_renewed_once_and_the_call_retried(rig: Rig) -> None:
    """After a token_expiry fault the query gets 401, one new token, and succeeds on retry."""
    lead(rig, "a")
    await rig.run(rig.destination.find([probe("a")]))
    await rig.clock.advance(1)
    fault(rig.world, kind="token_expiry", vendor="salesforce")
    found = await rig.run(rig.destination.find([probe("a")]))
    assert list(found) == ["a"]
    assert rig.operations()[2:] == [
        ("query_records", "auth"),
        ("request_token", None),
        ("query_records", None),
    ]


async def test_a_token_refused_twice_is_auth(clock: VirtualClock, tmp_path: Path) -> None:
    """A session refused even when brand new ends as AuthError after exactly one renewal."""
    app = create_app(Scenario(seed=7, salesforce=SalesforceSpec(token_lifetime=0)), clock)
    rig = rig_for(app, clock, account_of(tmp_path))
    with pytest.raises(AuthError) as raised:
        await rig.run(rig.destination.find([probe("a")]))
    assert raised.value.status == 401
    assert rig.operations() == [
        ("request_token", None),
        ("query_records", "auth"),
        ("request_token", None),
        ("query_records", "auth"),
    ]


async def test_a_refused_client_is_auth_without_the_secret(
    clock: VirtualClock, tmp_path: Path
) -> None:
    """invalid_client from the token endpoint is AuthError; its message never holds the secret."""
    pinned = SalesforceSpec(client_id="syncwatch-test", client_secret="another-secret")
    rig = rig_for(
        create_app(Scenario(seed=7, salesforce=pinned), clock), clock, account_of(tmp_path)
    )
    with pytest.raises(AuthError) as raised:
        await rig.run(rig.destination.find([probe("a")]))
    assert "invalid_client" in str(raised.value)
    assert SECRET not in f"{raised.value} {raised.value!r}"
    assert rig.operations() == [("request_token", "auth")]


async def test_secrets_and_tokens_never_reach_calls_errors_or_reprs(rig: Rig) -> None:
    """Neither the client secret nor the access token shows in a call, an error or a repr."""
    await rig.run(rig.destination.find([probe("a")]))
    token = rig.queries()[0].headers["authorization"].removeprefix("Bearer ")
    fault(rig.world, kind="outage", vendor="salesforce")
    with pytest.raises(VendorError) as raised:
        await rig.run(rig.destination.find([probe("a")]))
    shown = " ".join(
        [str(raised.value), repr(raised.value), repr(rig.destination), repr(rig.destination.auth)]
        + [repr(call) for call in rig.calls]
    )
    assert len(token) > 20
    assert token not in shown
    assert SECRET not in shown


# -- delete -----------------------------------------------------------------------------------


async def test_delete_450_records_in_three_collection_calls(rig: Rig) -> None:
    """450 ids go in collections of 200, 200 and 50, and nothing is left behind."""
    ids = [lead(rig, f"d{n}") for n in range(450)]
    records = [Record(record_id, "", None) for record_id in ids]
    await rig.run(rig.destination.delete(records))
    deletes = [r for r in rig.transport.requests if r.method == "DELETE"]
    assert [len(r.url.params["ids"].split(",")) for r in deletes] == [200, 200, 50]
    assert all(r.url.params["allOrNone"] == "false" for r in deletes)
    assert rig.world.crm == {}


async def test_deleting_records_already_gone_is_fine(rig: Rig) -> None:
    """A second delete of the same records meets ENTITY_IS_DELETED, which is not an error."""
    records = [Record(lead(rig, "gone"), "", None)]
    await rig.run(rig.destination.delete(records))
    await rig.run(rig.destination.delete(records))
    assert rig.operations()[-1] == ("delete_records", None)


# -- faults and quota -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "error_class", "attempts"),
    [
        ({"kind": "outage"}, "vendor_5xx", 3),
        ({"kind": "quota_exhausted"}, "quota_exhausted", 1),
        ({"kind": "rate_limit"}, "rate_limited", 3),
        ({"kind": "malformed", "body": "html"}, "malformed", 1),
        ({"kind": "malformed", "body": "truncated_json"}, "malformed", 1),
    ],
)
async def test_faults_are_classified_and_recorded(
    rig: Rig, spec: dict[str, Any], error_class: str, attempts: int
) -> None:
    """Each sandbox fault raises its DESIGN §6 class, recorded once per (bounded) attempt."""
    await rig.run(rig.destination.find([probe("a")]))
    fault(rig.world, vendor="salesforce", **spec)
    with pytest.raises(VendorError) as raised:
        await rig.run(rig.destination.find([probe("a")]))
    assert raised.value.error_class == error_class
    assert rig.operations()[2:] == [("query_records", error_class)] * attempts


async def test_sforce_limit_info_is_recorded_as_the_daily_figure(rig: Rig) -> None:
    """Every query call carries api-usage used/limit from Sforce-Limit-Info."""
    await rig.run(rig.destination.find([probe("a")]))
    await rig.run(rig.destination.find([probe("a")]))
    first, second = (call for call in rig.calls if call.operation == "query_records")
    assert (first.quota_window, first.quota_used, first.quota_limit) == ("api-usage", 1, 100_000)
    assert (second.quota_used, second.quota_limit) == (2, 100_000)


# -- JWT bearer -------------------------------------------------------------------------------


@pytest.mark.parametrize("pkcs8", [True, False])
async def test_jwt_bearer_assertion_has_the_documented_claims_and_signature(
    sandbox: Starlette, clock: VirtualClock, tmp_path: Path, pkcs8: bool
) -> None:
    """The assertion is RS256 over iss/sub/aud/exp (now + 3 min) and verifies with the key."""
    key = TestKey.generate()
    pem = tmp_path / "key.pem"
    pem.write_text(key.pem(pkcs8))
    auth = {
        "flow": "jwt_bearer",
        "client_id": "consumer-key",
        "username": "integration@example.com",
        "private_key": {"file": str(pem)},
    }
    rig = rig_for(sandbox, clock, account_of(tmp_path, **auth))
    lead(rig, "a")
    assert list(await rig.run(rig.destination.find([probe("a")]))) == ["a"]

    form = dict(parse_qsl(rig.transport.requests[0].content.decode()))
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    header, claims, signature = form["assertion"].split(".")
    assert decode_segment(header) == {"alg": "RS256"}
    assert decode_segment(claims) == {
        "iss": "consumer-key",
        "sub": "integration@example.com",
        "aud": SANDBOX_URL,
        "exp": int(clock.now().timestamp()) + 180,
    }
    assert key.verifies(f"{header}.{claims}".encode(), unpad(signature))


@pytest.mark.parametrize(
    "text",
    [
        "not a key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\nbm90IGRlcg==\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_unusable_private_keys_are_refused_without_echoing_them(text: str) -> None:
    """Garbage, encrypted or truncated keys raise ValueError whose message quotes none of it."""
    with pytest.raises(ValueError, match="private_key") as raised:
        rsa_private_key(text)
    assert "MIIB" not in str(raised.value) and "bm90" not in str(raised.value)


async def test_an_unusable_private_key_is_auth_before_any_call(
    sandbox: Starlette, clock: VirtualClock, tmp_path: Path
) -> None:
    """A key that is no PEM RSA key fails as auth, naming private_key, with nothing sent."""
    pem = tmp_path / "key.pem"
    pem.write_text("-----BEGIN RSA PRIVATE KEY-----\nbm90IGRlcg==\n-----END RSA PRIVATE KEY-----")
    auth = {
        "flow": "jwt_bearer",
        "client_id": "c",
        "username": "u",
        "private_key": {"file": str(pem)},
    }
    rig = rig_for(sandbox, clock, account_of(tmp_path, **auth))
    with pytest.raises(AuthError, match="private_key") as raised:
        await rig.run(rig.destination.find([probe("a")]))
    assert "bm90" not in str(raised.value)
    assert rig.calls == [] and rig.transport.requests == []


# -- vendor-shaped payloads (respx) -----------------------------------------------------------

INSTANCE = "https://acme.my.salesforce.com"
TOKEN_BODY = {
    "access_token": "00D5e000000Abcd!AQ4AQFakeAccessTokenForTests0123456789",
    "signature": "c2ln",
    "token_format": "opaque",
    "instance_url": INSTANCE,
    "id": "https://login.salesforce.com/id/00D5e000000Abcd/0055e000001AbCdAAK",
    "token_type": "Bearer",
    "issued_at": "1790000000000",
}


def respx_destination(
    clock: VirtualClock, tmp_path: Path
) -> tuple[SalesforceDestination, list[ApiCall]]:
    """A destination on the default transport, which respx replaces: no sandbox behind it."""
    account = account_of(tmp_path).model_copy(update={"auth_url": INSTANCE})
    calls: list[ApiCall] = []

    def sink(call: ApiCall, _others: tuple[QuotaFigure, ...]) -> None:
        calls.append(call)

    http = account_http(account, Wiring(clock=clock, sink=sink))
    settings = Destination(account=account.name, object="Lead")
    return SalesforceDestination(account, settings, http), calls


def query_body(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"totalSize": len(rows), "done": True, "records": list(rows)}


ROW = {
    "attributes": {"type": "Lead", "url": "/services/data/v62.0/sobjects/Lead/00Q5e00000AbCdEAAZ"},
    "Id": "00Q5e00000AbCdEAAZ",
    "Email": probe_email("abc", DOMAIN),
    "CreatedDate": "2026-10-03T14:05:12.000+0000",
    "OwnerId": "0055e000001AbCdAAK",
}


async def test_token_error_json_is_auth(
    respx_mock: respx.MockRouter, clock: VirtualClock, tmp_path: Path
) -> None:
    """The OAuth error body ``{"error":"invalid_client",...}`` makes the find fail as auth."""
    error = {"error": "invalid_client", "error_description": "invalid client credentials"}
    respx_mock.post(f"{INSTANCE}/services/oauth2/token").respond(400, json=error)
    destination, _calls = respx_destination(clock, tmp_path)
    with pytest.raises(AuthError, match="invalid client credentials"):
        await run(clock, destination.find([probe("abc")]))


async def test_documented_records_parse_with_the_date_header_offset(
    respx_mock: respx.MockRouter, clock: VirtualClock, tmp_path: Path
) -> None:
    """A documented query body becomes a Record; the Date header gives the clock offset."""
    respx_mock.post(f"{INSTANCE}/services/oauth2/token").respond(200, json=TOKEN_BODY)
    date = (clock.now() + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    limit = {"Sforce-Limit-Info": "api-usage=25/5000", "Date": date}
    respx_mock.get(url__startswith=f"{INSTANCE}/services/data/v62.0/query").respond(
        200, json=query_body(ROW), headers=limit
    )
    destination, calls = respx_destination(clock, tmp_path)
    record = (await run(clock, destination.find([probe("abc")])))["abc"]
    assert record.created_at == datetime(2026, 10, 3, 14, 5, 12, tzinfo=UTC)
    assert record.owner == "0055e000001AbCdAAK"
    assert record.clock_offset_s is not None and 29 <= record.clock_offset_s <= 31
    assert (calls[-1].quota_used, calls[-1].quota_limit) == (25, 5000)


async def test_a_2xx_of_the_wrong_shape_is_malformed(
    respx_mock: respx.MockRouter, clock: VirtualClock, tmp_path: Path
) -> None:
    """A 200 whose records are not the documented objects is recorded and raised as malformed."""
    respx_mock.post(f"{INSTANCE}/services/oauth2/token").respond(200, json=TOKEN_BODY)
    respx_mock.get(url__startswith=f"{INSTANCE}/services/data").respond(
        200, json={"done": True, "records": [{"attributes": {}}]}
    )
    destination, calls = respx_destination(clock, tmp_path)
    with pytest.raises(MalformedResponse):
        await run(clock, destination.find([probe("abc")]))
    assert (calls[-1].operation, calls[-1].error_class) == ("query_records", "malformed")


async def test_per_record_delete_refusals_raise_after_every_collection(
    respx_mock: respx.MockRouter, clock: VirtualClock, tmp_path: Path
) -> None:
    """A locked record fails the delete, but only after all collections were sent; gone is fine."""
    locked = {"statusCode": "ENTITY_IS_LOCKED", "message": "entity is locked", "fields": []}
    gone = {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}

    def results(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        body = [{"id": i, "success": True, "errors": []} for i in ids]
        body[0] = {"success": False, "errors": [locked if ids[0] == "id0" else gone]}
        return httpx.Response(200, json=body)

    respx_mock.post(f"{INSTANCE}/services/oauth2/token").respond(200, json=TOKEN_BODY)
    route = respx_mock.delete(url__startswith=f"{INSTANCE}/services/data/v62.0/composite/sobjects")
    route.side_effect = results
    destination, _calls = respx_destination(clock, tmp_path)
    with pytest.raises(ValidationRejected, match="1 of 250 records not deleted: ENTITY_IS_LOCKED"):
        await run(clock, destination.delete([Record(f"id{n}", "", None) for n in range(250)]))
    assert route.call_count == 2


async def test_a_token_echoed_in_an_error_message_is_redacted(
    respx_mock: respx.MockRouter, clock: VirtualClock, tmp_path: Path
) -> None:
    """Even a vendor message quoting the access token reaches the exception masked."""
    respx_mock.post(f"{INSTANCE}/services/oauth2/token").respond(200, json=TOKEN_BODY)
    token = TOKEN_BODY["access_token"]
    echo = [{"message": f"bad session {token}", "errorCode": "INSUFFICIENT_ACCESS_OR_READONLY"}]
    respx_mock.get(url__startswith=f"{INSTANCE}/services/data").respond(403, json=echo)
    destination, _calls = respx_destination(clock, tmp_path)
    with pytest.raises(AuthError) as raised:
        await run(clock, destination.find([probe("abc")]))
    assert token not in str(raised.value)
    assert "[redacted]" in str(raised.value)


# -- classification table ---------------------------------------------------------------------

DUPLICATE_BODY = [
    {
        "duplicateResut": {
            "allowSave": False,
            "duplicateRule": "Standard_Lead_Duplicate_Rule",
            "duplicateRuleEntityType": "Lead",
            "errorMessage": "Use one of these records?",
            "matchResults": [],
        },
        "errorCode": "DUPLICATES_DETECTED",
        "message": "Use one of these records?",
    }
]


def sf_error(code: str, message: str = "message", fields: list[str] | None = None) -> list[Any]:
    return [{"message": message, "errorCode": code, "fields": fields or []}]


@pytest.mark.parametrize(
    ("status", "body", "error_class"),
    [
        (200, query_body(ROW), None),
        (401, sf_error("INVALID_SESSION_ID", "Session expired or invalid"), "auth"),
        (
            403,
            sf_error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            "quota_exhausted",
        ),
        (
            403,
            sf_error(
                "REQUEST_LIMIT_EXCEEDED",
                "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
            ),
            "rate_limited",
        ),
        (
            403,
            sf_error("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
            "rate_limited",
        ),
        (403, sf_error("API_DISABLED_FOR_ORG", "API is not enabled for this Organization"), "auth"),
        (400, sf_error("MALFORMED_QUERY", "unexpected token: 'FORM'"), "validation"),
        (
            400,
            sf_error("INVALID_FIELD", "No such column 'Tier__c' on entity 'Lead'."),
            "validation",
        ),
        (
            400,
            sf_error(
                "REQUIRED_FIELD_MISSING", "Required fields are missing: [Company]", ["Company"]
            ),
            "validation",
        ),
        (400, sf_error("FIELD_CUSTOM_VALIDATION_EXCEPTION", "rule", ["Phone"]), "validation"),
        (400, DUPLICATE_BODY, "duplicate"),
        (
            400,
            {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"},
            "auth",
        ),
        (
            400,
            {"error": "invalid_client", "error_description": "invalid client credentials"},
            "auth",
        ),
        (503, sf_error("SERVER_UNAVAILABLE", "Service temporarily unavailable"), "vendor_5xx"),
        (500, "<html>Internal Server Error</html>", "vendor_5xx"),
        (302, "", "malformed"),
    ],
)
def test_classify_reads_salesforce_error_bodies(
    status: int, body: Any, error_class: str | None
) -> None:
    """Documented error codes (and the OAuth error body) map to their DESIGN §6 classes."""
    if isinstance(body, str):
        response = httpx.Response(status, text=body, headers={"content-type": "text/html"})
    else:
        response = httpx.Response(status, json=body)
    error = classify(response)
    assert (error.error_class if error else None) == error_class


def test_invalid_field_message_points_at_the_templates() -> None:
    """An INVALID_FIELD says the fix is likely in the probe templates' expected fields."""
    error = classify(httpx.Response(400, json=sf_error("INVALID_FIELD", "No such column")))
    assert error is not None and "probe templates" in str(error)


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("plain@example.com", "'plain@example.com'"),
        ("o'brien@example.com", "'o\\'brien@example.com'"),
        ("back\\slash@example.com", "'back\\\\slash@example.com'"),
        ("line\nbreak", "'line\\nbreak'"),
    ],
)
def test_soql_string_literals_escape_quotes_and_backslashes(value: str, literal: str) -> None:
    """Quote and backslash are reserved in SOQL literals and are escaped with a backslash."""
    assert soql_string(value) == literal


@pytest.mark.parametrize(
    ("suffix", "pattern"),
    [
        ("@probe.example", "'%@probe.example'"),
        ("@a_b%c", "'%@a\\_b\\%c'"),
        ("@o'k\\", "'%@o\\'k\\\\'"),
    ],
)
def test_like_patterns_take_the_suffix_literally(suffix: str, pattern: str) -> None:
    """In the sweep's LIKE, ``_`` and ``%`` of the domain are text and quotes stay escaped."""
    assert soql_ends_with(suffix) == pattern


async def test_an_email_with_a_quote_is_found_not_injected(rig: Rig) -> None:
    """A probe email holding a quote still matches exactly its own record."""
    quoted = Probe("q1", "syncwatch+q1'or'1@probe.syncwatch.example", "hs-sf")
    add_lead(rig.world, quoted.email, rig.clock.now())
    add_lead(rig.world, probe_email("other", DOMAIN), rig.clock.now())
    found = await rig.run(rig.destination.find([quoted]))
    assert list(found) == ["q1"]


def test_the_destination_meets_the_protocol(rig: Rig) -> None:
    """SalesforceDestination is a Destination as vendors.base defines it."""
    assert isinstance(rig.destination, DestinationProtocol)


# -- helpers: a test-only RSA key, made here so no key file is checked in ----------------------


@dataclass(frozen=True)
class TestKey:
    """A fresh RSA key, written as PKCS #8 or PKCS #1 PEM, that verifies RS256 signatures."""

    __test__ = False
    key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> TestKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def pem(self, pkcs8: bool) -> str:
        form = (
            serialization.PrivateFormat.PKCS8
            if pkcs8
            else serialization.PrivateFormat.TraditionalOpenSSL
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, form, serialization.NoEncryption()
        ).decode()

    def verifies(self, message: bytes, signature: bytes) -> bool:
        try:
            self.key.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


def decode_segment(segment: str) -> Any:
    return json.loads(unpad(segment))


def unpad(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
