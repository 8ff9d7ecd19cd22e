"""The HTTP layer every vendor adapter speaks through: one ``AccountHttp`` per vendor account.

It owns what no adapter should do on its own: explicit call timeouts on the injected clock,
bounded retries (tenacity) that honour ``Retry-After`` and never resend a create the vendor may
have acted on, per-account throttling at the vendor's documented rate (asyncio-throttle, driven
by the injected clock) and concurrency (where a vendor documents a bound), the vendor's clock
offset from ``Date`` headers (both in ``http_timing``), recording every attempt as an API call
with its quota figures, and keeping no vendor cookie (``http_wire``: what goes on the wire, and
how it is built cheaply).
Adapters supply what only they know: how to classify a response (``Classifier``) and where its
quota figures are (``QuotaParser`` for headers; ``report_quota`` for a vendor, like Marketo, that
reports usage in a response body).

Nothing here logs a URL, a header or a body; error messages pass through the redactor. httpx's
own logger does log request URLs (at INFO), and one vendor (Marketo) puts a client secret in the
token request's query string, so that logger's lines pass through the redactor too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from syncwatch import json_codec
from syncwatch.clock import Clock
from syncwatch.errors import (
    AuthError,
    CallTimeout,
    ConnectionFailed,
    MalformedResponse,
    MonitorNetworkError,
    RateLimited,
    ValidationRejected,
    VendorError,
    VendorUnavailable,
)
from syncwatch.events import ApiCall, QuotaFigure

# Re-exported: adapters name a documented rate, and tests the timing parts, through this module.
from syncwatch.http_timing import ClockOffset as ClockOffset
from syncwatch.http_timing import ClockThrottler as ClockThrottler
from syncwatch.http_timing import Rate as Rate
from syncwatch.http_wire import FixedUrls, refuse_cookies, send_capped
from syncwatch.redact import REDACTOR, Redactor

Classifier = Callable[[httpx.Response], VendorError | None]
"""A vendor's reading of a response: the error it means, or None when it is a success."""
QuotaParser = Callable[[httpx.Headers], list[QuotaFigure]]
T = TypeVar("T")

DEFAULT_CALL_TIMEOUT_S = 30.0
MAX_ATTEMPTS = 3
MAX_RETRY_WAIT_S = 60.0
"""A ``Retry-After`` longer than this is not waited for: the probe fails now and says why."""
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""A response body (decoded) longer than this is refused unread as ``malformed``. The largest
documented answers the adapters ask for are pages of a few thousand records (Dataverse's 5,000,
SOQL's 2,000), a few MB at most; without a bound a broken proxy streaming forever would hold
all of it in memory."""


class _RedactStdlibRecord(logging.Filter):
    """Renders an httpx/httpcore log record through the redactor before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = REDACTOR.text(record.getMessage()), None
        return True


_REDACT_RECORDS = _RedactStdlibRecord()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_REDACT_RECORDS)


class CallSink(Protocol):
    """Where every attempted call goes (the store and the metrics, wired by the daemon)."""

    def __call__(self, call: ApiCall, other_windows: tuple[QuotaFigure, ...]) -> None: ...


@dataclass
class NetworkHealth:
    """Our own network, as the daemon's self-check last saw it.

    While it is down, transport failures are the monitor's (class ``monitor``), not the
    vendor's: the evidence behind a credit claim must not blame a vendor for our outage.
    """

    ok: bool = True
    check: Callable[[], Awaitable[bool]] | None = None
    """Runs the self-check now; wired by the daemon when ``self_check_url`` is set."""
    checked_at: float | None = None

    async def confirm(self, clock: Clock, since: float | None = None) -> bool:
        """Is our network fine right now? A call that just failed to connect asks, so the
        first failures of our own outage are not charged to the vendor while the periodic
        self-check has yet to notice. ``since`` is when that call was sent: a passing check
        from before it proves nothing about it, so it is taken again (at most every
        ``MIN_RECHECK_S``); otherwise checks run at most every ``RECHECK_S``."""
        if self.check is None:
            return self.ok
        now = clock.monotonic()
        last = self.checked_at
        if last is None:
            stale = retake = True
        else:
            stale = now - last >= RECHECK_S
            retake = since is not None and last < since and now - last >= MIN_RECHECK_S
        if stale or (self.ok and retake):
            self.checked_at = now
            self.ok = await self.check()
        return self.ok


