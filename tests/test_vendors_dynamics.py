"""The Dynamics 365 (Dataverse) destination adapter against Microsoft's documented payloads.

The respx tests feed the adapter the bodies Microsoft documents (tests/fixtures/dynamics): the
Entra token and its 400 error (MicrosoftDocs/entra-docs, ``v2-oauth2-client-creds-grant-flow.md``),
query pages and ``@odata.nextLink`` (MicrosoftDocs/powerapps-docs, ``webapi/query/page-results.md``,
``filter-rows.md``), and the Web API error body with the documented codes (``api-limits.md``,
``manage-duplicate-detection-create-update.md``, ``compose-http-requests-handle-errors.md``,
``includes/data-service-error-codes.md``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from dynamics_support import (
    CLIENT_ID,
    DOMAIN,
    ENVIRONMENT,
    LEADS,
    SECRET,
    TENANT,
    TOKEN_URL,
    dynamics_account,
    fixture,
)
from marketo_support import Recorder, drive, failure
from structlog.testing import capture_logs

from syncwatch.clock import VirtualClock
from syncwatch.config.accounts import DynamicsAccount
from syncwatch.config.model import Destination
from syncwatch.errors import (
    AuthError,
    ConfigError,
    DuplicateRejected,
    MalformedResponse,
    RateLimited,
    ValidationRejected,
    VendorUnavailable,
)
from syncwatch.http import AccountHttp
from syncwatch.vendors.base import Probe, Record, Wiring, probe_email
from syncwatch.vendors.dynamics import (
    MAX_URL_CHARS,
    DynamicsDestination,
    account_http,
    classify,
    odata_datetime,
    odata_ends_with,
    odata_string,
    quota_parser,
)

FIELDS = ("firstname", "lastname", "companyname")
OWNER = "d1a9e3f4-6b2c-ed11-9db1-0022481d68cd"
ROW = "70bf4d48-34cb-ed11-b596-0022481d68cd"


def probe(probe_id: str) -> Probe:
    return Probe(probe_id, probe_email(probe_id, DOMAIN), "hs-dyn")


def answer(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def empty_page() -> httpx.Response:
    return answer({"@odata.context": f"{ENVIRONMENT}/api/data/v9.2/$metadata#leads", "value": []})


def filter_of(request: httpx.Request) -> str:
    return parse_qs(urlsplit(str(request.url)).query)["$filter"][0]


def token_route(expires_in: int = 3599) -> respx.Route:
    body = {**fixture("token.json"), "expires_in": expires_in}
    return respx.post(TOKEN_URL).mock(return_value=answer(body))


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "dynamics-secret"
    path.write_text(SECRET + "\n", encoding="utf-8")
    return path


@pytest.fixture
def account(secret_file: Path) -> DynamicsAccount:
    return dynamics_account(secret_file)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def http(
    account: DynamicsAccount, clock: VirtualClock, recorder: Recorder
) -> AsyncIterator[AccountHttp]:
    client = account_http(account, Wiring(clock=clock, sink=recorder))
    yield client
    await client.aclose()


@pytest.fixture
def leads(account: DynamicsAccount, http: AccountHttp) -> DynamicsDestination:
    return DynamicsDestination(
        account, Destination(account=account.name, object="lead"), http, FIELDS
    )


# -- config and literals ------------------------------------------------------------------------


def test_the_account_defaults_to_the_public_authority_and_v9_2(secret_file: Path) -> None:
    """Only the environment, tenant and app are required; the rest is Microsoft's default."""
    account = dynamics_account(secret_file)
    assert (account.auth_url, account.api_version) == ("https://login.microsoftonline.com", "v9.2")
    assert (account.burst_limit, account.time_limit_s) == (6_000, 1_200)


