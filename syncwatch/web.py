"""The daemon's HTTP surface (DESIGN §9): ``/metrics``, ``/healthz``, ``/readyz`` and an index.

The app runs under uvicorn in the daemon's own event loop, not in a thread: ``/healthz``
answering is then itself the proof that the loop is not blocked, and handlers read the daemon's
state without locks. The other side of that bargain is that every handler must be cheap; a scrape
only copies cached figures (see ``metrics.py``).

Liveness and readiness are separate on purpose. ``/healthz`` fails only when the process should
be restarted (the loop is stuck: it does not answer at all). ``/readyz`` says whether the monitor
is doing its job: config loaded, store writable, scheduler ticking. A full disk makes it not
ready, but a restart would not fix the disk, so liveness stays green.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from syncwatch.clock import Clock
from syncwatch.errors import SyncwatchError
from syncwatch.metrics import Metrics

GRACEFUL_SHUTDOWN_S = 5.0
"""How long ``stop()`` lets an in-progress scrape finish before cutting it off."""
_STARTUP_POLL_S = 0.01

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>syncwatch</title></head>
<body><h1>syncwatch</h1><ul>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/healthz">/healthz</a>: the daemon's event loop is alive</li>
<li><a href="/readyz">/readyz</a>: config loaded, store writable, scheduler ticking</li>
</ul></body></html>
"""


class Health:
    """What ``/readyz`` reports, kept up to date by the daemon.

    The daemon sets ``config_loaded``, calls ``store_ok``/``store_failed`` after each write and
    ``tick`` on every scheduler pass. Times are the injected clock's monotonic seconds, so a
    virtual clock ages the last tick in tests and a wall-clock jump cannot fake staleness.
    """

    def __init__(self, clock: Clock, tick_stale_after_s: float) -> None:
        self.clock = clock
        self.tick_stale_after_s = tick_stale_after_s
        self.config_loaded = False
        self.store_writable = False
        self.store_error: str | None = None
        self.last_tick: float | None = None

    def tick(self) -> None:
        """Record that the scheduler just ran a pass."""
        self.last_tick = self.clock.monotonic()

    def store_ok(self) -> None:
        """Record a successful store write."""
        self.store_writable, self.store_error = True, None

    def store_failed(self, error: str) -> None:
        """Record a failed store write; ``error`` should already be redacted."""
        self.store_writable, self.store_error = False, error

    def ready(self, now_monotonic: float | None = None) -> tuple[bool, dict[str, Any]]:
        """Whether every check passes, and the JSON body that says which do and why not."""
        now = self.clock.monotonic() if now_monotonic is None else now_monotonic
        reasons = {
            name: reason
            for name, reason in (
                ("config", self._config_problem()),
                ("store", self._store_problem()),
                ("scheduler", self._scheduler_problem(now)),
            )
            if reason is not None
        }
        checks = {name: name not in reasons for name in ("config", "store", "scheduler")}
        ok = not reasons
        return ok, {"status": "ready" if ok else "not ready", "checks": checks, "reasons": reasons}

    def _config_problem(self) -> str | None:
        return None if self.config_loaded else "config not loaded"

    def _store_problem(self) -> str | None:
        if self.store_writable:
            return None
        return f"store not writable: {self.store_error}" if self.store_error else "store not open"

    def _scheduler_problem(self, now: float) -> str | None:
        if self.last_tick is None:
            return "scheduler has not ticked yet"
        age = now - self.last_tick
        if age > self.tick_stale_after_s:
            return (
                f"scheduler last ticked {age:.0f}s ago (stale after {self.tick_stale_after_s:g}s)"
            )
        return None


def create_web_app(metrics: Metrics, health: Health) -> Starlette:
    """The Starlette app the daemon serves; no lifespan, the daemon owns start and stop."""

    async def index(_request: Request) -> Response:
        return HTMLResponse(INDEX)

    async def metrics_endpoint(_request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, headers={"content-type": content_type})

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        ok, body = health.ready()
        return JSONResponse(body, status_code=200 if ok else 503)

    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ]
    )


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: the daemon owns SIGTERM and SIGINT.

    Since uvicorn 0.29 (our floor), ``serve`` wraps itself in ``capture_signals``, which replaces
    the process's SIGINT/SIGTERM handlers with its own for the server's lifetime and re-raises
    the captured signal afterwards. Run inside the daemon, that would steal the daemon's
    graceful shutdown, so the hook is a no-op here and the daemon calls ``WebServer.stop``.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class WebServer:
    """A running uvicorn server in the current loop; ``stop()`` it before the loop ends."""

    host: str
    port: int
    _server: _Server = field(repr=False)
    _task: asyncio.Task[None] = field(repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), and wait for the task."""
        self._server.should_exit = True
        await self._task


async def serve(app: Starlette, host: str, port: int, *, date_header: bool = True) -> WebServer:
    """Start serving ``app`` on ``host:port`` (0: any free port) as a task in this loop.

    The socket is bound here rather than by uvicorn, because uvicorn answers a bind failure
    with ``sys.exit``; raised inside a task, that ``SystemExit`` would tear down the daemon's
    loop. Here it becomes a ``SyncwatchError`` the caller can report. Returns once the server
    is accepting connections, with the port actually bound.
    """
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        log_level="warning",
        log_config=None,  # leave the process's logging (structlog) alone
        lifespan="off",
        access_log=False,
        ws="none",
        date_header=date_header,
        timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_S),
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"web {host}:{port}")
    while not server.started:
        if task.done():
            sock.close()
            task.result()
            raise SyncwatchError(f"web server on {host}:{port} stopped during start-up")
        await asyncio.sleep(_STARTUP_POLL_S)
    return WebServer(host, sock.getsockname()[1], server, task)


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; IPv6 when the host is an IPv6 address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise SyncwatchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
