"""The Eloqua emulation: discovery, REST 1.0 contacts in their documented shapes, faults, sync.

Every answer is checked against the shapes Oracle documents: ``/id`` like the Determining base
URLs example, contacts as the request-depth page shows them at each depth (string ids,
epoch-second strings, ``type: Contact``), lists as the Swagger's QueryResultContact, and 400s as
the validation-errors page's list of ``{type, parameter|property, requirement}``.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import httpx
import pytest
from eloqua_support import COMPANY, DOMAIN, PASSWORD, USERNAME, fixture
from marketo_support import drive
from sandbox_support import app_client
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.sandbox import create_app
from syncwatch.sandbox.eloqua import MINIMAL
from syncwatch.sandbox.scenario import EloquaSpec, FaultSpec, LatencySpec, Scenario
from syncwatch.sandbox.world import World

ID = "/eloqua-login/id"
CONTACT = "/eloqua/api/REST/1.0/data/contact"
CONTACTS = "/eloqua/api/REST/1.0/data/contacts"


def basic(company: str = COMPANY, username: str = USERNAME, password: str = PASSWORD) -> str:
    raw = f"{company}\\{username}:{password}".encode()
    return f"Basic {base64.b64encode(raw).decode()}"


AUTH = {"Authorization": basic()}


def email(n: int | str) -> str:
    return f"syncwatch+p{n}@{DOMAIN}"


def contact(n: int | str, **fields: Any) -> dict[str, Any]:
    return {"emailAddress": email(n), "firstName": "Sync", "lastName": f"Probe {n}", **fields}


@pytest.fixture
def scenario() -> Scenario:
    return Scenario(
        seed=7, eloqua=EloquaSpec(company=COMPANY, username=USERNAME, password=PASSWORD)
    )


@pytest.fixture
def world(sandbox: Starlette) -> World:
    world: World = sandbox.state.world
    return world


async def create(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await client.post(CONTACT, json=body, headers=AUTH)


def fault(world: World, **spec: Any) -> None:
    world.faults.schedule(FaultSpec.model_validate({"vendor": "eloqua", **spec}), world.clock.now())


def single_error(response: httpx.Response) -> dict[str, Any]:
    (error,) = response.json()
    assert set(error) >= {"type", "requirement"} and "type" in error["requirement"]
    assert ("parameter" in error) != ("property" in error)
    result: dict[str, Any] = error
    return result


# --- discovery ------------------------------------------------------------------------------------


async def test_id_names_the_pod_on_the_sandboxs_own_host(client: httpx.AsyncClient) -> None:
    """The documented body, with ``urls.base`` pointing back at ``/eloqua``."""
    response = await client.get(ID, headers=AUTH)
    body = response.json()
    documented = fixture("id.json")
    assert response.status_code == 200
    assert set(body) == set(documented)
    assert set(body["user"]) == set(documented["user"])
    assert body["site"] == {"id": 42, "name": COMPANY}
    assert body["urls"]["base"] == "http://sandbox.test/eloqua"
    assert (
        body["urls"]["apis"]["rest"]["standard"] == "http://sandbox.test/eloqua/API/REST/{version}/"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": basic(password="wrong")},
        {"Authorization": basic(company="OtherCo")},
        {"Authorization": "Basic !!!"},
        {"Authorization": f"Basic {base64.b64encode(b'no-backslash:pw').decode()}"},
        {"Authorization": "Bearer abc"},
    ],
)
async def test_id_refuses_with_200_not_authenticated(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """A refusal is HTTP 200 with the JSON string ``"Not authenticated."``, as documented."""
    response = await client.get(ID, headers=headers)
    assert (response.status_code, response.json()) == (200, fixture("id-not-authenticated.json"))


# --- contacts -------------------------------------------------------------------------------------


async def test_create_answers_201_with_the_complete_contact(
    client: httpx.AsyncClient, world: World, clock: VirtualClock
) -> None:
    """``type: Contact``, a string id, epoch-second strings, the email as ``name``."""
    response = await create(client, contact(1, accountName="Syncwatch", title="CTO"))
    body = response.json()
    (stored,) = world.eloqua_contacts.values()
    now = str(int(clock.now().timestamp()))
    assert response.status_code == 201
    assert body["type"] == "Contact" and body["id"] == str(stored.id)
    assert (body["createdAt"], body["updatedAt"], body["depth"]) == (now, now, "complete")
    assert (body["name"], body["emailAddress"]) == (email(1), email(1))
    assert (body["accountName"], body["title"], body["fieldValues"]) == ("Syncwatch", "CTO", [])
    unset = {"address1", "businessPhone", "city", "salesPerson"}  # no value: left out
    assert set(fixture("contact-created.json")) - set(body) == unset


async def test_read_only_and_unknown_properties_are_not_stored(
    client: httpx.AsyncClient, world: World
) -> None:
    """A client cannot set ``id`` or ``createdAt``; unknown properties are ignored."""
    await create(client, contact(1, id="999", createdAt="1", shoeSize="44"))
    (stored,) = world.eloqua_contacts.values()
    assert stored.id != 999 and not {"id", "createdAt", "shoeSize"} & set(stored.fields)


@pytest.mark.parametrize(
    ("body", "status", "where", "requirement"),
    [
        ({"firstName": "No Email"}, 400, "emailAddress", "NotNullRequirement"),
        (contact(1, emailAddress="not-an-email"), 400, "emailAddress", "EmailAddressRequirement"),
    ],
)
async def test_invalid_contacts_are_400_validation_errors(
    client: httpx.AsyncClient, body: Any, status: int, where: str, requirement: str
) -> None:
    """An ``ObjectValidationError`` on the Contact, naming the property and requirement."""
    response = await create(client, body)
    error = single_error(response)
    assert response.status_code == status
    assert error["type"] == "ObjectValidationError"
    assert error["container"] == {"type": "ObjectKey", "objectType": "Contact"}
    assert (error["property"], error["requirement"]["type"]) == (where, requirement)


async def test_an_existing_email_is_a_409_conflict(client: httpx.AsyncClient) -> None:
    """Email addresses are unique in Eloqua: a second create is refused, whatever the case."""
    assert (await create(client, contact(1))).status_code == 201
    response = await create(client, contact(1, emailAddress=email(1).upper()))
    assert response.status_code == 409
    assert single_error(response)["requirement"]["type"] == "UniquenessRequirement"


async def test_a_body_that_is_not_json_is_a_parsing_error(client: httpx.AsyncClient) -> None:
    response = await client.post(CONTACT, content=b"{nope", headers=AUTH)
    assert (response.status_code, response.text) == (400, "There was a parsing error.")


async def test_retrieve_answers_each_documented_depth(client: httpx.AsyncClient) -> None:
    """Minimal has exactly the request-depth page's keys; partial has no ``fieldValues``."""
    contact_id = (await create(client, contact(1))).json()["id"]
    url = f"{CONTACT}/{contact_id}"
    small = (await client.get(url, params={"depth": "minimal"}, headers=AUTH)).json()
    partial = (await client.get(url, params={"depth": "partial"}, headers=AUTH)).json()
    complete = (await client.get(url, params={"depth": "bogus"}, headers=AUTH)).json()
    assert tuple(small) == MINIMAL
    assert set(small) == set(fixture("contacts-minimal.json")["elements"][0])
    assert partial["depth"] == "partial" and "fieldValues" not in partial
    assert complete["depth"] == "complete" and complete["fieldValues"] == []


