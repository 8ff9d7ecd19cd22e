"""httpx straight into the sandbox app in the same process: no socket, no server.

``httpx.ASGITransport`` does the same, and is what tests use. This one exists for long
simulations, where the transport runs once per vendor call (tens of thousands of times a
simulated day): ASGITransport asks on every request whether trio is running, which costs an
import attempt of ``sniffio`` each time when it is not installed, and builds a body stream and a
disconnect event the sandbox never needs. Here the request body is read once, the ASGI
``receive`` hands it over in one message, and the response body is collected in memory.

It is plumbing between the simulated daemon and the simulated vendors: the daemon's own client,
retries, timeouts and recording are the same whichever transport carries its requests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.types import ASGIApp, Message

CLIENT = ("127.0.0.1", 123)
"""The peer address the app sees (ASGITransport's default)."""


class InProcessTransport(httpx.AsyncBaseTransport):
    """Send each request to ``app`` as one ASGI HTTP call and return what it answered.

    Exceptions the app raises propagate (as ``ASGITransport(raise_app_exceptions=True)``), and
    a cancelled request cancels the app's coroutine, so client timeouts behave alike.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        url = request.url
        scope: dict[str, Any] = {
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
                if request.method != "HEAD" and message.get("body"):
                    parts.append(message["body"])
                if not message.get("more_body", False) and not done.done():
                    done.set_result(None)

        try:
            await self.app(scope, receive, send)
        finally:
            if not done.done():
                done.cancel()
        return httpx.Response(status, headers=headers, content=b"".join(parts))
