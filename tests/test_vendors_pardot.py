"""The Account Engagement (Pardot) source against the in-process sandbox and documented payloads.

The respx tests feed the adapter the bodies Salesforce documents (tests/fixtures/pardot): the v5
error body ``{"code", "message"}`` with the error-codes page's messages, the v5 query answer
(``values``, ``nextPageToken``), and the Salesforce OAuth token answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from marketo_support import Recorder, Recording, drive, failure
from pardot_support import (
    BUSINESS_UNIT,
    CLIENT_ID,
    DOMAIN,
    HANDLER_PATH,
    SECRET,
    error_body,
    error_status,
    fixture,
    pardot_account,
)
from pydantic import ValidationError
from sandbox_support import app_client
from starlette.applications import Starlette
from structlog.testing import capture_logs

from syncwatch.clock import VirtualClock
from syncwatch.config.accounts import JwtBearer, PardotAccount
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
from syncwatch.quota import parse_pardot_usage
from syncwatch.sandbox.scenario import SalesforceSpec, Scenario
from syncwatch.vendors.base import Probe, Source, SourceRef, Wiring, probe_email
from syncwatch.vendors.pardot import (
    MAX_CONCURRENT,
    PardotSource,
    TokenRefused,
    account_http,
    classify,
    classify_form_handler,
)

FIELDS = {"firstName": "Sync", "last_name": "Probe", "company": "syncwatch"}
HOST = "https://pi.pardot.com"
AUTH = "https://acme.my.salesforce.com"
TOKEN_URL = f"{AUTH}/services/oauth2/token"
UPSERT = f"{HOST}/api/v5/objects/prospects/do/upsertLatestByEmail"
PROSPECTS = f"{HOST}/api/v5/objects/prospects"
HANDLER = f"https://go.pardot.com/{HANDLER_PATH}"
SANDBOX_HANDLER = f"http://sandbox.test/pardot/{HANDLER_PATH}"


def make_probe(probe_id: str = "abc123") -> Probe:
    return Probe(probe_id, probe_email(probe_id, DOMAIN), "pa-sf", FIELDS)


def settings(method: str, url: str | None = None) -> SourceSettings:
    return SourceSettings(account="pardot-test", method=method, form_handler_url=url)


def answer(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def coded(code: int) -> httpx.Response:
    return answer(error_body(code), error_status(code))


@pytest.fixture
def scenario() -> Scenario:
    """The org accepts only our connected app, so every token proves the secret was sent."""
    return Scenario(seed=7, salesforce=SalesforceSpec(client_id=CLIENT_ID, client_secret=SECRET))


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "pardot-secret"
    path.write_text(SECRET + "\n", encoding="utf-8")
    return path


@pytest.fixture
def account(secret_file: Path) -> PardotAccount:
    return pardot_account(secret_file)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def recording(sandbox: Starlette) -> Recording:
    return Recording(sandbox)


@pytest.fixture
async def http(
    account: PardotAccount, clock: VirtualClock, recorder: Recorder, recording: Recording
) -> AsyncIterator[AccountHttp]:
    client = account_http(account, Wiring(clock=clock, sink=recorder, transport=recording))
    yield client
    await client.aclose()


@pytest.fixture
def api(account: PardotAccount, http: AccountHttp) -> PardotSource:
    return PardotSource(account, settings("api"), http)


@pytest.fixture
def form(account: PardotAccount, http: AccountHttp) -> PardotSource:
    return PardotSource(account, settings("form_handler", SANDBOX_HANDLER), http)


@pytest.fixture
async def control(sandbox: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(sandbox) as client:
        yield client


@pytest.fixture
async def real(
    secret_file: Path, clock: VirtualClock, recorder: Recorder
) -> AsyncIterator[PardotSource]:
    """The adapter pointed at the real hosts, for respx."""
    account = pardot_account(secret_file, base_url=HOST, auth_url=AUTH)
    client = account_http(account, Wiring(clock=clock, sink=recorder))
    yield PardotSource(account, settings("api"), client)
    await client.aclose()


def token_route() -> respx.Route:
    return respx.post(TOKEN_URL).mock(return_value=answer(fixture("token.json")))


# --- config and wiring ----------------------------------------------------------------------------


def test_the_account_defaults_to_pi_pardot_com_and_checks_the_business_unit(
    secret_file: Path,
) -> None:
    """``base_url`` defaults to the production API host; a business unit id is 0Uv + 15."""
    account = pardot_account(secret_file, base_url=HOST, auth_url=AUTH)
    assert (account.base_url, account.daily_limit) == (HOST, 25_000)
    demo = pardot_account(secret_file, base_url="https://pi.demo.pardot.com/")
    assert demo.base_url == "https://pi.demo.pardot.com"
    for bad in ("0Uv5e0000000SWAAA", "00D5e0000000SWAAA2", "0Uv5e0000000SW-AA2"):
        with pytest.raises(ValidationError, match="0Uv5e0000000SWAAA2"):
            pardot_account(secret_file, business_unit_id=bad)
    raw = {"name": "p", "vendor": "pardot", "auth_url": AUTH, "business_unit_id": BUSINESS_UNIT}
    jwt = {"flow": "jwt_bearer", "client_id": "c", "username": "u", "private_key": {"env": "K"}}
    with_jwt = PardotAccount.model_validate({**raw, "auth": jwt})
    assert with_jwt.base_url == HOST
    assert isinstance(with_jwt.auth, JwtBearer) and with_jwt.auth.audience == AUTH


def test_unknown_methods_and_a_form_handler_without_url_are_refused(
    account: PardotAccount, http: AccountHttp
) -> None:
    """Only ``api`` and ``form_handler``; the handler method needs the handler's URL."""
    with pytest.raises(ConfigError, match="not a Pardot method"):
        PardotSource(account, settings("leads"), http)
    with pytest.raises(ConfigError, match="form_handler_url"):
        PardotSource(account, settings("form_handler"), http)


