"""The sandbox's Dynamics 365: Entra tokens, the Dataverse Web API, service protection, faults,
and the connectors writing to it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from dynamics_support import SECRET, add_lead, sandbox_account
from marketo_support import Recorder, drive
from sandbox_support import app_client
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.config.model import Destination
from syncwatch.sandbox import create_app
from syncwatch.sandbox.dynamics_spec import DynamicsSpec
from syncwatch.sandbox.odata import ODataError, like, parse_filter
from syncwatch.sandbox.scenario import FaultSpec, Scenario
from syncwatch.sandbox.world import World
from syncwatch.vendors.base import Probe, Wiring, probe_email
from syncwatch.vendors.dynamics import DynamicsDestination, account_http

ENV = "http://sandbox.test/dynamics"
LEADS = "/dynamics/api/data/v9.2/leads"
CONTACTS = "/dynamics/api/data/v9.2/contacts"
TOKEN = "/entra/contoso.onmicrosoft.com/oauth2/v2.0/token"
DOMAIN = "probe.syncwatch.example"
GRANT = {
    "grant_type": "client_credentials",
    "client_id": "app",
    "client_secret": "s3cret",
    "scope": f"{ENV}/.default",
}


def world_of(app: Starlette) -> World:
    world: World = app.state.world
    return world


def fault(app: Starlette, **spec: Any) -> None:
    world = world_of(app)
    world.faults.schedule(FaultSpec.model_validate(spec), world.clock.now())


async def token_for(client: httpx.AsyncClient, **form: str) -> str:
    response = await client.post(TOKEN, data={**GRANT, **form})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await token_for(client)}"}


def email(probe_id: str) -> str:
    return probe_email(probe_id, DOMAIN)


async def create(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post(LEADS, json=body, headers={**auth, **headers})


async def query(
    client: httpx.AsyncClient, auth: dict[str, str], url: str = LEADS, **params: str
) -> httpx.Response:
    prefer = params.pop("prefer", None)
    headers = {**auth, **({"Prefer": prefer} if prefer else {})}
    return await client.get(url, params=params, headers=headers)


# -- Entra --------------------------------------------------------------------------------------


async def test_a_token_has_the_documented_shape(client: httpx.AsyncClient) -> None:
    """``{token_type: Bearer, expires_in, access_token}``, the JWT's audience the environment."""
    response = await client.post(TOKEN, data=GRANT)
    body = response.json()
    assert set(body) == {"token_type", "expires_in", "access_token"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3599)
    claims = body["access_token"].split(".")[1]
    decoded = json.loads(__import__("base64").urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert decoded["aud"] == ENV


@pytest.mark.parametrize(
    ("form", "status", "error", "aadsts"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"scope": "https://graph.microsoft.com/User.Read"}, 400, "invalid_scope", 70011),
        ({"scope": "https://other.crm.dynamics.com/.default"}, 400, "invalid_resource", 500011),
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"client_id": "someone-else"}, 400, "unauthorized_client", 700016),
    ],
)
async def test_token_refusals_use_the_documented_error_body(
    clock: VirtualClock, form: dict[str, str], status: int, error: str, aadsts: int
) -> None:
    """``{error, error_description: AADSTS…, error_codes, timestamp, trace_id, correlation_id}``."""
    spec = DynamicsSpec(client_id="app", client_secret="s3cret")
    async with app_client(create_app(Scenario(dynamics=spec), clock)) as client:
        response = await client.post(TOKEN, data={**GRANT, **form})
    body = response.json()
    assert response.status_code == status
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
    }
    assert (body["error"], body["error_codes"]) == (error, [aadsts])
    assert body["error_description"].startswith(f"AADSTS{aadsts}: ")


# -- the Web API --------------------------------------------------------------------------------


