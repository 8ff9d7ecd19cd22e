"""The HubSpot CRM destination adapter against HubSpot's documented payloads, and the sandbox.

The respx tests feed the adapter the documented bodies: the search request and its
``CollectionResponseWithTotalSimplePublicObject`` with ``paging.next.after`` and ``createdAt`` in
milliseconds (repo HubSpot/HubSpot-public-api-spec-collection,
``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json``), the ``createdate`` property as
real answers carry it (vendor-apis.md §1.5), owner ids as /crm/v3/owners lists them
(developers.hubspot.com/docs/api-reference/crm-crm-owners-v3/guide), and the 429 ``RATE_LIMIT``
body with ``policyName`` (developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hubspot_support import TOKEN, world_of
from marketo_support import Recorder, drive, failure
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.config.accounts import HubSpotAccount
from syncwatch.config.model import Destination
from syncwatch.errors import ConfigError, MalformedResponse, QuotaExhausted, RateLimited
from syncwatch.events import QuotaFigure
from syncwatch.http import AccountHttp
from syncwatch.lifecycle import CREATED_UNCORRECTED, measure_latency
from syncwatch.sandbox.scenario import HubSpotSpec, Scenario
from syncwatch.vendors.base import Destination as DestinationProtocol
from syncwatch.vendors.base import Probe, Record, Wiring, probe_email
from syncwatch.vendors.hubspot import account_http
from syncwatch.vendors.hubspot_crm import HubSpotDestination

DOMAIN = "probe.syncwatch.example"
API = "https://api.hubapi.com"
SEARCH = f"{API}/crm/v3/objects/contacts/search"
ARCHIVE = f"{API}/crm/v3/objects/contacts/batch/archive"
FIELDS = ("firstname", "lastname", "company")
OWNER = "41629779"
RATE_HEADERS = {
    "X-HubSpot-RateLimit-Daily": "1000000",
    "X-HubSpot-RateLimit-Daily-Remaining": "999990",
    "X-HubSpot-RateLimit-Max": "190",
    "X-HubSpot-RateLimit-Remaining": "189",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
}


def probe(probe_id: str) -> Probe:
    return Probe(probe_id, probe_email(probe_id, DOMAIN), "mk-hs")


def contact(contact_id: str, probe_id: str, created: str, **properties: Any) -> dict[str, Any]:
    """A SimplePublicObject as search returns it, ``createdate`` equal to ``createdAt``."""
    values = {
        "email": probe_email(probe_id, DOMAIN),
        "createdate": created,
        "hs_object_id": contact_id,
        "lastmodifieddate": created,
        "hubspot_owner_id": OWNER,
        "firstname": "Syncwatch",
        "lastname": f"Probe {probe_id}",
        "company": "Syncwatch Synthetic Lead",
        **properties,
    }
    return {
        "id": contact_id,
        "properties": values,
        "createdAt": created,
        "updatedAt": created,
        "archived": False,
    }


def page(results: list[dict[str, Any]], after: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"total": len(results), "results": results}
    if after is not None:
        body["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
    return httpx.Response(200, json=body, headers={"X-HubSpot-Correlation-Id": "c0ffee00"})


def rate_limited(policy: str, message: str) -> httpx.Response:
    body = {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": "c0ffee00-0000-4000-8000-000000000001",
        "policyName": policy,
        "requestId": "c0ffee00-0000-4000-8000-000000000002",
    }
    return httpx.Response(429, json=body)


def bodies(route: respx.Route) -> list[Any]:
    return [json.loads(call.request.content) for call in route.calls]


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "hubspot-token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    return path


def hubspot_account(token_file: Path, **hosts: str) -> HubSpotAccount:
    raw = {"name": "hubspot-crm", "vendor": "hubspot", "token": {"file": str(token_file)}}
    return HubSpotAccount.model_validate({**raw, **hosts})


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def http(
    token_file: Path, clock: VirtualClock, recorder: Recorder
) -> AsyncIterator[AccountHttp]:
    client = account_http(hubspot_account(token_file), Wiring(clock=clock, sink=recorder))
    yield client
    await client.aclose()


@pytest.fixture
def contacts(token_file: Path, http: AccountHttp) -> HubSpotDestination:
    account = hubspot_account(token_file)
    return HubSpotDestination(
        account, Destination(account=account.name, object="contacts"), http, FIELDS
    )


# -- config --------------------------------------------------------------------------------------


def test_a_destination_only_account_needs_no_portal_and_offers_contacts(
    token_file: Path, http: AccountHttp, contacts: HubSpotDestination
) -> None:
    """The CRM knows the account from its token: no ``portal_id``; contacts is the one object."""
    account = hubspot_account(token_file)
    assert account.portal_id is None
    assert "destination" in account.roles and account.destination_objects == ("contacts",)
    assert isinstance(contacts, DestinationProtocol)
    assert TOKEN not in repr(contacts)
    with pytest.raises(ConfigError, match="is not one of contacts"):
        HubSpotDestination(account, Destination(account=account.name, object="Lead"), http)


# -- find ----------------------------------------------------------------------------------------


async def test_find_is_one_in_search_with_the_documented_body(
    contacts: HubSpotDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """One POST: an ``email IN`` filter over every probe, the expected properties beside
    email, createdate and owner, 200 a page; contacts parse with ms, owner and fields."""
    answer = page([contact("512", "p1", "2026-10-05T09:01:23.456Z")])
    with respx.mock:
        route = respx.post(SEARCH).mock(return_value=answer)
        found = await drive(clock, contacts.find([probe("p2"), probe("P1"), probe("p3")]))
    (body,) = bodies(route)
    assert body == {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "email",
                        "operator": "IN",
                        "values": [probe_email(p, DOMAIN) for p in ("p1", "p2", "p3")],
                    }
                ]
            }
        ],
        "properties": ["email", "createdate", "hubspot_owner_id", *FIELDS],
        "limit": 200,
    }
    assert route.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"
    assert list(found) == ["P1"], "matched case-insensitively; p2 and p3 not synced yet"
    record = found["P1"]
    assert (record.record_id, record.owner) == ("512", OWNER)
    assert record.created_at == datetime(2026, 10, 5, 9, 1, 23, 456_000, tzinfo=UTC)
    assert record.created_resolution_s == 0.001
    assert record.fields["company"] == "Syncwatch Synthetic Lead"
    assert record.observed_at == clock.now()
    (call,) = recorder.calls
    assert (call.operation, call.integration, call.status) == ("search_contacts", "mk-hs", 200)
    assert call.quota_window is None, "search answers carry no rate-limit headers"


async def test_find_of_no_probes_makes_no_call(
    contacts: HubSpotDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """Nothing in flight, nothing asked."""
    assert await drive(clock, contacts.find([])) == {}
    assert recorder.calls == []


async def test_find_splits_by_in_values_and_filter_groups(
    contacts: HubSpotDestination, clock: VirtualClock
) -> None:
    """1,050 probes: five groups of 100 per search (the most one search takes), so three
    searches; every email asked for exactly once."""
    with respx.mock:
        route = respx.post(SEARCH).mock(side_effect=lambda _: page([]))
        await drive(clock, contacts.find([probe(f"n{n:04d}") for n in range(1050)]))
    sent = bodies(route)
    sizes = [[len(g["filters"][0]["values"]) for g in body["filterGroups"]] for body in sent]
    assert sizes == [[100] * 5, [100] * 5, [50]]
    values = [v for body in sent for g in body["filterGroups"] for v in g["filters"][0]["values"]]
    assert sorted(values) == sorted(probe_email(f"n{n:04d}", DOMAIN) for n in range(1050))


async def test_find_follows_paging_with_after(
    contacts: HubSpotDestination, clock: VirtualClock
) -> None:
    """``paging.next.after`` is sent back as ``after`` until a page has no paging."""
    created = "2026-10-05T09:00:00.001Z"
    answers = [
        page([contact("1", "a", created)], after="200"),
        page([contact("2", "b", created)], after="400"),
        page([contact("3", "c", created)]),
    ]
    with respx.mock:
        route = respx.post(SEARCH).mock(side_effect=answers)
        found = await drive(clock, contacts.find([probe(p) for p in "abc"]))
    assert sorted(found) == ["a", "b", "c"]
    assert [body.get("after") for body in bodies(route)] == [None, "200", "400"]
    assert len({json.dumps(body["filterGroups"]) for body in bodies(route)}) == 1


async def test_createdate_gives_latency_to_the_millisecond(
    contacts: HubSpotDestination, clock: VirtualClock
) -> None:
    """Latency = createdate - acceptance, plus half a millisecond (the middle of the ms it was
    created in); no ``Date`` header here, so the offset is taken as zero."""
    accepted_at = datetime(2026, 10, 5, 9, 0, 0, tzinfo=UTC)
    with respx.mock:
        respx.post(SEARCH).mock(return_value=page([contact("9", "p1", "2026-10-05T09:01:23.456Z")]))
        record = (await drive(clock, contacts.find([probe("p1")])))["p1"]
    latency = measure_latency(accepted_at, accepted_at + timedelta(minutes=5), record)
    assert latency.method == CREATED_UNCORRECTED
    assert latency.seconds == pytest.approx(83.4565, abs=1e-9)


async def test_createdat_stands_in_when_createdate_was_not_returned(
    contacts: HubSpotDestination, clock: VirtualClock
) -> None:
    """The top-level ``createdAt`` (documented in ms) is the creation time when the property is
    missing from the answer."""
    result = contact("9", "p1", "2026-10-05T09:01:23.456Z")
    del result["properties"]["createdate"]
    with respx.mock:
        respx.post(SEARCH).mock(return_value=page([result]))
        record = (await drive(clock, contacts.find([probe("p1")])))["p1"]
    assert record.created_at == datetime(2026, 10, 5, 9, 1, 23, 456_000, tzinfo=UTC)


@pytest.mark.parametrize("created", ["yesterday", "2026-10-05T09:01:23.456", 1791190883456])
async def test_an_unreadable_createdate_makes_the_search_malformed(
    contacts: HubSpotDestination, clock: VirtualClock, recorder: Recorder, created: Any
) -> None:
    """A creation time that is no ISO-8601 UTC string is the vendor's ``malformed`` answer."""
    with respx.mock:
        respx.post(SEARCH).mock(return_value=page([contact("9", "p1", created)]))
        caught = await failure(clock, contacts.find([probe("p1")]))
    assert isinstance(caught, MalformedResponse)
    assert [call.error_class for call in recorder.calls] == ["malformed"]