RECHECK_S = 5.0
MIN_RECHECK_S = 1.0
"""However many calls fail while a vendor is down, the self-check runs at most once a second."""


@dataclass(frozen=True)
class CallContext:
    """What a call was for, recorded beside it."""

    integration: str | None = None
    probe_id: str | None = None


@dataclass
class AccountHttp:
    """One vendor account's client: throttled, timed, retried, recorded."""

    vendor: str
    account: str
    client: httpx.AsyncClient
    clock: Clock
    sink: CallSink
    classify: Classifier
    quota: QuotaParser = lambda _headers: []
    daily_window: str | None = None
    rates: Mapping[str, Rate] = field(default_factory=dict)
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S
    max_attempts: int = MAX_ATTEMPTS
    network: NetworkHealth = field(default_factory=NetworkHealth)
    redactor: Redactor = REDACTOR
    offset: ClockOffset = field(default_factory=ClockOffset)
    max_concurrent: int | None = None
    """Requests in flight at once for this account (Marketo: 10); None leaves it unbounded."""
    _throttlers: dict[str, ClockThrottler] = field(default_factory=dict, init=False)
    _slots: asyncio.Semaphore | None = field(default=None, init=False)
    _urls: FixedUrls = field(default_factory=FixedUrls, init=False)

    def __post_init__(self) -> None:
        """No vendor cookie is kept or sent, whoever built the client (see ``http_wire``)."""
        refuse_cookies(self.client)

    async def request(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        parse: Callable[[httpx.Response], T],
        idempotent: bool,
        limit: str = "default",
        context: CallContext | None = None,
        classify: Classifier | None = None,
        **kwargs: Any,
    ) -> T:
        """Send one logical request and return ``parse(response)``; raises a ``VendorError``.

        ``parse`` runs inside the attempt, so a 2xx whose body is not the documented shape is
        recorded as ``malformed`` rather than as a success the adapter then chokes on.

        The first attempt is made before tenacity is set up: its per-request machinery cost
        about a fifth of what a call costs us, and most calls succeed at once. A failure worth
        retrying is handed to tenacity as the outcome of its own first attempt, so the waits,
        the retries and the stop are tenacity's, exactly as if it had made that attempt.
        """
        call = context or CallContext()
        try:
            return await self._attempt(operation, method, url, limit, call, classify, parse, kwargs)
        except Exception as exc:
            if self.max_attempts < 2 or not _retryable(exc, idempotent):
                raise
            first: Exception | None = exc
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=_retry_wait,
            retry=retry_if_exception(lambda exc: _retryable(exc, idempotent)),
            sleep=self.clock.sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if first is not None:
                    failed, first = first, None
                    raise failed  # the first attempt's outcome, as if tenacity had made it
                return await self._attempt(
                    operation, method, url, limit, call, classify, parse, kwargs
                )
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def _attempt(
        self,
        operation: str,
        method: str,
        url: str,
        limit: str,
        context: CallContext,
        classify: Classifier | None,
        parse: Callable[[httpx.Response], T],
        kwargs: dict[str, Any],
    ) -> T:
        await self._throttler(limit).acquire()
        sent, started = self.clock.now(), self.clock.monotonic()
        response: httpx.Response | None = None
        result: T | None = None
        try:
            response = await self._send(method, url, kwargs)
            response.extensions[_EXCHANGED_AT] = sent + (self.clock.now() - sent) / 2
            error = (classify or self.classify)(response)
            if error is None:
                result = parse(response)
        except VendorError as exc:
            error = exc
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            error = MalformedResponse(
                self._describe(f"{operation} answered an undocumented shape", exc),
                status=response.status_code if response is not None else None,
            )
        received = self.clock.now()
        figures: list[QuotaFigure] = []
        if response is not None:
            self.offset.observe(response.headers.get("date"), sent, received)
            figures = self._figures(response)
        self._record(
            operation, context, sent, self.clock.monotonic() - started, response, error, figures
        )
        if error is not None:
            raise error
        return result  # type: ignore[return-value]  # parse ran and returned a T

    async def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        """The request under our clock's timeout, transport failures translated once, here."""
        sent = self.clock.monotonic()
        try:
            async with self._slot():
                return await within(
                    self.clock, self.call_timeout_s, self._fetch(method, url, kwargs)
                )
        except httpx.DecodingError as exc:
            what = "body does not match its content encoding"
            raise MalformedResponse(self._describe(what, exc)) from exc
        except (TimeoutError, httpx.RequestError) as exc:
            raise await self._translate(exc, sent) from exc

    async def _fetch(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        """Send, and read the body up to ``MAX_RESPONSE_BYTES``; past that, stop reading."""
        request = self._urls.build(self.client, method, url, kwargs)
        who = f"{self.vendor} {self.account}"
        return await send_capped(self.client, request, MAX_RESPONSE_BYTES, who)

    async def _translate(self, exc: Exception, sent: float | None = None) -> VendorError:
        """A transport failure's class: ours (DNS, TLS, self-check failing) or the vendor's."""
        if isinstance(exc, httpx.ConnectError) and _our_side(exc):
            return MonitorNetworkError(self._describe("cannot resolve or verify the host", exc))
        kind: type[VendorError]
        if isinstance(exc, httpx.ConnectTimeout):
            kind, what, acted = CallTimeout, "no connection", False
        elif isinstance(exc, TimeoutError | httpx.TimeoutException):
            kind, what, acted = CallTimeout, "no response", True
        elif isinstance(exc, httpx.ConnectError):
            kind, what, acted = ConnectionFailed, "connection refused", False
        elif isinstance(exc, httpx.TransportError):
            kind, what, acted = ConnectionFailed, "connection failed", True
        else:  # e.g. too many redirects
            kind, what, acted = ConnectionFailed, "request failed", True
        message = self._describe(what, exc)
        if not await self.network.confirm(self.clock, since=sent):
            return MonitorNetworkError(f"{message} (our own network check is failing)")
        return kind(message, may_have_acted=acted)

    def _slot(self) -> AbstractAsyncContextManager[object]:
        """One of the vendor's concurrent-request slots, held only while the request is out."""
        if self.max_concurrent is None:
            return contextlib.nullcontext()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent)
        return self._slots

    def _figures(self, response: httpx.Response) -> list[QuotaFigure]:
        """Quota figures from headers and, where a parser found some, from the body; an
        unreadable header costs the figures, never the call's record."""
        reported = list(response.extensions.get(_REPORTED_QUOTA, ()))
        try:
            return [*self.quota(response.headers), *reported]
        except (ValueError, TypeError, KeyError):
            return reported

    def _describe(self, what: str, exc: Exception) -> str:
        detail = self.redactor.text(str(exc)) or type(exc).__name__
        return f"{self.vendor} {self.account}: {what}: {detail}"

    def _throttler(self, limit: str) -> ClockThrottler:
        throttler = self._throttlers.get(limit)
        if throttler is None:
            rate = self.rates.get(limit) or self.rates.get("default") or Rate(1_000_000, 1.0)
            throttler = self._throttlers[limit] = ClockThrottler(rate, self.clock)
        return throttler

    def _record(
        self,
        operation: str,
        context: CallContext,
        at: datetime,
        duration_s: float,
        response: httpx.Response | None,
        error: VendorError | None,
        figures: list[QuotaFigure],
    ) -> None:
        daily = next((f for f in figures if f.window == self.daily_window), None)
        call = ApiCall(
            at=at,
            vendor=self.vendor,
            account=self.account,
            operation=operation,
            status=response.status_code if response is not None else _status_of(error),
            duration_s=round(max(duration_s, 0.0), 6),
            error_class=error.error_class if error is not None else None,
            integration=context.integration,
            probe_id=context.probe_id,
            quota_used=daily.used if daily else None,
            quota_limit=daily.limit if daily else None,
            quota_window=daily.window if daily else None,
        )
        self.sink(call, tuple(f for f in figures if f is not daily))

    async def aclose(self) -> None:
        await self.client.aclose()