async def test_create_read_delete_round_trip(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """204 with ``OData-EntityId``; the row by id with ``createdon`` in whole seconds; DELETE
    204, then 404 ``0x80040217``."""
    created = await create(client, auth, {"emailaddress1": email("a"), "lastname": "A"})
    assert created.status_code == 204
    location = created.headers["OData-EntityId"]
    assert location.startswith(f"{ENV}/api/data/v9.2/leads(")
    path = urlsplit(location).path
    row = (await client.get(path, headers=auth)).json()
    assert row["@odata.context"] == f"{ENV}/api/data/v9.2/$metadata#leads/$entity"
    assert row["createdon"].endswith("Z") and len(row["createdon"]) == 20
    assert row["_ownerid_value"] == DynamicsSpec().default_owner_id
    assert (await client.delete(path, headers=auth)).status_code == 204
    again = await client.delete(path, headers=auth)
    assert again.status_code == 404 and again.json()["error"]["code"] == "0x80040217"


async def test_create_with_representation_and_refused_columns(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """``Prefer: return=representation`` answers 201 and the row; unknown or read-only columns
    are refused before anything is written."""
    body = {"emailaddress1": email("r"), "lastname": "R"}
    created = await create(client, auth, body, Prefer="return=representation")
    assert created.status_code == 201 and created.json()["lastname"] == "R"
    for bad in ({"nosuchcolumn": 1}, {"createdon": "2026-01-01T00:00:00Z"}):
        refused = await create(client, auth, {**body, **bad})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "0x80060888"


async def test_duplicate_detection_answers_500_when_asked_for(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """With ``MSCRM.SuppressDuplicateDetection: false`` a second lead with the email is refused
    (500 ``0x80040333``, as documented); without the header it is created."""
    body = {"emailaddress1": email("d"), "lastname": "D"}
    assert (await create(client, auth, body)).status_code == 204
    refused = await create(client, auth, body, **{"MSCRM.SuppressDuplicateDetection": "false"})
    assert refused.status_code == 500 and refused.json()["error"]["code"] == "0x80040333"
    assert (await create(client, auth, body)).status_code == 204


async def test_filter_or_eq_endswith_and_createdon(
    client: httpx.AsyncClient, auth: dict[str, str], sandbox: Starlette, clock: VirtualClock
) -> None:
    """``eq`` ignores case, ``or`` joins, ``endswith`` treats ``_`` as a wildcard unless in
    brackets, ``createdon lt`` compares instants; rows come in id order with ``@odata.etag``."""
    world = world_of(sandbox)
    add_lead(world, email("one"))
    await clock.advance(60)
    add_lead(world, email("two"))
    add_lead(world, "someone@probeXsyncwatch.example")
    wanted = f"emailaddress1 eq '{email('ONE')}' or emailaddress1 eq '{email('two')}'"
    rows = (await query(client, auth, **{"$filter": wanted})).json()["value"]
    assert [r["emailaddress1"] for r in rows] == [email("one"), email("two")]
    assert all(r["@odata.etag"].startswith('W/"') for r in rows)
    loose = (
        await query(
            client, auth, **{"$filter": "endswith(emailaddress1,'probe_syncwatch.example')"}
        )
    ).json()
    strict = (
        await query(
            client, auth, **{"$filter": "endswith(emailaddress1,'@probe[.]syncwatch.example')"}
        )
    ).json()
    assert len(loose["value"]) == 3 and len(strict["value"]) == 2
    cutoff = rows[1]["createdon"]
    older = f"endswith(emailaddress1,'@{DOMAIN}') and createdon lt {cutoff}"
    assert [
        r["emailaddress1"]
        for r in (await query(client, auth, **{"$filter": older})).json()["value"]
    ] == [email("one")]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"$select": "nosuchcolumn"}, "Could not find a property named 'nosuchcolumn'"),
        ({"$filter": "nosuchcolumn eq 'x'"}, "Could not find a property named 'nosuchcolumn'"),
        ({"$filter": "emailaddress1 eq 'unterminated"}, "Syntax error"),
        ({"$filter": "emailaddress1 eq"}, "Syntax error"),
        ({"$skip": "10"}, "$skip is not supported"),
    ],
)
async def test_queries_the_sandbox_cannot_read_are_400(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, str], fragment: str
) -> None:
    """Unknown columns, broken filters and unsupported options answer the error body."""
    response = await query(client, auth, **params)
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]


async def test_paging_through_next_link_and_top(
    client: httpx.AsyncClient, auth: dict[str, str], sandbox: Starlette
) -> None:
    """``Prefer: odata.maxpagesize=2`` pages with ``@odata.nextLink`` (followed unchanged) and
    ``Preference-Applied``; ``$top`` limits without paging, and is ignored while paging."""
    world = world_of(sandbox)
    for n in range(5):
        add_lead(world, email(f"page{n}"))
    seen: list[str] = []
    first = await query(
        client, auth, prefer="odata.maxpagesize=2", **{"$select": "emailaddress1", "$top": "1"}
    )
    assert first.headers["Preference-Applied"] == "odata.maxpagesize=2"
    body = first.json()
    while True:
        seen += [row["emailaddress1"] for row in body["value"]]
        link = body.get("@odata.nextLink")
        if link is None:
            break
        assert parse_qs(urlsplit(link).query)["$select"] == ["emailaddress1"]
        body = (await client.get(link, headers={**auth, "Prefer": "odata.maxpagesize=2"})).json()
    assert seen == [email(f"page{n}") for n in range(5)]
    top = (await query(client, auth, **{"$top": "2"})).json()
    assert len(top["value"]) == 2 and "@odata.nextLink" not in top


