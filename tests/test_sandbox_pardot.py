"""The Account Engagement emulation: v5 shapes, the business unit, limits, handlers, the sync."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pardot_support import BUSINESS_UNIT, DOMAIN, HANDLER_PATH, PREFIX
from salesforce_support import DATA, TOKEN_URL, bearer, get_token
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.sandbox.scenario import FaultSpec, LatencySpec, PardotSpec, Scenario
from syncwatch.sandbox.world import World

PROSPECTS = f"{PREFIX}/api/v5/objects/prospects"
UPSERT = f"{PROSPECTS}/do/upsertLatestByEmail"
HANDLER = f"{PREFIX}/{HANDLER_PATH}"


def email(n: int | str) -> str:
    return f"syncwatch+p{n}@{DOMAIN}"


def upsert_body(n: int | str, **fields: Any) -> dict[str, Any]:
    prospect = {"firstName": "Sync", "lastName": f"Probe {n}", "company": "X", **fields}
    return {"matchEmail": email(n), "prospect": prospect, "fields": ["id", "email", "createdAt"]}


@pytest.fixture
def scenario() -> Scenario:
    return Scenario(seed=7, pardot=PardotSpec(sync_latency=LatencySpec(median=60, p95=120)))


@pytest.fixture
def world(sandbox: Starlette) -> World:
    world: World = sandbox.state.world
    return world


class Pardot:
    """A client of the business unit with a token from the sandbox's Salesforce org."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.headers: dict[str, str] = {}

    async def login(self) -> str:
        token = await get_token(self.client)
        self.headers = {**bearer(token), "Pardot-Business-Unit-Id": BUSINESS_UNIT}
        return token

    async def upsert(self, body: Any, **headers: str) -> httpx.Response:
        return await self.client.post(UPSERT, json=body, headers={**self.headers, **headers})

    async def query(self, **params: Any) -> httpx.Response:
        return await self.client.get(PROSPECTS, params=params, headers=self.headers)

    async def delete(self, prospect_id: int) -> httpx.Response:
        return await self.client.delete(f"{PROSPECTS}/{prospect_id}", headers=self.headers)

    async def submit(self, fields: dict[str, str], path: str = HANDLER) -> httpx.Response:
        return await self.client.post(path, data=fields)


@pytest.fixture
async def pardot(client: httpx.AsyncClient) -> AsyncIterator[Pardot]:
    api = Pardot(client)
    await api.login()
    yield api


def fault(world: World, **spec: Any) -> None:
    world.faults.schedule(FaultSpec.model_validate({"vendor": "pardot", **spec}), world.clock.now())


def redirect(response: httpx.Response) -> tuple[str, dict[str, list[str]]]:
    location = urlsplit(response.headers["location"])
    return f"{location.scheme}://{location.netloc}{location.path}", parse_qs(location.query)


# --- auth and the business unit -------------------------------------------------------------------


async def test_a_salesforce_token_and_the_business_unit_open_the_api(
    pardot: Pardot, client: httpx.AsyncClient
) -> None:
    """One token from the org's OAuth endpoint works here; each missing piece has its code."""
    assert (await pardot.query(fields="id")).status_code == 200
    token = pardot.headers["Authorization"]
    cases = [
        ({}, 401, 49),
        ({"Authorization": token}, 400, 181),
        (
            {"Authorization": "Bearer 00Dnotatoken", "Pardot-Business-Unit-Id": BUSINESS_UNIT},
            401,
            184,
        ),
        ({"Authorization": token, "Pardot-Business-Unit-Id": "0Uv000000000000AAA"}, 403, 201),
    ]
    for headers, status, code in cases:
        response = await client.get(PROSPECTS, params={"fields": "id"}, headers=headers)
        assert (response.status_code, response.json()["code"]) == (status, code), headers
        assert isinstance(response.json()["message"], str)
    missing = await client.get(PROSPECTS, params={"fields": "id"}, headers={"Authorization": token})
    assert "Pardot-Business-Unit-Id" in missing.json()["message"]