async def test_two_contacts_for_one_probe_resolve_to_the_earliest(
    contacts: HubSpotDestination, clock: VirtualClock
) -> None:
    """The earlier ``createdate`` is the probe's; the other is carried for clean-up."""
    results = [
        contact("77", "p1", "2026-10-05T09:02:00.000Z"),
        contact("76", "p1", "2026-10-05T09:01:00.000Z"),
    ]
    with respx.mock:
        respx.post(SEARCH).mock(return_value=page(results))
        record = (await drive(clock, contacts.find([probe("p1")])))["p1"]
    assert (record.record_id, record.duplicate_ids) == ("76", ("77",))


# -- the search endpoint's own limit ---------------------------------------------------------------


async def test_a_429_rate_limit_on_search_is_retried_after_backoff(
    contacts: HubSpotDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """The search limit's 429 (``RATE_LIMIT``, a policy other than DAILY) is retried after 1 s."""
    answers = [
        rate_limited("SECONDLY", "You have reached your secondly limit."),
        page([contact("9", "p1", "2026-10-05T09:01:23.456Z")]),
    ]
    start = clock.now()
    with respx.mock:
        respx.post(SEARCH).mock(side_effect=answers)
        found = await drive(clock, contacts.find([probe("p1")]))
    assert list(found) == ["p1"]
    assert [c.error_class for c in recorder.calls] == ["rate_limited", None]
    assert [(c.at - start).total_seconds() for c in recorder.calls] == [0.0, 1.0]
    assert recorder.calls[0].status == 429


async def test_a_daily_429_on_search_is_the_quota_and_never_retried(
    contacts: HubSpotDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """``policyName: DAILY`` is ``quota_exhausted``: waiting seconds cannot help."""
    with respx.mock:
        respx.post(SEARCH).mock(
            return_value=rate_limited("DAILY", "You have reached your daily limit.")
        )
        caught = await failure(clock, contacts.find([probe("p1")]))
    assert isinstance(caught, QuotaExhausted)
    assert [c.error_class for c in recorder.calls] == ["quota_exhausted"]


async def test_a_lasting_search_throttle_gives_up_after_three_attempts(
    contacts: HubSpotDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """Retries are bounded: RateLimited reaches the caller (the poller looks again next tick)."""
    with respx.mock:
        respx.post(SEARCH).mock(return_value=rate_limited("SECONDLY", "secondly limit"))
        caught = await failure(clock, contacts.find([probe("p1")]))
    assert isinstance(caught, RateLimited)
    assert len(recorder.calls) == 3


async def test_searches_are_held_to_four_a_second(
    contacts: HubSpotDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """Nine pages of one search: four go at once, the fifth waits for the window (4/s per
    token, the changelog's search limit), and so on."""
    created = "2026-10-05T09:00:00.000Z"
    answers = [page([contact(str(n), f"p{n}", created)], after=str(n)) for n in range(8)]
    answers.append(page([contact("8", "p8", created)]))
    start = clock.now()
    with respx.mock:
        respx.post(SEARCH).mock(side_effect=answers)
        found = await drive(clock, contacts.find([probe(f"p{n}") for n in range(9)]))
    assert len(found) == 9
    times = [(c.at - start).total_seconds() for c in recorder.calls]
    assert times == [0.0] * 4 + [1.0] * 4 + [2.0]


# -- delete and sweep ------------------------------------------------------------------------------


async def test_delete_archives_in_batches_of_100_in_id_order(
    contacts: HubSpotDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """250 contacts (one named twice) are three batch archives; the 204s carry the quota."""
    records = [Record(str(n), probe_email(f"d{n}", DOMAIN), None) for n in range(250, 0, -1)]
    with respx.mock:
        route = respx.post(ARCHIVE).mock(return_value=httpx.Response(204, headers=RATE_HEADERS))
        await drive(clock, contacts.delete([*records, records[0]]))
    inputs = [body["inputs"] for body in bodies(route)]
    assert [len(batch) for batch in inputs] == [100, 100, 50]
    assert [item["id"] for batch in inputs for item in batch] == [str(n) for n in range(1, 251)]
    assert {c.operation for c in recorder.calls} == {"archive_contacts"}
    assert (recorder.calls[0].quota_window, recorder.calls[0].quota_used) == ("daily", 10)
    assert recorder.windows[0] == (QuotaFigure("10s", 1, 190),)


async def test_deleting_one_probe_is_attributed_to_it(
    contacts: HubSpotDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """A single record's archive call names its probe."""
    with respx.mock:
        respx.post(ARCHIVE).mock(return_value=httpx.Response(204))
        await drive(clock, contacts.delete([Record("512", probe_email("p1", DOMAIN), None)]))
    assert recorder.calls[0].probe_id == "p1"


async def test_sweep_asks_for_old_contacts_at_the_probe_domain_only(
    contacts: HubSpotDestination, clock: VirtualClock
) -> None:
    """``CONTAINS_TOKEN *@domain`` and ``createdate LT`` in ms; an address at the domain that is
    no probe, or a probe address elsewhere, is never returned for deletion."""
    created = "2026-10-03T14:05:12.345Z"
    results = [
        contact("1", "old1", created),
        contact("2", "x", created, email=f"ceo@{DOMAIN}"),
        contact("3", "x", created, email="syncwatch+x@elsewhere.example"),
    ]
    older_than = datetime(2026, 10, 3, 16, 0, tzinfo=UTC)
    with respx.mock:
        route = respx.post(SEARCH).mock(return_value=page(results))
        swept = await drive(clock, contacts.sweep(DOMAIN, older_than))
    (body,) = bodies(route)
    assert body == {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": f"*@{DOMAIN}"},
                    {"propertyName": "createdate", "operator": "LT", "value": "1791043200000"},
                ]
            }
        ],
        "properties": ["email", "createdate"],
        "limit": 200,
    }
    assert [(r.record_id, r.probe_id) for r in swept] == [("1", "old1")]


# -- the adapter against the sandbox ---------------------------------------------------------------


@pytest.fixture
def scenario() -> Scenario:
    """The sandbox accepts only our token, so every call proves it was sent."""
    return Scenario(seed=7, hubspot=HubSpotSpec(token=TOKEN))


@pytest.fixture
async def in_sandbox(
    sandbox: Starlette, clock: VirtualClock, token_file: Path, recorder: Recorder
) -> AsyncIterator[HubSpotDestination]:
    account = hubspot_account(token_file, base_url="http://sandbox.test/hubspot")
    wiring = Wiring(clock=clock, sink=recorder, transport=httpx.ASGITransport(app=sandbox))
    http = account_http(account, wiring)
    yield HubSpotDestination(account, Destination(account=account.name, object="contacts"), http)
    await http.aclose()


async def test_the_adapter_finds_sweeps_and_archives_in_the_sandbox(
    in_sandbox: HubSpotDestination, sandbox: Starlette, clock: VirtualClock, recorder: Recorder
) -> None:
    """The whole cycle against the emulation: 250 contacts found over two pages with their
    true creation instants (to the ms) and owner, the old ones swept, all archived."""
    world = world_of(sandbox)
    owner = {"hubspot_owner_id": OWNER}
    old = [world.new_contact({"email": probe("s0").email, **owner}, "marketo:1")]
    await clock.advance(3600)
    fresh = [world.new_contact({"email": probe(f"f{n}").email, **owner}, "api") for n in range(249)]
    found = await drive(
        clock, in_sandbox.find([probe("s0"), *(probe(f"f{n}") for n in range(249))])
    )
    assert len(found) == 250
    first = found["s0"]
    assert first.owner == OWNER
    assert first.created_at == old[0].created_at.replace(
        microsecond=old[0].created_at.microsecond // 1000 * 1000
    )
    assert [c.operation for c in recorder.calls] == ["search_contacts", "search_contacts"]
    swept = await drive(clock, in_sandbox.sweep(DOMAIN, clock.now() - timedelta(minutes=30)))
    assert [r.probe_id for r in swept] == ["s0"]
    await drive(clock, in_sandbox.delete(list(found.values())))
    assert all(c.archived_at is not None for c in [*old, *fresh])
    assert not [c for c in recorder.calls if c.error_class]
