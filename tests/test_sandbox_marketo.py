"""The Marketo emulation: documented shapes, errors in HTTP 200 bodies, limits, faults, the sync.

Every exchange a test makes through ``mkto`` is checked against Adobe's published Swagger 2.0
(tests/fixtures/marketo/swagger): the request's required parameters and body, and every 200
answer against the operation's response schema. Tests that send a deliberately wrong request say
so (``mkto_loose``), and their answers are still checked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from marketo_support import CLIENT_ID, DOMAIN, PREFIX, SECRET, SWAGGER, Recording, drive
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.sandbox import create_app
from syncwatch.sandbox.marketo_common import CST
from syncwatch.sandbox.scenario import FaultSpec, LatencySpec, MarketoSpec, Scenario
from syncwatch.sandbox.world import World

IDENTITY = f"{PREFIX}/identity/oauth/token"
LEADS = f"{PREFIX}/rest/v1/leads.json"
PUSH = f"{PREFIX}/rest/v1/leads/push.json"
DELETE = f"{PREFIX}/rest/v1/leads/delete.json"
USAGE = f"{PREFIX}/rest/v1/stats/usage.json"
GRANT = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}


def email(n: int | str) -> str:
    return f"syncwatch+p{n}@{DOMAIN}"


def lead(n: int | str, **fields: Any) -> dict[str, Any]:
    return {
        "email": email(n),
        "firstName": "Sync",
        "lastName": f"Probe {n}",
        "company": "X",
        **fields,
    }


@pytest.fixture
def scenario() -> Scenario:
    return Scenario(seed=7, marketo=MarketoSpec(client_id=CLIENT_ID, client_secret=SECRET))


@pytest.fixture
def world(sandbox: Starlette) -> World:
    world: World = sandbox.state.world
    return world


class Mkto:
    """A client of the emulated instance that keeps every exchange for the Swagger check."""

    def __init__(self, client: httpx.AsyncClient, recording: Recording) -> None:
        self.client = client
        self.recording = recording
        self.headers: dict[str, str] = {}

    async def login(self) -> str:
        token: str = (await self.client.get(IDENTITY, params=GRANT)).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        return token

    async def sync(self, records: list[Any], **options: Any) -> dict[str, Any]:
        response = await self.client.post(
            LEADS, json={**options, "input": records}, headers=self.headers
        )
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers)

    async def post(self, path: str, body: Any) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.headers)

    def problems(self, requests: bool) -> list[str]:
        """Swagger problems of every exchange with the instance (not the ``/_sandbox`` ones)."""
        marketo = [e for e in self.recording.exchanges if e.request.url.path.startswith(PREFIX)]
        return [p for e in marketo for p in SWAGGER.check_exchange(e, request=requests)]


async def _client(sandbox: Starlette, requests: bool) -> AsyncIterator[Mkto]:
    recording = Recording(sandbox)
    async with httpx.AsyncClient(transport=recording, base_url="http://sandbox.test") as client:
        mkto = Mkto(client, recording)
        await mkto.login()
        yield mkto
    assert mkto.problems(requests) == []


@pytest.fixture
async def mkto(sandbox: Starlette) -> AsyncIterator[Mkto]:
    """Logged in; every request and every 200 answer must match the Swagger spec."""
    async for client in _client(sandbox, requests=True):
        yield client


@pytest.fixture
async def mkto_loose(sandbox: Starlette) -> AsyncIterator[Mkto]:
    """For tests that send wrong requests on purpose: only the answers are checked."""
    async for client in _client(sandbox, requests=False):
        yield client


def codes(body: dict[str, Any]) -> list[str]:
    return [error["code"] for error in body["errors"]]


def reasons(body: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    return [
        (r.get("status"), r["reasons"][0]["code"] if "reasons" in r else None)
        for r in body["result"]
    ]


def fault(world: World, **spec: Any) -> None:
    world.faults.schedule(
        FaultSpec.model_validate({"vendor": "marketo", **spec}), world.clock.now()
    )


# --- identity -------------------------------------------------------------------------------------


async def test_identity_returns_the_live_token_with_what_is_left_of_it(
    mkto: Mkto, clock: VirtualClock
) -> None:
    """A new token lives 3,600 s; asked again before that, the same token and its remaining life."""
    first = (await mkto.get(IDENTITY, **GRANT)).json()
    assert (first["token_type"], first["scope"]) == ("bearer", "api-syncwatch@sandbox.example")
    await clock.advance(600)
    again = (await mkto.get(IDENTITY, **GRANT)).json()
    assert again["access_token"] == first["access_token"]
    assert again["expires_in"] == first["expires_in"] - 600
    await clock.advance(3000)
    renewed = (await mkto.client.post(IDENTITY, params=GRANT)).json()  # POST works too
    assert renewed["access_token"] != first["access_token"]
    assert renewed["expires_in"] == 3600
    assert renewed["access_token"].endswith(":int")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({**GRANT, "client_secret": "wrong"}, 401),
        ({**GRANT, "client_id": "someone-else"}, 401),
        ({**GRANT, "grant_type": "password"}, 400),
    ],
)
async def test_identity_refuses_bad_credentials_with_401(
    mkto_loose: Mkto, params: dict[str, str], status: int
) -> None:
    """A wrong client id or secret is Identity's documented 401 (not a 200 with a code)."""
    response = await mkto_loose.client.get(IDENTITY, params=params)
    assert response.status_code == status
    assert "access_token" not in response.json()


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, "600"), ({"Authorization": "Bearer 00000000-not-issued:int"}, "601")],
)
async def test_missing_and_unknown_tokens_are_600_and_601_in_a_200(
    mkto: Mkto, headers: dict[str, str], code: str
) -> None:
    """Auth errors are response-level: HTTP 200, ``success: false``, the code quoted."""
    response = await mkto.client.get(USAGE, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["success"], codes(body)) == (False, [code])
    assert isinstance(body["errors"][0]["code"], str)


