"""The Eloqua source adapter against Oracle's documented payloads (respx) and the sandbox.

The respx tests feed the adapter the bodies Oracle documents (tests/fixtures/eloqua, described
in ``eloqua_support``): ``/id``'s answer and its 200 ``"Not authenticated."``, a Contact, a
QueryResultContact at minimal depth, and the 400 validation lists.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from eloqua_support import COMPANY, DOMAIN, PASSWORD, USERNAME, eloqua_account, fixture
from marketo_support import Recorder, Recording, drive, failure
from sandbox_support import app_client
from starlette.applications import Starlette
from structlog.testing import capture_logs

from syncwatch.clock import VirtualClock
from syncwatch.config.accounts import EloquaAccount
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
from syncwatch.sandbox.scenario import EloquaSpec, Scenario
from syncwatch.vendors.base import Probe, Source, SourceRef, Wiring, probe_email
from syncwatch.vendors.eloqua import EloquaSource, account_http, classify, epoch_seconds
from syncwatch.vendors.eloqua_auth import DISCOVERY_TTL_S, LoginRequired, basic_token

FIELDS = {"firstName": "Sync", "lastName": "Probe", "accountName": "syncwatch"}
LOGIN = "https://login.eloqua.com"
ID_URL = f"{LOGIN}/id"
POD = "https://secure.p03.eloqua.com"
OTHER_POD = "https://secure.p07.eloqua.com"
CONTACT = "/api/REST/1.0/data/contact"
CONTACTS = "/api/REST/1.0/data/contacts"


def make_probe(probe_id: str = "abc123") -> Probe:
    return Probe(probe_id, probe_email(probe_id, DOMAIN), "elq-sf", FIELDS)


def settings(method: str = "contacts_api") -> SourceSettings:
    return SourceSettings(account="eloqua-test", method=method)


def answer(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def identity(base: str = POD) -> httpx.Response:
    body = fixture("id.json")
    body["urls"]["base"] = base
    return answer(body)


def minimal(contact_id: str, email: str, created: int) -> dict[str, Any]:
    """A contact at minimal depth, shaped as the request-depth page shows it."""
    return {
        "type": "Contact",
        "id": contact_id,
        "createdAt": str(created),
        "depth": "minimal",
        "name": email,
        "updatedAt": str(created),
        "emailAddress": email,
    }


def page(elements: list[dict[str, Any]], total: int | None = None, number: int = 1) -> Any:
    total = len(elements) if total is None else total
    return answer({"elements": elements, "page": number, "pageSize": 1000, "total": total})


@pytest.fixture
def scenario() -> Scenario:
    """The sandbox accepts only our site, user and password, so every call proves all three."""
    return Scenario(
        seed=7, eloqua=EloquaSpec(company=COMPANY, username=USERNAME, password=PASSWORD)
    )


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "eloqua-password"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return path


@pytest.fixture
def account(password_file: Path) -> EloquaAccount:
    return eloqua_account(password_file)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def recording(sandbox: Starlette) -> Recording:
    return Recording(sandbox)


@pytest.fixture
async def http(
    account: EloquaAccount, clock: VirtualClock, recorder: Recorder, recording: Recording
) -> AsyncIterator[AccountHttp]:
    client = account_http(account, Wiring(clock=clock, sink=recorder, transport=recording))
    yield client
    await client.aclose()


@pytest.fixture
def source(account: EloquaAccount, http: AccountHttp) -> EloquaSource:
    return EloquaSource(account, settings(), http)


@pytest.fixture
async def control(sandbox: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(sandbox) as client:
        yield client


@pytest.fixture
async def real(
    password_file: Path, clock: VirtualClock, recorder: Recorder
) -> AsyncIterator[EloquaSource]:
    """The adapter pointed at login.eloqua.com, for respx."""
    account = eloqua_account(password_file, login_url=LOGIN)
    client = account_http(account, Wiring(clock=clock, sink=recorder))
    yield EloquaSource(account, settings(), client)
    await client.aclose()


# --- config, wiring, the Basic header -------------------------------------------------------------


def test_the_account_defaults_to_login_eloqua_com_and_refuses_ambiguous_names(
    password_file: Path,
) -> None:
    """Discovery by default; a backslash or colon in the site or user would split the token."""
    account = eloqua_account(password_file, login_url=f"{LOGIN}/")
    assert (account.login_url, account.base_url) == (LOGIN, None)
    for key, value in (("company", "Acme\\EU"), ("username", "api:user")):
        with pytest.raises(ValueError, match="no \\\\ or :"):
            eloqua_account(password_file, **{key: value})


def test_account_http_wires_the_vendor_its_rate_and_no_quota_headers(
    account: EloquaAccount, clock: VirtualClock, recorder: Recorder
) -> None:
    """The login host as base URL, our own 10 calls/s, no concurrency bound, no quota figures."""
    http = account_http(account, Wiring(clock=clock, sink=recorder))
    assert (http.vendor, http.account, http.daily_window) == ("eloqua", "eloqua-test", "daily")
    assert http.classify is classify
    assert http.rates == {"default": Rate(10, 1.0)}
    assert http.max_concurrent is None
    assert http.quota(httpx.Headers({"x-ratelimit-remaining": "9"})) == []
    assert str(http.client.base_url) == "http://sandbox.test/eloqua-login/"


def test_unknown_methods_are_refused_and_the_adapter_is_a_source(
    account: EloquaAccount, http: AccountHttp
) -> None:
    """Only ``contacts_api``; EloquaSource fulfils the Source protocol."""
    with pytest.raises(ConfigError, match="not an Eloqua method"):
        EloquaSource(account, settings("form"), http)
    assert isinstance(EloquaSource(account, settings(), http), Source)


def test_the_basic_token_is_built_exactly_as_documented() -> None:
    """Oracle's worked example: COMPANYX\\user1 with password123."""
    assert basic_token("COMPANYX", "user1", "password123") == "Q09NUEFOWVhcdXNlcjE6cGFzc3dvcmQxMjM="