def test_an_unknown_object_or_a_field_that_is_no_logical_name_is_refused(
    account: DynamicsAccount, http: AccountHttp
) -> None:
    """Objects map to entity sets; field names are written into URLs, so they are checked."""
    with pytest.raises(ConfigError):
        DynamicsDestination(account, Destination(account=account.name, object="Lead"), http)
    with pytest.raises(ConfigError):
        DynamicsDestination(
            account, Destination(account=account.name, object="lead"), http, ["a b"]
        )


@pytest.mark.parametrize(
    ("value", "literal"),
    [("plain@x.com", "'plain@x.com'"), ("o'brien@x.com", "'o''brien@x.com'"), ("''", "''''''")],
)
def test_string_literals_double_their_quotes(value: str, literal: str) -> None:
    """filter-rows.md: a single quote inside a literal is written as two."""
    assert odata_string(value) == literal


def test_endswith_brackets_wildcards_and_datetimes_are_utc_seconds() -> None:
    """``%``, ``_`` and ``[`` are wildcards in ``endswith``; each goes in brackets."""
    assert odata_ends_with("@my_probes.example") == "'@my[_]probes.example'"
    assert odata_ends_with("@100%[x].test") == "'@100[%][[]x].test'"
    moment = datetime(2026, 10, 3, 16, 5, 12, 900, tzinfo=UTC)
    assert odata_datetime(moment) == "2026-10-03T16:05:12Z"
    with pytest.raises(ValueError):
        odata_datetime(moment.replace(tzinfo=None))


# -- find ------------------------------------------------------------------------------------------