async def test_an_expired_token_is_602(mkto: Mkto, clock: VirtualClock) -> None:
    """Past its lifespan the token answers 602 (expired), which a client cures by renewing."""
    await clock.advance(3600)
    assert codes((await mkto.get(USAGE)).json()) == ["602"]
    await mkto.login()
    assert (await mkto.get(USAGE)).json()["success"] is True


# --- Sync Leads and Push Lead ---------------------------------------------------------------------


async def test_create_only_creates_then_skips_an_existing_email_with_1005(
    mkto: Mkto, world: World
) -> None:
    """createOnly on email: the first call creates (id back), a second is skipped, 1005."""
    body = await mkto.sync([lead(1)], action="createOnly", lookupField="email")
    ((status, _),) = reasons(body)
    (created,) = world.marketo_leads.values()
    assert (status, body["result"][0]["id"]) == ("created", created.id)
    again = await mkto.sync([lead(1)], action="createOnly", lookupField="email")
    assert reasons(again) == [("skipped", "1005")]
    assert again["success"] is True, "record-level errors come in a successful answer"
    assert again["result"][0]["reasons"][0]["message"] == "Lead already exists"
    assert world.submissions == {email(1).lower(): 2}, "the skipped repeat is still counted"


async def test_each_action_answers_as_documented(mkto: Mkto) -> None:
    """createOrUpdate (the default) updates; updateOnly needs a match (1004); duplicates → 1007."""
    await mkto.sync([lead(1)])
    assert reasons(await mkto.sync([lead(1, title="CTO")])) == [("updated", None)]
    assert reasons(await mkto.sync([lead(2)], action="updateOnly")) == [("skipped", "1004")]
    assert reasons(await mkto.sync([lead(1)], action="createDuplicate")) == [("created", None)]
    assert reasons(await mkto.sync([lead(1)], action="updateOnly")) == [("skipped", "1007")]
    mixed = await mkto.sync([lead(3), lead(1)], action="createOnly")
    assert reasons(mixed) == [("created", None), ("skipped", "1005")], "results keep input order"


@pytest.mark.parametrize(
    ("record", "options", "code"),
    [
        ({"id": 5, **lead(1)}, {"action": "createOnly"}, "1003"),  # id is system-managed
        (lead(1, firstname="lower-case"), {}, "1006"),  # REST names are camelCase
        (lead(1), {"lookupField": "firstName"}, "1011"),
        ({"firstName": "No email"}, {}, "1003"),
        (lead(1, email="not-an-email"), {}, "1003"),
    ],
)
async def test_invalid_records_are_skipped_with_their_documented_codes(
    mkto: Mkto, world: World, record: dict[str, Any], options: dict[str, str], code: str
) -> None:
    """Record-level refusals: 1003 invalid data, 1006 unknown field, 1011 unsupported lookup."""
    assert reasons(await mkto.sync([record], **options)) == [("skipped", code)]
    assert not world.marketo_leads


