"""The HubSpot source adapter against the in-process sandbox, and its error classification.

Vendor-shaped payloads below follow the documented bodies: the CRM ``Error`` schema and the
429 ``RATE_LIMIT`` body (developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines),
the forms error body with ``errorType`` (legacydocs.hubspot.com/docs/methods/forms/submit_form),
and the search response with ``paging.next.after`` (HubSpot-public-api-spec-collection,
``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import respx
from hubspot_support import TOKEN, add_fault, world_of
from sandbox_support import app_client
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock, settle
from syncwatch.config.accounts import HubSpotAccount
from syncwatch.config.model import Source as SourceSettings
from syncwatch.errors import (
    AuthError,
    CallTimeout,
    ConfigError,
    DuplicateRejected,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    ValidationRejected,
    VendorError,
    VendorUnavailable,
)
from syncwatch.events import ApiCall, QuotaFigure
from syncwatch.http import AccountHttp, Rate
from syncwatch.quota import parse_hubspot_headers
from syncwatch.redact import REDACTOR
from syncwatch.sandbox.scenario import DEFAULT_FORM_GUID, HubSpotSpec, Scenario
from syncwatch.vendors.base import Probe, Source, SourceRef, Wiring, probe_email
from syncwatch.vendors.hubspot import HubSpotSource, account_http, classify

T = TypeVar("T")
DOMAIN = "probe.syncwatch.example"
FIELDS = {"firstname": "Sync", "lastname": "Probe", "company": "syncwatch"}
SANDBOX_HOSTS = {
    "base_url": "http://sandbox.test/hubspot",
    "forms_url": "http://sandbox.test/hsforms",
}
REAL_HOSTS = {"base_url": "https://api.hubapi.com", "forms_url": "https://api.hsforms.com"}
SECURE_SUBMIT = (
    f"https://api.hsforms.com/submissions/v3/integration/secure/submit/20112233/{DEFAULT_FORM_GUID}"
)
CONTACTS = "https://api.hubapi.com/crm/v3/objects/contacts"


class Recorder:
    """The sink the daemon would wire: every attempted call, with its other quota windows."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self.windows: list[tuple[QuotaFigure, ...]] = []

    def __call__(self, call: ApiCall, other_windows: tuple[QuotaFigure, ...]) -> None:
        self.calls.append(call)
        self.windows.append(other_windows)

    @property
    def operations(self) -> list[str]:
        return [call.operation for call in self.calls]


class Capture(httpx.AsyncBaseTransport):
    """Passes requests to the sandbox and keeps them, so tests can read what went out."""

    def __init__(self, app: Starlette) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    def bodies(self, path_end: str) -> list[Any]:
        return [json.loads(r.content) for r in self.requests if r.url.path.endswith(path_end)]


def make_probe(probe_id: str = "abc123") -> Probe:
    return Probe(probe_id, probe_email(probe_id, DOMAIN), "hs-sf", FIELDS)


def settings(method: str) -> SourceSettings:
    guid = DEFAULT_FORM_GUID if method == "form" else None
    return SourceSettings(account="hubspot-test", method=method, form_guid=guid)


async def drive(clock: VirtualClock, work: Awaitable[T], step: float = 0.25) -> T:
    """Run ``work`` to the end, moving the virtual clock only while it waits on it."""
    task = asyncio.ensure_future(work)
    await settle()
    for _ in range(4000):
        if task.done():
            return task.result()
        await clock.advance(step)
    task.cancel()
    raise AssertionError("the work did not finish within 1000 virtual seconds")


async def failure(clock: VirtualClock, work: Awaitable[Any]) -> VendorError:
    with pytest.raises(VendorError) as caught:
        await drive(clock, work)
    return caught.value


@pytest.fixture
def scenario() -> Scenario:
    """The sandbox accepts only our private-app token, so every call proves it was sent."""
    return Scenario(seed=7, hubspot=HubSpotSpec(token=TOKEN))


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "hubspot-token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    return path