async def test_one_token_and_one_batched_filter_find_every_probe(
    leads: DynamicsDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """The documented token request, then one GET whose ``$filter`` ORs every probe's email;
    rows parse with ``createdon`` (whole seconds), owner, fields and no annotations."""
    with respx.mock:
        token = token_route()
        query = respx.get(LEADS).mock(return_value=answer(fixture("query-leads.json")))
        found = await drive(clock, leads.find([probe("p1"), probe("p2"), probe("p3")]))
    form = parse_qs(token.calls.last.request.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [SECRET],
        "scope": [f"{ENVIRONMENT}/.default"],
    }
    request = query.calls.last.request
    assert filter_of(request) == " or ".join(
        f"emailaddress1 eq '{probe_email(p, DOMAIN)}'" for p in ("p1", "p2", "p3")
    )
    assert "%2B" in str(request.url) and "+" not in urlsplit(str(request.url)).query
    select = parse_qs(urlsplit(str(request.url)).query)["$select"][0].split(",")
    assert select == ["leadid", "emailaddress1", "createdon", "_ownerid_value", *FIELDS]
    assert request.headers["OData-Version"] == "4.0"
    assert request.headers["Authorization"] == f"Bearer {fixture('token.json')['access_token']}"
    assert sorted(found) == ["p1", "p2"], "matched case-insensitively; p3 not synced yet"
    first = found["p1"]
    assert first.record_id == ROW and first.owner == OWNER
    assert first.created_at == datetime(2026, 10, 3, 14, 5, 12, tzinfo=UTC)
    assert first.created_resolution_s == 1.0
    assert first.fields["companyname"] == "Syncwatch Synthetic Lead"
    assert not [name for name in first.fields if "@" in name]
    assert [c.operation for c in recorder.calls] == ["request_token", "query_records"]
    assert recorder.calls[-1].integration == "hs-dyn"


async def test_a_connector_duplicate_resolves_to_the_earliest_row(
    leads: DynamicsDestination, clock: VirtualClock
) -> None:
    """Two rows for one probe: the earlier ``createdon`` is the probe's, the other is carried
    in ``duplicate_ids`` so clean-up deletes it too."""
    body = fixture("query-leads.json")
    late = {**body["value"][0], "leadid": "99bf4d48-34cb-ed11-b596-0022481d68cd"}
    late["createdon"] = "2026-10-03T14:09:00Z"
    body["value"] = [late, body["value"][0]]
    with respx.mock:
        token_route()
        respx.get(LEADS).mock(return_value=answer(body))
        found = await drive(clock, leads.find([probe("p1")]))
    assert found["p1"].record_id == ROW
    assert found["p1"].duplicate_ids == ("99bf4d48-34cb-ed11-b596-0022481d68cd",)


async def test_find_splits_only_past_the_url_budget(
    leads: DynamicsDestination, clock: VirtualClock
) -> None:
    """600 long emails need several queries, each URL within budget and nearly full; 40 short
    ones need one."""
    long_ids = [f"{n:04d}-{'x' * 60}" for n in range(600)]
    with respx.mock:
        token_route()
        query = respx.get(LEADS).mock(side_effect=lambda _: empty_page())
        await drive(clock, leads.find([probe(i) for i in long_ids]))
        urls = [str(call.request.url) for call in query.calls]
        assert len(urls) > 1
        assert all(len(url) <= MAX_URL_CHARS for url in urls)
        assert all(len(url) > MAX_URL_CHARS - 200 for url in urls[:-1])
        named = [filter_of(call.request).count(" eq ") for call in query.calls]
        assert sum(named) == 600
        before = query.call_count
        await drive(clock, leads.find([probe(f"s{n}") for n in range(40)]))
        assert query.call_count == before + 1


async def test_pages_are_followed_through_next_link(
    leads: DynamicsDestination, clock: VirtualClock
) -> None:
    """page-results.md: ``@odata.nextLink`` is requested unchanged until a page has none."""
    first, second = fixture("query-page-1.json"), fixture("query-page-2.json")
    with respx.mock:
        token_route()
        query = respx.get(LEADS).mock(side_effect=[answer(first), answer(second)])
        found = await drive(clock, leads.find([probe("p1"), probe("p2")]))
    assert sorted(found) == ["p1", "p2"]
    assert str(query.calls[1].request.url) == first["@odata.nextLink"]


async def test_a_next_link_to_another_host_is_malformed(
    leads: DynamicsDestination, clock: VirtualClock
) -> None:
    """The token must not follow a link off the environment: the page is ``malformed``."""
    page = {**fixture("query-page-1.json"), "@odata.nextLink": "https://evil.example/api/data/x"}
    with respx.mock:
        token_route()
        respx.get(LEADS).mock(return_value=answer(page))
        caught = await failure(clock, leads.find([probe("p1")]))
    assert isinstance(caught, MalformedResponse)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            200, text="<html>502 Bad Gateway</html>", headers={"content-type": "text/html"}
        ),
        httpx.Response(
            200, content=b'{"value": [{"leadid"', headers={"content-type": "application/json"}
        ),
        answer({"@odata.context": "x"}),
        answer({"value": {"leadid": ROW}}),
        answer({"value": [{"emailaddress1": "a@b.c"}]}),
        answer({"value": [{"leadid": ROW, "createdon": "yesterday"}]}),
    ],
)
async def test_a_page_of_the_wrong_shape_is_malformed(
    leads: DynamicsDestination, clock: VirtualClock, recorder: Recorder, response: httpx.Response
) -> None:
    """HTML, cut-off JSON, no ``value`` list, a row without its id, an unreadable ``createdon``."""
    with respx.mock:
        token_route()
        respx.get(LEADS).mock(return_value=response)
        caught = await failure(clock, leads.find([probe("p1")]))
    assert isinstance(caught, MalformedResponse)
    assert recorder.calls[-1].error_class == "malformed"


# -- tokens ----------------------------------------------------------------------------------------


async def test_the_token_is_reused_until_it_expires_then_renewed(
    leads: DynamicsDestination, clock: VirtualClock
) -> None:
    """One token for calls within its lifetime (less a minute's margin), a new one after."""
    with respx.mock:
        token = token_route(expires_in=600)
        respx.get(LEADS).mock(side_effect=lambda _: empty_page())
        await drive(clock, leads.find([probe("a")]))
        await clock.advance(500)
        await drive(clock, leads.find([probe("b")]))
        assert token.call_count == 1
        await clock.advance(60)
        await drive(clock, leads.find([probe("c")]))
        assert token.call_count == 2


