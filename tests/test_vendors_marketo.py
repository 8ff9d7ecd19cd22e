"""The Marketo source adapter against the in-process sandbox and against Marketo's own payloads.

The respx tests feed the adapter the bodies Adobe documents (tests/fixtures/marketo, copied from
repo AdobeDocs/marketo-developer.en ``help/rest-api/{authentication,leads,usage,error-codes}.md``):
HTTP 200 with ``success: false`` and quoted codes, and per-record ``skipped`` reasons.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from marketo_support import (
    CLIENT_ID,
    DOMAIN,
    SECRET,
    Recorder,
    Recording,
    drive,
    failure,
    fixture,
    marketo_account,
)
from sandbox_support import app_client
from starlette.applications import Starlette
from structlog.testing import capture_logs

from syncwatch.clock import VirtualClock
from syncwatch.config.accounts import MarketoAccount
from syncwatch.config.model import Source as SourceSettings
from syncwatch.errors import (
    AuthError,
    ConfigError,
    DuplicateRejected,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    ValidationRejected,
    VendorError,
    VendorUnavailable,
)
from syncwatch.http import AccountHttp, Rate
from syncwatch.sandbox.scenario import MarketoSpec, Scenario
from syncwatch.vendors.base import Probe, Source, SourceRef, Wiring, probe_email
from syncwatch.vendors.marketo import (
    MAX_CONCURRENT,
    MarketoSource,
    account_http,
    classify,
)

FIELDS = {"firstName": "Sync", "lastName": "Probe", "company": "syncwatch"}
HOST = "https://123-ABC-456.mktorest.com"
TOKEN_URL = f"{HOST}/identity/oauth/token"
LEADS = f"{HOST}/rest/v1/leads.json"
PUSH = f"{HOST}/rest/v1/leads/push.json"
DELETE = f"{HOST}/rest/v1/leads/delete.json"
USAGE = f"{HOST}/rest/v1/stats/usage.json"
PROGRAM = "Syncwatch Probes"


def make_probe(probe_id: str = "abc123") -> Probe:
    return Probe(probe_id, probe_email(probe_id, DOMAIN), "mk-sf", FIELDS)


def settings(method: str) -> SourceSettings:
    return SourceSettings(account="marketo-test", method=method)


def answer(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


@pytest.fixture
def scenario() -> Scenario:
    """The sandbox accepts only our client id and secret, so every token proves both were sent."""
    return Scenario(seed=7, marketo=MarketoSpec(client_id=CLIENT_ID, client_secret=SECRET))


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "marketo-secret"
    path.write_text(SECRET + "\n", encoding="utf-8")
    return path


@pytest.fixture
def account(secret_file: Path) -> MarketoAccount:
    return marketo_account(secret_file, push_program=PROGRAM)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def recording(sandbox: Starlette) -> Recording:
    return Recording(sandbox)


@pytest.fixture
async def http(
    account: MarketoAccount, clock: VirtualClock, recorder: Recorder, recording: Recording
) -> AsyncIterator[AccountHttp]:
    client = account_http(account, Wiring(clock=clock, sink=recorder, transport=recording))
    yield client
    await client.aclose()


@pytest.fixture
def leads(account: MarketoAccount, http: AccountHttp) -> MarketoSource:
    return MarketoSource(account, settings("leads"), http)


@pytest.fixture
def push(account: MarketoAccount, http: AccountHttp) -> MarketoSource:
    return MarketoSource(account, settings("push"), http)


@pytest.fixture
async def control(sandbox: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(sandbox) as client:
        yield client


@pytest.fixture
async def real(
    secret_file: Path, clock: VirtualClock, recorder: Recorder
) -> AsyncIterator[MarketoSource]:
    """The adapter pointed at a real-looking host, for respx."""
    account = marketo_account(secret_file, base_url=f"{HOST}/rest", push_program=PROGRAM)
    client = account_http(account, Wiring(clock=clock, sink=recorder))
    yield MarketoSource(account, settings("leads"), client)
    await client.aclose()


def token_route() -> respx.Route:
    """Identity answering authentication.md's example; the usage report, usage.md's."""
    respx.get(USAGE).mock(return_value=answer(fixture("daily-usage.json")))
    return respx.get(TOKEN_URL).mock(return_value=answer(fixture("identity.json")))


# --- config and wiring ----------------------------------------------------------------------------


def test_a_pasted_rest_suffix_is_dropped_and_identity_defaults_beside_it(secret_file: Path) -> None:
    """The admin page's Endpoint ends in /rest; the adapter adds /rest/v1 itself."""
    account = marketo_account(secret_file, base_url=f"{HOST}/rest/")
    assert (account.base_url, account.identity_url) == (HOST, f"{HOST}/identity")
    assert account.daily_limit == 50_000
    explicit = marketo_account(secret_file, identity_url="https://id.example/identity")
    assert explicit.identity_url == "https://id.example/identity"