def test_account_http_wires_five_in_flight_and_the_usage_header(
    account: PardotAccount, clock: VirtualClock, recorder: Recorder
) -> None:
    """Five concurrent calls (documented), the ``daily`` window read from ``x-api-usage``."""
    http = account_http(account, Wiring(clock=clock, sink=recorder))
    assert (http.vendor, http.account, http.daily_window) == ("pardot", "pardot-test", "daily")
    assert http.classify is classify
    assert http.max_concurrent == MAX_CONCURRENT == 5
    assert http.rates == {"default": Rate(10, 1.0)}
    figures = http.quota(httpx.Headers({"x-api-usage": "120"}))
    assert [(f.window, f.used, f.limit) for f in figures] == [("daily", 120, 25_000)]
    assert str(http.client.base_url) == "http://sandbox.test/pardot/"


def test_the_adapter_is_a_source(api: PardotSource) -> None:
    """PardotSource fulfils the Source protocol the probing engine calls."""
    assert isinstance(api, Source)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1234/25000", [("daily", 1234, 25_000)]),
        (" 7 / 50000 ", [("daily", 7, 50_000)]),
        ("88", [("daily", 88, 100_000)]),
        (None, []),
        ("", []),
        ("lots", []),
        ("5/0", []),
        ('{"used": 5}', []),
    ],
)
def test_the_usage_header_is_read_only_in_the_shapes_it_can_have(
    value: str | None, expected: list[tuple[str, int, int]]
) -> None:
    """``USED/MAX`` or ``USED`` (of the configured limit); anything else is no figure."""
    figures = parse_pardot_usage(value, 100_000)
    assert [(f.window, f.used, f.limit) for f in figures] == expected


# --- inject ---------------------------------------------------------------------------------------


async def test_inject_upserts_by_email_with_the_business_unit_and_keeps_the_prospect_id(
    api: PardotSource,
    sandbox: Starlette,
    clock: VirtualClock,
    recorder: Recorder,
    recording: Recording,
) -> None:
    """v5 names (``last_name`` becomes ``lastName``), Bearer and business unit, the id back."""
    injection = await drive(clock, api.inject(make_probe()))
    (prospect,) = sandbox.state.world.pardot_prospects.values()
    assert injection.source_ref == str(prospect.id)
    assert injection.accepted_at == clock.now()
    expected = {"firstName": "Sync", "lastName": "Probe", "company": "syncwatch"}
    assert prospect.fields == {**expected, "email": make_probe().email}
    (sent,) = recording.to("/do/upsertLatestByEmail")
    assert json.loads(sent.request.content) == {
        "matchEmail": make_probe().email,
        "prospect": {**expected, "email": make_probe().email},
        "fields": ["id", "email", "createdAt"],
        "secondaryDeletedSearch": False,
    }
    assert sent.request.headers["pardot-business-unit-id"] == BUSINESS_UNIT
    assert sent.request.headers["authorization"].startswith("Bearer 00D")
    assert sent.request.headers["x-return-api-usage"] == "1"
    assert recorder.operations == ["request_token", "upsert_prospect"]
    call = recorder.calls[1]
    assert (call.vendor, call.status, call.error_class, call.probe_id) == (
        "pardot",
        201,
        None,
        "abc123",
    )
    assert (call.quota_used, call.quota_limit, call.quota_window) == (1, 25_000, "daily")