async def test_a_pardot_token_expiry_revokes_older_tokens_for_pardot_only(
    pardot: Pardot, client: httpx.AsyncClient, world: World, clock: VirtualClock
) -> None:
    """Tokens issued before the fault answer 184 here; Salesforce itself still takes them."""
    await clock.advance(1)
    fault(world, kind="token_expiry")
    await clock.advance(1)
    refused = await pardot.query(fields="id")
    assert (refused.status_code, refused.json()["code"]) == (401, 184)
    soql = await client.get(
        f"{DATA}/query",
        params={"q": "SELECT Id FROM Lead"},
        headers={"Authorization": pardot.headers["Authorization"]},
    )
    assert soql.status_code == 200
    await pardot.login()
    assert (await pardot.query(fields="id")).status_code == 200


# --- prospects ------------------------------------------------------------------------------------


async def test_upsert_creates_then_updates_the_latest_prospect_with_the_email(
    pardot: Pardot, world: World
) -> None:
    """201 with the asked fields for a new prospect, 200 for the same email again."""
    created = await pardot.upsert(upsert_body(1))
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "email", "createdAt"}
    assert body["email"] == email(1) and body["createdAt"].endswith("+00:00")
    again = await pardot.upsert(upsert_body(1, company="Y"))
    assert (again.status_code, again.json()["id"]) == (200, body["id"])
    (prospect,) = world.pardot_prospects.values()
    assert (prospect.fields["company"], prospect.origin) == ("Y", "api")
    quiet = await pardot.upsert({**upsert_body(1), "fields": []})
    assert quiet.status_code == 204


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"prospect": {}}, 153),
        ({"matchEmail": "not-an-email", "prospect": {}}, 4),
        ({**upsert_body(2), "prospect": {"favouriteColour": "blue"}}, 180),
        ({**upsert_body(2), "fields": ["id", "shoeSize"]}, 180),
    ],
)
async def test_upsert_refusals_have_the_documented_codes(
    pardot: Pardot, world: World, body: dict[str, Any], code: int
) -> None:
    """A body without ``matchEmail``, a bad address, a field v5 does not know: 400 and a code."""
    response = await pardot.upsert(body)
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert not world.pardot_prospects


async def test_a_body_that_is_not_json_is_150(pardot: Pardot) -> None:
    """ "Input needs to be valid JSON"."""
    response = await pardot.client.post(UPSERT, content=b"{nope", headers=pardot.headers)
    assert (response.status_code, response.json()["code"]) == (400, 150)


async def test_query_by_email_pages_by_token_with_only_fields_beside_it(
    pardot: Pardot, world: World
) -> None:
    """``fields`` is required; a page token may travel only with ``fields``."""
    for _ in range(3):
        world.new_pardot_prospect({"email": email("same")}, "api")
    world.new_pardot_prospect({"email": email("other")}, "api")
    first = (await pardot.query(fields="id,email", email=email("same"), limit=2)).json()
    assert [v["email"] for v in first["values"]] == [email("same")] * 2
    token = first["nextPageToken"]
    assert first["nextPageUrl"].endswith(f"nextPageToken={token}")
    second = (await pardot.query(fields="id,email", nextPageToken=token)).json()
    assert len(second["values"]) == 1 and second["nextPageToken"] is None
    mixed = await pardot.query(fields="id", nextPageToken=token, email=email("same"))
    assert (mixed.status_code, mixed.json()["code"]) == (400, 5)
    missing = await pardot.query(email=email("same"))
    assert (missing.status_code, missing.json()["code"]) == (400, 13)
    bogus = await pardot.query(fields="id", nextPageToken="bm90LWEtdG9rZW4")
    assert (bogus.status_code, bogus.json()["code"]) == (400, 211)


async def test_delete_moves_a_prospect_to_the_recycle_bin(
    pardot: Pardot, client: httpx.AsyncClient, world: World
) -> None:
    """204, then 192 for the same id; ``deleted=true`` still lists it; the state counts it."""
    prospect_id = (await pardot.upsert(upsert_body(3))).json()["id"]
    assert (await pardot.delete(prospect_id)).status_code == 204
    again = await pardot.delete(prospect_id)
    assert (again.status_code, again.json()["code"]) == (404, 192)
    read = await client.get(
        f"{PROSPECTS}/{prospect_id}", params={"fields": "id"}, headers=pardot.headers
    )
    assert read.status_code == 404
    assert (await pardot.query(fields="id", email=email(3))).json()["values"] == []
    recycled = (await pardot.query(fields="id,isDeleted", email=email(3), deleted="true")).json()
    assert recycled["values"] == [{"id": prospect_id, "isDeleted": True}]
    state = (await client.get("/_sandbox/state")).json()["pardot"]
    assert state == {"records": 0, "synthetic": 0, "recycled": 1}
    restored = await pardot.upsert({**upsert_body(3), "secondaryDeletedSearch": True})
    assert (restored.status_code, restored.json()["id"]) == (200, prospect_id)