def test_push_without_a_program_and_unknown_methods_are_refused(
    secret_file: Path, http: AccountHttp
) -> None:
    """Push Lead requires ``programName``; an unknown method is not guessed at."""
    with pytest.raises(ConfigError, match="push_program"):
        MarketoSource(marketo_account(secret_file), settings("push"), http)
    with pytest.raises(ConfigError, match="not a Marketo method"):
        MarketoSource(marketo_account(secret_file), settings("form"), http)


def test_account_http_wires_vendor_rate_concurrency_and_no_quota_headers(
    account: MarketoAccount, clock: VirtualClock, recorder: Recorder
) -> None:
    """100 calls per 20 s, 10 concurrent, the ``daily`` window; headers carry no quota."""
    http = account_http(account, Wiring(clock=clock, sink=recorder))
    assert (http.vendor, http.account, http.daily_window) == ("marketo", "marketo-test", "daily")
    assert http.classify is classify
    assert http.rates == {"default": Rate(100, 20.0)}
    assert http.max_concurrent == MAX_CONCURRENT == 10
    assert http.quota(httpx.Headers({"x-anything": "1"})) == []
    assert str(http.client.base_url) == "http://sandbox.test/marketo/"


def test_the_adapter_is_a_source(leads: MarketoSource) -> None:
    """MarketoSource fulfils the Source protocol the probing engine calls."""
    assert isinstance(leads, Source)


# --- inject ---------------------------------------------------------------------------------------


async def test_inject_by_sync_leads_creates_only_and_keeps_the_lead_id(
    leads: MarketoSource,
    sandbox: Starlette,
    clock: VirtualClock,
    recorder: Recorder,
    recording: Recording,
) -> None:
    """createOnly keyed on email, Bearer auth, the lead id as source ref, the call recorded."""
    injection = await drive(clock, leads.inject(make_probe()))
    (lead,) = sandbox.state.world.marketo_leads.values()
    assert injection.source_ref == str(lead.id)
    assert injection.accepted_at == clock.now()
    assert lead.fields == {**FIELDS, "email": make_probe().email}
    (sent,) = recording.to("/rest/v1/leads.json")
    assert json.loads(sent.request.content) == {
        "action": "createOnly",
        "lookupField": "email",
        "input": [{**FIELDS, "email": make_probe().email}],
    }
    assert sent.request.headers["authorization"].startswith("Bearer ")
    assert "access_token" not in sent.request.url.params
    assert recorder.operations == ["request_token", "sync_lead", "daily_usage"]
    call = recorder.calls[1]
    assert (call.vendor, call.account, call.status, call.error_class) == (
        "marketo",
        "marketo-test",
        200,
        None,
    )
    assert (call.integration, call.probe_id) == ("mk-sf", "abc123")


async def test_inject_by_push_names_the_program_and_tags_the_source(
    push: MarketoSource, sandbox: Starlette, clock: VirtualClock, recording: Recording
) -> None:
    """Push Lead: ``programName`` (required), ``source``, lookup on email; the lead id back."""
    injection = await drive(clock, push.inject(make_probe()))
    (lead,) = sandbox.state.world.marketo_leads.values()
    assert (injection.source_ref, lead.origin) == (str(lead.id), "push")
    (sent,) = recording.to("/rest/v1/leads/push.json")
    assert json.loads(sent.request.content) == {
        "programName": PROGRAM,
        "source": "syncwatch",
        "lookupField": "email",
        "input": [{**FIELDS, "email": make_probe().email}],
    }