async def test_one_salesforce_token_serves_every_call_until_refused(
    api: PardotSource,
    sandbox: Starlette,
    clock: VirtualClock,
    recorder: Recorder,
    control: httpx.AsyncClient,
) -> None:
    """The token is reused; a revoked one (184) earns one new token, and the upsert is resent."""
    for n in range(3):
        await drive(clock, api.inject(make_probe(f"reuse{n}")))
    assert recorder.operations.count("request_token") == 1
    await clock.advance(1)
    await control.post("/_sandbox/faults", json={"kind": "token_expiry", "vendor": "pardot"})
    await clock.advance(1)
    injection = await drive(clock, api.inject(make_probe("after")))
    tail = [(c.operation, c.status, c.error_class) for c in recorder.calls[4:]]
    assert tail == [
        ("upsert_prospect", 401, "auth"),
        ("request_token", 200, None),
        ("upsert_prospect", 201, None),
    ]
    (prospect,) = sandbox.state.world.pardot_prospects_by_email(make_probe("after").email)
    assert injection.source_ref == str(prospect.id)


async def test_184_again_after_the_renewal_is_auth(
    real: PardotSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """A token refused even when fresh is the customer's: one renewal, then ``auth``."""
    with respx.mock:
        tokens = token_route()
        respx.post(UPSERT).mock(return_value=coded(184))
        caught = await failure(clock, real.inject(make_probe()))
    assert isinstance(caught, AuthError) and caught.error_class == "auth"
    assert tokens.call_count == 2
    assert recorder.operations == [
        "request_token",
        "upsert_prospect",
        "request_token",
        "upsert_prospect",
    ]


async def test_the_documented_upsert_answer_and_token_body_parse(
    real: PardotSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """The token endpoint's body and a v5 upsert answer: the id is the ref, usage recorded."""
    upserted = httpx.Response(
        201, json=fixture("upsert-prospect.json"), headers={"x-api-usage": "1120/50000"}
    )
    with respx.mock:
        token_route()
        route = respx.post(UPSERT).mock(return_value=upserted)
        injection = await drive(clock, real.inject(make_probe()))
    assert injection.source_ref == "43108001"
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {fixture('token.json')['access_token']}"
    assert request.headers["pardot-business-unit-id"] == BUSINESS_UNIT
    usage = recorder.calls[-1]
    assert (usage.quota_used, usage.quota_limit) == (1120, 50_000)


async def test_the_form_handler_post_is_urlencoded_and_carries_no_credentials(
    form: PardotSource, sandbox: Starlette, clock: VirtualClock, recording: Recording
) -> None:
    """The handler's success redirect is acceptance; no id, no token, no business unit sent."""
    injection = await drive(clock, form.inject(make_probe()))
    assert (injection.source_ref, injection.accepted_at) == (None, clock.now())
    (sent,) = recording.to("/syncwatch")
    assert sent.status == 302
    assert sent.request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(sent.request.content.decode()) == {
        "firstName": ["Sync"],
        "last_name": ["Probe"],
        "company": ["syncwatch"],
        "email": [make_probe().email],
    }
    assert "authorization" not in sent.request.headers
    assert "pardot-business-unit-id" not in sent.request.headers
    (prospect,) = sandbox.state.world.pardot_prospects.values()
    assert (prospect.origin, prospect.email) == ("form_handler", make_probe().email)


async def test_a_form_handler_error_redirect_is_validation_and_never_resent(
    form: PardotSource, clock: VirtualClock, recorder: Recorder, control: httpx.AsyncClient
) -> None:
    """The error location (``errors=true``) means the handler refused the submission."""
    await control.post(
        "/_sandbox/faults", json={"kind": "validation", "vendor": "pardot", "field": "phone"}
    )
    caught = await failure(clock, form.inject(make_probe()))
    assert isinstance(caught, ValidationRejected)
    assert "phone is required" in str(caught)
    assert [(c.operation, c.status, c.error_class) for c in recorder.calls] == [
        ("submit_form_handler", 302, "validation")
    ]


async def test_a_form_handler_page_instead_of_a_redirect_is_malformed(
    form: PardotSource, clock: VirtualClock, recorder: Recorder, control: httpx.AsyncClient
) -> None:
    """The handler's outcome is only a redirect: a 200 page is not the documented answer."""
    await control.post("/_sandbox/faults", json={"kind": "malformed", "vendor": "pardot"})
    caught = await failure(clock, form.inject(make_probe()))
    assert isinstance(caught, MalformedResponse)
    assert recorder.calls[-1].error_class == "malformed"


# --- delete and sweep -----------------------------------------------------------------------------


async def test_delete_by_id_is_one_call_and_by_email_a_query_first(
    api: PardotSource, sandbox: Starlette, clock: VirtualClock, recorder: Recorder
) -> None:
    """Ids go straight to DELETE; an email-only ref is found by querying by email."""
    one = await drive(clock, api.inject(make_probe("del1")))
    await drive(clock, api.inject(make_probe("del2")))
    recorder.calls.clear()
    refs = [
        SourceRef("del1", make_probe("del1").email, one.source_ref),
        SourceRef("del2", make_probe("del2").email),
    ]
    await drive(clock, api.delete(refs))
    assert recorder.operations == ["query_prospects", "delete_prospect", "delete_prospect"]
    world = sandbox.state.world
    assert all(p.deleted_at is not None for p in world.pardot_prospects.values())
    await drive(clock, api.delete(refs[:1]))  # gone already: 404 192, not an error
    assert [c.status for c in recorder.calls[-1:]] == [404]
    assert [c.error_class for c in recorder.calls] == [None] * 4


async def test_queries_follow_the_page_token_with_only_fields_beside_it(
    real: PardotSource, clock: VirtualClock
) -> None:
    """The documented query answer pages by ``nextPageToken``, sent alone with ``fields``."""
    with respx.mock:
        token_route()
        query = respx.get(PROSPECTS).mock(
            side_effect=[
                answer(fixture("prospects-page-1.json")),
                answer(fixture("prospects-by-email.json")),
            ]
        )
        deletes = respx.delete(f"{PROSPECTS}/43108001").mock(return_value=httpx.Response(204))
        await drive(clock, real.delete([SourceRef("abc123", make_probe().email)]))
    first, second = (dict(call.request.url.params) for call in query.calls)
    assert first == {"fields": "id,email,createdAt", "email": make_probe().email}
    assert second == {"fields": "id,email,createdAt", "nextPageToken": "c3luY3dhdGNoLXBhZ2UtMg"}
    assert deletes.call_count == 1, "the same prospect on two pages is deleted once"


async def test_other_delete_refusals_raise_after_every_delete_was_tried(
    real: PardotSource, clock: VirtualClock
) -> None:
    """Gone (192) is fine; a refusal (46) is raised once every id has been tried."""
    refs = [SourceRef(f"p{n}", probe_email(f"p{n}", DOMAIN), str(n)) for n in (1, 2, 3)]
    with respx.mock:
        token_route()
        gone = respx.delete(f"{PROSPECTS}/1").mock(return_value=coded(192))
        denied = respx.delete(f"{PROSPECTS}/2").mock(return_value=coded(46))
        done = respx.delete(f"{PROSPECTS}/3").mock(return_value=httpx.Response(204))
        caught = await failure(clock, real.delete(refs))
    assert (gone.call_count, denied.call_count, done.call_count) == (1, 1, 1)
    assert isinstance(caught, AuthError) and caught.status == 400
    assert "1 of 3 prospects not deleted" in str(caught) and "46" in str(caught)


async def test_sweep_finds_only_probe_emails_this_process_injected_before_the_cutoff(
    api: PardotSource, sandbox: Starlette, clock: VirtualClock, recorder: Recorder
) -> None:
    """v5 cannot query by domain: the sweep looks up the emails it injected, one by one."""
    old = await drive(clock, api.inject(make_probe("old1")))
    cutoff = clock.now() + timedelta(seconds=30)
    await clock.advance(60)
    await drive(clock, api.inject(make_probe("new1")))
    sandbox.state.world.new_pardot_prospect({"email": make_probe("elsewhere").email}, "api")
    refs = await drive(clock, api.sweep(DOMAIN, cutoff))
    assert refs == [SourceRef("old1", make_probe("old1").email, old.source_ref)]
    await drive(clock, api.delete(refs))
    recorder.calls.clear()
    assert await drive(clock, api.sweep(DOMAIN, cutoff)) == []
    assert recorder.operations == [], "a deleted probe is not looked for again"
    assert await drive(clock, api.sweep("other.example", clock.now())) == []


async def test_five_in_flight_keep_account_engagement_from_answering_66(
    api: PardotSource,
    clock: VirtualClock,
    recorder: Recorder,
    control: httpx.AsyncClient,
) -> None:
    """Twenty slow lookups at once: at most five are in flight, so none meets code 66."""
    await drive(clock, api.inject(make_probe("c0")))
    await control.post("/_sandbox/faults", json={"kind": "slow", "vendor": "pardot", "delay": "5s"})
    refs = [SourceRef(f"c{n}", probe_email(f"c{n}", DOMAIN)) for n in range(20)]
    await drive(clock, asyncio.gather(*(api.delete([ref]) for ref in refs)))
    queries = [c for c in recorder.calls if c.operation == "query_prospects"]
    assert len(queries) == 20
    assert {c.error_class for c in queries} == {None}


# --- classification -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error", "error_class"),
    [
        (66, RateLimited, "rate_limited"),
        (202, RateLimited, "rate_limited"),
        (122, QuotaExhausted, "quota_exhausted"),
        (184, TokenRefused, "auth"),
        (49, AuthError, "auth"),
        (46, AuthError, "auth"),
        (53, AuthError, "auth"),
        (76, AuthError, "auth"),
        (181, AuthError, "auth"),
        (182, AuthError, "auth"),
        (199, AuthError, "auth"),
        (201, AuthError, "auth"),
        (183, VendorUnavailable, "vendor_5xx"),
        (214, VendorUnavailable, "vendor_5xx"),
        (9, DuplicateRejected, "duplicate"),
        (54, DuplicateRejected, "duplicate"),
        (4, ValidationRejected, "validation"),
        (13, ValidationRejected, "validation"),
        (150, ValidationRejected, "validation"),
        (154, ValidationRejected, "validation"),
        (180, ValidationRejected, "validation"),
        (209, ValidationRejected, "validation"),
        (3, ValidationRejected, "validation"),
        (192, ValidationRejected, "validation"),
    ],
)
def test_documented_error_codes_are_classified_from_their_bodies(
    code: int, error: type[VendorError], error_class: str
) -> None:
    """The v5 body's code decides the DESIGN §6 class, whatever the HTTP status."""
    for status in {error_status(code), 400}:
        result = classify(
            coded(code) if status == error_status(code) else answer(error_body(code), 400)
        )
        assert type(result) is error, (code, status)
        assert result.error_class == error_class
        assert str(code) in str(result) and error_body(code)["message"][:20] in str(result)


def test_the_limits_carry_what_a_retry_needs() -> None:
    """66 and 202 are worth a wait (202 the minute); 122 is never worth a retry today."""
    concurrency, minute, daily = (classify(coded(code)) for code in (66, 202, 122))
    assert isinstance(concurrency, RateLimited) and concurrency.retry_after_s is None
    assert isinstance(minute, RateLimited) and minute.retry_after_s == 60.0
    assert isinstance(daily, QuotaExhausted) and daily.may_have_acted is False


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (answer(fixture("upsert-prospect.json"), 201), None),
        (httpx.Response(204), None),
        (httpx.Response(401, text=""), TokenRefused),
        (answer(fixture("oauth-invalid-client.json"), 400), AuthError),
        (httpx.Response(403, text="<html>Forbidden</html>"), AuthError),
        (httpx.Response(429, text="slow down"), RateLimited),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), VendorUnavailable),
        (httpx.Response(503, json={"code": 183, "message": "x"}), VendorUnavailable),
        (httpx.Response(404, json={"unexpected": True}), ValidationRejected),
        (httpx.Response(301, headers={"location": "https://x.example/"}), MalformedResponse),
    ],
)
def test_answers_without_a_known_code_are_classified_by_status(
    response: httpx.Response, error: type[VendorError] | None
) -> None:
    """Unknown or missing codes fall back on HTTP: 401 a refused token, 5xx the vendor's."""
    result = classify(response)
    assert (type(result) if result else None) is error


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(302, headers={"location": "https://www.example.com/thanks"}), None),
        (httpx.Response(303, headers={"location": "https://www.example.com/thanks?x=1"}), None),
        (
            httpx.Response(
                302,
                headers={"location": "https://e.example/err?errorMessage=Bad+email&errors=true"},
            ),
            ValidationRejected,
        ),
        (httpx.Response(302), MalformedResponse),
        (httpx.Response(200, text="<html>Thanks!</html>"), MalformedResponse),
        (httpx.Response(404, text="<html>Not Found</html>"), ValidationRejected),
        (httpx.Response(503, text="<html>Unavailable</html>"), VendorUnavailable),
        (httpx.Response(429, text=""), RateLimited),
    ],
)
def test_form_handler_answers_are_judged_by_their_redirect(
    response: httpx.Response, error: type[VendorError] | None
) -> None:
    """Success location: accepted; error location (``errors=true``): validation; else not the
    documented answer."""
    result = classify_form_handler(response)
    assert (type(result) if result else None) is error


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(201, text="<html>oops</html>", headers={"content-type": "text/html"}),
        httpx.Response(201, content=b'{"id": 4310', headers={"content-type": "application/json"}),
        answer({"email": "x@y.example"}, 201),
        answer({"id": "43108001"}, 201),
        answer({"id": True}, 201),
        answer(["not", "an", "object"], 201),
    ],
)
async def test_an_upsert_answer_of_the_wrong_shape_is_malformed(
    real: PardotSource, clock: VirtualClock, recorder: Recorder, response: httpx.Response
) -> None:
    """A 2xx that is HTML, cut off, or lacks an integer id is ``malformed``."""
    with respx.mock:
        token_route()
        respx.post(UPSERT).mock(return_value=response)
        caught = await failure(clock, real.inject(make_probe()))
    assert isinstance(caught, MalformedResponse)
    assert recorder.calls[-1].error_class == "malformed"