# --- limits and faults ----------------------------------------------------------------------------


async def test_a_sixth_request_in_flight_is_answered_66(
    pardot: Pardot, world: World, clock: VirtualClock
) -> None:
    """Up to five concurrent requests; the sixth is refused, not queued."""
    fault(world, kind="slow", delay="5s")
    calls = [asyncio.ensure_future(pardot.query(fields="id")) for _ in range(6)]
    for _ in range(40):
        await clock.advance(0.25)
    codes = sorted(r.status_code for r in await asyncio.gather(*calls))
    assert codes == [200] * 5 + [429]
    refused = next(r for r in (c.result() for c in calls) if r.status_code == 429)
    assert refused.json()["code"] == 66
    assert refused.json()["message"].startswith("You have exceeded your concurrent request limit")


@pytest.mark.parametrize(
    ("spec", "faults", "code"),
    [
        (PardotSpec(daily_limit=2), [], 122),
        (PardotSpec(minute_limit=2), [], 202),
        (PardotSpec(), [{"kind": "quota_exhausted"}], 122),
        (PardotSpec(), [{"kind": "rate_limit"}], 66),
    ],
)
async def test_the_allowances_answer_their_codes(
    client: httpx.AsyncClient,
    world: World,
    spec: PardotSpec,
    faults: list[dict[str, Any]],
    code: int,
) -> None:
    """Past the day's calls 122, past the minute's 202, and the faults that force them."""
    world.scenario = world.scenario.model_copy(update={"pardot": spec})
    for extra in faults:
        fault(world, **extra)
    api = Pardot(client)
    await api.login()
    answers = [await api.query(fields="id") for _ in range(3)]
    last = answers[-1]
    assert (last.status_code, last.json()["code"]) == (429, code)


async def test_usage_comes_back_only_when_asked_and_counts_admitted_calls(pardot: Pardot) -> None:
    """``X-Return-Api-Usage: 1`` earns ``x-api-usage: USED/MAX``; without it, no header."""
    plain = await pardot.query(fields="id")
    assert "x-api-usage" not in plain.headers
    asked = await pardot.client.get(
        PROSPECTS, params={"fields": "id"}, headers={**pardot.headers, "X-Return-Api-Usage": "1"}
    )
    assert asked.headers["x-api-usage"] == "2/25000"


async def test_outage_and_malformed_faults(
    pardot: Pardot, world: World, clock: VirtualClock
) -> None:
    """An outage is the fault's 5xx with code 183; ``malformed`` garbles only 2xx answers."""
    fault(world, kind="outage", status=502, **{"for": "10s"})
    down = await pardot.query(fields="id")
    assert (down.status_code, down.json()["code"]) == (502, 183)
    await clock.advance(11)
    fault(world, kind="malformed", body="truncated_json")
    garbled = await pardot.query(fields="id")
    assert garbled.status_code == 200
    with pytest.raises(ValueError):
        garbled.json()


# --- form handlers --------------------------------------------------------------------------------


async def test_a_form_handler_redirects_to_its_success_location(
    pardot: Pardot, world: World, client: httpx.AsyncClient
) -> None:
    """A urlencoded post: 302 to the success location; no token needed, no API call counted."""
    response = await pardot.submit({"email": email(4), "lastName": "Probe", "ignored": "x"})
    assert response.status_code == 302
    assert redirect(response) == ("https://www.example.com/thank-you", {})
    (prospect,) = world.pardot_prospects.values()
    assert prospect.fields == {"email": email(4), "lastName": "Probe"}
    assert prospect.origin == "form_handler"
    usage = await client.get(
        PROSPECTS, params={"fields": "id"}, headers={**pardot.headers, "X-Return-Api-Usage": "1"}
    )
    assert usage.headers["x-api-usage"] == "1/25000"