async def test_the_token_is_reused_until_expires_in_has_passed(
    leads: MarketoSource, clock: VirtualClock, recorder: Recorder, recording: Recording
) -> None:
    """One Identity call an hour: the token is kept for its documented lifespan, then renewed."""
    for n in range(3):
        await drive(clock, leads.inject(make_probe(f"reuse{n}")))
        await clock.advance(600)
    assert recorder.operations.count("request_token") == 1
    await clock.advance(3600)
    await drive(clock, leads.inject(make_probe("reuse9")))
    assert recorder.operations.count("request_token") == 2
    auth = {e.request.headers["authorization"] for e in recording.to("/rest/v1/leads.json")}
    assert len(auth) == 2, "the renewed token differs from the expired one"


async def test_a_602_earns_one_new_token_and_the_create_is_resent(
    leads: MarketoSource,
    sandbox: Starlette,
    clock: VirtualClock,
    recorder: Recorder,
    control: httpx.AsyncClient,
) -> None:
    """A revoked token (602) is renewed once; 6xx means "not executed", so the create is resent."""
    await drive(clock, leads.inject(make_probe("first")))
    await clock.advance(1)  # the fault revokes tokens issued before it began
    await control.post("/_sandbox/faults", json={"kind": "token_expiry", "vendor": "marketo"})
    await clock.advance(1)
    injection = await drive(clock, leads.inject(make_probe("second")))
    tail = [(c.operation, c.error_class) for c in recorder.calls[3:]]
    assert tail == [("sync_lead", "auth"), ("request_token", None), ("sync_lead", None)]
    world = sandbox.state.world
    assert [str(lead.id) for lead in world.marketo_leads_by_email(make_probe("second").email)] == [
        injection.source_ref
    ]