async def test_an_outage_resends_the_idempotent_upsert_and_a_refused_token_request_is_auth(
    real: PardotSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """183 is retried (an upsert by email finds the same prospect again); a refused connected
    app (``invalid_client``) is the customer's ``auth``."""
    with respx.mock:
        token_route()
        route = respx.post(UPSERT).mock(
            side_effect=[coded(183), answer(fixture("upsert-prospect.json"), 201)]
        )
        assert (await drive(clock, real.inject(make_probe()))).source_ref == "43108001"
        assert route.call_count == 2
    with respx.mock:
        respx.post(TOKEN_URL).mock(return_value=answer(fixture("oauth-invalid-client.json"), 400))
        other = PardotSource(real.account, settings("api"), real.http)
        refused = await failure(clock, other.inject(make_probe("x2")))
    assert refused.error_class == "auth"


# --- the secret -----------------------------------------------------------------------------------


async def test_secrets_never_reach_calls_errors_logs_or_reprs(
    api: PardotSource,
    form: PardotSource,
    http: AccountHttp,
    clock: VirtualClock,
    recorder: Recorder,
    recording: Recording,
    control: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client secret goes to the token endpoint and the token to the API, nowhere else."""
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        injection = await drive(clock, api.inject(make_probe("sec1")))
        await drive(clock, form.inject(make_probe("sec2")))
        await drive(clock, api.sweep(DOMAIN, clock.now() + timedelta(seconds=1)))
        await drive(
            clock, api.delete([SourceRef("sec1", make_probe("sec1").email, injection.source_ref)])
        )
        await control.post("/_sandbox/faults", json={"kind": "outage", "vendor": "pardot"})
        outage = await failure(clock, api.inject(make_probe("sec3")))
    (token_call,) = recording.to("/services/oauth2/token")
    assert parse_qs(token_call.request.content.decode())["client_secret"] == [SECRET]
    token = token_call.body["access_token"]
    assert outage.error_class == "vendor_5xx"
    seen = [repr(recorder.calls), repr(recorder.windows), repr(logs), caplog.text]
    seen += [str(outage), repr(outage), repr(api), repr(api.auth), repr(form), repr(http)]
    assert caplog.records, "httpx logged the requests (through the redactor)"
    assert not [text for text in seen if SECRET in text or token in text]
