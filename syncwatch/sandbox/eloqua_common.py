"""What every Eloqua endpoint shares: Basic credentials, error bodies, the rate window, faults.

Sources (docs/reference/vendor-apis.md §6):
- ``Authorization: Basic base64(siteName + '\\' + username + ':' + password)``:
  https://docs.oracle.com/cloud/latest/marketingcs_gs/OMCAC/Authentication_Basic.html
- the status codes and their texts (401 "Login required", 404 "The requested resource was not
  found.", 409 "There was a conflict.", 429 "Too Many Requests", 503 "Service Unavailable"):
  https://docs.oracle.com/en/cloud/saas/marketing/eloqua-rest-api/APIRequests_HTTPStatusCodes.html
- 400 validation errors as a list of ``{type, property|parameter, value, requirement: {type}}``
  (the "sandwich" id example; ``ObjectValidationError`` with a ``container``):
  https://docs.oracle.com/en/cloud/saas/marketing/eloqua-rest-api/APIRequests_HTTPValidationErrors.html
  and community.oracle.com topliners "REST API - Validation and Error Messages" (2012)

Every pod route is wrapped by one ``Gate`` so the order of checks (slow, outage, credentials,
``token_expiry``, rate window, handler, malformed) is the same everywhere. unconfirmed: that
order; the bodies of 401, 404 and 429 (plain text here); that admitted calls are all a rate
window would count; and any rate at all (Oracle publishes none: the window is off unless the
scenario sets ``eloqua.rate_max``). Eloqua documents no ``Retry-After``: none is sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from syncwatch.sandbox.common import delay_if_slow, garbage_if_malformed, malformed_in_force
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.world import World

VENDOR = "eloqua"
Handler = Callable[[Request], Awaitable[Response]]
TEXTS = {
    400: "There was a validation error.",
    401: "Login required",
    404: "The requested resource was not found.",
    409: "There was a conflict.",
    429: "Too Many Requests",
    500: "The service has encountered an error.",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def credentials(request: Request) -> tuple[str, str, str] | None:
    """``(company, username, password)`` of a Basic header, or None when there is none."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user_id, colon, password = decoded.partition(":")
    company, backslash, username = user_id.partition("\\")
    if not (colon and backslash and company and username and password):
        return None
    return company, username, password


def accepted(world: World, found: tuple[str, str, str] | None) -> bool:
    """Any complete credentials, unless the scenario pins the site, user or password."""
    if found is None:
        return False
    spec = world.scenario.eloqua
    pins = (spec.company, spec.username, spec.password)
    return all(pin is None or pin == given for pin, given in zip(pins, found, strict=True))


def text(status: int, body: str | None = None) -> PlainTextResponse:
    """A plain-text answer with the status's documented text (any other 5xx: 503's)."""
    return PlainTextResponse(body or TEXTS.get(status, TEXTS[503]), status_code=status)


def invalid(
    kind: str, where: str, requirement: str, value: Any = None, *, status: int = 400
) -> JSONResponse:
    """One documented validation error: ``EndpointParameterError`` names a ``parameter``,
    ``ObjectValidationError`` a Contact ``property`` inside its ``container``."""
    error: dict[str, Any] = {"type": kind, "requirement": {"type": requirement}}
    if kind == "EndpointParameterError":
        error["parameter"] = where
    else:
        error["container"] = {"type": "ObjectKey", "objectType": "Contact"}
        error["property"] = where
    if value is not None:
        error["value"] = str(value)
    return JSONResponse([error], status_code=status)


def epoch(moment: datetime) -> str:
    """Eloqua's timestamps: Unix epoch seconds as a string (``"1403034086"``)."""
    return str(int(moment.timestamp()))


async def read_json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


class Gate:
    """The checks the pod makes around every call, on the sandbox clock."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._window: deque[datetime] = deque()

    def wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            await delay_if_slow(self.world, VENDOR)
            return self._refusal(request) or await self._run(handler, request)

        return endpoint

    def _refusal(self, request: Request) -> Response | None:
        now = self.world.clock.now()
        faults = self.world.faults
        if outage := faults.fire("outage", VENDOR, now):
            return text(outage.spec.status)
        if not accepted(self.world, credentials(request)):
            return text(401)
        if faults.fire("token_expiry", VENDOR, now):
            return text(401)  # Basic has no token: the pod refuses the login (a moved site)
        if faults.fire("rate_limit", VENDOR, now) or self._full(now):
            return text(429)
        self._window.append(now)
        return None

    def _full(self, now: datetime) -> bool:
        spec = self.world.scenario.eloqua
        if spec.rate_max is None:
            return False
        horizon = now - timedelta(seconds=spec.rate_interval)
        while self._window and self._window[0] <= horizon:
            self._window.popleft()
        return len(self._window) >= spec.rate_max

    async def _run(self, handler: Handler, request: Request) -> Response:
        response = await handler(request)
        if 200 <= response.status_code < 300 and response.body:
            if not malformed_in_force(self.world, VENDOR):
                return response
            payload = json.loads(bytes(response.body))
            return garbage_if_malformed(self.world, VENDOR, payload) or response
        return response


def gate_for(world: World) -> Gate:
    """The one gate of this world, so every pod route shares one rate window."""
    gate = world.vendor_state.get(VENDOR)
    if not isinstance(gate, Gate):
        gate = world.vendor_state[VENDOR] = Gate(world)
    return gate