async def test_601_again_after_the_renewal_is_auth(
    real: MarketoSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """A token refused even when fresh is the customer's problem: one renewal, then ``auth``."""
    with respx.mock:
        tokens = token_route()
        respx.post(LEADS).mock(return_value=answer(fixture("response-level-errors.json")["601"]))
        caught = await failure(clock, real.inject(make_probe()))
    assert isinstance(caught, AuthError)
    assert caught.error_class == "auth"
    assert tokens.call_count == 2
    assert recorder.operations == ["request_token", "sync_lead", "request_token", "sync_lead"]


# --- usage ----------------------------------------------------------------------------------------


async def test_usage_is_read_at_most_every_15_minutes_as_the_daily_window(
    leads: MarketoSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """No quota headers: the usage report, piggybacked on injections, is the daily figure."""
    await drive(clock, leads.inject(make_probe("u1")))
    await clock.advance(60)
    await drive(clock, leads.inject(make_probe("u2")))
    await clock.advance(15 * 60)
    await drive(clock, leads.inject(make_probe("u3")))
    usage = [c for c in recorder.calls if c.operation == "daily_usage"]
    assert len(usage) == 2
    assert [(c.quota_used, c.quota_limit, c.quota_window) for c in usage] == [
        (2, 50_000, "daily"),  # the create and the usage call itself; Identity is not counted
        (5, 50_000, "daily"),
    ]
    assert all(c.quota_used is None for c in recorder.calls if c.operation != "daily_usage")
    assert (usage[0].integration, usage[0].probe_id) == ("mk-sf", None)


async def test_the_documented_usage_body_is_the_days_total_of_the_configured_limit(
    secret_file: Path, clock: VirtualClock, recorder: Recorder
) -> None:
    """usage.md's example (total 1120) against a 20,000-call subscription."""
    account = marketo_account(secret_file, base_url=HOST, daily_limit=20_000)
    http = account_http(account, Wiring(clock=clock, sink=recorder))
    with respx.mock:
        token_route()
        respx.post(LEADS).mock(return_value=answer(fixture("sync-leads-created.json")))
        injection = await drive(
            clock, MarketoSource(account, settings("leads"), http).inject(make_probe())
        )
    await http.aclose()
    assert injection.source_ref == "50"
    usage = recorder.calls[-1]
    assert (usage.quota_used, usage.quota_limit, usage.quota_window) == (1120, 20_000, "daily")


async def test_a_failed_usage_read_costs_the_figure_not_the_probe(
    real: MarketoSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """A usage read refused (606, three attempts 20 s apart) is logged; the injection stands."""
    with respx.mock, capture_logs() as logs:
        token_route()
        respx.post(LEADS).mock(return_value=answer(fixture("sync-leads-created.json")))
        respx.get(USAGE).mock(return_value=answer(fixture("response-level-errors.json")["606"]))
        injection = await drive(clock, real.inject(make_probe()))
    assert injection.source_ref == "50"
    assert [c.error_class for c in recorder.calls if c.operation == "daily_usage"] == [
        "rate_limited"
    ] * 3
    assert [e["event"] for e in logs] == ["marketo usage not read"]


# --- delete and sweep -----------------------------------------------------------------------------


async def test_delete_by_id_is_one_call_and_by_email_a_lookup_first(
    leads: MarketoSource, sandbox: Starlette, clock: VirtualClock, recorder: Recorder
) -> None:
    """Ids go straight to Delete Leads; an email-only ref is looked up by ``filterType=email``."""
    one = await drive(clock, leads.inject(make_probe("del1")))
    await drive(clock, leads.inject(make_probe("del2")))
    recorder.calls.clear()
    refs = [
        SourceRef("del1", make_probe("del1").email, one.source_ref),
        SourceRef("del2", make_probe("del2").email),
    ]
    await drive(clock, leads.delete(refs))
    assert recorder.operations == ["find_leads", "delete_leads"]
    assert not sandbox.state.world.marketo_leads
    await drive(clock, leads.delete(refs[:1]))  # gone already: 1004, not an error
    assert [c.error_class for c in recorder.calls] == [None, None, None]


async def test_deletes_go_300_ids_a_call_and_lookups_stay_under_8_kb(
    real: MarketoSource, clock: VirtualClock
) -> None:
    """Delete Leads takes at most 300 ids; a lookup's URI must stay under 8 KB (414 beyond)."""
    ids = [SourceRef(f"p{n}", probe_email(f"p{n:016d}", DOMAIN), str(n + 1)) for n in range(301)]
    emails = [SourceRef(f"q{n}", probe_email(f"q{n:016d}", DOMAIN)) for n in range(400)]
    with respx.mock:
        token_route()
        deletes = respx.post(DELETE).mock(return_value=answer(fixture("delete-leads.json")))
        lookups = respx.get(LEADS).mock(return_value=answer(fixture("leads-by-filter-empty.json")))
        await drive(clock, real.delete(ids))
        await drive(clock, real.delete(emails))
    sizes = [len(json.loads(c.request.content)["input"]) for c in deletes.calls]
    assert sizes == [300, 1]
    urls = [str(call.request.url) for call in lookups.calls]
    assert all(len(url) < 8 * 1024 for url in urls)
    values = [v for c in lookups.calls for v in c.request.url.params["filterValues"].split(",")]
    assert sorted(values) == sorted(ref.email for ref in emails)
    assert {c.request.url.params["filterType"] for c in lookups.calls} == {"email"}


async def test_other_delete_refusals_raise_after_every_batch_was_tried(
    real: MarketoSource, clock: VirtualClock
) -> None:
    """A lead already gone (1004) is fine; another reason (1008) is raised once all batches ran."""
    gone = {
        "id": 2,
        "status": "skipped",
        "reasons": [{"code": "1004", "message": "Lead not found"}],
    }
    denied = {
        "id": 3,
        "status": "skipped",
        "reasons": [{"code": "1008", "message": "Access denied"}],
    }
    body = {
        "requestId": "a#1",
        "success": True,
        "result": [{"id": 1, "status": "deleted"}, gone, denied],
    }
    refs = [SourceRef(f"p{n}", probe_email(f"p{n}", DOMAIN), str(n)) for n in range(1, 302)]
    with respx.mock:
        token_route()
        deletes = respx.post(DELETE).mock(return_value=answer(body))
        caught = await failure(clock, real.delete(refs))
    assert deletes.call_count == 2
    assert isinstance(caught, ValidationRejected)
    assert "2 of 301 leads not deleted" in str(caught) and "1008" in str(caught)


async def test_sweep_finds_only_probe_emails_this_process_injected_before_the_cutoff(
    leads: MarketoSource, sandbox: Starlette, clock: VirtualClock, recorder: Recorder
) -> None:
    """Marketo cannot search by domain: the sweep looks up the emails it injected, by value."""
    old = await drive(clock, leads.inject(make_probe("old1")))
    cutoff = clock.now() + timedelta(seconds=30)
    await clock.advance(60)
    await drive(clock, leads.inject(make_probe("new1")))
    sandbox.state.world.new_marketo_lead({"email": make_probe("elsewhere").email}, "leads")
    refs = await drive(clock, leads.sweep(DOMAIN, cutoff))
    assert refs == [SourceRef("old1", make_probe("old1").email, old.source_ref)]
    await drive(clock, leads.delete(refs))
    recorder.calls.clear()
    assert await drive(clock, leads.sweep(DOMAIN, cutoff)) == []
    assert recorder.operations == [], "a deleted probe is not looked for again"
    assert await drive(clock, leads.sweep("other.example", clock.now())) == []


async def test_the_concurrency_bound_keeps_marketo_from_answering_615(
    leads: MarketoSource,
    sandbox: Starlette,
    clock: VirtualClock,
    recorder: Recorder,
    control: httpx.AsyncClient,
) -> None:
    """Twenty slow lookups at once: at most ten are in flight, so none meets the 615 limit."""
    await drive(clock, leads.inject(make_probe("c0")))
    await control.post(
        "/_sandbox/faults", json={"kind": "slow", "vendor": "marketo", "delay": "5s"}
    )
    refs = [SourceRef(f"c{n}", probe_email(f"c{n}", DOMAIN)) for n in range(20)]
    await drive(clock, asyncio.gather(*(leads.delete([ref]) for ref in refs)))
    finds = [c for c in recorder.calls if c.operation == "find_leads"]
    assert len(finds) == 20
    assert {c.error_class for c in finds} == {None}


# --- classification -------------------------------------------------------------------------------

RESPONSE_LEVEL = fixture("response-level-errors.json")


@pytest.mark.parametrize(
    ("code", "error", "acted"),
    [
        ("600", AuthError, True),
        ("601", AuthError, True),
        ("602", AuthError, True),
        ("603", AuthError, True),
        ("604", VendorUnavailable, False),
        ("608", VendorUnavailable, False),
        ("611", VendorUnavailable, False),
        ("614", VendorUnavailable, False),
        ("713", VendorUnavailable, True),
        ("606", RateLimited, False),
        ("615", RateLimited, False),
        ("607", QuotaExhausted, False),
        ("605", ValidationRejected, True),
        ("609", ValidationRejected, True),
        ("610", ValidationRejected, True),
        ("612", ValidationRejected, True),
        ("701", ValidationRejected, True),
        ("702", ValidationRejected, True),
        ("1003", ValidationRejected, True),
    ],
)
def test_response_level_codes_are_classified_from_the_documented_bodies(
    code: str, error: type[VendorError], acted: bool
) -> None:
    """HTTP 200 with ``success: false``: the quoted code decides the DESIGN §6 class."""
    result = classify(answer(RESPONSE_LEVEL[code]))
    assert type(result) is error or (error is AuthError and isinstance(result, AuthError))
    assert result is not None
    assert result.may_have_acted is acted
    assert code in str(result) and RESPONSE_LEVEL[code]["errors"][0]["message"] in str(result)


def test_the_classes_carry_design_error_classes_and_606_waits_out_the_window() -> None:
    """601/602 are ``auth`` once renewal failed; 606 waits 20 s; 607 is never worth a retry."""
    classes = {c: classify(answer(RESPONSE_LEVEL[c])) for c in ("601", "604", "606", "607", "615")}
    assert {c: e.error_class for c, e in classes.items() if e} == {
        "601": "auth",
        "604": "vendor_5xx",
        "606": "rate_limited",
        "607": "quota_exhausted",
        "615": "rate_limited",
    }
    limited = classes["606"]
    assert isinstance(limited, RateLimited) and limited.retry_after_s == 20.0


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (answer(fixture("sync-leads-created.json")), None),
        (answer(fixture("record-level-errors.json")["1005"]), None),  # record level: the parser's
        (httpx.Response(200, text="<html>oops</html>"), None),  # the parser's: malformed
        (httpx.Response(401, json={"error": "unauthorized"}), AuthError),  # Identity
        (httpx.Response(413, text="Request Entity Too Large"), ValidationRejected),
        (httpx.Response(414, text="Request-URI Too Long"), ValidationRejected),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), VendorUnavailable),
        (httpx.Response(301, headers={"location": "https://x.example/"}), MalformedResponse),
    ],
)
def test_http_level_answers_are_classified_by_status(
    response: httpx.Response, error: type[VendorError] | None
) -> None:
    """Only 413/414 (and Identity's 401) are documented HTTP errors; 5xx and 3xx are still read."""
    result = classify(response)
    assert (type(result) if result else None) is error