# -- service protection, auth and faults --------------------------------------------------------


async def test_the_request_window_throttles_with_retry_after(clock: VirtualClock) -> None:
    """Past ``burst_limit`` requests in 300 s: 429 ``0x80072322`` with ``Retry-After`` until the
    oldest request leaves the window; remaining figures count down on every answer."""
    app = create_app(Scenario(dynamics=DynamicsSpec(burst_limit=3)), clock)
    async with app_client(app) as client:
        auth = {"Authorization": f"Bearer {await token_for(client)}"}
        answers = []
        for _ in range(4):
            answers.append(await query(client, auth))
            await clock.advance(10)
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] for a in answers] == [
            "2",
            "1",
            "0",
            "0",
        ]
        assert answers[0].headers["x-ms-ratelimit-time-remaining-xrm-requests"] == "1,199.95"
        assert answers[3].json()["error"]["code"] == "0x80072322"
        assert answers[3].headers["Retry-After"] == "270"
        await clock.advance(270)
        assert (await query(client, auth)).status_code == 200


async def test_the_execution_time_window_throttles_too(clock: VirtualClock) -> None:
    """Slow answers use up the 1,200 s execution window: 429 ``0x80072321``."""
    app = create_app(Scenario(dynamics=DynamicsSpec(time_limit=60)), clock)
    async with app_client(app) as client:
        auth = {"Authorization": f"Bearer {await token_for(client)}"}
        fault(app, kind="slow", vendor="dynamics", delay=61)
        await drive(clock, query(client, auth))
        world_of(app).faults.clear()
        refused = await query(client, auth)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "0x80072321"


async def test_tokens_are_checked_for_presence_audience_and_revocation(
    client: httpx.AsyncClient, auth: dict[str, str], sandbox: Starlette, clock: VirtualClock
) -> None:
    """No token, a token for another environment, a token revoked by ``token_expiry``: 401 with
    a ``WWW-Authenticate`` challenge; a new token works again."""
    assert (await query(client, {})).status_code == 401
    async with app_client(sandbox, "http://other.test") as other:
        misaimed = await token_for(other, scope="http://other.test/dynamics/.default")
    rejected = await query(client, {"Authorization": f"Bearer {misaimed}"})
    assert rejected.status_code == 401 and "Bearer" in rejected.headers["WWW-Authenticate"]
    await clock.advance(1)
    fault(sandbox, kind="token_expiry", vendor="dynamics")
    assert (await query(client, auth)).status_code == 401
    fresh = {"Authorization": f"Bearer {await token_for(client)}"}
    assert (await query(client, fresh)).status_code == 200


@pytest.mark.parametrize(
    ("spec", "status", "check"),
    [
        ({"kind": "outage", "status": 503}, 503, lambda r: r.json()["error"]["code"] == ""),
        ({"kind": "rate_limit", "delay": 12}, 429, lambda r: r.headers["Retry-After"] == "12"),
        ({"kind": "malformed", "body": "html"}, 200, lambda r: r.text.startswith("<!DOCTYPE")),
        ({"kind": "malformed", "body": "truncated_json"}, 200, lambda r: not r.text.endswith("}")),
    ],
)
async def test_faults_for_dynamics(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    sandbox: Starlette,
    spec: dict[str, Any],
    status: int,
    check: Any,
) -> None:
    """Outage, throttling and garbled bodies, as the adapter must meet them."""
    fault(sandbox, vendor="dynamics", **spec)
    response = await query(client, auth)
    assert response.status_code == status and check(response)


async def test_an_outage_reaches_the_token_endpoint_too(
    client: httpx.AsyncClient, sandbox: Starlette
) -> None:
    """One vendor in the fault book: Entra answers the outage with an OAuth error body."""
    fault(sandbox, kind="outage", vendor="dynamics", status=502)
    response = await client.post(TOKEN, data=GRANT)
    assert response.status_code == 502 and response.json()["error"] == "temporarily_unavailable"