async def test_every_call_carries_the_same_basic_header(
    real: EloquaSource, clock: VirtualClock
) -> None:
    """``/id`` and the pod get ``Basic base64(company\\username:password)``, nothing else."""
    expected = f"Basic {basic_token(COMPANY, USERNAME, PASSWORD)}"
    with respx.mock:
        discovery = respx.get(ID_URL).mock(return_value=identity())
        create = respx.post(f"{POD}{CONTACT}").mock(
            return_value=answer(fixture("contact-created.json"), 201)
        )
        await drive(clock, real.inject(make_probe()))
    for route in (discovery, create):
        assert route.calls.last.request.headers["authorization"] == expected


# --- base URL discovery ---------------------------------------------------------------------------


async def test_the_base_url_is_discovered_once_and_kept(
    real: EloquaSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """One ``/id`` call; every later call goes to its ``urls.base``."""
    with respx.mock:
        respx.get(ID_URL).mock(return_value=identity())
        create = respx.post(f"{POD}{CONTACT}").mock(
            return_value=answer(fixture("contact-created.json"), 201)
        )
        for n in range(3):
            await drive(clock, real.inject(make_probe(f"keep{n}")))
            await clock.advance(3600)
    assert recorder.operations == ["discover_base_url"] + ["create_contact"] * 3
    assert create.call_count == 3


async def test_a_day_old_base_url_is_discovered_again(
    real: EloquaSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """Instances move between pods: the base URL is not kept forever."""
    with respx.mock:
        respx.get(ID_URL).mock(side_effect=[identity(), identity(OTHER_POD)])
        respx.post(f"{POD}{CONTACT}").mock(
            return_value=answer(fixture("contact-created.json"), 201)
        )
        moved = respx.post(f"{OTHER_POD}{CONTACT}").mock(
            return_value=answer(fixture("contact-created.json"), 201)
        )
        await drive(clock, real.inject(make_probe("day1")))
        await clock.advance(DISCOVERY_TTL_S)
        await drive(clock, real.inject(make_probe("day2")))
    assert recorder.operations.count("discover_base_url") == 2
    assert moved.call_count == 1


async def test_a_401_on_the_pod_earns_one_rediscovery_and_the_create_is_resent(
    real: EloquaSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """The site moved: the old pod says "Login required", ``/id`` names the new one, and the
    create (which did nothing) goes there."""
    with respx.mock:
        respx.get(ID_URL).mock(side_effect=[identity(), identity(OTHER_POD)])
        old = respx.post(f"{POD}{CONTACT}").mock(return_value=httpx.Response(401))
        new = respx.post(f"{OTHER_POD}{CONTACT}").mock(
            return_value=answer(fixture("contact-created.json"), 201)
        )
        injection = await drive(clock, real.inject(make_probe()))
    assert injection.source_ref == "123"
    assert (old.call_count, new.call_count) == (1, 1)
    calls = [(c.operation, c.status, c.error_class) for c in recorder.calls]
    assert calls == [
        ("discover_base_url", 200, None),
        ("create_contact", 401, "auth"),
        ("discover_base_url", 200, None),
        ("create_contact", 201, None),
    ]


async def test_a_refused_connection_earns_one_rediscovery(
    real: EloquaSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """An unreachable pod (retried by the HTTP layer first) sends us back to ``/id``."""
    with respx.mock:
        respx.get(ID_URL).mock(side_effect=[identity(), identity(OTHER_POD)])
        respx.get(f"{POD}{CONTACTS}").mock(side_effect=httpx.ConnectError("Connection refused"))
        respx.get(f"{OTHER_POD}{CONTACTS}").mock(
            return_value=answer(fixture("contacts-empty.json"))
        )
        assert await drive(clock, real.sweep(DOMAIN, clock.now())) == []
    assert [c.error_class for c in recorder.calls if c.operation == "search_contacts"] == [
        "connection",
        "connection",
        "connection",
        None,
    ]
    assert recorder.operations.count("discover_base_url") == 2


async def test_a_second_401_is_auth_and_a_403_or_a_5xx_is_no_reason_to_rediscover(
    real: EloquaSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """One re-discovery per call; permissions and outages are not a moved site."""
    with respx.mock:
        respx.get(ID_URL).mock(return_value=identity())
        route = respx.post(f"{POD}{CONTACT}").mock(return_value=httpx.Response(401))
        refused = await failure(clock, real.inject(make_probe("twice")))
        assert isinstance(refused, LoginRequired) and refused.error_class == "auth"
        assert route.call_count == 2
        for status in (403, 503):
            recorder.calls.clear()
            route.mock(return_value=httpx.Response(status))
            await failure(clock, real.inject(make_probe(f"s{status}")))
            assert "discover_base_url" not in recorder.operations


async def test_not_authenticated_from_id_is_auth_and_a_shapeless_answer_malformed(
    real: EloquaSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """``/id`` refuses with HTTP 200 and a JSON string; an answer without ``urls.base`` is the
    vendor's fault."""
    with respx.mock:
        respx.get(ID_URL).mock(return_value=answer(fixture("id-not-authenticated.json")))
        refused = await failure(clock, real.inject(make_probe()))
    with respx.mock:
        respx.get(ID_URL).mock(return_value=answer({"site": {"id": 42}, "urls": {}}))
        garbled = await failure(clock, real.inject(make_probe()))
    assert (refused.error_class, garbled.error_class) == ("auth", "malformed")
    assert isinstance(refused, AuthError) and refused.status == 200
    assert [c.error_class for c in recorder.calls] == ["auth", "malformed"]


async def test_a_pinned_base_url_skips_discovery_entirely(
    password_file: Path, clock: VirtualClock, recorder: Recorder
) -> None:
    """``base_url`` set: no ``/id`` call, and a 401 is plain ``auth``."""
    account = eloqua_account(password_file, login_url=LOGIN, base_url=f"{POD}/")
    http = account_http(account, Wiring(clock=clock, sink=recorder))
    pinned = EloquaSource(account, settings(), http)
    with respx.mock:
        discovery = respx.get(ID_URL).mock(return_value=identity())
        route = respx.post(f"{POD}{CONTACT}")
        route.side_effect = [answer(fixture("contact-created.json"), 201), httpx.Response(401)]
        await drive(clock, pinned.inject(make_probe("p1")))
        refused = await failure(clock, pinned.inject(make_probe("p2")))
    await http.aclose()
    assert discovery.call_count == 0
    assert refused.error_class == "auth"


# --- create, delete, search -----------------------------------------------------------------------


async def test_inject_creates_the_contact_and_keeps_its_id(
    source: EloquaSource,
    sandbox: Starlette,
    clock: VirtualClock,
    recorder: Recorder,
    recording: Recording,
) -> None:
    """``emailAddress`` plus the template's fields; the string id as source ref; recorded."""
    injection = await drive(clock, source.inject(make_probe()))
    (contact,) = sandbox.state.world.eloqua_contacts.values()
    assert injection.source_ref == str(contact.id)
    assert injection.accepted_at == clock.now()
    (sent,) = recording.to(CONTACT)
    assert str(sent.request.url) == f"http://sandbox.test/eloqua{CONTACT}"
    assert json.loads(sent.request.content) == {**FIELDS, "emailAddress": make_probe().email}
    assert recorder.operations == ["discover_base_url", "create_contact"]
    call = recorder.calls[1]
    assert (call.vendor, call.status, call.error_class) == ("eloqua", 201, None)
    assert (call.integration, call.probe_id) == ("elq-sf", "abc123")


async def test_documented_create_answer_parses(real: EloquaSource, clock: VirtualClock) -> None:
    """The HTTP verbs page's contact: ``type: Contact``, id "123"."""
    with respx.mock:
        respx.get(ID_URL).mock(return_value=identity())
        respx.post(f"{POD}{CONTACT}").mock(
            return_value=answer(fixture("contact-created.json"), 201)
        )
        injection = await drive(clock, real.inject(make_probe()))
    assert injection.source_ref == "123"


async def test_delete_by_id_is_one_call_each_and_by_email_a_search_first(
    source: EloquaSource, sandbox: Starlette, clock: VirtualClock, recorder: Recorder
) -> None:
    """Ids go straight to DELETE; an email-only ref is searched for exactly; gone is fine."""
    one = await drive(clock, source.inject(make_probe("del1")))
    await drive(clock, source.inject(make_probe("del2")))
    recorder.calls.clear()
    refs = [
        SourceRef("del1", make_probe("del1").email, one.source_ref),
        SourceRef("del2", make_probe("del2").email),
    ]
    await drive(clock, source.delete(refs))
    assert recorder.operations == ["search_contacts", "delete_contact", "delete_contact"]
    assert not sandbox.state.world.eloqua_contacts
    await drive(clock, source.delete(refs[:1]))  # gone already: 404, not an error
    assert [(c.status, c.error_class) for c in recorder.calls[-1:]] == [(404, None)]


async def test_the_email_search_is_exact_quoted_and_minimal(
    real: EloquaSource, clock: VirtualClock
) -> None:
    """``search=emailAddress='<email>'`` at minimal depth, 1000 a page; only equal emails count."""
    email = make_probe().email
    twin = minimal("9", email.upper(), 1403034086)
    other = minimal("10", "someone@else.example", 1403034086)
    with respx.mock:
        respx.get(ID_URL).mock(return_value=identity())
        search = respx.get(f"{POD}{CONTACTS}").mock(return_value=page([twin, other]))
        delete = respx.delete(f"{POD}{CONTACT}/9").mock(return_value=httpx.Response(200))
        await drive(clock, real.delete([SourceRef("abc123", email)]))
    params = search.calls.last.request.url.params
    assert dict(params) == {
        "search": f"emailAddress='{email}'",
        "depth": "minimal",
        "count": "1000",
        "page": "1",
    }
    assert delete.call_count == 1


async def test_sweep_finds_old_probe_contacts_at_the_domain_page_by_page(
    real: EloquaSource, clock: VirtualClock
) -> None:
    """The documented trailing ``*`` on the probe prefix; domain and age are checked here."""
    cutoff = datetime(2026, 10, 1, tzinfo=UTC)
    old, new = int(cutoff.timestamp()) - 60, int(cutoff.timestamp()) + 60
    first = [minimal(str(n), probe_email(f"p{n}", DOMAIN), old) for n in range(1000)]
    second = [
        minimal("2001", probe_email("young", DOMAIN), new),
        minimal("2002", probe_email("elsewhere", "other.example"), old),
        minimal("2003", "syncwatch+@" + DOMAIN, old),
    ]
    with respx.mock:
        respx.get(ID_URL).mock(return_value=identity())
        search = respx.get(f"{POD}{CONTACTS}").mock(
            side_effect=[page(first, 1003), page(second, 1003, 2)]
        )
        refs = await drive(clock, real.sweep(DOMAIN, cutoff))
    assert [c.request.url.params["page"] for c in search.calls] == ["1", "2"]
    assert {c.request.url.params["search"] for c in search.calls} == {"emailAddress='syncwatch+*'"}
    assert len(refs) == 1000
    assert refs[0] == SourceRef("p0", probe_email("p0", DOMAIN), "0")


async def test_a_204_search_is_an_empty_result(real: EloquaSource, clock: VirtualClock) -> None:
    """The Swagger documents 204 "No matching contacts were found in the search"."""
    with respx.mock:
        respx.get(ID_URL).mock(return_value=identity())
        respx.get(f"{POD}{CONTACTS}").mock(return_value=httpx.Response(204))
        assert await drive(clock, real.sweep(DOMAIN, clock.now())) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1403034086", datetime(2014, 6, 17, 19, 41, 26, tzinfo=UTC)),
        ("1424362751", datetime(2015, 2, 19, 16, 19, 11, tzinfo=UTC)),
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
        (1403034086, datetime(2014, 6, 17, 19, 41, 26, tzinfo=UTC)),
        ("", None),
        ("14030340.5", None),
        ("-1", None),
        ("2014-06-17T19:41:26Z", None),
        ("١٤٠٣", None),
        (None, None),
        (True, None),
    ],
)
def test_createdat_is_read_as_epoch_seconds(value: Any, expected: datetime | None) -> None:
    """A decimal string (or integer) of Unix seconds, UTC; anything else is ``malformed``."""
    if expected is None:
        with pytest.raises(MalformedResponse):
            epoch_seconds(value)
    else:
        assert epoch_seconds(value) == expected


# --- classification -------------------------------------------------------------------------------

VALIDATION = fixture("validation-errors.json")


@pytest.mark.parametrize(
    ("response", "error", "acted"),
    [
        (answer(fixture("contact-created.json"), 201), None, None),
        (httpx.Response(204), None, None),
        (httpx.Response(301, headers={"location": "https://login.eloqua.com/"}), AuthError, False),
        (httpx.Response(304), MalformedResponse, True),
        (answer(VALIDATION["endpoint-parameter"], 400), ValidationRejected, False),
        (answer(VALIDATION["object-validation"], 400), ValidationRejected, False),
        (answer(VALIDATION["endpoint-validation"], 400), ValidationRejected, False),
        (answer(VALIDATION["email-taken"], 400), DuplicateRejected, False),
        (httpx.Response(400, text="There was a parsing error."), ValidationRejected, False),
        (httpx.Response(401, text="Login required"), AuthError, False),
        (httpx.Response(403, text="XSRF Protection Failure"), AuthError, False),
        (httpx.Response(404), ValidationRejected, False),
        (answer(VALIDATION["email-taken"], 409), DuplicateRejected, False),
        (httpx.Response(412), ValidationRejected, False),
        (httpx.Response(413, text="Storage space exceeded."), QuotaExhausted, False),
        (httpx.Response(429, text="Too Many Requests"), RateLimited, False),
        (httpx.Response(500), VendorUnavailable, True),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), VendorUnavailable, True),
        (httpx.Response(503, text="Service Unavailable"), VendorUnavailable, True),
    ],
)
def test_each_status_is_classified_per_design(
    response: httpx.Response, error: type[VendorError] | None, acted: bool | None
) -> None:
    """DESIGN §6 by status, and by the validation list for a 400 naming a uniqueness rule."""
    result = classify(response)
    if error is None:
        assert result is None
        return
    assert isinstance(result, error)
    assert result.status == response.status_code
    assert result.may_have_acted is acted


def test_messages_name_the_rule_broken_but_never_the_value() -> None:
    """Type, property or parameter, and requirement; the value may be personal data."""
    result = classify(answer(VALIDATION["email-taken"], 409))
    assert str(result) == (
        "eloqua HTTP 409: ObjectValidationError emailAddress UniquenessRequirement"
    )
    assert "canada.com" not in str(result)
    assert "no validation errors (text/plain)" in str(classify(httpx.Response(404, text="x")))


def test_429_carries_retry_after_when_sent() -> None:
    """Eloqua documents no ``Retry-After``; when one comes, it is read."""
    sent = classify(httpx.Response(429, headers={"retry-after": "7"}))
    unsent = classify(httpx.Response(429))
    assert isinstance(sent, RateLimited) and sent.retry_after_s == 7.0
    assert isinstance(unsent, RateLimited) and unsent.retry_after_s is None


async def test_a_429_is_waited_out_and_the_create_resent(
    real: EloquaSource, clock: VirtualClock, recorder: Recorder
) -> None:
    """Throttled means not executed: the create is resent after ``Retry-After``, in virtual time."""
    with respx.mock:
        respx.get(ID_URL).mock(return_value=identity())
        respx.post(f"{POD}{CONTACT}").mock(
            side_effect=[
                httpx.Response(429, headers={"retry-after": "7"}),
                answer(fixture("contact-created.json"), 201),
            ]
        )
        start = clock.monotonic()
        injection = await drive(clock, real.inject(make_probe()))
    assert injection.source_ref == "123"
    assert clock.monotonic() - start >= 7.0
    assert [c.error_class for c in recorder.calls[1:]] == ["rate_limited", None]


async def test_a_503_resends_searches_but_never_a_create(
    real: EloquaSource, clock: VirtualClock
) -> None:
    """503 is temporary (retry with growing delays) but a create may have happened."""
    with respx.mock:
        respx.get(ID_URL).mock(return_value=identity())
        create = respx.post(f"{POD}{CONTACT}").mock(return_value=httpx.Response(503))
        search = respx.get(f"{POD}{CONTACTS}").mock(
            side_effect=[httpx.Response(503), answer(fixture("contacts-empty.json"))]
        )
        caught = await failure(clock, real.inject(make_probe()))
        await drive(clock, real.sweep(DOMAIN, clock.now()))
    assert caught.error_class == "vendor_5xx"
    assert (create.call_count, search.call_count) == (1, 2)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            201, text="<html>502 Bad Gateway</html>", headers={"content-type": "text/html"}
        ),
        httpx.Response(
            201, content=b'{"type": "Contact", "id', headers={"content-type": "application/json"}
        ),
        answer({"type": "Contact"}, 201),
        answer({"type": "Account", "id": "5"}, 201),
        answer({"id": "5"}, 201),
        answer(["not", "an", "object"], 201),
    ],
)
async def test_a_create_answer_of_the_wrong_shape_is_malformed(
    real: EloquaSource, clock: VirtualClock, recorder: Recorder, response: httpx.Response
) -> None:
    """A 2xx that is HTML, cut off, or lacks the Contact's type or id is ``malformed``."""
    with respx.mock:
        respx.get(ID_URL).mock(return_value=identity())
        respx.post(f"{POD}{CONTACT}").mock(return_value=response)
        caught = await failure(clock, real.inject(make_probe()))
    assert isinstance(caught, MalformedResponse)
    assert recorder.calls[-1].error_class == "malformed"