async def test_push_upserts_and_requires_a_program_name(mkto_loose: Mkto, world: World) -> None:
    """Push Lead is always an upsert; without ``programName`` it fails whole (701)."""
    body = {"programName": "Probes", "source": "syncwatch", "input": [lead(1)]}
    first = (await mkto_loose.post(PUSH, body)).json()
    second = (await mkto_loose.post(PUSH, {**body, "input": [lead(1, title="CEO")]})).json()
    assert (reasons(first), reasons(second)) == ([("created", None)], [("updated", None)])
    assert [lead.origin for lead in world.marketo_leads.values()] == ["push"]
    missing = (await mkto_loose.post(PUSH, {"input": [lead(2)]})).json()
    assert (missing["success"], codes(missing)) == (False, ["701"])


async def test_a_body_that_is_not_json_is_609(mkto_loose: Mkto) -> None:
    response = await mkto_loose.client.post(
        LEADS, content=b"{nope", headers={**mkto_loose.headers, "content-type": "application/json"}
    )
    assert codes(response.json()) == ["609"]


# --- Get Leads by Filter Type ---------------------------------------------------------------------


async def test_filter_by_email_returns_default_fields_and_an_empty_success(
    mkto: Mkto, world: World
) -> None:
    """Comma-separated values; default fields id, email, createdAt, updatedAt, names; seconds."""
    await mkto.sync([lead(1), lead(2), lead(3, firstName="")])
    body = (await mkto.get(LEADS, filterType="email", filterValues=f"{email(1)},{email(3)}")).json()
    assert [set(r) for r in body["result"]] == [
        {"id", "email", "firstName", "lastName", "createdAt", "updatedAt"},
        {"id", "email", "lastName", "createdAt", "updatedAt"},  # no value: left out ("null")
    ]
    assert (
        body["result"][0]["createdAt"].endswith("Z") and "." not in body["result"][0]["createdAt"]
    )
    chosen = (
        await mkto.get(LEADS, filterType="email", filterValues=email(2), fields="id,company")
    ).json()
    assert chosen["result"] == [{"id": chosen["result"][0]["id"], "company": "X"}]
    none = (await mkto.get(LEADS, filterType="email", filterValues=email(9))).json()
    assert (none["success"], none["result"]) == (True, [])


async def test_filter_pages_with_next_page_token(mkto: Mkto) -> None:
    """``batchSize`` per page; ``nextPageToken`` until the last page, which has none."""
    await mkto.sync([lead(n) for n in range(7)])
    values = ",".join(email(n) for n in range(7))
    seen: list[int] = []
    params: dict[str, Any] = {"filterType": "email", "filterValues": values, "batchSize": 3}
    while True:
        body = (await mkto.get(LEADS, **params)).json()
        seen += [r["id"] for r in body["result"]]
        if "nextPageToken" not in body:
            break
        params["nextPageToken"] = body["nextPageToken"]
    assert len(seen) == len(set(seen)) == 7


async def test_a_long_uri_is_414_and_post_with_method_get_is_the_way_round(
    mkto_loose: Mkto,
) -> None:
    """Over 8 KB of URI is an HTTP 414; the documented workaround takes the query as a body."""
    await mkto_loose.sync([lead(1)])
    values = ",".join([email(1)] + [f"padding-{n:04d}@example.com" for n in range(299)])
    long = await mkto_loose.get(LEADS, filterType="email", filterValues=values)
    assert long.status_code == 414
    form = {"filterType": "email", "filterValues": values}
    workaround = await mkto_loose.client.post(
        LEADS, params={"_method": "GET"}, data=form, headers=mkto_loose.headers
    )
    assert [r["email"] for r in workaround.json()["result"]] == [email(1)]