async def test_an_id_that_is_not_a_positive_integer_is_the_documented_400(
    client: httpx.AsyncClient,
) -> None:
    """The validation-errors page's own example: contact id "sandwich"."""
    response = await client.get(f"{CONTACT}/sandwich", headers=AUTH)
    assert response.status_code == 400
    error = single_error(response)
    documented = fixture("validation-errors.json")["endpoint-parameter"][0]
    assert (error["type"], error["parameter"], error["value"]) == (
        documented["type"],
        documented["parameter"],
        documented["value"],
    )
    assert error["requirement"]["type"] == documented["requirement"]["type"]
    assert (await client.delete(f"{CONTACT}/0", headers=AUTH)).status_code == 400


async def test_delete_answers_204_then_404(client: httpx.AsyncClient, world: World) -> None:
    contact_id = (await create(client, contact(1))).json()["id"]
    first = await client.delete(f"{CONTACT}/{contact_id}", headers=AUTH)
    again = await client.delete(f"{CONTACT}/{contact_id}", headers=AUTH)
    assert (first.status_code, first.content) == (204, b"")
    assert (again.status_code, again.text) == (404, "The requested resource was not found.")
    assert not world.eloqua_contacts
    assert (await client.get(f"{CONTACT}/{contact_id}", headers=AUTH)).status_code == 404


# --- search ---------------------------------------------------------------------------------------


