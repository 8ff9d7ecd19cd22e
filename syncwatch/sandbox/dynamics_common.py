"""What every Dataverse Web API call shares: the error body, service protection, tokens, faults.

Every route is wrapped by one ``Gate``, so the order of checks is the same everywhere: the
concurrency limit, the slow fault, an outage, the bearer token (for this environment), the
service protection windows (requests and execution time over a sliding 5 minutes, per user),
then the handler; every answer carries ``OData-Version`` and the two ``x-ms-ratelimit-*``
headers, and a 2xx body may be garbled by a ``malformed`` fault.

Vendor docs (repo MicrosoftDocs/powerapps-docs, ``powerapps-docs/developer/data-platform/``):
- the error body ``{"error": {"code", "message"}}``, the headers a response carries:
  ``webapi/compose-http-requests-handle-errors.md``
- 429 with ``Retry-After`` seconds; ``0x80072322`` (6,000 requests), ``0x80072321`` (1,200,000 ms
  of execution time), ``0x80072326`` (52 concurrent), their messages; the
  ``x-ms-ratelimit-burst-remaining-xrm-requests`` and ``-time-remaining-xrm-requests``
  headers, evaluated per user over 300 s: ``api-limits.md``
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from syncwatch.sandbox.common import delay_if_slow, garbage_if_malformed, malformed_in_force
from syncwatch.sandbox.entra import VENDOR, environment_url, tokens_for
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.world import World

Handler = Callable[[Request], Awaitable[Response]]
REQUESTS_CODE, TIME_CODE, CONCURRENCY_CODE = "0x80072322", "0x80072321", "0x80072326"
BURST_HEADER = "x-ms-ratelimit-burst-remaining-xrm-requests"
TIME_HEADER = "x-ms-ratelimit-time-remaining-xrm-requests"
JSON_TYPE = "application/json; odata.metadata=minimal"


def error(status: int, code: str, message: str, **headers: str) -> Response:
    """The documented Web API error body (its ``code`` "frequently empty")."""
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers, media_type=JSON_TYPE)


def odata_json(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(payload, status_code=status, headers=headers, media_type=JSON_TYPE)


class Protection:
    """One user's service protection windows on the one web server the sandbox has.

    unconfirmed: whether refused requests count (only admitted ones do here), and the execution
    time a request is charged (the scenario's ``request_cost``, plus any ``slow`` delay).
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self._admitted: deque[tuple[datetime, float]] = deque()
        self.in_flight = 0

    def _window(self, now: datetime) -> deque[tuple[datetime, float]]:
        horizon = now - timedelta(seconds=self.world.scenario.dynamics.window)
        while self._admitted and self._admitted[0][0] <= horizon:
            self._admitted.popleft()
        return self._admitted

    def remaining(self, now: datetime) -> tuple[int, float]:
        spec, window = self.world.scenario.dynamics, self._window(now)
        used_time = sum(cost for _, cost in window)
        return max(0, spec.burst_limit - len(window)), max(0.0, spec.time_limit - used_time)

    def refusal(self, now: datetime) -> Response | None:
        """429 when either window is spent, ``Retry-After`` when the oldest call leaves it."""
        requests, seconds = self.remaining(now)
        if requests > 0 and seconds > 0:
            return None
        oldest = self._window(now)[0][0]
        window = timedelta(seconds=self.world.scenario.dynamics.window)
        wait = max(1, math.ceil((oldest + window - now).total_seconds()))
        return self.throttled(now, requests == 0, wait)

    def throttled(self, now: datetime, by_count: bool, wait: int) -> Response:
        spec = self.world.scenario.dynamics
        if by_count:
            message = (
                f"Number of requests exceeded the limit of {spec.burst_limit} over time window"
                f" of {spec.window:g} seconds."
            )
            return self.stamp(error(429, REQUESTS_CODE, message, **{"Retry-After": str(wait)}))
        millis = f"{spec.time_limit * 1000:,.0f}"
        message = (
            f"Combined execution time of incoming requests exceeded limit of {millis}"
            f"  milliseconds over time window of {spec.window:g} seconds. Decrease number of"
            " concurrent requests or reduce the duration of requests and try again later."
        )
        return self.stamp(error(429, TIME_CODE, message, **{"Retry-After": str(wait)}))

    def admit(self, now: datetime, cost: float) -> None:
        self._window(now).append((now, cost))

    def stamp(self, response: Response) -> Response:
        """The two advisory headers, as the live service formats them (``1,199.46``)."""
        requests, seconds = self.remaining(self.world.clock.now())
        response.headers[BURST_HEADER] = str(requests)
        response.headers[TIME_HEADER] = f"{seconds:,.2f}"
        response.headers["OData-Version"] = "4.0"
        return response


class Gate:
    """The checks Dataverse makes around every Web API call, on the sandbox clock."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.protection = Protection(world)

    def wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            protection = self.protection
            protection.in_flight += 1
            try:
                if protection.in_flight > self.world.scenario.dynamics.concurrency:
                    limit = self.world.scenario.dynamics.concurrency
                    message = f"Number of concurrent requests exceeded the limit of {limit}."
                    # unconfirmed: the Retry-After a concurrency refusal carries.
                    refused = error(429, CONCURRENCY_CODE, message, **{"Retry-After": "1"})
                    return protection.stamp(refused)
                return protection.stamp(await self._run(handler, request))
            finally:
                protection.in_flight -= 1

        return endpoint

    async def _run(self, handler: Handler, request: Request) -> Response:
        started = self.world.clock.now()
        await delay_if_slow(self.world, VENDOR)
        refused = self._refusal(request)
        if refused is not None:
            return refused
        held = (self.world.clock.now() - started).total_seconds()
        self.protection.admit(started, self.world.scenario.dynamics.request_cost + held)
        return self._garble(await handler(request))

    def _refusal(self, request: Request) -> Response | None:
        """The first check that fails, in order: outage, token, rate fault, the windows."""
        now = self.world.clock.now()
        faults = self.world.faults
        if outage := faults.fire("outage", VENDOR, now):
            # unconfirmed: what a 5xx of the Web API carries; the documented error body here.
            return error(outage.spec.status, "", "The service is temporarily unavailable.")
        if not self._authorized(request):
            # unconfirmed: an empty 401 with this challenge, as seen from the live service.
            challenge = f"Bearer authorization_uri={environment_url(request)}/oauth2/authorize"
            return Response(status_code=401, headers={"WWW-Authenticate": challenge})
        if rate := faults.fire("rate_limit", VENDOR, now):
            return self.protection.throttled(now, True, max(1, math.ceil(rate.spec.delay)))
        return self.protection.refusal(now)

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return tokens_for(self.world).valid(token.strip(), environment_url(request))

    def _garble(self, response: Response) -> Response:
        if 200 <= response.status_code < 300 and response.body:
            if not malformed_in_force(self.world, VENDOR):
                return response
            payload = json.loads(bytes(response.body))
            garbled = garbage_if_malformed(self.world, VENDOR, payload)
            if garbled is not None:
                return garbled
        return response


def gate_for(world: World) -> Gate:
    """The one gate of this world: every route draws on one user's windows."""
    gate = world.vendor_state.get(VENDOR)
    if not isinstance(gate, Gate):
        gate = world.vendor_state[VENDOR] = Gate(world)
    return gate