async def test_filter_errors_are_response_level(mkto_loose: Mkto, world: World) -> None:
    """Unsupported filterType 1011, missing values 701, over 1,000 matches 1003."""
    unsupported = (await mkto_loose.get(LEADS, filterType="firstName", filterValues="Sync")).json()
    blank = (await mkto_loose.get(LEADS, filterType="email")).json()
    for _ in range(1001):
        world.new_marketo_lead({"email": "same@example.com"}, "leads")
    many = (await mkto_loose.get(LEADS, filterType="email", filterValues="same@example.com")).json()
    assert (codes(unsupported), codes(blank), codes(many)) == (["1011"], ["701"], ["1003"])
    assert many["errors"][0]["message"] == "Too many results match the filter"


# --- Delete Leads and usage -----------------------------------------------------------------------


async def test_delete_takes_ids_and_reports_each(mkto: Mkto, world: World) -> None:
    """``deleted`` per id; an id that is no lead is skipped (1004); the lead is gone at once."""
    body = await mkto.sync([lead(1), lead(2)])
    ids = [r["id"] for r in body["result"]]
    deleted = (await mkto.post(DELETE, {"input": [{"id": ids[0]}, {"id": 999}]})).json()
    assert reasons(deleted) == [("deleted", None), ("skipped", "1004")]
    by_query = (
        await mkto.client.post(DELETE, params={"id": str(ids[1])}, headers=mkto.headers)
    ).json()
    assert reasons(by_query) == [("deleted", None)]
    assert not world.marketo_leads


async def test_usage_counts_the_days_calls_in_cst(mkto: Mkto, clock: VirtualClock) -> None:
    """``total`` counts today's REST calls (this one included; Identity not) by the API user."""
    await mkto.sync([lead(1)])
    body = (await mkto.get(USAGE)).json()
    (day,) = body["result"]
    assert (day["total"], day["users"]) == (
        2,
        [{"userId": "api-syncwatch@sandbox.example", "count": 2}],
    )
    assert day["date"] == clock.now().astimezone(CST).date().isoformat()


# --- limits ---------------------------------------------------------------------------------------


async def test_the_101st_call_in_20_seconds_is_606(mkto: Mkto, clock: VirtualClock) -> None:
    """100 calls per 20 s; the next is refused with 606 until the window has moved on."""
    answers = [(await mkto.get(USAGE)).json() for _ in range(101)]
    assert [a["success"] for a in answers].count(True) == 100
    assert codes(answers[-1]) == ["606"]
    assert answers[-1]["errors"][0]["message"] == "Max rate limit '100' exceeded with in '20' secs"
    await clock.advance(20)
    assert (await mkto.get(USAGE)).json()["success"] is True


async def test_the_daily_quota_is_607_until_midnight_cst(
    sandbox: Starlette, clock: VirtualClock
) -> None:
    """Past the day's calls, 607; the count restarts at 00:00 CST."""
    world: World = sandbox.state.world
    world.scenario.marketo.daily_limit = 3
    async for mkto in _client(sandbox, requests=True):
        answers = [(await mkto.get(USAGE)).json() for _ in range(4)]
        assert [a["success"] for a in answers] == [True, True, True, False]
        assert codes(answers[-1]) == ["607"]
        now = clock.now().astimezone(CST)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        await clock.advance((midnight - now).total_seconds())
        await mkto.login()  # the token has long expired; Identity calls are not counted
        assert (await mkto.get(USAGE)).json()["success"] is True


async def test_an_eleventh_concurrent_request_is_615(
    mkto: Mkto, world: World, clock: VirtualClock
) -> None:
    """At most ten requests in flight per instance; the eleventh is refused, 615."""
    fault(world, kind="slow", delay="5s")
    answers = await drive(clock, asyncio.gather(*(mkto.get(USAGE) for _ in range(11))))
    refused = [a.json() for a in answers if not a.json()["success"]]
    assert [codes(a) for a in refused] == [["615"]]


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"kind": "outage"}, "608"),
        ({"kind": "outage", "value": "611"}, "611"),
        ({"kind": "outage", "value": "604"}, "604"),
        ({"kind": "outage", "value": "713"}, "713"),
        ({"kind": "rate_limit"}, "606"),
        ({"kind": "quota_exhausted"}, "607"),
    ],
)
async def test_faults_answer_the_documented_codes_in_a_200(
    mkto: Mkto, world: World, spec: dict[str, str], code: str
) -> None:
    """Outages are 604/608/611/713 bodies (default 608), bursts 606, a spent day 607."""
    fault(world, **spec)
    response = await mkto.get(USAGE)
    assert (response.status_code, codes(response.json())) == (200, [code])