async def search(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await client.get(CONTACTS, params=params, headers=AUTH)


async def test_search_by_email_exactly_and_by_a_trailing_wildcard(
    client: httpx.AsyncClient,
) -> None:
    """``emailAddress='...'`` matches one contact (any case); ``syncwatch+*`` every probe."""
    for n in range(3):
        await create(client, contact(n))
    await create(client, {"emailAddress": "jane@customer.example"})
    exact = (await search(client, search=f"emailAddress='{email(1).upper()}'")).json()
    probes = (await search(client, search="emailAddress='syncwatch+*'")).json()
    alias = (await search(client, search=f"C_EmailAddress={email(2)}")).json()
    everyone = (await search(client)).json()
    assert [e["emailAddress"] for e in exact["elements"]] == [email(1)]
    assert (exact["page"], exact["pageSize"], exact["total"]) == (1, 1000, 1)
    assert probes["total"] == 3 and alias["total"] == 1 and everyone["total"] == 4
    assert all(tuple(e) == MINIMAL for e in everyone["elements"])


async def test_search_pages_with_count_and_page(client: httpx.AsyncClient) -> None:
    """``count`` per page, ``page`` from 1, ``total`` over all pages, oldest ids first."""
    ids = [(await create(client, contact(n))).json()["id"] for n in range(5)]
    pages = [(await search(client, count=2, page=p)).json() for p in (1, 2, 3, 4)]
    assert [[e["id"] for e in p["elements"]] for p in pages] == [ids[0:2], ids[2:4], ids[4:], []]
    assert {p["total"] for p in pages} == {5}


async def test_search_compares_created_at_as_epoch_seconds(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """``createdAt<'<epoch>'``: what a sweep by age would send."""
    await create(client, contact("old"))
    await clock.advance(120)
    await create(client, contact("new"))
    cutoff = int((clock.now() - timedelta(seconds=60)).timestamp())
    older = (await search(client, search=f"createdAt<'{cutoff}'")).json()
    assert [e["emailAddress"] for e in older["elements"]] == [email("old")]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"count": "0"}, "count"),
        ({"count": "1001"}, "count"),
        ({"page": "0"}, "page"),
        ({"search": "shoeSize='44'"}, "search"),
        ({"search": "emailAddress>'a'"}, "search"),
    ],
)
async def test_bad_search_parameters_are_endpoint_parameter_errors(
    client: httpx.AsyncClient, params: dict[str, str], parameter: str
) -> None:
    """``count`` 1-1000, ``page`` from 1, a term and operator the sandbox knows."""
    response = await search(client, **params)
    assert response.status_code == 400
    error = single_error(response)
    assert (error["type"], error["parameter"]) == ("EndpointParameterError", parameter)