@pytest.mark.parametrize(
    "body",
    [
        {"page": 1, "total": 0},
        {"elements": [{"type": "Contact", "createdAt": "1403034086"}], "total": 1},
        {"elements": [{"type": "Contact", "id": "1", "createdAt": "yesterday"}], "total": 1},
        {"elements": [], "total": "0"},
    ],
)
async def test_a_search_answer_of_the_wrong_shape_is_malformed(
    real: EloquaSource, clock: VirtualClock, body: dict[str, Any]
) -> None:
    """No ``elements``, a contact without id, a ``createdAt`` that is not epoch seconds."""
    with respx.mock:
        respx.get(ID_URL).mock(return_value=identity())
        respx.get(f"{POD}{CONTACTS}").mock(return_value=answer(body))
        caught = await failure(clock, real.sweep(DOMAIN, clock.now()))
    assert caught.error_class == "malformed"


# --- the password ---------------------------------------------------------------------------------


async def test_the_password_never_reaches_calls_errors_logs_or_reprs(
    source: EloquaSource,
    http: AccountHttp,
    clock: VirtualClock,
    recorder: Recorder,
    recording: Recording,
    control: httpx.AsyncClient,
    password_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The password travels only inside the Basic header, and nowhere we keep or print."""
    caplog.set_level(logging.DEBUG)
    token = basic_token(COMPANY, USERNAME, PASSWORD)
    with capture_logs() as logs:
        injection = await drive(clock, source.inject(make_probe("sec1")))
        await drive(clock, source.sweep(DOMAIN, clock.now() + timedelta(seconds=1)))
        await drive(
            clock, source.delete([SourceRef("sec1", make_probe().email, injection.source_ref)])
        )
        await control.post("/_sandbox/faults", json={"kind": "outage", "vendor": "eloqua"})
        outage = await failure(clock, source.inject(make_probe("sec2")))
        await control.delete("/_sandbox/faults")
        wrong = password_file.parent / "wrong"
        wrong.write_text("not-the-password-at-all", encoding="utf-8")
        other = account_http(
            eloqua_account(wrong), Wiring(clock=clock, sink=recorder, transport=recording)
        )
        refused = await failure(
            clock, EloquaSource(eloqua_account(wrong), settings(), other).inject(make_probe("sec3"))
        )
        await other.aclose()
    sent = recording.to("/id")[0].request.headers["authorization"]
    assert sent == f"Basic {token}"  # it was sent, as documented
    assert isinstance(refused, AuthError) and outage.error_class == "vendor_5xx"
    seen = [repr(recorder.calls), repr(recorder.windows), repr(logs), caplog.text]
    seen += [str(e) + repr(e) + repr(e.args) for e in (outage, refused)]
    seen += [repr(source), repr(source.auth), repr(http)]
    assert caplog.records, "httpx logged the requests (through the redactor)"
    secrets = (PASSWORD, token, "not-the-password-at-all")
    assert not [text for text in seen if any(secret in text for secret in secrets)]