async def test_token_expiry_revokes_tokens_issued_before_it(
    mkto: Mkto, world: World, clock: VirtualClock
) -> None:
    """Tokens issued before the fault answer 602; Identity then hands out a new one."""
    old = mkto.headers
    await clock.advance(1)
    fault(world, kind="token_expiry")
    assert codes((await mkto.get(USAGE)).json()) == ["602"]
    await mkto.login()
    assert mkto.headers != old
    assert (await mkto.get(USAGE)).json()["success"] is True


@pytest.mark.parametrize("body", ["html", "truncated_json"])
async def test_malformed_answers_are_a_200_of_the_wrong_shape(
    mkto_loose: Mkto, world: World, body: str
) -> None:
    fault(world, kind="malformed", body=body)
    response = await mkto_loose.get(USAGE)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)
    mkto_loose.recording.exchanges.clear()  # not a Marketo answer: nothing to check


async def test_a_validation_fault_skips_records_lacking_its_field(mkto: Mkto, world: World) -> None:
    fault(world, kind="validation", field="phone")
    body = await mkto.sync([lead(1), lead(2, phone="+1 555 0100")])
    assert reasons(body) == [("skipped", "1003"), ("created", None)]


# --- the native sync to Salesforce ----------------------------------------------------------------


async def test_a_new_person_becomes_a_salesforce_lead_with_marketos_mapping(
    mkto: Mkto, sandbox: Starlette, clock: VirtualClock
) -> None:
    """Sync Person to SFDC: standard fields under Salesforce names, the Lead owned and open."""
    world: World = sandbox.state.world
    await mkto.sync([lead(1, title="CTO", phone="+1 555 0100", country="US", leadSource="Web")])
    (person,) = world.marketo_leads.values()
    assert not world.crm
    await clock.advance(3000)
    await mkto.get(USAGE)  # any request lets due syncs through
    (record,) = world.crm.values()
    assert record.sobject == "Lead"
    assert record.origin_contact_id == str(person.id)
    assert record.fields == {
        "Email": email(1),
        "FirstName": "Sync",
        "LastName": "Probe 1",
        "Company": "X",
        "Title": "CTO",
        "Phone": "+1 555 0100",
        "Country": "US",
        "LeadSource": "Web",
        "OwnerId": world.scenario.salesforce.default_owner_id,
        "Status": "Open - Not Contacted",
    }
    assert record.created_at > person.created_at


async def test_latency_follows_the_marketo_sync_spec(clock: VirtualClock) -> None:
    """The Marketo sync draws from its own median and p95, not HubSpot's connector's."""
    spec = MarketoSpec(sync_latency=LatencySpec(median=10, p95=20))
    app = create_app(Scenario(seed=3, marketo=spec), clock)
    world: World = app.state.world
    for n in range(200):
        app.state.sync.enqueue_marketo(world.new_marketo_lead({"email": email(n)}, "leads"))
    delays = sorted(
        (item.due_at - item.enqueued_at).total_seconds() for item in app.state.sync.queue
    )
    assert 8 < delays[100] < 12 and delays[-1] < 60


async def test_without_a_sync_campaign_and_after_a_delete_nothing_reaches_salesforce(
    mkto: Mkto, world: World, clock: VirtualClock
) -> None:
    """A person deleted before the sync ran is never sent; without the trigger none is sent."""
    body = await mkto.sync([lead(1)])
    await mkto.post(DELETE, {"input": [{"id": body["result"][0]["id"]}]})
    world.scenario.marketo.sync_on_create = False
    await mkto.sync([lead(2)])
    await clock.advance(3000)
    await mkto.get(USAGE)
    assert not world.crm


async def test_state_counts_synthetic_marketo_leads(mkto: Mkto, world: World) -> None:
    """``/_sandbox/state`` has a Marketo side: people, and those at the probe domain."""
    await mkto.sync([lead(1), {"email": "jane@customer.example", "lastName": "Doe"}])
    state = (await mkto.client.get("/_sandbox/state")).json()
    assert state["marketo"] == {"records": 2, "synthetic": 1}
    records = (await mkto.client.get("/_sandbox/records", params={"synthetic": "true"})).json()
    assert [r["email"] for r in records["marketo"]] == [email(1)]