# --- auth, limits, faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": basic(password="wrong")}, {"Authorization": "Bearer x"}]
)
async def test_the_pod_wants_the_pinned_basic_credentials(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(CONTACT, json=contact(1), headers=headers)
    assert (response.status_code, response.text) == (401, "Login required")


async def test_the_configured_rate_answers_429_without_retry_after(clock: VirtualClock) -> None:
    """Over ``rate_max`` calls in ``rate_interval``: 429 "Too Many Requests", and no
    ``Retry-After`` (Eloqua documents none); the window slides on the sandbox clock."""
    spec = EloquaSpec(rate_max=3, rate_interval=10)
    app = create_app(Scenario(seed=1, eloqua=spec), clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test"
    ) as client:
        statuses = [(await search(client)).status_code for _ in range(4)]
        limited = await search(client)
        await clock.advance(10)
        later = await search(client)
    assert statuses == [200, 200, 200, 429]
    assert (limited.text, "retry-after" in limited.headers) == ("Too Many Requests", False)
    assert later.status_code == 200


@pytest.mark.parametrize(
    ("spec", "status", "text"),
    [
        ({"kind": "outage"}, 503, "Service Unavailable"),
        ({"kind": "outage", "status": 500}, 500, "The service has encountered an error."),
        ({"kind": "rate_limit"}, 429, "Too Many Requests"),
        ({"kind": "token_expiry"}, 401, "Login required"),
    ],
)
async def test_faults_answer_the_documented_statuses(
    client: httpx.AsyncClient, world: World, spec: dict[str, Any], status: int, text: str
) -> None:
    fault(world, **spec)
    response = await create(client, contact(1))
    assert (response.status_code, response.text) == (status, text)
    assert not world.eloqua_contacts


async def test_token_expiry_refuses_the_pod_but_not_id(
    client: httpx.AsyncClient, world: World
) -> None:
    """Basic has no token: the fault stands for a pod refusing the login (a moved site), which
    ``/id`` still accepts, so a client re-discovers and finds the refusal persists."""
    fault(world, kind="token_expiry")
    assert (await client.get(ID, headers=AUTH)).json()["urls"]["base"].endswith("/eloqua")
    assert (await search(client)).status_code == 401


async def test_outage_and_malformed_reach_id_too(client: httpx.AsyncClient, world: World) -> None:
    fault(world, kind="malformed")
    assert (await client.get(ID, headers=AUTH)).headers["content-type"].startswith("text/html")
    world.faults.clear()
    fault(world, kind="outage")
    assert (await client.get(ID, headers=AUTH)).status_code == 503


@pytest.mark.parametrize("body", ["html", "truncated_json"])
async def test_malformed_answers_are_a_2xx_of_the_wrong_shape(
    client: httpx.AsyncClient, world: World, body: str
) -> None:
    fault(world, kind="malformed", body=body)
    response = await create(client, contact(1))
    assert response.is_success
    with pytest.raises(ValueError):
        response.json()


async def test_slow_holds_the_answer_on_the_sandbox_clock(
    sandbox: Starlette, world: World, clock: VirtualClock
) -> None:
    fault(world, kind="slow", delay="45s")
    async with app_client(sandbox) as client:
        start = clock.monotonic()
        response = await drive(clock, search(client))
    assert response.status_code == 200 and clock.monotonic() - start >= 45


async def test_validation_and_duplicate_faults_refuse_creates(
    client: httpx.AsyncClient, world: World
) -> None:
    """A site-side required field (400 on ``field``) and a duplicate rule (409)."""
    fault(world, kind="validation", field="title")
    refused = await create(client, contact(1))
    accepted = await create(client, contact(2, title="CTO"))
    world.faults.clear()
    fault(world, kind="duplicate")
    duplicate = await create(client, contact(3))
    assert (refused.status_code, single_error(refused)["property"]) == (400, "title")
    assert (accepted.status_code, duplicate.status_code) == (201, 409)


async def test_live_faults_take_vendor_eloqua(client: httpx.AsyncClient) -> None:
    response = await client.post("/_sandbox/faults", json={"kind": "outage", "vendor": "eloqua"})
    assert response.status_code == 201 and response.json()["vendor"] == "eloqua"


# --- the Salesforce integration -------------------------------------------------------------------


async def test_a_new_contact_becomes_a_salesforce_lead_with_the_mapping(
    client: httpx.AsyncClient, world: World, clock: VirtualClock
) -> None:
    """The "Create Lead" action: mapped fields under Salesforce names, owned and open."""
    fields = {"accountName": "Syncwatch", "title": "CTO", "businessPhone": "+1 555 0100"}
    await create(client, contact(1, country="US", **fields))
    (source,) = world.eloqua_contacts.values()
    assert not world.crm
    await clock.advance(3000)
    await search(client)  # any request lets due syncs through
    (record,) = world.crm.values()
    assert (record.sobject, record.origin_contact_id) == ("Lead", str(source.id))
    assert record.fields == {
        "Email": email(1),
        "FirstName": "Sync",
        "LastName": "Probe 1",
        "Company": "Syncwatch",
        "Title": "CTO",
        "Phone": "+1 555 0100",
        "Country": "US",
        "OwnerId": world.scenario.salesforce.default_owner_id,
        "Status": "Open - Not Contacted",
    }
    assert record.created_at > source.created_at


async def test_latency_follows_the_eloqua_sync_spec(clock: VirtualClock) -> None:
    """The integration draws from its own median and p95."""
    spec = EloquaSpec(sync_latency=LatencySpec(median=10, p95=20))
    app = create_app(Scenario(seed=3, eloqua=spec), clock)
    world: World = app.state.world
    for n in range(200):
        app.state.sync.enqueue_eloqua(world.new_eloqua_contact({"emailAddress": email(n)}))
    delays = sorted(
        (item.due_at - item.enqueued_at).total_seconds() for item in app.state.sync.queue
    )
    assert 8 < delays[100] < 12 and delays[-1] < 60


async def test_without_the_program_and_after_a_delete_nothing_reaches_salesforce(
    client: httpx.AsyncClient, world: World, clock: VirtualClock
) -> None:
    contact_id = (await create(client, contact(1))).json()["id"]
    await client.delete(f"{CONTACT}/{contact_id}", headers=AUTH)
    world.scenario.eloqua.sync_on_create = False
    await create(client, contact(2))
    await clock.advance(3000)
    await search(client)
    assert not world.crm


async def test_state_counts_synthetic_eloqua_contacts(
    client: httpx.AsyncClient, world: World
) -> None:
    """``/_sandbox/state`` has an Eloqua side: contacts, and those at the probe domain."""
    await create(client, contact(1))
    await create(client, {"emailAddress": "jane@customer.example", "lastName": "Doe"})
    state = (await client.get("/_sandbox/state")).json()
    assert state["eloqua"] == {"records": 2, "synthetic": 1}
    records = (await client.get("/_sandbox/records", params={"synthetic": "true"})).json()
    assert [r["email"] for r in records["eloqua"]] == [email(1)]
