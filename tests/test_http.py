"""The shared HTTP layer: every attempt recorded, bounded retries, throttling and timeouts on the
injected clock, transport failures classified and attributed, nothing secret in what it emits.

Vendors are faked with ``httpx.MockTransport`` handlers (DESIGN §14.10: fake at the seams); time
is a ``VirtualClock``, so waits are asserted to the exact virtual second and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from syncwatch import json_codec
from syncwatch.clock import DEFAULT_VIRTUAL_START, VirtualClock
from syncwatch.errors import (
    CallTimeout,
    ConnectionFailed,
    MalformedResponse,
    MonitorNetworkError,
    RateLimited,
    VendorError,
    VendorUnavailable,
)
from syncwatch.events import ApiCall, QuotaFigure
from syncwatch.http import (
    MAX_RETRY_WAIT_S,
    RECHECK_S,
    AccountHttp,
    CallContext,
    ClockOffset,
    ClockThrottler,
    NetworkHealth,
    Rate,
    classify_status,
    exchanged_at,
    json_body,
    json_document,
    retry_after,
)
from syncwatch.quota import parse_hubspot_headers, parse_sforce_limit_info
from syncwatch.redact import Redactor

BASE = "https://sandbox.my.salesforce.example"
CREATED = {"id": "00Q5e00000AbCdEAAV", "success": True, "errors": []}

Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


@dataclass
class Sink:
    """The call sink: keeps what ``AccountHttp`` emits, in order."""

    calls: list[ApiCall] = field(default_factory=list)
    others: list[tuple[QuotaFigure, ...]] = field(default_factory=list)

    def __call__(self, call: ApiCall, other_windows: tuple[QuotaFigure, ...]) -> None:
        self.calls.append(call)
        self.others.append(other_windows)

    def offsets(self) -> list[float]:
        """When each attempt was sent, in virtual seconds since the clock's start."""
        return [(call.at - DEFAULT_VIRTUAL_START).total_seconds() for call in self.calls]

    def classes(self) -> list[str | None]:
        return [call.error_class for call in self.calls]


def classify(response: httpx.Response) -> VendorError | None:
    """A vendor classifier as adapters build one: the generic status reading, message by code."""
    return classify_status(response, f"HTTP {response.status_code}")


def lead_id(response: httpx.Response) -> str:
    """A parser as adapters write one: the documented JSON shape, or a KeyError."""
    return str(json_body(response, "create lead")["id"])