@pytest.mark.parametrize(
    ("code", "error", "error_class"),
    [
        ("1001", ValidationRejected, "validation"),
        ("1002", ValidationRejected, "validation"),
        ("1003", ValidationRejected, "validation"),
        ("1004", ValidationRejected, "validation"),
        ("1005", DuplicateRejected, "duplicate"),
        ("1006", ValidationRejected, "validation"),
        ("1007", DuplicateRejected, "duplicate"),
        ("1008", ValidationRejected, "validation"),
        ("1011", ValidationRejected, "validation"),
    ],
)
async def test_record_level_skips_are_classified_and_recorded(
    real: MarketoSource,
    clock: VirtualClock,
    recorder: Recorder,
    code: str,
    error: type[VendorError],
    error_class: str,
) -> None:
    """``status: skipped`` with a 1xxx reason: 1005/1007 are ``duplicate``, the rest validation."""
    with respx.mock:
        token_route()
        route = respx.post(LEADS).mock(
            return_value=answer(fixture("record-level-errors.json")[code])
        )
        caught = await failure(clock, real.inject(make_probe()))
    assert type(caught) is error
    assert route.call_count == 1, "a refused record is never resent"
    assert recorder.calls[-1].error_class == error_class
    assert code in str(caught)


async def test_a_6xx_outage_resends_the_create_but_713_does_not(
    real: MarketoSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """608 means "not executed": retried even for a create. 713 is not documented so: no resend."""
    created = answer(fixture("sync-leads-created.json"))
    with respx.mock:
        token_route()
        route = respx.post(LEADS).mock(side_effect=[answer(RESPONSE_LEVEL["608"]), created])
        assert (await drive(clock, real.inject(make_probe("ok1")))).source_ref == "50"
        assert route.call_count == 2
        route.side_effect = [answer(RESPONSE_LEVEL["713"]), created]
        caught = await failure(clock, real.inject(make_probe("no2")))
    assert isinstance(caught, VendorUnavailable) and caught.error_class == "vendor_5xx"
    assert route.call_count == 3


async def test_606_is_retried_after_the_20_second_window_on_the_virtual_clock(
    real: MarketoSource, clock: VirtualClock
) -> None:
    """More than 100 calls in 20 s: the retry waits the window out, in virtual time."""
    with respx.mock:
        token_route()
        respx.post(LEADS).mock(
            side_effect=[answer(RESPONSE_LEVEL["606"]), answer(fixture("sync-leads-created.json"))]
        )
        start = clock.monotonic()
        await drive(clock, real.inject(make_probe()))
    assert clock.monotonic() - start >= 20.0


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            200, text="<html>502 Bad Gateway</html>", headers={"content-type": "text/html"}
        ),
        httpx.Response(
            200, content=b'{"success": true, "resu', headers={"content-type": "application/json"}
        ),
        answer({"requestId": "a#1", "success": True}),
        answer({"requestId": "a#1", "success": True, "result": []}),
        answer({"requestId": "a#1", "success": True, "result": [{"status": "created"}]}),
        answer(["not", "an", "object"]),
    ],
)
async def test_a_create_answer_of_the_wrong_shape_is_malformed(
    real: MarketoSource, clock: VirtualClock, recorder: Recorder, response: httpx.Response
) -> None:
    """A 200 that is HTML, cut off, or lacks the lead's id and reason is ``malformed``."""
    with respx.mock:
        token_route()
        respx.post(LEADS).mock(return_value=response)
        caught = await failure(clock, real.inject(make_probe()))
    assert isinstance(caught, MalformedResponse)
    assert recorder.calls[-1].error_class == "malformed"