def hubspot_account(token_file: Path, hosts: dict[str, str]) -> HubSpotAccount:
    return HubSpotAccount.model_validate(
        {
            "name": "hubspot-test",
            "vendor": "hubspot",
            "portal_id": 20112233,
            "token": {"file": str(token_file)},
            **hosts,
        }
    )


@pytest.fixture
def account(token_file: Path) -> HubSpotAccount:
    return hubspot_account(token_file, SANDBOX_HOSTS)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def capture(sandbox: Starlette) -> Capture:
    return Capture(sandbox)


@pytest.fixture
async def http(
    account: HubSpotAccount, clock: VirtualClock, recorder: Recorder, capture: Capture
) -> AsyncIterator[AccountHttp]:
    client = account_http(account, Wiring(clock=clock, sink=recorder, transport=capture))
    yield client
    await client.aclose()


@pytest.fixture
def form(account: HubSpotAccount, http: AccountHttp) -> HubSpotSource:
    return HubSpotSource(account, settings("form"), http)


@pytest.fixture
def api(account: HubSpotAccount, http: AccountHttp) -> HubSpotSource:
    return HubSpotSource(account, settings("contacts_api"), http)


@pytest.fixture
async def control(sandbox: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox's own control API, for faults and state; not counted as vendor calls."""
    async with app_client(sandbox) as client:
        yield client


async def synthetic(control: httpx.AsyncClient) -> int:
    count: int = (await control.get("/_sandbox/state")).json()["hubspot"]["synthetic"]
    return count


# --- wiring -------------------------------------------------------------------------------------


def test_account_http_wires_vendor_quota_and_documented_rates(
    account: HubSpotAccount, clock: VirtualClock, recorder: Recorder
) -> None:
    """The client names vendor and account, reads HubSpot's headers, throttles as documented."""
    http = account_http(account, Wiring(clock=clock, sink=recorder))
    assert (http.vendor, http.account, http.daily_window) == ("hubspot", "hubspot-test", "daily")
    assert http.classify is classify
    assert http.quota is parse_hubspot_headers
    assert http.rates == {"default": Rate(100, 10.0), "search": Rate(4, 1.0)}
    assert str(http.client.base_url) == "http://sandbox.test/hubspot/"


def test_the_adapter_is_a_source(form: HubSpotSource) -> None:
    """HubSpotSource fulfils the Source protocol the probing engine calls."""
    assert isinstance(form, Source)


def test_form_method_without_a_guid_is_a_config_error(
    account: HubSpotAccount, http: AccountHttp
) -> None:
    """A form source needs its form guid; missing, it is refused before any call is made."""
    with pytest.raises(ConfigError, match="form_guid"):
        HubSpotSource(account, SourceSettings(account="hubspot-test", method="form"), http)


def test_a_form_source_on_an_account_without_portal_is_a_config_error(
    token_file: Path, http: AccountHttp
) -> None:
    """``portal_id`` is optional (a destination needs none) but a form submit is addressed by it;
    a contacts_api source does without."""
    raw = {"name": "hubspot-test", "vendor": "hubspot", "token": {"file": str(token_file)}}
    account = HubSpotAccount.model_validate(raw)
    with pytest.raises(ConfigError, match="portal_id: required by method form"):
        HubSpotSource(account, settings("form"), http)
    assert HubSpotSource(account, settings("contacts_api"), http).api.account is account


# --- inject ---------------------------------------------------------------------------------------


async def test_inject_by_form_creates_one_contact_and_records_the_call(
    form: HubSpotSource, sandbox: Starlette, clock: VirtualClock, recorder: Recorder
) -> None:
    """A secure form submission makes one contact; the call is recorded; no id comes back."""
    injection = await drive(clock, form.inject(make_probe()))
    assert injection.source_ref is None
    assert injection.accepted_at == clock.now()
    (contact,) = world_of(sandbox).contacts.values()
    assert contact.origin == "form"
    assert contact.properties == {"email": make_probe().email, **FIELDS}
    (call,) = recorder.calls
    assert (call.vendor, call.account, call.operation) == ("hubspot", "hubspot-test", "submit_form")
    assert (call.status, call.error_class) == (200, None)
    assert (call.integration, call.probe_id) == ("hs-sf", "abc123")


async def test_form_submission_is_the_documented_body_on_the_forms_host(
    form: HubSpotSource, clock: VirtualClock, capture: Capture
) -> None:
    """The submit goes to the forms host with 0-1 contact fields, submittedAt in ms and context."""
    await drive(clock, form.inject(make_probe()))
    (request,) = capture.requests
    assert request.url.path == (
        f"/hsforms/submissions/v3/integration/secure/submit/20112233/{DEFAULT_FORM_GUID}"
    )
    body = json.loads(request.content)
    assert body["fields"][0] == {
        "objectTypeId": "0-1",
        "name": "email",
        "value": make_probe().email,
    }
    assert {f["name"]: f["value"] for f in body["fields"][1:]} == FIELDS
    assert body["submittedAt"] == str(int(clock.now().timestamp() * 1000))
    assert body["context"] == {"pageName": "syncwatch probe"}


async def test_inject_by_contacts_api_returns_the_id_and_quota_figures(
    api: HubSpotSource, sandbox: Starlette, clock: VirtualClock, recorder: Recorder
) -> None:
    """A contacts create returns the new id; its call carries the daily and 10 s quota figures."""
    injection = await drive(clock, api.inject(make_probe()))
    (contact,) = world_of(sandbox).contacts.values()
    assert (injection.source_ref, contact.origin) == (contact.id, "api")
    assert contact.email == make_probe().email
    (call,) = recorder.calls
    assert (call.operation, call.status) == ("create_contact", 201)
    assert (call.quota_window, call.quota_used, call.quota_limit) == ("daily", 1, 1_000_000)
    assert recorder.windows == [(QuotaFigure("10s", 1, 190),)]


async def test_accepted_at_is_the_middle_of_a_slow_call(
    api: HubSpotSource, control: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """The acceptance time is the midpoint of the accepting call on our clock."""
    await add_fault(control, kind="slow", delay="10s")
    start = clock.now()
    injection = await drive(clock, api.inject(make_probe()))
    assert injection.accepted_at == start + timedelta(seconds=5)


# --- delete and sweep -----------------------------------------------------------------------------


async def test_delete_by_email_is_one_search_and_one_batch_archive(
    form: HubSpotSource, control: httpx.AsyncClient, clock: VirtualClock, recorder: Recorder
) -> None:
    """Form probes (no id) are found with one IN search and archived in one batch call."""
    probes = [make_probe("aaa111"), make_probe("bbb222")]
    for probe in probes:
        await drive(clock, form.inject(probe))
    assert await synthetic(control) == 2
    refs = [SourceRef(p.probe_id, p.email) for p in probes]
    await drive(clock, form.delete(refs))
    assert await synthetic(control) == 0
    assert recorder.operations[2:] == ["search_contacts", "archive_contacts"]
    assert all(call.error_class is None for call in recorder.calls)


async def test_delete_by_id_archives_without_searching(
    api: HubSpotSource, control: httpx.AsyncClient, clock: VirtualClock, recorder: Recorder
) -> None:
    """A contact whose id is known is archived directly, attributed to its probe."""
    probe = make_probe()
    injection = await drive(clock, api.inject(probe))
    await drive(clock, api.delete([SourceRef(probe.probe_id, probe.email, injection.source_ref)]))
    assert await synthetic(control) == 0
    assert recorder.operations == ["create_contact", "archive_contacts"]
    assert (recorder.calls[1].status, recorder.calls[1].probe_id) == (204, probe.probe_id)


async def test_deleting_contacts_that_are_gone_is_not_an_error(
    form: HubSpotSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """An email that matches nothing needs no archive call: there is nothing to delete."""
    await drive(clock, form.delete([SourceRef("zzz999", make_probe("zzz999").email)]))
    assert recorder.operations == ["search_contacts"]


async def test_large_deletes_chunk_ids_per_batch_and_emails_per_filter_group(
    form: HubSpotSource,
    sandbox: Starlette,
    clock: VirtualClock,
    recorder: Recorder,
    capture: Capture,
) -> None:
    """250 emails are one search with three IN groups of at most 100, then archives of 100."""
    world = world_of(sandbox)
    probes = [make_probe(f"bulk{n:03d}") for n in range(250)]
    for probe in probes:
        world.new_contact({"email": probe.email}, "api")
    await drive(clock, form.delete([SourceRef(p.probe_id, p.email) for p in probes]))
    (search,) = capture.bodies("/search")[:1]
    assert [len(g["filters"][0]["values"]) for g in search["filterGroups"]] == [100, 100, 50]
    assert search["limit"] == 200
    assert recorder.operations.count("search_contacts") == 2  # 250 matches: two pages of 200
    assert [len(b["inputs"]) for b in capture.bodies("/batch/archive")] == [100, 100, 50]
    assert all(contact.archived_at is not None for contact in world.contacts.values())


async def test_sweep_finds_only_old_probe_contacts_across_pages(
    form: HubSpotSource, sandbox: Starlette, clock: VirtualClock, recorder: Recorder
) -> None:
    """Sweep returns probe contacts at the domain created before the cut-off, and no others."""
    world = world_of(sandbox)
    old = [make_probe(f"old{n:03d}") for n in range(210)]
    for probe in old:
        world.new_contact({"email": probe.email}, "form")
    world.new_contact({"email": f"alice@{DOMAIN}"}, "form")  # the domain, not a probe
    world.new_contact({"email": "syncwatch+elsewhere@other.example"}, "form")
    cutoff = clock.now() + timedelta(minutes=30)
    await clock.advance(3600)
    world.new_contact({"email": make_probe("fresh1").email}, "form")
    refs = await drive(clock, form.sweep(DOMAIN, cutoff))
    assert sorted(ref.probe_id for ref in refs) == sorted(p.probe_id for p in old)
    assert all(ref.record_id for ref in refs)
    assert recorder.operations == ["search_contacts", "search_contacts"]
    await drive(clock, form.delete(refs))
    live = {c.email for c in world.contacts.values() if c.archived_at is None}
    assert live == {
        f"alice@{DOMAIN}",
        "syncwatch+elsewhere@other.example",
        make_probe("fresh1").email,
    }


# --- sandbox faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["form", "contacts_api"])
@pytest.mark.parametrize(
    ("fault", "error", "error_class"),
    [
        ({"kind": "outage"}, VendorUnavailable, "vendor_5xx"),
        ({"kind": "quota_exhausted"}, QuotaExhausted, "quota_exhausted"),
        ({"kind": "malformed", "body": "html"}, MalformedResponse, "malformed"),
        ({"kind": "malformed", "body": "truncated_json"}, MalformedResponse, "malformed"),
        ({"kind": "token_expiry"}, AuthError, "auth"),
        ({"kind": "validation", "field": "phone"}, ValidationRejected, "validation"),
        ({"kind": "slow", "delay": "60s"}, CallTimeout, "timeout"),
    ],
)
async def test_a_failed_create_is_classified_and_never_resent(
    account: HubSpotAccount,
    http: AccountHttp,
    control: httpx.AsyncClient,
    clock: VirtualClock,
    recorder: Recorder,
    method: str,
    fault: dict[str, str],
    error: type[VendorError],
    error_class: str,
) -> None:
    """Each fault gives its error class; a create the vendor may have acted on is sent once."""
    await add_fault(control, **fault)
    source = HubSpotSource(account, settings(method), http)
    caught = await failure(clock, source.inject(make_probe()))
    assert type(caught) is error
    assert [call.error_class for call in recorder.calls] == [error_class]


async def test_a_burst_429_is_retried_after_backoff_on_the_virtual_clock(
    api: HubSpotSource, control: httpx.AsyncClient, clock: VirtualClock, recorder: Recorder
) -> None:
    """TEN_SECONDLY_ROLLING 429s are retried (the vendor did nothing) after 1 s, then 2 s."""
    await add_fault(control, kind="rate_limit", **{"for": "2.5s"})
    start = clock.now()
    injection = await drive(clock, api.inject(make_probe()))
    assert injection.source_ref is not None
    assert [c.error_class for c in recorder.calls] == ["rate_limited", "rate_limited", None]
    assert [(c.at - start).total_seconds() for c in recorder.calls] == [0.0, 1.0, 3.0]


async def test_a_lasting_429_gives_up_after_three_attempts(
    api: HubSpotSource, control: httpx.AsyncClient, clock: VirtualClock, recorder: Recorder
) -> None:
    """Retries are bounded: three rate-limited attempts, then RateLimited reaches the caller."""
    await add_fault(control, kind="rate_limit")
    caught = await failure(clock, api.inject(make_probe()))
    assert isinstance(caught, RateLimited)
    assert "TEN_SECONDLY_ROLLING" in str(caught)
    assert len(recorder.calls) == 3


@pytest.mark.parametrize("with_id", [False, True])
async def test_idempotent_cleanup_is_retried_through_an_outage(
    form: HubSpotSource,
    control: httpx.AsyncClient,
    clock: VirtualClock,
    recorder: Recorder,
    with_id: bool,
) -> None:
    """Search and archive are retried on 5xx up to three attempts, then the 5xx is raised."""
    await add_fault(control, kind="outage")
    record_id = "101" if with_id else None
    caught = await failure(clock, form.delete([SourceRef("abc123", make_probe().email, record_id)]))
    assert isinstance(caught, VendorUnavailable)
    operation = "archive_contacts" if with_id else "search_contacts"
    assert recorder.operations == [operation] * 3
    assert {call.status for call in recorder.calls} == {503}


async def test_cleanup_succeeds_when_the_outage_ends_between_attempts(
    api: HubSpotSource, control: httpx.AsyncClient, clock: VirtualClock, recorder: Recorder
) -> None:
    """An archive that meets a short outage succeeds on its third attempt."""
    probe = make_probe()
    injection = await drive(clock, api.inject(probe))
    await add_fault(control, kind="outage", **{"for": "2s"})
    await drive(clock, api.delete([SourceRef(probe.probe_id, probe.email, injection.source_ref)]))
    assert [c.status for c in recorder.calls[1:]] == [503, 503, 204]
    assert await synthetic(control) == 0


# --- classification of documented bodies ----------------------------------------------------------


def response(status: int, body: Any = None, **headers: str) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers)
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers={"content-type": "text/html", **headers})
    return httpx.Response(status, json=body, headers=headers)


def rate_body(policy: str, message: str) -> dict[str, str]:
    return {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": "c0ffee00-0000-4000-8000-000000000001",
        "policyName": policy,
        "requestId": "c0ffee00-0000-4000-8000-000000000002",
    }


def crm_error(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """The CRM ``Error`` schema, with the spec's example correlationId."""
    correlation = "aeb5f871-7f07-4993-9211-075dc63e7cbf"
    body = {"status": "error", "message": message, "correlationId": correlation}
    return {**body, "category": category, **extra}


FORM_ERROR = {
    "status": "error",
    "message": "The request is not valid",
    "correlationId": "c0ffee00-0000-4000-8000-000000000003",
    "errors": [
        {"message": "Required field 'company' is missing", "errorType": "REQUIRED_FIELD"},
        {"message": "Invalid email 'x'", "errorType": "INVALID_EMAIL"},
    ],
}


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (response(200, {"inlineMessage": "Thanks"}), None, []),
        (response(204), None, []),
        (
            response(429, rate_body("DAILY", "You have reached your daily limit.")),
            QuotaExhausted,
            ["429 DAILY", "daily limit"],
        ),
        (
            response(429, rate_body("TEN_SECONDLY_ROLLING", "ten_secondly_rolling limit")),
            RateLimited,
            ["TEN_SECONDLY_ROLLING"],
        ),
        (response(429, rate_body("SECONDLY", "secondly limit")), RateLimited, ["SECONDLY"]),
        (
            response(
                429,
                rate_body("TEN_SECONDLY_ROLLING", "limit"),
                **{"X-HubSpot-RateLimit-Daily-Remaining": "0"},
            ),
            QuotaExhausted,
            ["429"],
        ),
        (
            response(409, crm_error("CONFLICT", "Contact already exists. Existing ID: 512")),
            DuplicateRejected,
            ["CONFLICT", "Existing ID: 512"],
        ),
        (
            response(
                400,
                crm_error(
                    "VALIDATION_ERROR",
                    "Property values were not valid",
                    errors=[{"message": "phone is required", "code": "REQUIRED_FIELD"}],
                ),
            ),
            ValidationRejected,
            ["VALIDATION_ERROR", "REQUIRED_FIELD: phone is required"],
        ),
        (
            response(400, FORM_ERROR),
            ValidationRejected,
            ["REQUIRED_FIELD: Required field 'company'", "INVALID_EMAIL"],
        ),
        (
            response(404, {"status": "error", "message": "Form not found", "errors": []}),
            ValidationRejected,
            ["404", "Form not found"],
        ),
        (
            response(401, crm_error("EXPIRED_AUTHENTICATION", "The OAuth token ... expired")),
            AuthError,
            ["EXPIRED_AUTHENTICATION"],
        ),
        (response(403, crm_error("MISSING_SCOPES", "missing scopes")), AuthError, ["403"]),
        (response(503, crm_error("INTERNAL_ERROR", "try again")), VendorUnavailable, ["503"]),
        (response(502, "<html>502 Bad Gateway</html>"), VendorUnavailable, ["text/html"]),
        (response(301, location="https://app.hubspot.com/"), MalformedResponse, ["301"]),
    ],
)
def test_classify_reads_hubspots_documented_error_bodies(
    answer: httpx.Response, error: type[VendorError] | None, words: list[str]
) -> None:
    """Each documented HubSpot answer maps to its DESIGN §6 class with the vendor's words kept."""
    result = classify(answer)
    assert type(result) is error if error else result is None
    for word in words:
        assert word in str(result)