async def test_a_validation_fault_is_a_plug_in_refusal(
    client: httpx.AsyncClient, auth: dict[str, str], sandbox: Starlette
) -> None:
    """API creates lacking the rule's column get the documented plug-in error ``0x80040265``."""
    fault(sandbox, kind="validation", vendor="dynamics", field="companyname")
    refused = await create(client, auth, {"emailaddress1": email("v"), "lastname": "V"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "0x80040265"
    body = {"emailaddress1": email("v"), "lastname": "V", "companyname": "C"}
    assert (await create(client, auth, body)).status_code == 204


# -- the connectors -----------------------------------------------------------------------------


PROPERTIES = {
    "email": email("hs1"),
    "firstname": "Sync",
    "lastname": "Probe hs1",
    "company": "syncwatch",
    "jobtitle": "Tester",
    "country": "US",
}


def connector_app(clock: VirtualClock, **scenario: Any) -> Starlette:
    return create_app(Scenario.model_validate({"seed": 3, **scenario}), clock)


async def test_hubspot_writes_dynamics_leads_with_its_mapping(clock: VirtualClock) -> None:
    """A HubSpot contact becomes a lead with Dataverse column names and the sync user as owner."""
    app = connector_app(clock, sync={"destination": "dynamics"})
    world, sync = world_of(app), app.state.sync
    contact = world.new_contact(PROPERTIES, "form")
    sync.enqueue(contact)
    await clock.advance(3600)
    sync.run_due()
    (row,) = world.dataverse.values()
    assert (row.entity, row.origin) == ("lead", f"hubspot:{contact.id}")
    assert row.fields == {
        "emailaddress1": email("hs1"),
        "firstname": "Sync",
        "lastname": "Probe hs1",
        "companyname": "syncwatch",
        "jobtitle": "Tester",
        "address1_country": "US",
        "_ownerid_value": world.scenario.dynamics.default_owner_id,
    }
    assert world.crm == {}, "nothing went to Salesforce"


async def test_hubspot_contacts_lose_the_company_column(clock: VirtualClock) -> None:
    """A Dataverse contact has no ``companyname``: the connector leaves it out."""
    app = connector_app(clock, sync={"destination": "dynamics", "sobject": "Contact"})
    world, sync = world_of(app), app.state.sync
    sync.enqueue(world.new_contact(PROPERTIES, "form"))
    await clock.advance(3600)
    sync.run_due()
    (row,) = world.dataverse.values()
    assert row.entity == "contact" and "companyname" not in row.fields


async def test_marketo_syncs_people_to_dynamics_leads(clock: VirtualClock) -> None:
    """ "Sync Person to Microsoft": Marketo's default Dynamics mapping, always a lead."""
    app = connector_app(clock, marketo={"sync_to": "dynamics"})
    world, sync = world_of(app), app.state.sync
    fields = {"email": email("mk1"), "firstName": "M", "lastName": "K", "title": "CTO"}
    lead = world.new_marketo_lead({**fields, "leadSource": "Web"}, "leads")
    sync.enqueue_marketo(lead)
    await clock.advance(3600)
    sync.run_due()
    (row,) = world.dataverse.values()
    assert row.entity == "lead" and row.origin == f"marketo:{lead.id}"
    assert {k: v for k, v in row.fields.items() if k != "_ownerid_value"} == {
        "emailaddress1": email("mk1"),
        "firstname": "M",
        "lastname": "K",
        "jobtitle": "CTO",
    }


async def test_salesforce_stays_the_default_destination(clock: VirtualClock) -> None:
    """Without a selection every connector writes to Salesforce, as before."""
    app = connector_app(clock)
    world, sync = world_of(app), app.state.sync
    sync.enqueue(world.new_contact(PROPERTIES, "form"))
    await clock.advance(3600)
    sync.run_due()
    assert len(world.crm) == 1 and world.dataverse == {}


@pytest.mark.parametrize(
    ("spec", "rows", "check"),
    [
        ({"kind": "drop"}, 0, lambda sync, rows: sync.dropped == 1),
        ({"kind": "duplicate", "vendor": "dynamics"}, 2, lambda sync, rows: True),
        (
            {"kind": "corrupt", "vendor": "dynamics", "field": "lastname", "value": "X"},
            1,
            lambda sync, rows: rows[0].fields["lastname"] == "X",
        ),
        (
            {"kind": "validation", "vendor": "dynamics"},
            0,
            lambda sync, rows: sync.errors[0]["code"] == "0x80040265",
        ),
        ({"kind": "duplicate", "vendor": "salesforce"}, 1, lambda sync, rows: True),
    ],
)
async def test_connector_faults_reach_dynamics_deliveries(
    clock: VirtualClock, spec: dict[str, Any], rows: int, check: Any
) -> None:
    """Drop, duplicate, corrupt and validation faults for ``dynamics`` (or no vendor) act on
    the connector's Dataverse rows; a Salesforce-only fault does not."""
    app = connector_app(clock, sync={"destination": "dynamics"})
    world, sync = world_of(app), app.state.sync
    fault(app, **spec)
    sync.enqueue(world.new_contact(PROPERTIES, "form"))
    await clock.advance(3600)
    sync.run_due()
    delivered = list(world.dataverse.values())
    assert len(delivered) == rows and check(sync, delivered)


async def test_state_and_records_count_dynamics(
    client: httpx.AsyncClient, auth: dict[str, str], sandbox: Starlette
) -> None:
    """``/_sandbox/state`` counts Dataverse rows; ``/_sandbox/records`` keeps deleted ones."""
    world = world_of(sandbox)
    kept = add_lead(world, email("s1"))
    add_lead(world, "real.person@example.com")
    await client.delete(f"{LEADS}({add_lead(world, email('s2'))})", headers=auth)
    state = (await client.get("/_sandbox/state")).json()
    assert state["dynamics"] == {"records": 2, "synthetic": 1}
    records = (await client.get("/_sandbox/records", params={"synthetic": "1"})).json()
    assert [r["id"] for r in records["dynamics"]] == [kept]
    assert [r["email"] for r in records["dynamics_deleted"]] == [email("s2")]


# -- the adapter against the sandbox ------------------------------------------------------------


@pytest.fixture
async def destination(
    sandbox: Starlette, clock: VirtualClock, tmp_path: Path
) -> AsyncIterator[DynamicsDestination]:
    secret = tmp_path / "secret"
    secret.write_text(SECRET, encoding="utf-8")
    account = sandbox_account(secret)
    wiring = Wiring(clock=clock, sink=Recorder(), transport=httpx.ASGITransport(app=sandbox))
    http = account_http(account, wiring)
    yield DynamicsDestination(account, Destination(account=account.name, object="lead"), http)
    await http.aclose()


async def test_the_adapter_finds_pages_sweeps_and_deletes_in_the_sandbox(
    destination: DynamicsDestination, sandbox: Starlette, clock: VirtualClock
) -> None:
    """The whole cycle against the emulation, with pages of two rows and a revoked token."""
    world = world_of(sandbox)
    world.scenario.dynamics.page_size = 2
    ids = [add_lead(world, email(f"c{n}")) for n in range(5)]
    probes = [Probe(f"c{n}", email(f"c{n}"), "hs-dyn") for n in range(5)]
    found = await drive(clock, destination.find(probes))
    assert sorted(r.record_id for r in found.values()) == ids
    fault(sandbox, kind="token_expiry", vendor="dynamics")
    await clock.advance(5)
    swept = await drive(clock, destination.sweep(DOMAIN, clock.now()))
    assert sorted(r.record_id for r in swept) == ids
    await drive(clock, destination.delete(swept))
    await drive(clock, destination.delete(swept))
    assert world.dataverse == {} and len(world.deleted_dataverse) == 5


# -- the $filter subset -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("%@probe.example", "a@probe.example", True),
        ("%@probe_example", "a@probeXexample", True),
        ("%@probe[_]example", "a@probeXexample", False),
        ("%@probe[_]example", "a@probe_example", True),
        ("[^a]%", "b-anything", True),
        ("[^a]%", "ABC", False),
        ("100[%]", "100%", True),
        ("[[]x]", "[x]", True),
    ],
)
def test_like_patterns_follow_the_wildcard_rules(pattern: str, text: str, matches: bool) -> None:
    """``%``, ``_``, sets, negated sets, and brackets making a wildcard literal; no case."""
    assert bool(like(pattern)(text)) is matches


def test_filter_precedence_and_not() -> None:
    """``and`` binds tighter than ``or``; ``not`` and parentheses work; quotes are doubled."""
    columns = {"a", "b"}
    predicate = parse_filter("a eq 'x' or a eq 'y' and b eq 'O''Brien'", columns)
    assert predicate({"a": "X", "b": None})
    assert not predicate({"a": "y", "b": "other"})
    assert predicate({"a": "y", "b": "o'brien"})
    assert parse_filter("not (a eq null)", columns)({"a": "v"})
    with pytest.raises(ODataError):
        parse_filter("a eq 'x' b", columns)
