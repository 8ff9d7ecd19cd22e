"""What every Marketo endpoint shares: the answer envelope, error codes, tokens, limits, faults.

Sources (docs/reference/vendor-apis.md §3; repo AdobeDocs/marketo-developer.en, ``help/rest-api/``):
- errors come back as HTTP 200 with ``success: false`` and ``errors: [{code, message}]``, codes
  quoted; record-level ones as ``status: skipped`` with ``reasons``: ``error-codes.md``
- 50,000 calls a day (reset 12:00 AM CST), 100 calls per 20 s, 10 concurrent: ``rest-api.md``
- tokens: 3,600 s lifespan, the same token returned while it lives, 601 invalid / 602 expired:
  ``authentication.md``
- the envelope's required keys (``requestId``, ``success``, ``errors``, ``warnings``,
  ``result``) and ``ResponseOfIdentity``: repo AdobeDocs/marketo-apis, ``static/swagger-*.json``

Every REST route is wrapped by one ``Gate`` so the order of checks (concurrency, slow, outage,
token, daily quota, rate window, handler, malformed) is the same everywhere.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from syncwatch import json_codec
from syncwatch.sandbox.common import delay_if_slow, garbage_if_malformed, malformed_in_force
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.world import World

VENDOR = "marketo"
Handler = Callable[[Request], Awaitable[Response]]
CST = timezone(timedelta(hours=-6), "CST")
"""The daily quota "resets daily at 12:00AM CST". unconfirmed: whether that follows US daylight
saving time (CDT); the sandbox keeps standard time all year."""
SCOPE = "api-syncwatch@sandbox.example"
"""The API-only user a token belongs to (``scope``), and the one user in the usage report."""
OUTAGE_CODES = ("604", "608", "611", "713")
MESSAGES = {
    "600": "Empty access token",  # KB ka-28813 only
    "601": "Access token invalid",
    "602": "Access token expired",
    "604": "Request time-out",
    "606": "Max rate limit '100' exceeded with in '20' secs",
    "607": "Daily quota reached",
    "608": "API Temporarily Unavailable",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "611": "System error",
    "615": "Concurrent access limit reached",
    "713": "Transient Error",
}
"""Response-level codes and the descriptions the error-code page gives them."""


def iso_seconds(moment: datetime) -> str:
    """Marketo's lead timestamps: ISO-8601 UTC to the second, ``2015-03-17T00:18:40Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_id(world: World) -> str:
    """``e42b#14272d07d78``: a short hex tag and the hex epoch milliseconds, as in the docs.

    unconfirmed: what the two parts mean; only the outline is shown in examples.
    """
    millis = int(world.clock.now().timestamp() * 1000)
    return f"{world.rng.getrandbits(16):x}#{millis:x}"