def test_a_burst_429_keeps_retry_after_and_a_daily_429_is_never_retried() -> None:
    """Retry-After is honoured when sent; the daily quota is not waited out (not retryable)."""
    burst = classify(response(429, rate_body("TEN_SECONDLY_ROLLING", "x"), **{"Retry-After": "3"}))
    assert isinstance(burst, RateLimited)
    assert burst.retry_after_s == 3.0
    daily = classify(response(429, rate_body("DAILY", "x")))
    assert isinstance(daily, QuotaExhausted)
    assert not daily.may_have_acted


def test_classify_messages_never_carry_the_token() -> None:
    """A vendor message that echoes the credential is redacted before it becomes an error."""
    REDACTOR.add(TOKEN)
    echoed = crm_error("INVALID_AUTHENTICATION", f"bad token {TOKEN} in Bearer {TOKEN}")
    error = classify(response(401, echoed))
    assert error is not None
    assert TOKEN not in str(error)


# --- respx: vendor payloads at the real hosts -----------------------------------------------------


@pytest.fixture
async def real_http(
    token_file: Path, clock: VirtualClock, recorder: Recorder
) -> AsyncIterator[tuple[HubSpotAccount, AccountHttp]]:
    account = hubspot_account(token_file, REAL_HOSTS)
    client = account_http(account, Wiring(clock=clock, sink=recorder))
    yield account, client
    await client.aclose()