async def test_a_401_earns_one_new_token_and_one_retry(
    leads: DynamicsDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """A refused token is renewed once; a second 401 is ``auth``, not a loop."""
    with respx.mock:
        token = token_route()
        respx.get(LEADS).mock(side_effect=[httpx.Response(401), empty_page()])
        assert await drive(clock, leads.find([probe("a")])) == {}
        assert token.call_count == 2
        respx.get(LEADS).mock(side_effect=[httpx.Response(401), httpx.Response(401)])
        caught = await failure(clock, leads.find([probe("b")]))
    assert isinstance(caught, AuthError) and token.call_count == 3
    assert [c.error_class for c in recorder.calls].count("auth") == 3


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, fixture("token-invalid-scope.json"), AuthError),
        (401, fixture("token-invalid-client.json"), AuthError),
        (503, {"error": "temporarily_unavailable"}, VendorUnavailable),
        (200, {"token_type": "Bearer", "access_token": "x"}, MalformedResponse),
        (200, {"token_type": "mac", "expires_in": 3599, "access_token": "x"}, MalformedResponse),
    ],
)
async def test_token_endpoint_answers_are_classified(
    leads: DynamicsDestination, clock: VirtualClock, status: int, body: Any, expected: type
) -> None:
    """Entra's documented 400 body and a refused secret are ``auth``; a 5xx the vendor's; a
    token without a lifetime or of another type ``malformed``."""
    with respx.mock:
        respx.post(TOKEN_URL).mock(return_value=answer(body, status))
        caught = await failure(clock, leads.find([probe("a")]))
    assert isinstance(caught, expected)


# -- throttling, quota, errors ---------------------------------------------------------------------


