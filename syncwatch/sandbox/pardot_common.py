"""What every Account Engagement (Pardot) API call shares: error bodies, auth, limits, faults.

Sources (docs/reference/vendor-apis.md §5):
- every request carries ``Authorization: Bearer <Salesforce access token>`` and
  ``Pardot-Business-Unit-Id`` (``0Uv``, 18 characters):
  https://developer.salesforce.com/docs/marketing/pardot/guide/authentication.html
- the v5 error body ``{"code", "message"}`` and the codes used here (4, 13, 49, 66, 122, 180,
  181, 183, 184, 192, 201, 202): https://developer.salesforce.com/docs/marketing/pardot/guide/error-codes.html
  (repo pardot/api-docs, ``docs/kb/error-codes-messages.md``, for 66 and 122)
- up to five concurrent requests; 25,000 to 100,000 calls a day by edition:
  https://help.salesforce.com/s/articleView?id=sf.pardot_admin_api_using.htm&language=en_US&type=5
- ``X-Return-Api-Usage`` asks for an ``x-api-usage`` header ("the number of API calls made in
  the last day over the maximum"): the v5 overview, as secondary sources quote it
  (API Evangelist ``pardot-rate-limits.yml``)

The sandbox's Salesforce OAuth issues the tokens (``salesforce_oauth.tokens_for``): one token
from ``/salesforce/services/oauth2/token`` works here, as a real org's does for its business
unit. Every API route is wrapped by one ``Gate`` so the order of checks (concurrency, slow,
outage, bearer, business unit header, token, business unit, daily quota, rate, handler,
malformed) is the same everywhere. unconfirmed: that order, the HTTP status of each coded error
(66, 122 and 202 answer 429 here, 201 answers 403), and the ``x-api-usage`` format (``USED/MAX``).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from syncwatch.sandbox.common import delay_if_slow, garbage_if_malformed, malformed_in_force
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.salesforce_oauth import Session, tokens_for
from syncwatch.sandbox.world import World

VENDOR = "pardot"
BUSINESS_UNIT_HEADER = "pardot-business-unit-id"
USAGE_REQUEST_HEADER = "x-return-api-usage"
USAGE_HEADER = "x-api-usage"
Handler = Callable[[Request], Awaitable[Response]]

MESSAGES = {
    4: "Invalid prospect email address",
    5: "Invalid query parameters",
    13: "One or more required parameters are missing",
    49: "Access Denied",
    66: "You have exceeded your concurrent request limit.  Please wait, before trying again",
    122: "Daily API rate limit met",
    150: "Input needs to be valid JSON",
    153: "Missing required property in request",
    154: "Invalid property in request",
    180: "One or more of the specified fields are invalid",
    181: "A required header is missing: Pardot-Business-Unit-Id header not found on request.",
    183: "An internal error occurred, please try your request again",
    184: "access_token is invalid, unknown, or malformed",
    192: "Object specified does not exist",
    201: "Business Unit specified in Pardot-Business-Unit-Id header not found or inactive.",
    202: "Minute rate limit met",
}
"""Codes and messages of the error-codes page (181's suffix: as clients quote the answer)."""
STATUSES = {49: 401, 66: 429, 122: 429, 183: 500, 184: 401, 192: 404, 201: 403, 202: 429}
"""HTTP status per code; every other code answers 400. unconfirmed: all but 49 (a 401, as a
client measured for a request without a token)."""


def failure(code: int, message: str | None = None, status: int | None = None) -> JSONResponse:
    """The v5 error body: ``{"code": <int>, "message": <str>}``."""
    body = {"code": code, "message": message or MESSAGES[code]}
    return JSONResponse(body, status_code=status or STATUSES.get(code, 400))


def iso(moment: datetime) -> str:
    """v5 datetimes: ISO 8601 with an offset. unconfirmed: real answers use the business unit's
    time zone; the sandbox answers UTC (``+00:00``)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


class Usage:
    """Calls per (UTC) day and the rolling one-minute window. unconfirmed: the documented reset
    is the start of the day in the business unit's time zone."""

    def __init__(self) -> None:
        self.day: date | None = None
        self.today = 0
        self._window: deque[datetime] = deque()

    def used_today(self, now: datetime) -> int:
        if now.date() != self.day:
            self.day, self.today = now.date(), 0
        return self.today

    def in_last_minute(self, now: datetime) -> int:
        horizon = now - timedelta(minutes=1)
        while self._window and self._window[0] <= horizon:
            self._window.popleft()
        return len(self._window)

    def admit(self, now: datetime) -> None:
        self.used_today(now)
        self.today += 1
        self._window.append(now)


class Gate:
    """The checks the business unit makes around every API call, on the sandbox clock."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.tokens = tokens_for(world)
        self.usage = Usage()
        self.in_flight = 0

    def wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.in_flight += 1
            try:
                if self.in_flight > self.world.scenario.pardot.concurrency:
                    return self._with_usage(request, failure(66))
                await delay_if_slow(self.world, VENDOR)
                response = self._refusal(request) or await self._run(handler, request)
                return self._with_usage(request, response)
            finally:
                self.in_flight -= 1

        return endpoint

    def _refusal(self, request: Request) -> Response | None:
        """The first check that fails, in order; an admitted call is counted (only those:
        unconfirmed whether refused calls count against the day)."""
        now = self.world.clock.now()
        faults, spec = self.world.faults, self.world.scenario.pardot
        if outage := faults.fire("outage", VENDOR, now):
            return failure(183, status=outage.spec.status)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if not token:
            return failure(49)
        business_unit = request.headers.get(BUSINESS_UNIT_HEADER, "").strip()
        if not business_unit:
            return failure(181)
        if not self._token_ok(token, now):
            return failure(184)
        if business_unit != spec.business_unit_id:
            return failure(201)
        spent = self.usage.used_today(now) >= spec.daily_limit
        if faults.fire("quota_exhausted", VENDOR, now) or spent:
            return failure(122)
        if faults.fire("rate_limit", VENDOR, now):
            return failure(66)
        if spec.minute_limit is not None and self.usage.in_last_minute(now) >= spec.minute_limit:
            return failure(202)
        self.usage.admit(now)
        return None

    def _token_ok(self, token: str, now: datetime) -> bool:
        """Issued by the org, still valid there, and not revoked by a Pardot ``token_expiry``."""
        session = self.tokens.session_of(token)
        return session is not None and self.tokens.valid(token) and not self._revoked(session, now)

    def _revoked(self, session: Session, now: datetime) -> bool:
        return any(
            fault.kind == "token_expiry"
            and fault.spec.vendor == VENDOR
            and fault.start <= now
            and session.issued_at < fault.start
            for fault in self.world.faults.all()
        )

    async def _run(self, handler: Handler, request: Request) -> Response:
        response = await handler(request)
        if 200 <= response.status_code < 300 and response.body:
            if not malformed_in_force(self.world, VENDOR):
                return response
            payload = json.loads(bytes(response.body))
            return garbage_if_malformed(self.world, VENDOR, payload) or response
        return response

    def _with_usage(self, request: Request, response: Response) -> Response:
        """``x-api-usage: USED/MAX`` when the request asked for it (unconfirmed: the format)."""
        if request.headers.get(USAGE_REQUEST_HEADER, "").strip().lower() in ("1", "true"):
            now = self.world.clock.now()
            limit = self.world.scenario.pardot.daily_limit
            response.headers[USAGE_HEADER] = f"{self.usage.used_today(now)}/{limit}"
        return response


def gate_for(world: World) -> Gate:
    """The one gate of this world, so every route draws on one business unit's allowance."""
    gate = world.vendor_state.get(VENDOR)
    if not isinstance(gate, Gate):
        gate = world.vendor_state[VENDOR] = Gate(world)
    return gate