def created(status: int) -> httpx.Response:
    body = {"id": "512", "properties": {"email": make_probe().email}, "archived": False}
    timestamps = {"createdAt": "2026-10-05T09:00:00.000Z", "updatedAt": "2026-10-05T09:00:00.000Z"}
    return httpx.Response(status, json=body | timestamps)


@pytest.mark.parametrize("status", [200, 201])
async def test_create_accepts_the_v3_200_and_the_2026_03_201(
    real_http: tuple[HubSpotAccount, AccountHttp], clock: VirtualClock, status: int
) -> None:
    """Both documented create statuses are a success carrying the contact id."""
    account, http = real_http
    with respx.mock:
        route = respx.post(CONTACTS).mock(return_value=created(status))
        injection = await drive(
            clock, HubSpotSource(account, settings("contacts_api"), http).inject(make_probe())
        )
    assert injection.source_ref == "512"
    assert route.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"
    sent = json.loads(route.calls.last.request.content)
    assert sent == {"properties": {**FIELDS, "email": make_probe().email}}


async def test_a_conflict_on_create_is_a_duplicate(
    real_http: tuple[HubSpotAccount, AccountHttp], clock: VirtualClock, recorder: Recorder
) -> None:
    """HubSpot's 409 CONFLICT for an existing email is ``duplicate``, with the existing id kept."""
    account, http = real_http
    conflict = crm_error("CONFLICT", "Contact already exists. Existing ID: 512")
    with respx.mock:
        respx.post(CONTACTS).mock(return_value=httpx.Response(409, json=conflict))
        caught = await failure(
            clock, HubSpotSource(account, settings("contacts_api"), http).inject(make_probe())
        )
    assert isinstance(caught, DuplicateRejected)
    assert "Existing ID: 512" in str(caught)
    assert [c.error_class for c in recorder.calls] == ["duplicate"]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>oops</html>", headers={"content-type": "text/html"}),
        httpx.Response(200, json={"total": 1, "results": {"id": "1"}}),
        httpx.Response(200, json={"total": 1, "results": [{"properties": {}}]}),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(
            200, content=b'{"total": 1, "resu', headers={"content-type": "application/json"}
        ),
    ],
)
async def test_a_search_answer_of_the_wrong_shape_is_malformed(
    real_http: tuple[HubSpotAccount, AccountHttp],
    clock: VirtualClock,
    recorder: Recorder,
    answer: httpx.Response,
) -> None:
    """A 2xx search body that is HTML, cut off or the wrong shape is the vendor's ``malformed``."""
    account, http = real_http
    with respx.mock:
        respx.post(f"{CONTACTS}/search").mock(return_value=answer)
        caught = await failure(
            clock, HubSpotSource(account, settings("form"), http).sweep(DOMAIN, clock.now())
        )
    assert isinstance(caught, MalformedResponse)
    assert [c.error_class for c in recorder.calls] == ["malformed"]