async def test_a_429_is_retried_after_its_retry_after(
    leads: DynamicsDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """api-limits.md: 429 with ``Retry-After`` in seconds; the retry waits exactly that."""
    throttled = answer(fixture("error-requests.json"), 429, **{"Retry-After": "7"})
    sent: list[datetime] = []

    def reply(request: httpx.Request) -> httpx.Response:
        sent.append(clock.now())
        return throttled if len(sent) == 1 else empty_page()

    with respx.mock:
        token_route()
        respx.get(LEADS).mock(side_effect=reply)
        await drive(clock, leads.find([probe("a")]))
    assert sent[1] - sent[0] == timedelta(seconds=7)
    assert [c.error_class for c in recorder.calls[1:]] == ["rate_limited", None]


async def test_service_protection_headers_are_recorded_as_advisory_windows(
    leads: DynamicsDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """``x-ms-ratelimit-*`` become the ``burst`` and ``time`` windows, never a daily figure."""
    headers = {
        "x-ms-ratelimit-burst-remaining-xrm-requests": "5993",
        "x-ms-ratelimit-time-remaining-xrm-requests": "1,199.46",
    }
    with respx.mock:
        token_route()
        respx.get(LEADS).mock(return_value=answer(fixture("query-leads.json"), **headers))
        await drive(clock, leads.find([probe("p1")]))
    call, others = recorder.calls[-1], recorder.windows[-1]
    assert call.quota_used is None and call.quota_window is None
    assert [(f.window, f.used, f.limit) for f in others] == [
        ("burst", 7, 6000),
        ("time", 1, 1200),
    ]


@pytest.mark.parametrize(
    ("burst", "time", "figures"),
    [
        ("7999", "1,200.00", [("burst", 0, 7999), ("time", 0, 1200)]),
        ("0", "0.00", [("burst", 6000, 6000), ("time", 1200, 1200)]),
        ("many", "1.2.3", []),
        (None, "15.5", [("time", 1185, 1200)]),
    ],
)
def test_the_quota_parser_reads_remainders(
    account: DynamicsAccount, burst: str | None, time: str, figures: list[tuple[str, int, int]]
) -> None:
    """Remainders become used-of-limit; an environment above the default raises the limit to
    what it reports (one observed at 8,000); garbage costs the figure, not the call."""
    headers = {"x-ms-ratelimit-time-remaining-xrm-requests": time}
    if burst is not None:
        headers["x-ms-ratelimit-burst-remaining-xrm-requests"] = burst
    parsed = quota_parser(account)(httpx.Headers(headers))
    assert [(f.window, f.used, f.limit) for f in parsed] == figures


ERRORS: list[tuple[int, Any, str]] = [
    (429, fixture("error-requests.json"), "rate_limited"),
    (429, fixture("error-execution-time.json"), "rate_limited"),
    (429, fixture("error-concurrency.json"), "rate_limited"),
    (500, fixture("error-duplicate-detected.json"), "duplicate"),
    (412, fixture("error-duplicate-record.json"), "duplicate"),
    (404, fixture("error-not-found.json"), "validation"),
    (400, fixture("error-plugin.json"), "validation"),
    (403, fixture("error-access-denied.json"), "auth"),
    (401, None, "auth"),
    (400, fixture("token-invalid-scope.json"), "auth"),
    (401, fixture("token-invalid-client.json"), "auth"),
    (500, fixture("error-empty-code.json"), "vendor_5xx"),
    (503, "<html>Service Unavailable</html>", "vendor_5xx"),
    (302, None, "malformed"),
    (200, fixture("query-leads.json"), ""),
]


@pytest.mark.parametrize(("status", "body", "error_class"), ERRORS)
def test_each_documented_error_body_is_classified(status: int, body: Any, error_class: str) -> None:
    """DESIGN §6 for every documented Dataverse and Entra error body."""
    if isinstance(body, str):
        response = httpx.Response(status, text=body, headers={"content-type": "text/html"})
    else:
        response = httpx.Response(status, json=body) if body is not None else httpx.Response(status)
    error = classify(response)
    assert (error.error_class if error else "") == error_class


def test_a_throttle_keeps_its_retry_after_and_the_message_names_the_code() -> None:
    """The wait travels with the error; the message says what Dataverse said."""
    response = answer(fixture("error-requests.json"), 429, **{"Retry-After": "42"})
    error = classify(response)
    assert isinstance(error, RateLimited) and error.retry_after_s == 42.0
    assert "0x80072322" in str(error) and "6000" in str(error)


# -- delete and sweep ------------------------------------------------------------------------------


def row(record_id: str, probe_id: str = "p1") -> Record:
    return Record(record_id, probe_email(probe_id, DOMAIN), None)


async def test_delete_goes_row_by_row_and_a_404_is_already_gone(
    leads: DynamicsDestination, clock: VirtualClock, recorder: Recorder
) -> None:
    """One DELETE per distinct row; 404 (documented for a missing row) counts as success."""
    other = "72bf4d48-34cb-ed11-b596-0022481d68cd"
    with respx.mock:
        token_route()
        first = respx.delete(f"{LEADS}({ROW})").mock(return_value=httpx.Response(204))
        gone = respx.delete(f"{LEADS}({other})").mock(
            return_value=answer(fixture("error-not-found.json"), 404)
        )
        await drive(clock, leads.delete([row(ROW), row(ROW.upper()), row(other, "p2")]))
    assert first.call_count == 1 and gone.call_count == 1
    assert [c.error_class for c in recorder.calls if c.operation == "delete_record"] == [None, None]


async def test_a_refused_row_raises_after_the_others_are_tried(
    leads: DynamicsDestination, clock: VirtualClock
) -> None:
    """A plug-in refusing one delete strands no other row; an outage raises at once."""
    other = "72bf4d48-34cb-ed11-b596-0022481d68cd"
    with respx.mock:
        token_route()
        respx.delete(f"{LEADS}({ROW})").mock(return_value=answer(fixture("error-plugin.json"), 400))
        later = respx.delete(f"{LEADS}({other})").mock(return_value=httpx.Response(204))
        caught = await failure(clock, leads.delete([row(ROW), row(other, "p2")]))
        assert isinstance(caught, ValidationRejected) and later.call_count == 1
        assert "1 of 2 records not deleted" in str(caught)
        respx.delete(f"{LEADS}({ROW})").mock(return_value=httpx.Response(503))
        outage = await failure(clock, leads.delete([row(ROW), row(other, "p2")]))
    assert isinstance(outage, VendorUnavailable) and later.call_count == 1


async def test_sweep_asks_for_old_rows_at_the_probe_domain_only(
    leads: DynamicsDestination, clock: VirtualClock
) -> None:
    """``endswith`` on the domain (wildcards bracketed) and ``createdon lt``; a row that is no
    probe, or at another domain, is never returned for deletion."""
    body = fixture("query-leads.json")
    body["value"].append({**body["value"][0], "emailaddress1": "ceo@probe.syncwatch.example"})
    body["value"].append({**body["value"][0], "emailaddress1": "syncwatch+x@elsewhere.example"})
    older_than = datetime(2026, 10, 3, 16, 0, tzinfo=UTC)
    with respx.mock:
        token_route()
        query = respx.get(LEADS).mock(return_value=answer(body))
        swept = await drive(clock, leads.sweep("probe.syncwatch.example", older_than))
    assert filter_of(query.calls.last.request) == (
        "endswith(emailaddress1,'@probe.syncwatch.example') and createdon lt 2026-10-03T16:00:00Z"
    )
    assert sorted(r.probe_id or "" for r in swept) == ["p1", "p2"]


async def test_duplicates_from_a_create_are_duplicate_even_in_a_500(
    leads: DynamicsDestination, clock: VirtualClock
) -> None:
    """Duplicate detection answers 500 ``0x80040333`` (documented): customer's, not vendor's."""
    with respx.mock:
        token_route()
        respx.get(LEADS).mock(return_value=answer(fixture("error-duplicate-detected.json"), 500))
        caught = await failure(clock, leads.find([probe("a")]))
    assert isinstance(caught, DuplicateRejected)


# -- the secret ------------------------------------------------------------------------------------


async def test_the_secret_and_token_never_reach_calls_errors_logs_or_reprs(
    leads: DynamicsDestination,
    http: AccountHttp,
    clock: VirtualClock,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The secret goes only in the token request's form body; nothing we keep or print has it
    or the access token."""
    caplog.set_level(logging.DEBUG)
    access_token = fixture("token.json")["access_token"]
    with respx.mock, capture_logs() as logs:
        token = token_route()
        replies = iter([answer(fixture("query-leads.json"))])
        respx.get(LEADS).mock(side_effect=lambda _: next(replies, httpx.Response(503)))
        await drive(clock, leads.find([probe("p1")]))
        outage = await failure(clock, leads.find([probe("p2")]))
        respx.post(TOKEN_URL).mock(return_value=answer(fixture("token-invalid-client.json"), 401))
        await clock.advance(3600)
        refused = await failure(clock, leads.find([probe("p3")]))
    assert SECRET in token.calls[0].request.content.decode()
    assert all(SECRET not in str(call.request.url) for call in token.calls)
    seen = [repr(recorder.calls), repr(recorder.windows), repr(logs), caplog.text]
    seen += [str(e) + repr(e) + repr(e.args) for e in (outage, refused)]
    seen += [repr(leads), repr(leads.auth), repr(http)]
    assert caplog.records, "httpx logged the requests (through the redactor)"
    assert not [text for text in seen if SECRET in text or access_token in text]
    assert TENANT in str(token.calls[0].request.url)
