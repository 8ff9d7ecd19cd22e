"""What every HubSpot endpoint shares: error bodies, bearer auth, rate limits, faults, timestamps.

Sources (docs/reference/vendor-apis.md §1.2-1.5):
- Error schema and 429 body: repo HubSpot/HubSpot-public-api-spec-collection,
  ``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json`` (``Error``), and
  https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines
- Rate-limit headers: the usage-guidelines page above and
  https://developers.hubspot.com/changelog/rate-limit-headers-will-now-appear-for-oauth-authenticated-calls
- Private-app bearer tokens:
  https://developers.hubspot.com/docs/apps/legacy-apps/authentication/intro-to-auth

Every route is wrapped by one ``Gate`` so the order of checks (slow, outage, auth, throttle,
handler, malformed) is the same everywhere and a fault means the same thing on every endpoint.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from syncwatch import json_codec
from syncwatch.sandbox.common import delay_if_slow, garbage_if_malformed, malformed_in_force
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.world import World

VENDOR = "hubspot"
Handler = Callable[[Request], Awaitable[Response]]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(moment: datetime) -> str:
    """HubSpot's timestamp format: ISO-8601 UTC with milliseconds, ``2019-10-30T03:30:17.883Z``."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, the form HubSpot takes datetime filter values in."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def correlation_id(world: World) -> str:
    """A uuid4 drawn from the world's seeded dice, so a run's error bodies repeat exactly."""
    return str(uuid.UUID(int=world.rng.getrandbits(128), version=4))


async def read_json(request: Request) -> Any:
    """The request body as JSON, or None when it is not JSON at all."""
    try:
        return json_codec.loads(await request.body())
    except ValueError:
        return None


def error_response(
    world: World, status: int, message: str, category: str, **extra: Any
) -> JSONResponse:
    """The CRM ``Error`` schema: status, message, correlationId, category (+ optional keys)."""
    body = {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(world),
        "category": category,
        **extra,
    }
    return JSONResponse(body, status_code=status)


_CREDENTIALS_NOT_FOUND = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)

_LIMIT_MESSAGES = {
    "DAILY": "You have reached your daily limit.",
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    # unconfirmed: the search limit's policyName and wording; HubSpot names SECONDLY in practice.
    "SECONDLY": "You have reached your secondly limit.",
}


def rate_limited(world: World, policy_name: str) -> JSONResponse:
    """The documented 429 body; ``policyName`` says which limit was hit."""
    body = {
        "status": "error",
        "message": _LIMIT_MESSAGES[policy_name],
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(world),
        "policyName": policy_name,
        "requestId": correlation_id(world),
    }
    # unconfirmed: whether HubSpot sends Retry-After on a 429; the sandbox does not.
    return JSONResponse(body, status_code=429)


@dataclass(frozen=True)
class Window:
    """A rolling request window: at most ``size`` requests per ``seconds``, per key."""

    name: str
    size: int
    seconds: float
    policy_name: str


@dataclass(frozen=True)
class Policy:
    """Which checks an endpoint gets: bearer auth, the daily count, a window, quota headers."""

    auth: bool
    daily: bool
    window: Window
    headers: bool


class RateLimits:
    """The counters behind HubSpot's quota headers and its 429s, on the sandbox clock.

    The daily count resets at UTC midnight. The real account resets at midnight in the time zone
    set on the account (legacydocs.hubspot.com/apps/api_guidelines); the sandbox has none.
    """

    def __init__(self, daily_limit: int) -> None:
        self.daily_limit = daily_limit
        self.used_today = 0
        self._day: date | None = None
        self._windows: dict[str, deque[datetime]] = {}

    def daily_remaining(self, now: datetime) -> int:
        today = now.astimezone(UTC).date()
        if today != self._day:
            self._day, self.used_today = today, 0
        return max(0, self.daily_limit - self.used_today)

    def window_used(self, window: Window, key: str, now: datetime) -> int:
        stamps = self._windows.setdefault(f"{window.name}:{key}", deque())
        horizon = now - timedelta(seconds=window.seconds)
        while stamps and stamps[0] <= horizon:
            stamps.popleft()
        return len(stamps)

    def admit(self, policy: Policy, key: str, now: datetime) -> str | None:
        """Count one request, or return the ``policyName`` of the limit that refuses it."""
        if policy.daily and self.daily_remaining(now) <= 0:
            return "DAILY"
        if self.window_used(policy.window, key, now) >= policy.window.size:
            return policy.window.policy_name
        if policy.daily:
            self.used_today += 1
        self._windows[f"{policy.window.name}:{key}"].append(now)
        return None