async def test_a_create_without_an_id_is_malformed(
    real_http: tuple[HubSpotAccount, AccountHttp], clock: VirtualClock
) -> None:
    """A create answer that carries no contact id cannot be cleaned up by id: ``malformed``."""
    account, http = real_http
    with respx.mock:
        respx.post(CONTACTS).mock(return_value=httpx.Response(201, json={"properties": {}}))
        caught = await failure(
            clock, HubSpotSource(account, settings("contacts_api"), http).inject(make_probe())
        )
    assert isinstance(caught, MalformedResponse)


async def test_retry_after_on_a_429_is_waited_on_the_virtual_clock(
    real_http: tuple[HubSpotAccount, AccountHttp], clock: VirtualClock, recorder: Recorder
) -> None:
    """When HubSpot sends Retry-After the retry waits exactly that long, then succeeds."""
    account, http = real_http
    throttled = httpx.Response(
        429, json=rate_body("TEN_SECONDLY_ROLLING", "limit"), headers={"Retry-After": "7"}
    )
    with respx.mock:
        respx.post(SECURE_SUBMIT).mock(
            side_effect=[throttled, httpx.Response(200, json={"inlineMessage": "Thanks"})]
        )
        start = clock.now()
        await drive(clock, HubSpotSource(account, settings("form"), http).inject(make_probe()))
    assert [(c.at - start).total_seconds() for c in recorder.calls] == [0.0, 7.0]