@pytest.mark.parametrize(
    ("fields", "files", "reason"),
    [
        ({"lastName": "Probe"}, None, "Missing required fields: email"),
        ({"email": "nobody"}, None, "Please input a valid email address"),
        ({"email": email(5)}, {"f": ("a.txt", b"x")}, "multipart"),
    ],
)
async def test_a_refused_submission_redirects_to_the_error_location(
    client: httpx.AsyncClient,
    world: World,
    fields: dict[str, str],
    files: dict[str, Any] | None,
    reason: str,
) -> None:
    """The error location carries ``errorMessage`` and ``errors=true``; nothing is created."""
    response = await client.post(HANDLER, data=fields, files=files)
    location, query = redirect(response)
    assert (response.status_code, location) == (302, "https://www.example.com/form-error")
    assert query["errors"] == ["true"] and reason in query["errorMessage"][0]
    assert not world.pardot_prospects


async def test_unknown_handlers_outages_and_garbage(pardot: Pardot, world: World) -> None:
    """An unknown handler path is a 404 page; an outage its status; ``malformed`` a 200 page."""
    assert (await pardot.submit({"email": email(6)}, f"{PREFIX}/l/1/2/none")).status_code == 404
    fault(world, kind="outage", status=503, **{"for": "1s"})
    assert (await pardot.submit({"email": email(6)})).status_code == 503
    world.faults.clear()
    fault(world, kind="malformed")
    page = await pardot.submit({"email": email(6)})
    assert page.status_code == 200 and "location" not in page.headers


# --- the connector and introspection --------------------------------------------------------------


async def test_an_assigned_prospect_becomes_a_salesforce_lead_after_the_sync_latency(
    pardot: Pardot, client: httpx.AsyncClient, world: World, clock: VirtualClock
) -> None:
    """The connector maps v5 fields to the Lead, owner from the assignment, after a delay."""
    created = await pardot.upsert(
        upsert_body(7, phone="+1 555 0100", jobTitle="CTO", country="US", source="Web")
    )
    assert created.status_code == 201
    await clock.advance(1)
    await client.get("/_sandbox/state")
    assert not world.crm
    await clock.advance(3600)
    state = (await client.get("/_sandbox/state")).json()
    (lead,) = world.crm.values()
    assert lead.sobject == "Lead"
    assert lead.fields == {
        "Email": email(7),
        "FirstName": "Sync",
        "LastName": "Probe 7",
        "Company": "X",
        "Phone": "+1 555 0100",
        "Title": "CTO",
        "Country": "US",
        "LeadSource": "Web",
        "OwnerId": world.scenario.salesforce.default_owner_id,
        "Status": "Open - Not Contacted",
    }
    assert lead.origin_contact_id == str(created.json()["id"])
    assert state["pardot"]["synthetic"] == 1 and state["salesforce"]["synthetic"] == 1
    token = await get_token(client)
    found = await client.get(
        f"{DATA}/query",
        params={"q": f"SELECT Id, Email FROM Lead WHERE Email = '{email(7)}'"},
        headers=bearer(token),
    )
    assert found.json()["totalSize"] == 1
    records = (await client.get("/_sandbox/records", params={"synthetic": "true"})).json()
    assert [p["email"] for p in records["pardot"]] == [email(7)]


async def test_unassigned_or_deleted_prospects_never_reach_salesforce(
    client: httpx.AsyncClient, world: World, clock: VirtualClock
) -> None:
    """Without an assignment no Lead is created; a prospect deleted before its sync is not sent."""
    world.scenario = world.scenario.model_copy(
        update={"pardot": PardotSpec(assign_on_create=False)}
    )
    api = Pardot(client)
    await api.login()
    await api.upsert(upsert_body(8))
    world.scenario = world.scenario.model_copy(update={"pardot": PardotSpec()})
    doomed = (await api.upsert(upsert_body(9))).json()["id"]
    await api.delete(doomed)
    await clock.advance(3600)
    state = (await client.get("/_sandbox/state")).json()
    assert not world.crm
    assert state["sync"]["pending"] == 0


async def test_faults_for_pardot_are_accepted_live(client: httpx.AsyncClient) -> None:
    """``vendor: pardot`` is a fault target like any other vendor."""
    response = await client.post(
        "/_sandbox/faults", json={"kind": "rate_limit", "vendor": "pardot"}
    )
    assert response.status_code == 201 and response.json()["vendor"] == "pardot"
    assert TOKEN_URL.startswith("/salesforce")