class Gate:
    """The checks HubSpot makes before and after a handler, shared by both HubSpot hosts."""

    def __init__(self, world: World) -> None:
        spec = world.scenario.hubspot
        self.world = world
        self.limits = RateLimits(spec.daily_limit)
        burst = Window("burst", spec.burst_max, spec.burst_interval, "TEN_SECONDLY_ROLLING")
        # Search: "4 requests/second per authentication token", exempt from the ten-secondly
        # limit; no rate headers (vendor-apis.md §1.2). unconfirmed: that search counts daily.
        search = Window("search", 4, 1.0, "SECONDLY")
        forms = Window("forms", 50, 10.0, "TEN_SECONDLY_ROLLING")
        self.crm = Policy(auth=True, daily=True, window=burst, headers=True)
        self.search = Policy(auth=True, daily=True, window=search, headers=False)
        # Secure forms get "the standard account limits"; unconfirmed: whether they carry headers.
        self.secure_form = Policy(auth=True, daily=True, window=burst, headers=False)
        # unconfirmed: whether unauthenticated submissions count toward the daily API limit.
        self.open_form = Policy(auth=False, daily=False, window=forms, headers=False)

    def wrap(self, handler: Handler, policy: Policy) -> Handler:
        """``handler`` behind HubSpot's checks, in the order a request meets them."""

        async def endpoint(request: Request) -> Response:
            await delay_if_slow(self.world, VENDOR)
            now = self.world.clock.now()
            if refusal := self._outage(now) or self._authenticate(request, policy, now):
                return refusal
            key = _limit_key(request, policy)
            response = self._throttle(policy, key, now) or await self._run(handler, request)
            if policy.headers:
                response.headers.update(self.rate_headers(key, now))
            return response

        return endpoint

    def rate_headers(self, key: str, now: datetime) -> dict[str, str]:
        """``X-HubSpot-RateLimit-*`` after this request; a quota fault shows as 0 remaining."""
        window = self.crm.window
        faults = self.world.faults
        remaining = window.size - self.limits.window_used(window, key, now)
        daily = self.limits.daily_remaining(now)
        return {
            "X-HubSpot-RateLimit-Daily": str(self.limits.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(
                0 if faults.active("quota_exhausted", VENDOR, now) else daily
            ),
            "X-HubSpot-RateLimit-Max": str(window.size),
            "X-HubSpot-RateLimit-Remaining": str(
                0 if faults.active("rate_limit", VENDOR, now) else max(0, remaining)
            ),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(round(window.seconds * 1000)),
        }

    def _outage(self, now: datetime) -> Response | None:
        fault = self.world.faults.fire("outage", VENDOR, now)
        if fault is None:
            return None
        # unconfirmed: HubSpot's 5xx body; the CRM Error schema with an invented category.
        return error_response(
            self.world, fault.spec.status, "Internal error, please try again.", "INTERNAL_ERROR"
        )

    def _authenticate(self, request: Request, policy: Policy, now: datetime) -> Response | None:
        if not policy.auth:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        pinned = self.world.scenario.hubspot.token
        missing = scheme.lower() != "bearer" or not token.strip()
        if missing or (pinned is not None and token.strip() != pinned):
            # Real 401 bodies captured in HubSpot/hubspot-api-nodejs#148 and #432 (secondary
            # source); an unknown token gets the same answer (HubSpot/hubspot-api-php#363).
            return self._unauthorized(_CREDENTIALS_NOT_FOUND, "INVALID_AUTHENTICATION")
        if self.world.faults.fire("token_expiry", VENDOR, now):
            # A private-app token never expires; an OAuth access token does (30 min). Body as
            # captured in airbytehq/airbyte#74726 (secondary source).
            return error_response(
                self.world,
                401,
                "The OAuth token used to make this call expired 0 second(s) ago.",
                "EXPIRED_AUTHENTICATION",
                context={"expire time": [iso_ms(now)]},
            )
        return None

    def _unauthorized(self, message: str, category: str) -> Response:
        return error_response(self.world, 401, message, category)

    def _throttle(self, policy: Policy, key: str, now: datetime) -> Response | None:
        faults = self.world.faults
        if faults.fire("rate_limit", VENDOR, now):
            return rate_limited(self.world, "TEN_SECONDLY_ROLLING")
        if faults.fire("quota_exhausted", VENDOR, now):
            return rate_limited(self.world, "DAILY")
        refused = self.limits.admit(policy, key, now)
        return rate_limited(self.world, refused) if refused else None

    async def _run(self, handler: Handler, request: Request) -> Response:
        response = await handler(request)
        if 200 <= response.status_code < 300 and response.body:
            if not malformed_in_force(self.world, VENDOR):
                return response
            payload = json.loads(bytes(response.body))
            return garbage_if_malformed(self.world, VENDOR, payload) or response
        return response


def _limit_key(request: Request, policy: Policy) -> str:
    """Burst and search limits are per token (per app); the open forms limit is per account."""
    if policy.auth:
        return request.headers["authorization"].partition(" ")[2].strip()
    return str(request.path_params.get("portalId", ""))


def gate_for(world: World) -> Gate:
    """The one gate of this world, so forms and CRM routes draw on one account's quota."""
    gate = world.vendor_state.get(VENDOR)
    if not isinstance(gate, Gate):
        gate = world.vendor_state[VENDOR] = Gate(world)
    return gate