async def test_documented_lookup_and_delete_bodies_parse(
    real: MarketoSource, clock: VirtualClock
) -> None:
    """leads.md's filter and delete examples read as leads found and deleted."""
    with respx.mock:
        token_route()
        lookup = respx.get(LEADS).mock(return_value=answer(fixture("leads-by-filter.json")))
        delete = respx.post(DELETE).mock(return_value=answer(fixture("delete-leads.json")))
        await drive(
            clock, real.delete([SourceRef("x", "abe@usa.gov"), SourceRef("y", "george@usa.gov")])
        )
    assert lookup.calls.last.request.url.params["fields"] == "id,email,createdAt"
    assert json.loads(delete.calls.last.request.content) == {
        "input": [{"id": 318581}, {"id": 318592}]
    }


async def test_a_malformed_identity_answer_and_a_401_are_told_apart(
    real: MarketoSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """Identity's 401 (bad id or secret) is ``auth``; a body without a token, ``malformed``."""
    with respx.mock:
        respx.get(TOKEN_URL).mock(return_value=httpx.Response(401, json={"error": "unauthorized"}))
        refused = await failure(clock, real.inject(make_probe()))
    with respx.mock:
        respx.get(TOKEN_URL).mock(return_value=answer({"token_type": "bearer", "expires_in": 1}))
        garbled = await failure(clock, real.inject(make_probe()))
    assert (refused.error_class, garbled.error_class) == ("auth", "malformed")


# --- the secret -----------------------------------------------------------------------------------


async def test_the_secret_never_reaches_calls_errors_logs_or_reprs(
    leads: MarketoSource,
    http: AccountHttp,
    clock: VirtualClock,
    recorder: Recorder,
    recording: Recording,
    control: httpx.AsyncClient,
    secret_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The secret goes to Identity's query string (as documented) and nowhere we keep or print."""
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        injection = await drive(clock, leads.inject(make_probe("sec1")))
        await drive(clock, leads.sweep(DOMAIN, clock.now() + timedelta(seconds=1)))
        await drive(
            clock, leads.delete([SourceRef("sec1", make_probe().email, injection.source_ref)])
        )
        await control.post("/_sandbox/faults", json={"kind": "outage", "vendor": "marketo"})
        await clock.advance(15 * 60)
        outage = await failure(clock, leads.inject(make_probe("sec2")))
        wrong = secret_file.parent / "wrong"
        wrong.write_text("not-the-secret-at-all", encoding="utf-8")
        other = account_http(
            marketo_account(wrong), Wiring(clock=clock, sink=recorder, transport=recording)
        )
        await control.delete("/_sandbox/faults")
        refused = await failure(
            clock,
            MarketoSource(marketo_account(wrong), settings("leads"), other).inject(
                make_probe("sec3")
            ),
        )
        await other.aclose()
    token_call = recording.to("/identity/oauth/token")[0]
    assert token_call.request.url.params["client_secret"] == SECRET  # it was sent, as documented
    assert isinstance(refused, AuthError) and outage.error_class == "vendor_5xx"
    seen = [repr(recorder.calls), repr(recorder.windows), repr(logs), caplog.text]
    seen += [str(e) + repr(e) + repr(e.args) for e in (outage, refused)]
    seen += [repr(leads), repr(leads.auth), repr(http)]
    assert caplog.records, "httpx logged the requests (through the redactor)"
    assert not [text for text in seen if SECRET in text or "not-the-secret-at-all" in text]