def envelope(world: World, result: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A successful answer with every key the Swagger marks required (the doc examples omit
    empty ``errors`` and ``warnings``; a client must accept both)."""
    body = {"requestId": request_id(world), "success": True, "errors": [], "warnings": []}
    return {**body, "result": result or [], **extra}


def failure(world: World, code: str, message: str | None = None) -> JSONResponse:
    """A response-level error: HTTP 200, ``success: false``, the code as a quoted integer."""
    body = envelope(world)
    body.update(success=False, errors=[{"code": code, "message": message or MESSAGES[code]}])
    return JSONResponse(body)


def skipped(code: str, message: str) -> dict[str, Any]:
    """A record-level error: ``status: skipped`` and its ``reasons``."""
    return {"status": "skipped", "reasons": [{"code": code, "message": message}]}


async def read_json(request: Request) -> Any:
    try:
        return json_codec.loads(await request.body())
    except ValueError:
        return None


@dataclass
class Issued:
    token: str
    issued_at: datetime
    expires_at: datetime


class TokenBook:
    """Access tokens of the one LaunchPoint service the sandbox knows."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.current: Issued | None = None
        self._known: dict[str, Issued] = {}

    def issue(self) -> Issued:
        """The live token while it lasts (as Marketo does), else a new ``uuid:int`` one."""
        now = self.world.clock.now()
        if self.current is not None and self.problem(self.current.token) is None:
            return self.current
        lifetime = timedelta(seconds=self.world.scenario.marketo.token_lifetime)
        token = f"{uuid.UUID(int=self.world.rng.getrandbits(128), version=4)}:int"
        self.current = Issued(token, now, now + lifetime)
        self._known = {t: i for t, i in self._known.items() if i.expires_at > now}
        self._known[token] = self.current
        return self.current

    def problem(self, token: str) -> str | None:
        """None for a good token; 602 expired (or issued before a ``token_expiry`` fault began);
        601 for a token never issued. unconfirmed: long-expired tokens may read as 601."""
        issued = self._known.get(token)
        if issued is None:
            return "601"
        now = self.world.clock.now()
        if now >= issued.expires_at or self._revoked(issued, now):
            return "602"
        return None

    def _revoked(self, issued: Issued, now: datetime) -> bool:
        return any(
            fault.kind == "token_expiry"
            and fault.spec.vendor in (None, VENDOR)
            and fault.start <= now
            and issued.issued_at < fault.start
            for fault in self.world.faults.all()
        )


class Usage:
    """Calls per CST day (the ``stats/usage.json`` total) and the rolling 20-second window."""

    def __init__(self) -> None:
        self.day: date | None = None
        self.today = 0
        self._window: deque[datetime] = deque()

    def used_today(self, now: datetime) -> int:
        day = now.astimezone(CST).date()
        if day != self.day:
            self.day, self.today = day, 0
        return self.today

    def in_window(self, now: datetime, seconds: float) -> int:
        horizon = now - timedelta(seconds=seconds)
        while self._window and self._window[0] <= horizon:
            self._window.popleft()
        return len(self._window)

    def admit(self, now: datetime) -> None:
        self.used_today(now)
        self.today += 1
        self._window.append(now)


class Gate:
    """The checks a Marketo instance makes around every REST call, on the sandbox clock."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.tokens = TokenBook(world)
        self.usage = Usage()
        self.in_flight = 0

    def wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.in_flight += 1
            try:
                if self.in_flight > self.world.scenario.marketo.concurrency:
                    return failure(self.world, "615")
                await delay_if_slow(self.world, VENDOR)
                return self._refusal(request) or await self._run(handler, request)
            finally:
                self.in_flight -= 1

        return endpoint

    def _refusal(self, request: Request) -> Response | None:
        """The first check that fails, in order; an admitted call is counted (only those:
        unconfirmed for 606, 607 and 615, which the docs do not mark as uncounted)."""
        now = self.world.clock.now()
        faults, spec = self.world.faults, self.world.scenario.marketo
        if outage := faults.fire("outage", VENDOR, now):
            code = outage.spec.value if outage.spec.value in OUTAGE_CODES else "608"
            return failure(self.world, code)
        if refused := self._token_problem(request):
            return failure(self.world, refused)
        used = self.usage.used_today(now)
        if faults.fire("quota_exhausted", VENDOR, now) or used >= spec.daily_limit:
            return failure(self.world, "607")
        full = self.usage.in_window(now, spec.rate_interval) >= spec.rate_max
        if faults.fire("rate_limit", VENDOR, now) or full:
            message = (
                f"Max rate limit '{spec.rate_max}' exceeded with in '{spec.rate_interval:g}' secs"
            )
            return failure(self.world, "606", message)
        self.usage.admit(now)
        return None

    def _token_problem(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        # unconfirmed: the query parameter still works until its (disputed) removal date.
        token = token or request.query_params.get("access_token") or ""
        return "600" if not token else self.tokens.problem(token)

    async def _run(self, handler: Handler, request: Request) -> Response:
        response = await handler(request)
        if response.status_code == 200 and response.body:
            if not malformed_in_force(self.world, VENDOR):
                return response
            payload = json.loads(bytes(response.body))
            if payload.get("success") is True:
                return garbage_if_malformed(self.world, VENDOR, payload) or response
        return response


def gate_for(world: World) -> Gate:
    """The one gate of this world, so every Marketo route draws on one subscription's quota."""
    gate = world.vendor_state.get(VENDOR)
    if not isinstance(gate, Gate):
        gate = world.vendor_state[VENDOR] = Gate(world)
    return gate
