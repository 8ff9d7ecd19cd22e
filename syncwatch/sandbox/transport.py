"""httpx straight into the sandbox app in the same process: no socket, no server.

``httpx.ASGITransport`` does the same, and is what tests use. This one exists for long
simulations, where the transport runs once per vendor call (tens of thousands of times a
simulated day): ASGITransport asks on every request whether trio is running, which costs an
import attempt of ``sniffio`` each time when it is not installed, and builds a body stream and a
disconnect event the sandbox never needs. Here the request body is read once, the ASGI
``receive`` hands it over in one message, and the response body is collected in memory.

For the sandbox's own app it goes one step further (``DirectRoutes``): the request is matched
to its route by Starlette's own matching, in the router's order, and that endpoint is called with
a Starlette ``Request``, with the connector's deliveries run and the response dated as the
sandbox's middleware does. What it skips is the ASGI message passing and the middleware stack in
between, about 4% of a simulated probe's cost. Anything else (no route, a method the route does
not take, an endpoint that is not a plain coroutine) goes through the whole app as before.

It is plumbing between the simulated daemon and the simulated vendors: the daemon's own client,
retries, timeouts and recording are the same whichever transport carries its requests.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any

import httpx
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message

from syncwatch.sandbox.app import ResponseDate
from syncwatch.sandbox.sync import SyncEngine

CLIENT = ("127.0.0.1", 123)
"""The peer address the app sees (ASGITransport's default)."""

MATCHES_KEPT = 256
"""Method and path pairs whose route ``DirectRoutes`` remembers."""


class InProcessTransport(httpx.AsyncBaseTransport):
    """Send each request to ``app`` as one ASGI HTTP call and return what it answered.

    Exceptions the app raises propagate (as ``ASGITransport(raise_app_exceptions=True)``), and
    a cancelled request cancels the app's coroutine, so client timeouts behave alike.
    """

    def __init__(self, app: ASGIApp, *, direct: bool = True) -> None:
        self.app = app
        self.direct = DirectRoutes.of(app) if direct else None
        """The sandbox's endpoints called straight, or None: every request through the app."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = self._scope(request)
        if self.direct is not None:
            routed = self.direct.route(scope)
            if routed is not None:
                return await self.direct.answer(*routed, body)
        return await self._through_app(scope, body, request.method)

    @staticmethod
    def _scope(request: httpx.Request) -> dict[str, Any]:
        url = request.url
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(key.lower(), value) for key, value in request.headers.raw],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port),
            "client": CLIENT,
            "root_path": "",
        }

    async def _through_app(self, scope: dict[str, Any], body: bytes, method: str) -> httpx.Response:
        consumed = False
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        parts: list[bytes] = []

        async def receive() -> Message:
            nonlocal consumed
            if not consumed:
                consumed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done  # asked again: the client "disconnects" once the response is complete
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                if method != "HEAD" and message.get("body"):
                    parts.append(message["body"])
                if not message.get("more_body", False) and not done.done():
                    done.set_result(None)

        try:
            await self.app(scope, receive, send)
        finally:
            if not done.done():
                done.cancel()
        return httpx.Response(status, headers=headers, content=b"".join(parts))


class DirectRoutes:
    """The sandbox app's endpoints, reached as its router reaches them, without the ASGI layer.

    Only for an app ``create_app`` built (mounts of routes, ``state.sync``): matching is
    Starlette's own ``matches`` in the router's order (the first full match wins, as there),
    the connector delivers what fell due and the response is dated as ``_DeliverDueSyncs`` does,
    and an ``HTTPException`` becomes the response Starlette's default handler makes of it.
    """

    def __init__(self, app: ASGIApp, mounts: list[Mount], sync: SyncEngine) -> None:
        self.app = app
        self.mounts = mounts
        self.sync = sync
        self.date = ResponseDate(sync.world.clock)
        self._matched: dict[tuple[str, str], tuple[Route, dict[str, Any]] | None] = {}
        """What matching found for a method and path, and what it adds to the scope: it
        depends on nothing else (the root path is always empty here), and most calls repeat
        a few paths."""

    @classmethod
    def of(cls, app: ASGIApp) -> DirectRoutes | None:
        sync = getattr(getattr(app, "state", None), "sync", None)
        routes = getattr(getattr(app, "router", None), "routes", None)
        if not isinstance(sync, SyncEngine) or not routes:
            return None
        if not all(isinstance(mount, Mount) for mount in routes):
            return None
        return cls(app, list(routes), sync)

    def route(self, request_scope: dict[str, Any]) -> tuple[Route, dict[str, Any]] | None:
        """The route that fully matches, and the scope its endpoint sees; None: the app's way."""
        key = (request_scope["method"], request_scope["path"])
        if key not in self._matched:
            if len(self._matched) >= MATCHES_KEPT:  # paths with record ids are one-offs
                del self._matched[next(iter(self._matched))]
            self._matched[key] = self._match(request_scope)
        matched = self._matched[key]
        if matched is None:
            return None
        route, added = matched
        path_params = dict(added["path_params"])  # the endpoint's own, as Starlette gives it
        return route, {**request_scope, **added, "path_params": path_params}

    def _match(self, request_scope: dict[str, Any]) -> tuple[Route, dict[str, Any]] | None:
        """Starlette's matching: the route, and what the mount and the route add to the scope."""
        scope = {**request_scope, "app": self.app}
        for mount in self.mounts:
            match, child = mount.matches(scope)
            if match is Match.NONE:
                continue
            scope.update(child)
            for route in mount.routes:
                match, leaf = route.matches(scope)
                if match is not Match.FULL:
                    continue
                if not isinstance(route, Route) or not _coroutine_function(route.endpoint):
                    return None
                return route, {"app": self.app, **child, **leaf}
            return None  # the mount's router answers: 404, or 405 for a method not taken
        return None

    async def answer(self, route: Route, scope: dict[str, Any], body: bytes) -> httpx.Response:
        """What the endpoint answers, as the client would have read it through the app."""
        self.sync.run_due()
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            response: Response = await route.endpoint(Request(scope, receive))
        except HTTPException as exc:  # as Starlette's ExceptionMiddleware answers it
            if exc.status_code in {204, 304}:
                response = Response(status_code=exc.status_code, headers=exc.headers)
            else:
                response = PlainTextResponse(exc.detail, exc.status_code, headers=exc.headers)
        if response.background is not None:
            await response.background()
        content = b"" if scope["method"] == "HEAD" else bytes(response.body)
        # A stream, as a transport hands it over: the client reads (and decodes) it as it
        # would off the wire; ``content=`` would read it once more here.
        return httpx.Response(
            response.status_code,
            headers=self.date.stamp(response.raw_headers),
            stream=httpx.ByteStream(content),
        )


def _coroutine_function(endpoint: Any) -> bool:
    """Whether ``endpoint`` is a coroutine function (Starlette runs a plain function in a
    thread, and an endpoint object has its own ASGI call: both go the app's way)."""
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    return inspect.iscoroutinefunction(endpoint)