def script(*steps: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """A handler answering each request with the next step (raising it if it is an exception)."""
    remaining = list(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        step = remaining.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    return handler


def ok(**headers: str) -> httpx.Response:
    return httpx.Response(200, json=CREATED, headers=headers)


Build = Callable[..., AccountHttp]
T = TypeVar("T")


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def build(clock: VirtualClock, sink: Sink) -> AsyncIterator[Build]:
    """Makes ``AccountHttp`` instances over a mock transport; closes their clients afterwards."""
    made: list[AccountHttp] = []

    def factory(handler: Handler, **overrides: Any) -> AccountHttp:
        settings: dict[str, Any] = {
            "vendor": "salesforce",
            "account": "sf-prod",
            "client": httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(handler)),
            "clock": clock,
            "sink": sink,
            "classify": classify,
            "redactor": Redactor(),
        }
        settings.update(overrides)
        http = AccountHttp(**settings)
        made.append(http)
        return http

    yield factory
    for http in made:
        await http.aclose()


async def create(http: AccountHttp, **kwargs: Any) -> str:
    """One non-idempotent call: a lead create."""
    return await http.request(
        "create_lead", "POST", "/services/data/v60.0/sobjects/Lead", parse=lead_id,
        idempotent=False, json={"LastName": "Probe"}, **kwargs,
    )  # fmt: skip


async def read(http: AccountHttp, **kwargs: Any) -> str:
    """One idempotent call: a record read."""
    return await http.request(
        "get_lead", "GET", "/services/data/v60.0/sobjects/Lead/00Q5e00000AbCdEAAV",
        parse=lead_id, idempotent=True, **kwargs,
    )  # fmt: skip


def outcome(task: asyncio.Task[T]) -> T:
    """The task's result, asserting it finished: a call still waiting would hang ``await``."""
    assert task.done(), "the call is still waiting on the virtual clock"
    return task.result()


def no_other_tasks() -> bool:
    return not (asyncio.all_tasks() - {asyncio.current_task()})


# -- recording ---------------------------------------------------------------------------------


async def test_every_attempt_is_recorded_with_context_and_daily_quota(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A call is recorded with its operation, status, duration, context and the daily figure;
    other windows travel beside it to the sink."""

    async def handler(request: httpx.Request) -> httpx.Response:
        await clock.sleep(0.25)
        limit_info = "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)"
        return ok(**{"Sforce-Limit-Info": limit_info})

    http = build(
        handler,
        quota=lambda headers: parse_sforce_limit_info(headers.get("sforce-limit-info")),
        daily_window="api-usage",
    )
    context = CallContext(integration="hubspot-to-salesforce", probe_id="k3x9q2")
    task = asyncio.create_task(create(http, context=context))
    await clock.advance(1)
    assert outcome(task) == CREATED["id"]
    assert sink.calls == [
        ApiCall(
            at=DEFAULT_VIRTUAL_START,
            vendor="salesforce",
            account="sf-prod",
            operation="create_lead",
            status=200,
            duration_s=0.25,
            error_class=None,
            integration="hubspot-to-salesforce",
            probe_id="k3x9q2",
            quota_used=25,
            quota_limit=5000,
            quota_window="api-usage",
        )
    ]
    assert sink.others == [(QuotaFigure("per-app-api-usage:sample-connected-app", 17, 250),)]


async def test_hubspot_daily_figure_and_rolling_window_are_split(build: Build, sink: Sink) -> None:
    """With HubSpot's headers the daily figure lands on the call and the 10 s window beside it."""
    headers = {
        "X-HubSpot-RateLimit-Daily": "250000",
        "X-HubSpot-RateLimit-Daily-Remaining": "249000",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "99",
    }
    http = build(
        script(ok(**headers)),
        vendor="hubspot",
        account="hubspot-prod",
        quota=parse_hubspot_headers,
        daily_window="daily",
    )
    await read(http)
    [call] = sink.calls
    assert (call.quota_used, call.quota_limit, call.quota_window) == (1000, 250000, "daily")
    assert call.integration is None and call.probe_id is None
    assert sink.others == [(QuotaFigure("10s", 1, 100),)]


@pytest.mark.parametrize(
    ("daily_window", "on_call", "beside"),
    [
        (
            "api-usage",
            (10018, 100000, "api-usage"),
            (QuotaFigure("api-bursts", 1, 750),),
        ),
        (
            None,
            (None, None, None),
            (QuotaFigure("api-bursts", 1, 750), QuotaFigure("api-usage", 10018, 100000)),
        ),
    ],
)
async def test_the_daily_figure_is_chosen_by_window_name(
    build: Build,
    sink: Sink,
    daily_window: str | None,
    on_call: tuple[int | None, int | None, str | None],
    beside: tuple[QuotaFigure, ...],
) -> None:
    """The daily figure is the one named ``daily_window`` wherever it sits in the header."""
    http = build(
        script(ok(**{"Sforce-Limit-Info": "api-bursts=1/750; api-usage=10018/100000"})),
        quota=lambda headers: parse_sforce_limit_info(headers.get("sforce-limit-info")),
        daily_window=daily_window,
    )
    await read(http)
    [call] = sink.calls
    assert (call.quota_used, call.quota_limit, call.quota_window) == on_call
    assert sink.others == [beside]


async def test_a_response_without_quota_headers_records_no_figure(build: Build, sink: Sink) -> None:
    """Search-like responses with no quota headers leave the quota fields empty."""
    http = build(script(ok()), quota=parse_hubspot_headers, daily_window="daily")
    await read(http)
    [call] = sink.calls
    assert (call.quota_used, call.quota_limit, call.quota_window) == (None, None, None)
    assert sink.others == [()]


async def test_an_unreadable_quota_header_does_not_lose_the_call(build: Build, sink: Sink) -> None:
    """A garbage byte in a quota header is ignored: the call succeeds and is recorded."""
    response = httpx.Response(
        200,
        json=CREATED,
        headers=[
            (b"X-HubSpot-RateLimit-Daily", b"\xb2"),
            (b"X-HubSpot-RateLimit-Daily-Remaining", b"1"),
        ],
    )
    http = build(script(response), quota=parse_hubspot_headers, daily_window="daily")
    assert await read(http) == CREATED["id"]
    assert sink.classes() == [None]


# -- retries -----------------------------------------------------------------------------------


async def test_503_on_an_idempotent_request_is_retried_after_1_then_2_seconds(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """Two 503s then a 200: three attempts at virtual 0 s, 1 s and 3 s, and the call succeeds."""
    http = build(script(httpx.Response(503), httpx.Response(503), ok()))
    task = asyncio.create_task(read(http))
    await clock.advance(0.999)
    assert len(sink.calls) == 1
    await clock.advance(0.001)
    assert len(sink.calls) == 2
    await clock.advance(1.999)
    assert len(sink.calls) == 2
    await clock.advance(0.001)
    assert outcome(task) == CREATED["id"]
    assert sink.offsets() == [0.0, 1.0, 3.0]
    assert sink.classes() == ["vendor_5xx", "vendor_5xx", None]
    assert [call.status for call in sink.calls] == [503, 503, 200]


async def test_503_three_times_gives_up_with_the_last_error(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """Retries are bounded: after the third 503 the caller gets VendorUnavailable."""
    http = build(script(*(httpx.Response(503) for _ in range(3))))
    task = asyncio.create_task(read(http))
    await clock.advance(60)
    with pytest.raises(VendorUnavailable) as caught:
        outcome(task)
    assert caught.value.status == 503
    assert sink.offsets() == [0.0, 1.0, 3.0]


async def test_503_on_a_create_is_not_retried(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """The vendor may have created the lead before failing: a create is never resent blindly."""
    http = build(script(httpx.Response(503), ok()))
    task = asyncio.create_task(create(http))
    await clock.advance(60)
    with pytest.raises(VendorUnavailable):
        outcome(task)
    assert sink.classes() == ["vendor_5xx"]


@pytest.mark.parametrize("operation", [read, create])
async def test_429_waits_exactly_retry_after_even_for_a_create(
    build: Build,
    sink: Sink,
    clock: VirtualClock,
    operation: Callable[[AccountHttp], Coroutine[Any, Any, str]],
) -> None:
    """A throttled request was not acted on, so it is resent after exactly Retry-After."""
    http = build(script(httpx.Response(429, headers={"Retry-After": "7"}), ok()))
    task = asyncio.create_task(operation(http))
    await clock.advance(6.999)
    assert not task.done()
    assert sink.classes() == ["rate_limited"]
    await clock.advance(0.001)
    assert outcome(task) == CREATED["id"]
    assert sink.offsets() == [0.0, 7.0]


async def test_429_without_retry_after_backs_off(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """Without Retry-After a throttled call falls back to the 1 s, 2 s backoff."""
    http = build(script(httpx.Response(429), httpx.Response(429), ok()))
    task = asyncio.create_task(create(http))
    await clock.advance(10)
    assert outcome(task) == CREATED["id"]
    assert sink.offsets() == [0.0, 1.0, 3.0]


async def test_retry_after_longer_than_the_cap_is_not_waited_for(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A Retry-After over MAX_RETRY_WAIT_S fails the call at once, after one attempt."""
    wait = str(int(MAX_RETRY_WAIT_S) + 1)
    http = build(script(httpx.Response(429, headers={"Retry-After": wait}), ok()))
    task = asyncio.create_task(read(http))
    await clock.advance(0)
    assert task.done()
    with pytest.raises(RateLimited) as caught:
        outcome(task)
    assert caught.value.retry_after_s == MAX_RETRY_WAIT_S + 1
    assert sink.classes() == ["rate_limited"]
    assert clock.sleepers == 0


async def test_retry_after_at_the_cap_is_waited_for(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A Retry-After of exactly MAX_RETRY_WAIT_S is still honoured."""
    wait = str(int(MAX_RETRY_WAIT_S))
    http = build(script(httpx.Response(429, headers={"Retry-After": wait}), ok()))
    task = asyncio.create_task(read(http))
    await clock.advance(MAX_RETRY_WAIT_S)
    assert outcome(task) == CREATED["id"]
    assert sink.offsets() == [0.0, MAX_RETRY_WAIT_S]


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_client_errors_are_not_retried(
    build: Build, sink: Sink, clock: VirtualClock, status: int
) -> None:
    """A 4xx other than 429 will not change on a resend: one attempt, then the error."""
    http = build(script(httpx.Response(status), ok()))
    task = asyncio.create_task(read(http))
    await clock.advance(60)
    with pytest.raises(VendorError) as caught:
        outcome(task)
    assert caught.value.status == status
    assert len(sink.calls) == 1
    assert sink.classes() == ["auth" if status in (401, 403) else "validation"]


# -- transport failures ------------------------------------------------------------------------


def refused() -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused")


async def test_connect_refused_is_retried_even_for_a_create(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A refused connection never reached the vendor, so even a create is resent."""
    http = build(script(refused(), refused(), ok()))
    task = asyncio.create_task(create(http))
    await clock.advance(10)
    assert outcome(task) == CREATED["id"]
    assert sink.classes() == ["connection", "connection", None]
    assert [call.status for call in sink.calls] == [None, None, 200]
    assert sink.offsets() == [0.0, 1.0, 3.0]


async def test_connect_refused_every_time_raises_connection_failed(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """After the last attempt the caller sees ConnectionFailed, attributed to the vendor."""
    http = build(script(refused(), refused(), refused()))
    task = asyncio.create_task(create(http))
    await clock.advance(10)
    with pytest.raises(ConnectionFailed) as caught:
        outcome(task)
    assert caught.value.error_class == "connection"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(sink.calls) == 3


async def test_a_reset_after_sending_a_create_is_not_resent(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A read error after the request went out may hide a created lead: no resend."""
    http = build(script(httpx.ReadError("connection reset by peer"), ok()))
    task = asyncio.create_task(create(http))
    await clock.advance(10)
    with pytest.raises(ConnectionFailed):
        outcome(task)
    assert sink.classes() == ["connection"]


async def test_connect_failure_while_our_network_is_down_is_the_monitors(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """With the self-check failing, the same refused connection is class ``monitor``."""
    http = build(script(refused(), refused(), refused()), network=NetworkHealth(ok=False))
    task = asyncio.create_task(create(http))
    await clock.advance(10)
    with pytest.raises(MonitorNetworkError, match="our own network check is failing"):
        outcome(task)
    assert sink.calls
    assert set(sink.classes()) == {"monitor"}


@pytest.mark.parametrize(("network_up", "expected"), [(False, "monitor"), (True, "connection")])
async def test_a_failed_connect_asks_the_self_check_at_once(
    build: Build, sink: Sink, clock: VirtualClock, network_up: bool, expected: str
) -> None:
    """Our outage is noticed by the call that hits it, not 30 s later by the periodic check;
    the check runs at most once per RECHECK_S however many calls fail meanwhile."""
    checks: list[float] = []

    async def check() -> bool:
        checks.append(clock.monotonic())
        return network_up

    network = NetworkHealth(ok=True, check=check)
    http = build(script(refused(), refused(), refused()), network=network)
    task = asyncio.create_task(read(http))
    await clock.advance(10)
    with pytest.raises(MonitorNetworkError if not network_up else ConnectionFailed):
        outcome(task)
    assert set(sink.classes()) == {expected}
    assert len(sink.calls) == (1 if not network_up else 3)  # ours is never retried
    # Up: each retry was sent after the last passing check, which proves nothing about it, so
    # it asks again (at most once a second). Down: the failing check stands for RECHECK_S.
    assert checks == ([0.0, 1.0, 3.0] if network_up else [0.0])
    assert RECHECK_S > 3
    assert network.ok is network_up


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("[Errno -2] Name or service not known"),
        httpx.ConnectError("[Errno -3] Temporary failure in name resolution"),
        httpx.ConnectError("[Errno 8] nodename nor servname provided, or not known"),
    ],
)
async def test_dns_failures_are_the_monitors(
    build: Build, sink: Sink, clock: VirtualClock, failure: httpx.ConnectError
) -> None:
    """A name that does not resolve is our network's fault even while the self-check passes."""
    http = build(script(failure, ok(), ok()))
    task = asyncio.create_task(read(http))
    await clock.advance(10)
    with pytest.raises(MonitorNetworkError):
        outcome(task)
    assert set(sink.classes()) == {"monitor"}


async def test_tls_verification_failure_is_the_monitors(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A certificate our trust store rejects points at our side, not the vendor's."""

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            raise ssl.SSLCertVerificationError("certificate verify failed")
        except ssl.SSLError as exc:
            raise httpx.ConnectError("handshake failed", request=request) from exc

    http = build(handler)
    task = asyncio.create_task(read(http))
    await clock.advance(10)
    with pytest.raises(MonitorNetworkError):
        outcome(task)
    assert set(sink.classes()) == {"monitor"}


async def test_an_httpx_timeout_is_class_timeout(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """httpx's own timeouts are translated to CallTimeout, a vendor-attributed ``timeout``."""
    http = build(script(httpx.ReadTimeout("timed out")))
    task = asyncio.create_task(create(http))
    await clock.advance(10)
    with pytest.raises(CallTimeout):
        outcome(task)
    assert sink.classes() == ["timeout"]


async def test_the_call_timeout_runs_on_the_injected_clock(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A vendor that never answers fails as ``timeout`` after exactly 30 virtual seconds."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await clock.sleep(100)
        return ok()

    http = build(hang, call_timeout_s=30)
    task = asyncio.create_task(create(http))
    await clock.advance(29.999)
    assert not task.done()
    await clock.advance(0.001)
    assert task.done()
    with pytest.raises(CallTimeout):
        outcome(task)
    [call] = sink.calls
    assert (call.error_class, call.status, call.duration_s) == ("timeout", None, 30.0)
    assert clock.sleepers == 0
    assert no_other_tasks()


async def test_idempotent_timeouts_are_retried_within_a_bounded_time(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A read that times out is retried twice: attempts at 0, 31 and 63 s, failing at 93 s."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await clock.sleep(1_000)
        return ok()

    http = build(hang, call_timeout_s=30)
    task = asyncio.create_task(read(http))
    await clock.advance(92.999)
    assert not task.done()
    await clock.advance(0.001)
    with pytest.raises(CallTimeout):
        outcome(task)
    assert sink.offsets() == [0.0, 31.0, 63.0]
    assert clock.sleepers == 0
    assert no_other_tasks()


async def test_cancelling_a_call_leaves_no_sleeper_or_task_behind(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A shutdown mid-call cancels the request and its timer cleanly."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await clock.sleep(100)
        return ok()

    http = build(hang)
    task = asyncio.create_task(read(http))
    await clock.advance(5)
    assert clock.sleepers == 2  # the transport's wait and the call timeout
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert clock.sleepers == 0
    assert no_other_tasks()


async def test_exchanged_at_is_the_middle_of_the_successful_attempt(
    build: Build, clock: VirtualClock
) -> None:
    """The acceptance moment skips retry waits: it is mid-way through the attempt that got 2xx."""
    answers = iter([httpx.Response(503), ok()])

    async def slow(request: httpx.Request) -> httpx.Response:
        await clock.sleep(0.5)
        return next(answers)

    http = build(slow)
    task = asyncio.create_task(
        http.request("get_lead", "GET", "/x", parse=exchanged_at, idempotent=True)
    )
    await clock.advance(10)
    # attempt 1: 0.0-0.5 s (503); wait 1 s; attempt 2: 1.5-2.0 s
    assert outcome(task) == DEFAULT_VIRTUAL_START + timedelta(seconds=1.75)


def test_exchanged_at_refuses_a_response_that_did_not_come_through_account_http() -> None:
    """A response built elsewhere has no exchange time, and saying so beats inventing one."""
    with pytest.raises(ValueError, match="did not come through AccountHttp"):
        exchanged_at(httpx.Response(200))


# -- malformed bodies --------------------------------------------------------------------------


async def test_a_parse_error_on_a_200_is_malformed(build: Build, sink: Sink) -> None:
    """A 2xx whose body lacks the documented key is ``malformed``, not a success."""

    def parse(response: httpx.Response) -> str:
        return str(response.json()["id"])

    http = build(script(httpx.Response(200, json={"success": True})))
    with pytest.raises(MalformedResponse, match="get_lead answered an undocumented shape") as got:
        await http.request("get_lead", "GET", "/x", parse=parse, idempotent=True)
    assert got.value.status == 200
    [call] = sink.calls
    assert (call.status, call.error_class) == (200, "malformed")


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            200, text="<html><body>Maintenance</body></html>", headers={"content-type": "text/html"}
        ),
        httpx.Response(
            200, content=b'{"id": "00Q5e0', headers={"content-type": "application/json"}
        ),
        httpx.Response(200, content=b"", headers={"content-type": "application/json"}),
        httpx.Response(200, content=b"\xff\xfe{}", headers={"content-type": "application/json"}),
        httpx.Response(200, content=b'{"id": 1}'),
    ],
    ids=["html", "truncated-json", "empty", "not-utf8", "no-content-type"],
)
async def test_json_body_of_a_non_json_answer_is_malformed(
    build: Build, sink: Sink, clock: VirtualClock, response: httpx.Response
) -> None:
    """An HTML page, truncated JSON or a body without a JSON type is recorded as ``malformed``."""
    http = build(script(response, ok(), ok()))
    task = asyncio.create_task(read(http))
    await clock.advance(10)
    with pytest.raises(MalformedResponse):
        outcome(task)
    assert sink.classes() == ["malformed"]


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b'{"id": "1"}', {"id": "1"}),
        ("application/json;charset=UTF-8", b"[1, 2]", [1, 2]),
        ("application/problem+json", b'{"title": "x"}', {"title": "x"}),
    ],
)
def test_json_body_accepts_json_content_types(
    content_type: str, body: bytes, expected: object
) -> None:
    """Any JSON media type, with or without parameters, is parsed."""
    response = httpx.Response(200, content=body, headers={"content-type": content_type})
    assert json_body(response, "thing") == expected


def test_a_json_document_is_read_once_per_response(monkeypatch: pytest.MonkeyPatch) -> None:
    """A classifier and a parser reading one answer (Marketo's) share one reading; a body that
    is not JSON is refused each time it is asked for."""
    readings: list[bytes] = []
    real = json_codec.loads
    monkeypatch.setattr(json_codec, "loads", lambda body: readings.append(body) or real(body))
    response = httpx.Response(200, content=b'{"success": true}')
    assert json_document(response) is json_document(response) == {"success": True}
    assert readings == [b'{"success": true}']
    garbage = httpx.Response(200, content=b"<html>")
    for _ in range(2):
        with pytest.raises(ValueError):
            json_document(garbage)


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("text/html; charset=utf-8", b"<html></html>", "thing: expected JSON, got text/html"),
        (None, b"{}", "thing: expected JSON, got no content type"),
        ("application/json", b'{"id": "00Q', "thing: body is not valid JSON"),
    ],
)
def test_json_body_says_what_is_wrong(content_type: str | None, body: bytes, message: str) -> None:
    """A malformed body's error names what was expected and keeps the status."""
    headers = {"content-type": content_type} if content_type else {}
    response = httpx.Response(502, content=body, headers=headers)
    with pytest.raises(MalformedResponse) as caught:
        json_body(response, "thing")
    assert str(caught.value) == message
    assert caught.value.status == 502


async def test_a_body_that_fails_to_decompress_is_malformed(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A body that contradicts its Content-Encoding is the vendor's ``malformed``, recorded."""
    broken = httpx.Response(
        200,
        stream=httpx.ByteStream(b"not gzip at all"),  # not decoded until the client reads it
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    http = build(script(broken, ok(), ok()))
    task = asyncio.create_task(read(http))
    await clock.advance(10)
    with pytest.raises(MalformedResponse):
        outcome(task)
    assert sink.classes()[0] == "malformed"


# -- throttling --------------------------------------------------------------------------------


async def test_clock_throttler_releases_when_the_oldest_call_leaves_the_window(
    clock: VirtualClock,
) -> None:
    """With 2 calls per 10 s, the third acquire returns exactly when the first call is 10 s old."""
    throttler = ClockThrottler(Rate(2, 10), clock)
    acquired: list[float] = []

    async def take() -> None:
        await throttler.acquire()
        acquired.append(clock.monotonic())

    await clock.advance(1)
    tasks = [asyncio.create_task(take()) for _ in range(2)]
    await clock.advance(2)
    tasks += [asyncio.create_task(take()) for _ in range(2)]
    await clock.advance(7.5)
    assert acquired == [1.0, 1.0]
    await clock.advance(0.5)
    assert acquired == [1.0, 1.0, 11.0, 11.0]
    assert all(task.done() for task in tasks)


async def test_third_request_waits_for_the_window_and_limits_are_separate(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """Rate(2, 10) lets two searches go at once, holds the third to 10 s; creates are not held."""
    http = build(
        lambda request: ok(),
        rates={"search": Rate(2, 10), "create": Rate(2, 10)},
    )
    searches = [asyncio.create_task(read(http, limit="search")) for _ in range(3)]
    await clock.advance(0)
    creates = [asyncio.create_task(create(http, limit="create")) for _ in range(2)]
    await clock.advance(9.999)
    assert sorted(sink.offsets()) == [0.0] * 4
    await clock.advance(0.001)
    assert [outcome(task) for task in (*searches, *creates)] == [CREATED["id"]] * 5
    by_operation = [
        (call.operation, offset) for call, offset in zip(sink.calls, sink.offsets(), strict=True)
    ]
    assert sorted(by_operation) == [
        ("create_lead", 0.0),
        ("create_lead", 0.0),
        ("get_lead", 0.0),
        ("get_lead", 0.0),
        ("get_lead", 10.0),
    ]


async def test_unlisted_limits_share_the_default_rate(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A limit without its own rate falls back to the ``default`` rate; a listed one does not."""
    http = build(lambda request: ok(), rates={"default": Rate(1, 5), "search": Rate(2, 5)})
    searches = [asyncio.create_task(read(http, limit="search")) for _ in range(2)]
    await clock.advance(0)
    others = [asyncio.create_task(create(http, limit="other")) for _ in range(2)]
    await clock.advance(10)
    assert [outcome(task) for task in (*searches, *others)] == [CREATED["id"]] * 4
    assert sink.offsets() == [0.0, 0.0, 0.0, 5.0]
    assert [call.operation for call in sink.calls] == ["get_lead"] * 2 + ["create_lead"] * 2


# -- the vendor's clock ------------------------------------------------------------------------


def http_date(moment: datetime) -> str:
    """A ``Date`` header as a server writes it: truncated to the second, in GMT."""
    return email.utils.format_datetime(moment, usegmt=True)


def phases(count: int, step: float = 0.137) -> Iterable[datetime]:
    """Our clock at ``count`` instants spread across sub-second phases."""
    for index in range(count):
        yield DEFAULT_VIRTUAL_START + timedelta(seconds=index * step)


def test_offset_converges_from_many_sub_second_phases() -> None:
    """A server 12.3 s ahead, sampled at many phases, is pinned to within 0.1 s."""
    offset = ClockOffset()
    for ours in phases(50):
        offset.observe(http_date(ours + timedelta(seconds=12.3)), ours, ours)
    assert offset.samples == 50
    assert offset.low is not None and offset.high is not None
    assert offset.low <= 12.3 <= offset.high
    assert offset.high - offset.low < 0.2
    assert offset.seconds == pytest.approx(12.3, abs=0.1)


def test_one_sample_bounds_the_offset_to_a_second() -> None:
    """A single Date header gives a one-second-wide interval that holds the true offset."""
    offset = ClockOffset()
    ours = DEFAULT_VIRTUAL_START + timedelta(seconds=0.5)
    offset.observe(http_date(ours + timedelta(seconds=12.3)), ours, ours)
    assert offset.low == pytest.approx(11.5)
    assert offset.high == pytest.approx(12.5)
    assert offset.seconds == pytest.approx(12.0)


def test_bounds_contain_the_true_offset_when_the_round_trip_takes_time() -> None:
    """With 0.2 s between send and receive, the bounds still hold the true offset."""
    rng = random.Random(7)
    offset = ClockOffset()
    for sent in phases(200, step=0.713):
        received = sent + timedelta(seconds=0.2)
        read_at = sent + timedelta(seconds=rng.uniform(0, 0.2))
        offset.observe(http_date(read_at + timedelta(seconds=12.3)), sent, received)
        assert offset.low is not None and offset.high is not None
        assert offset.low <= 12.3 <= offset.high
    assert offset.seconds == pytest.approx(12.3, abs=0.2)


def test_a_clock_step_restarts_the_bounds() -> None:
    """When the server's clock jumps, the next disjoint sample replaces the old bounds."""
    offset = ClockOffset()
    for ours in phases(30):
        offset.observe(http_date(ours + timedelta(seconds=12.3)), ours, ours)
    later = DEFAULT_VIRTUAL_START + timedelta(seconds=3600.25)
    offset.observe(http_date(later - timedelta(seconds=40)), later, later)
    assert offset.samples == 31
    assert offset.low == pytest.approx(-40.25)
    assert offset.high == pytest.approx(-39.25)
    for ours in phases(30):
        ours += timedelta(seconds=3601)
        offset.observe(http_date(ours - timedelta(seconds=40)), ours, ours)
    assert offset.seconds == pytest.approx(-40, abs=0.1)


@pytest.mark.parametrize(
    "header",
    [None, "", "yesterday", "Mon, 99 Foo 2026 25:61:61 GMT", "Mon, 05 Oct 2026 09:00:00 -0000"],
)
def test_missing_or_garbage_date_headers_are_ignored(header: str | None) -> None:
    """No header, an unparsable one or one without a zone leaves the estimate untouched."""
    offset = ClockOffset()
    ours = DEFAULT_VIRTUAL_START
    offset.observe(header, ours, ours)
    assert (offset.low, offset.high, offset.samples, offset.seconds) == (None, None, 0, None)
    offset.observe(http_date(ours + timedelta(seconds=5)), ours, ours)
    offset.observe(header, ours, ours)
    assert offset.samples == 1
    assert offset.seconds == pytest.approx(5.5)


async def test_account_http_learns_the_offset_from_date_headers(
    build: Build, clock: VirtualClock
) -> None:
    """Responses' Date headers, read across sub-second phases, pin the vendor's clock."""

    def handler(request: httpx.Request) -> httpx.Response:
        return ok(Date=http_date(clock.now() + timedelta(seconds=12.3)))

    http = build(handler)
    for _ in range(40):
        await read(http)
        await clock.advance(0.137)
    assert http.offset.samples == 40
    assert http.offset.seconds == pytest.approx(12.3, abs=0.1)


# -- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": " 120 "}, 120.0),
        ({"Retry-After": "0"}, 0.0),
        (
            {
                "Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT",
                "Date": "Wed, 21 Oct 2015 07:27:30 GMT",
            },
            30.0,
        ),
        (
            {
                "Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT",
                "Date": "Wed, 21 Oct 2015 07:29:00 GMT",
            },
            0.0,
        ),
        # An HTTP date is relative to the server's clock: without its Date it says nothing.
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT", "Date": "garbage"}, None),
        ({"Retry-After": "tomorrow", "Date": "Wed, 21 Oct 2015 07:27:30 GMT"}, None),
        ({}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "1.5"}, None),
        pytest.param(
            [(b"Retry-After", b"\xb2")],
            None,
            id="superscript-digit",
        ),
    ],
)
def test_retry_after(headers: Any, seconds: float | None) -> None:
    """Delta-seconds and HTTP-date forms (against the response's Date) become seconds."""
    assert retry_after(httpx.Response(429, headers=headers)) == seconds


# -- secrets -----------------------------------------------------------------------------------

TOKEN = "00D5e000000abcd!AQ8AQH7xSecretAccessToken.x9"


async def test_no_token_query_or_header_value_leaks_into_calls_or_errors(
    build: Build, sink: Sink, clock: VirtualClock
) -> None:
    """A transport error quoting the token is masked; URLs and headers are never recorded."""
    redactor = Redactor()
    redactor.add(TOKEN)

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused: Authorization: Bearer {TOKEN}; token {TOKEN}")

    http = build(handler, redactor=redactor)
    task = asyncio.create_task(
        http.request(
            "search",
            "GET",
            "/services/data/v60.0/query",
            params={"q": "SELECT Id FROM Lead WHERE Email = 'query-needle@example.com'"},
            headers={"Authorization": f"Bearer {TOKEN}", "X-Trace": "header-needle-4711"},
            parse=lead_id,
            idempotent=True,
        )
    )
    await clock.advance(10)
    with pytest.raises(ConnectionFailed) as caught:
        outcome(task)
    emitted = [str(caught.value), *(repr(call) for call in sink.calls)]
    for needle in (TOKEN, "query-needle", "header-needle", "/services/data", "SELECT"):
        assert all(needle not in text for text in emitted), needle
    assert "[redacted]" in str(caught.value)


async def test_a_malformed_answer_echoing_the_token_is_masked(build: Build, sink: Sink) -> None:
    """A parser error quoting the response body passes through the redactor too."""
    redactor = Redactor()
    redactor.add(TOKEN)

    def parse(response: httpx.Response) -> str:
        raise KeyError(f"no id in {response.text}")

    http = build(script(httpx.Response(200, json={"echo": TOKEN})), redactor=redactor)
    with pytest.raises(MalformedResponse) as caught:
        await http.request("get_lead", "GET", "/x", parse=parse, idempotent=True)
    assert TOKEN not in str(caught.value)
    assert all(TOKEN not in repr(call) for call in sink.calls)
