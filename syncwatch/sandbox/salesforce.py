"""Salesforce emulation: the My Domain host, both login (OAuth) and instance (REST API).

Every REST call goes through one gate in the order a real org applies it (as far as the docs
say): the resource exists, the session is valid, the daily allowance and concurrency limits
hold; then the call is counted and answered, and every answer carries ``Sforce-Limit-Info``.
Resources live in ``salesforce_data`` and tokens in ``salesforce_oauth``.

Vendor docs:
- ``Sforce-Limit-Info``: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
- errors (``INVALID_SESSION_ID``, ``REQUEST_LIMIT_EXCEEDED``): https://developer.salesforce.com/docs/atlas.en-us.264.0.api_rest.meta/api_rest/errorcodes.htm
- limits: https://developer.salesforce.com/docs/platform/api-rest/guide/dome-limits.md
- concurrency: https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncwatch.sandbox.common import delay_if_slow, garbage_if_malformed, malformed_in_force
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.salesforce_data import DataApi, Reply, error, not_found
from syncwatch.sandbox.salesforce_oauth import TOKEN_PATH, VENDOR, token_endpoint, tokens_for
from syncwatch.sandbox.world import World

DATA = "/services/data/{version}"
_VERSION = re.compile(r"^v\d+\.\d$")
_BEARER = re.compile(r"^Bearer\s+(\S+)$", re.IGNORECASE)
WINDOW_MINUTES = 24 * 60  # the daily allowance is a rolling 24 hours
# unconfirmed: message wordings; the 403 and the REQUEST_LIMIT_EXCEEDED code are documented
# for both the daily allowance and the concurrent long-running request limit.
DAILY_LIMIT_MESSAGE = "TotalRequests Limit exceeded."
CONCURRENCY_MESSAGE = "ConcurrentRequests (Concurrent API Requests) Limit exceeded."
OUTAGE_MESSAGE = "Service temporarily unavailable"

Resource = Callable[[Request, str], Awaitable[Reply]]


class ApiUsage:
    """REST calls in the rolling 24 h window, in per-minute buckets so memory stays bounded,
    with their running total (every response reports it: summing the day's buckets each time
    made the org's cost per call grow with the day)."""

    def __init__(self) -> None:
        self._buckets: deque[list[int]] = deque()  # [minute number, calls]
        self._total = 0

    def record(self, now: datetime) -> None:
        minute = self._trim(now)
        if self._buckets and self._buckets[-1][0] == minute:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([minute, 1])
        self._total += 1

    def used(self, now: datetime) -> int:
        self._trim(now)
        return self._total

    def _trim(self, now: datetime) -> int:
        minute = int(now.timestamp()) // 60
        while self._buckets and self._buckets[0][0] <= minute - WINDOW_MINUTES:
            self._total -= self._buckets.popleft()[1]
        return minute


class SalesforceOrg:
    """One emulated org: its tokens, its API usage and its data, behind the REST gate."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.tokens = tokens_for(world)
        self.usage = ApiUsage()
        self.data = DataApi(world)

    def quota_faulted(self) -> bool:
        """A ``quota_exhausted`` fault is in force: the allowance reads as fully spent."""
        now = self.world.clock.now()
        return bool(self.world.faults.active("quota_exhausted", VENDOR, now))

    def spent(self) -> bool:
        """The calls of the last 24 h have reached the org's daily allowance."""
        limit = self.world.scenario.salesforce.daily_limit
        return self.usage.used(self.world.clock.now()) >= limit

    def limit_info(self) -> str:
        """``api-usage=USED/MAX``; a quota fault shows the allowance as fully used."""
        limit = self.world.scenario.salesforce.daily_limit
        used = self.usage.used(self.world.clock.now())
        if self.quota_faulted():
            used = max(used, limit)
        return f"api-usage={used}/{limit}"

    def gate(self, request: Request) -> Reply | None:
        """Refuse the call as the org would, or count it and let it through (None)."""
        now = self.world.clock.now()
        if not _VERSION.match(request.path_params["version"]):
            return not_found()
        if outage := self.world.faults.fire("outage", VENDOR, now):
            # unconfirmed: the body of a Salesforce 5xx; the error-array shape is assumed.
            return error(outage.spec.status, "SERVER_UNAVAILABLE", OUTAGE_MESSAGE)
        match = _BEARER.match(request.headers.get("authorization", ""))
        if match is None or not self.tokens.valid(match.group(1)):
            return error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.world.faults.fire("quota_exhausted", VENDOR, now) or self.spent():
            return error(403, "REQUEST_LIMIT_EXCEEDED", DAILY_LIMIT_MESSAGE)
        if self.world.faults.fire("rate_limit", VENDOR, now):
            return error(403, "REQUEST_LIMIT_EXCEEDED", CONCURRENCY_MESSAGE)
        # unconfirmed: whether refused calls count; the sandbox counts only admitted ones.
        self.usage.record(now)
        return None

    def render(self, reply: Reply) -> Response:
        """JSON (or an empty 204), a garbage body under a ``malformed`` fault, and the header."""
        response: Response | None = None
        if 200 <= reply.status < 300 and reply.payload is not None:
            response = garbage_if_malformed(self.world, VENDOR, reply.payload)
        if response is None and reply.payload is None:
            response = Response(status_code=reply.status)
        if response is None:
            response = JSONResponse(reply.payload, status_code=reply.status)
        response.headers["Sforce-Limit-Info"] = self.limit_info()
        return response

    def rest(self, resource: Resource) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a resource in the slow fault, the gate and the rendering every call shares."""

        async def endpoint(request: Request) -> Response:
            await delay_if_slow(self.world, VENDOR)
            reply = self.gate(request) or await resource(request, request.path_params["version"])
            return self.render(reply)

        return endpoint

    def limits(self) -> Reply:
        """``GET limits/``: only the documented ``DailyApiRequests`` entry is emulated."""
        limit = self.world.scenario.salesforce.daily_limit
        used = self.usage.used(self.world.clock.now())
        remaining = 0 if self.quota_faulted() else max(0, limit - used)
        return Reply(200, {"DailyApiRequests": {"Max": limit, "Remaining": remaining}})


def routes(world: World) -> list[Route]:
    """The login and instance paths, mounted under ``/salesforce``."""
    org = SalesforceOrg(world)
    data = org.data

    async def token(request: Request) -> Response:
        await delay_if_slow(world, VENDOR)
        if outage := world.faults.fire("outage", VENDOR, world.clock.now()):
            # unconfirmed: the body of a 5xx from the login host; the REST error shape is assumed.
            unavailable = error(outage.spec.status, "SERVER_UNAVAILABLE", OUTAGE_MESSAGE)
            return JSONResponse(unavailable.payload, status_code=unavailable.status)
        response = await token_endpoint(request, world, org.tokens)
        if response.status_code == 200 and malformed_in_force(world, VENDOR):
            payload = json.loads(bytes(response.body))
            return garbage_if_malformed(world, VENDOR, payload) or response
        return response

    async def query(request: Request, version: str) -> Reply:
        return data.query(version, request.query_params.get("q", ""))

    async def query_more(request: Request, version: str) -> Reply:
        return data.query_more(version, request.path_params["locator"])

    async def create(request: Request, version: str) -> Reply:
        try:
            body = json.loads(await request.body())
        except ValueError:
            # unconfirmed: code and wording for a body that is not JSON.
            return error(400, "JSON_PARSER_ERROR", "Unexpected character in request body")
        header = request.headers.get("sforce-duplicate-rule-header", "")
        allow = "allowsave=true" in header.replace(" ", "").lower()
        return data.create(request.path_params["sobject"], body, allow)

    async def get(request: Request, version: str) -> Reply:
        params = request.path_params
        return data.get(version, params["sobject"], params["record_id"])

    async def delete(request: Request, version: str) -> Reply:
        return data.delete(request.path_params["sobject"], request.path_params["record_id"])

    async def delete_collection(request: Request, version: str) -> Reply:
        ids = [i.strip() for i in request.query_params.get("ids", "").split(",") if i.strip()]
        all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
        return data.delete_collection(ids, all_or_none)

    async def limits(request: Request, version: str) -> Reply:
        return org.limits()

    async def unknown(request: Request, version: str) -> Reply:
        # unconfirmed: resources the sandbox does not emulate answer as a missing resource.
        return not_found()

    record = DATA + "/sobjects/{sobject}/{record_id}"
    return [
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route(DATA + "/query", org.rest(query), methods=["GET"]),
        Route(DATA + "/query/", org.rest(query), methods=["GET"]),
        Route(DATA + "/query/{locator}", org.rest(query_more), methods=["GET"]),
        Route(DATA + "/sobjects/{sobject}", org.rest(create), methods=["POST"]),
        Route(DATA + "/sobjects/{sobject}/", org.rest(create), methods=["POST"]),
        Route(record, org.rest(get), methods=["GET"]),
        Route(record, org.rest(delete), methods=["DELETE"]),
        Route(DATA + "/composite/sobjects", org.rest(delete_collection), methods=["DELETE"]),
        Route(DATA + "/limits", org.rest(limits), methods=["GET"]),
        Route(DATA + "/limits/", org.rest(limits), methods=["GET"]),
        Route(DATA + "/{rest:path}", org.rest(unknown)),
    ]