async def test_sweep_filters_on_the_domain_token_and_createdate_in_ms(
    real_http: tuple[HubSpotAccount, AccountHttp], clock: VirtualClock
) -> None:
    """The sweep search uses ``*@domain`` and ``createdate LT`` as ms epoch, and follows paging."""
    account, http = real_http
    first = {
        "total": 2,
        "results": [{"id": "7", "properties": {"email": make_probe("one").email}}],
        "paging": {"next": {"after": "1", "link": "?after=1"}},
    }
    second = {"total": 2, "results": [{"id": "8", "properties": {"email": "x@" + DOMAIN}}]}
    cutoff = clock.now()
    with respx.mock:
        route = respx.post(f"{CONTACTS}/search").mock(
            side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=second)]
        )
        refs = await drive(
            clock, HubSpotSource(account, settings("form"), http).sweep(DOMAIN, cutoff)
        )
    assert refs == [SourceRef("one", make_probe("one").email, "7")]
    bodies = [json.loads(call.request.content) for call in route.calls]
    (group,) = bodies[0]["filterGroups"]
    assert group["filters"] == [
        {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": f"*@{DOMAIN}"},
        {
            "propertyName": "createdate",
            "operator": "LT",
            "value": str(int(cutoff.timestamp() * 1000)),
        },
    ]
    assert "after" not in bodies[0]
    assert bodies[1]["after"] == "1"


# --- the token ------------------------------------------------------------------------------------


async def test_the_token_never_appears_in_calls_errors_or_reprs(
    form: HubSpotSource,
    api: HubSpotSource,
    http: AccountHttp,
    control: httpx.AsyncClient,
    clock: VirtualClock,
    recorder: Recorder,
    capture: Capture,
) -> None:
    """The token is sent as a Bearer header and nowhere else: not in records, errors or reprs."""
    await drive(clock, form.inject(make_probe("tok001")))
    injection = await drive(clock, api.inject(make_probe("tok002")))
    await drive(clock, form.sweep(DOMAIN, clock.now() + timedelta(seconds=1)))
    await drive(
        clock, api.delete([SourceRef("tok002", make_probe("tok002").email, injection.source_ref)])
    )
    await add_fault(control, kind="token_expiry")
    caught = await failure(clock, form.inject(make_probe("tok003")))
    assert isinstance(caught, AuthError)
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in capture.requests)
    seen = [repr(recorder.calls), repr(recorder.windows), str(caught), repr(caught)]
    seen += [repr(form), repr(api), repr(http), repr(caught.args)]
    assert not [text for text in seen if TOKEN in text]