async def within(clock: Clock, seconds: float, request: Awaitable[T]) -> T:
    """``request`` or TimeoutError after ``seconds`` of the injected clock (virtual or real);
    it runs in the caller's task, cancelled at the deadline."""
    async with clock.timeout(seconds):
        return await request


def _status_of(error: VendorError | None) -> int | None:
    """The HTTP status an error saw when its response was not kept (one too long to read)."""
    return error.status if isinstance(error, MalformedResponse) else None


def _our_side(exc: httpx.ConnectError) -> bool:
    """DNS and TLS failures point at our network or trust store, not at the vendor (§6)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        text = str(cause).lower()
        if "name or service not known" in text or "nodename nor servname" in text:
            return True
        if "temporary failure in name resolution" in text or "getaddrinfo" in text:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _retryable(exc: BaseException, idempotent: bool) -> bool:
    if isinstance(exc, RateLimited):
        return exc.retry_after_s is None or exc.retry_after_s <= MAX_RETRY_WAIT_S
    if isinstance(exc, VendorUnavailable):
        return idempotent or not exc.may_have_acted
    return False


def _retry_wait(state: RetryCallState) -> float:
    """``Retry-After`` when the vendor sent one; else 1 s, 2 s, 4 s … capped at 30 s."""
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
        return min(max(exc.retry_after_s, 0.0), MAX_RETRY_WAIT_S)
    return float(min(2 ** (state.attempt_number - 1), 30))


# -- shared classification helpers (vendor modules build on these) --------------------------

_EXCHANGED_AT = "syncwatch.exchanged_at"
_REPORTED_QUOTA = "syncwatch.reported_quota"
_JSON_DOCUMENT = "syncwatch.json_document"


def report_quota(response: httpx.Response, figures: Sequence[QuotaFigure]) -> None:
    """Hand quota figures a parser read from the body to the call's record.

    For vendors that report usage in a response body rather than in headers (Marketo's
    ``stats/usage.json``): the parser runs before the call is recorded, so the figures travel
    with the very call that read them, as header figures do.
    """
    response.extensions[_REPORTED_QUOTA] = tuple(figures)


def exchanged_at(response: httpx.Response) -> datetime:
    """Our clock in the middle of the attempt that got ``response``.

    The moment a vendor accepted a create lies between our send and receive of the attempt
    that succeeded, never in the throttle or retry waits before it.
    """
    moment = response.extensions.get(_EXCHANGED_AT)
    if not isinstance(moment, datetime):
        raise ValueError("response did not come through AccountHttp")
    return moment


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isascii() and value.strip().isdecimal():
        return float(value.strip())
    date = response.headers.get("date")
    if not date:
        return None  # an HTTP date is relative to the server's clock, which we cannot see
    try:
        moment = parsedate_to_datetime(value)
        server = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - server).total_seconds())


def classify_status(response: httpx.Response, message: str) -> VendorError | None:
    """The generic reading of an HTTP status, for what a vendor's own codes do not settle."""
    status = response.status_code
    if status < 400:
        return None
    if status == 429:
        return RateLimited(message, status=status, retry_after_s=retry_after(response))
    if status >= 500:
        return VendorUnavailable(message, status=status)
    if status in (401, 403):
        return AuthError(message, status=status)
    return ValidationRejected(message, status=status)


def json_document(response: httpx.Response) -> Any:
    """The body read as JSON (``json_codec.loads``), once per response: where errors come in
    200 bodies (Marketo), the classifier and the parser both read it. Raises ``ValueError``
    as the reader does; callers only read what it returns."""
    kept = response.extensions.get(_JSON_DOCUMENT)
    if kept is None:
        kept = response.extensions[_JSON_DOCUMENT] = (json_codec.loads(response.content),)
    return kept[0]


def json_body(response: httpx.Response, what: str) -> Any:
    """The parsed JSON body; an HTML page or truncated JSON is ``malformed`` (vendor's fault)."""
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type.lower():
        kind = content_type.split(";")[0] or "no content type"
        raise MalformedResponse(f"{what}: expected JSON, got {kind}", status=response.status_code)
    try:
        return json_document(response)
    except ValueError as exc:
        raise MalformedResponse(
            f"{what}: body is not valid JSON", status=response.status_code
        ) from exc