async def test_an_unreadable_token_is_an_auth_error_before_any_call(
    tmp_path: Path, clock: VirtualClock, recorder: Recorder, capture: Capture
) -> None:
    """A token that cannot be read now fails as ``auth`` (customer) and sends nothing."""
    account = hubspot_account(tmp_path / "missing-token", SANDBOX_HOSTS)
    http = account_http(account, Wiring(clock=clock, sink=recorder, transport=capture))
    caught = await failure(
        clock, HubSpotSource(account, settings("form"), http).inject(make_probe())
    )
    await http.aclose()
    assert isinstance(caught, AuthError)
    assert "missing-token" in str(caught)
    assert (recorder.calls, capture.requests) == ([], [])


@pytest.fixture
def wrong_token_file(tmp_path: Path) -> Path:
    path = tmp_path / "wrong-token"
    path.write_text("pat-na1-not-the-right-one", encoding="utf-8")
    return path


async def test_a_wrong_token_is_refused_as_auth(
    wrong_token_file: Path, clock: VirtualClock, recorder: Recorder, capture: Capture
) -> None:
    """A token the account does not accept is HubSpot's 401, classified as ``auth``."""
    account = hubspot_account(wrong_token_file, SANDBOX_HOSTS)
    http = account_http(account, Wiring(clock=clock, sink=recorder, transport=capture))
    source = HubSpotSource(account, settings("contacts_api"), http)
    caught = await failure(clock, source.inject(make_probe()))
    await http.aclose()
    assert isinstance(caught, AuthError)
    assert "INVALID_AUTHENTICATION" in str(caught)
    assert "pat-na1-not-the-right-one" not in str(caught)
    assert [call.error_class for call in recorder.calls] == ["auth"]
