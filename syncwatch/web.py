"""The daemon's HTTP surface (DESIGN §9): metrics, health, the status page, runbooks, the API.

The app runs under uvicorn in the daemon's own event loop, not in a thread: ``/healthz``
answering is then itself the proof that the loop is not blocked, and handlers read the daemon's
state without locks. The other side of that bargain is that every handler must be cheap; a scrape
only copies cached figures (see ``metrics.py``), and ``/status`` and ``/api/v1/...`` read a
snapshot the ``StatusBoard`` refreshes from the store at most once per few seconds (``status.py``).
A store that cannot be read answers 503 with a one-line reason, never a traceback.

Runbooks are served here so that an incident's link works without a wiki; when the operator has
one (``runbook_base_url``), ``/runbooks/<name>`` redirects there instead, so the links baked into
alert rules (``http://<instance>/runbooks/<cause>``) follow the operator's own pages.

Liveness and readiness are separate on purpose. ``/healthz`` fails only when the process should
be restarted (the loop is stuck: it does not answer at all). ``/readyz`` says whether the monitor
is doing its job: config loaded, store writable, scheduler ticking. A full disk makes it not
ready, but a restart would not fix the disk, so liveness stays green.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import structlog
import uvicorn
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from syncwatch.clock import Clock
from syncwatch.errors import StoreError, SyncwatchError
from syncwatch.metrics import Metrics
from syncwatch.runbooks import NAME as RUNBOOK_NAME
from syncwatch.runbooks import RunbookNotFound, Runbooks, render_markdown, summary, title
from syncwatch.status import FILTERS, StatusBoard, incident_rows

log = structlog.get_logger("syncwatch.web")

GRACEFUL_SHUTDOWN_S = 5.0
"""How long ``stop()`` lets an in-progress scrape finish before cutting it off."""
_STARTUP_POLL_S = 0.01

STATUS_REFRESH_S = 30
"""The status page reloads itself this often (a meta refresh: no JavaScript needed)."""
STORE_RECOVERY_S = 60.0
"""After a failed write, how long writes must go through before the store counts as writable."""
"""What ``Runbooks`` accepts as a name; checked here too before redirecting to a wiki."""
MARKDOWN = "text/markdown; charset=utf-8"
INCIDENT_STATUSES = ("open", "all")

CORE_ENDPOINTS = (
    ("/metrics", "Prometheus metrics"),
    ("/healthz", "the daemon's event loop is alive"),
    ("/readyz", "config loaded, store writable, scheduler ticking"),
)
STATUS_ENDPOINTS = (
    ("/status", "status page: integrations, contracts, incidents and quota"),
    ("/api/v1/integrations", "JSON: integrations over the last 24 h, contracts and quota"),
    ("/api/v1/incidents", "JSON: open incidents; ?status=all adds the recently resolved"),
)
RUNBOOK_ENDPOINTS = (("/runbooks", "runbooks: what to do for each incident cause"),)


class Health:
    """What ``/readyz`` reports, kept up to date by the daemon.

    The daemon sets ``config_loaded``, calls ``store_ok``/``store_failed`` after each write and
    ``tick`` on every scheduler pass. Times are the injected clock's monotonic seconds, so a
    virtual clock ages the last tick in tests and a wall-clock jump cannot fake staleness.
    """

    def __init__(
        self,
        clock: Clock,
        tick_stale_after_s: float,
        store_recovery_s: float = STORE_RECOVERY_S,
    ) -> None:
        self.clock = clock
        self.tick_stale_after_s = tick_stale_after_s
        self.store_recovery_s = store_recovery_s
        self.config_loaded = False
        self.store_writable = False
        self.store_error: str | None = None
        self.store_failed_at: float | None = None
        self.last_tick: float | None = None

    def tick(self) -> None:
        """Record that the scheduler just ran a pass."""
        self.last_tick = self.clock.monotonic()

    def store_ok(self) -> bool:
        """Record a successful store write; True when it ends a failure (log that once).

        A nearly full disk takes the small write that still fits in a page and refuses the next
        one: the store counts as writable again only once ``store_recovery_s`` have passed
        since the last failure, so one outage is one failure, not a flapping series."""
        if self.store_error is None:
            self.store_writable = True
            return False
        failed_at = self.store_failed_at
        if failed_at is not None and self.clock.monotonic() - failed_at < self.store_recovery_s:
            return False
        self.store_writable, self.store_error = True, None
        return True

    def store_failed(self, error: str) -> bool:
        """Record a failed store write; ``error`` should already be redacted. True when the
        store was fine until now: a full disk fails every write, and is logged once."""
        began = self.store_error is None
        self.store_writable, self.store_error = False, error
        self.store_failed_at = self.clock.monotonic()
        return began

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


def create_web_app(
    metrics: Metrics,
    health: Health,
    *,
    status: StatusBoard | None = None,
    runbooks: Runbooks | None = None,
    runbook_base_url: str | None = None,
) -> Starlette:
    """The Starlette app the daemon serves; no lifespan, the daemon owns start and stop.

    ``status`` adds ``/status`` and ``/api/v1/...``; ``runbooks`` adds ``/runbooks`` and its
    pages, which redirect to ``runbook_base_url + name`` when that is set (the operator's wiki).
    Without them the app serves what it always did."""
    pages = _pages()
    endpoints = list(CORE_ENDPOINTS)
    routes = [
        Route("/metrics", _metrics_endpoint(metrics), methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz_endpoint(health), methods=["GET"]),
    ]
    if status is not None:
        board = _StatusPages(status, pages)
        endpoints.extend(STATUS_ENDPOINTS)
        routes.extend(
            [
                Route("/status", board.page, methods=["GET"]),
                Route("/api/v1/integrations", board.integrations, methods=["GET"]),
                Route("/api/v1/incidents", board.incidents, methods=["GET"]),
            ]
        )
    if runbooks is not None:
        books = _RunbookPages(runbooks, runbook_base_url, pages)
        endpoints.extend(RUNBOOK_ENDPOINTS)
        routes.append(Route("/runbooks", books.index, methods=["GET"]))
        routes.append(Route("/runbooks/{name}", books.page, methods=["GET"]))
    routes.append(Route("/", _index_endpoint(_index_page(endpoints)), methods=["GET"]))
    return Starlette(routes=routes, exception_handlers={404: _not_found})


def _metrics_endpoint(metrics: Metrics) -> Callable[[Request], Awaitable[Response]]:
    async def metrics_endpoint(_request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, headers={"content-type": content_type})

    return metrics_endpoint


async def _healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _readyz_endpoint(health: Health) -> Callable[[Request], Awaitable[Response]]:
    async def readyz(_request: Request) -> Response:
        ok, body = health.ready()
        return JSONResponse(body, status_code=200 if ok else 503)

    return readyz


def _index_endpoint(html: str) -> Callable[[Request], Awaitable[Response]]:
    async def index(_request: Request) -> Response:
        return HTMLResponse(html)

    return index


def _index_page(endpoints: Sequence[tuple[str, str]]) -> str:
    items = "\n".join(
        f'<li><a href="{escape(path)}">{escape(path)}</a>: {escape(what, quote=False)}</li>'
        for path, what in endpoints
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>syncwatch</title>'
        f"</head>\n<body><h1>syncwatch</h1><ul>\n{items}\n</ul></body></html>\n"
    )


async def _not_found(request: Request, _exc: Exception) -> Response:
    """404 as JSON under ``/api/``, as a small page elsewhere (never Starlette's plain text)."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "not found"}, status_code=404)
    return HTMLResponse(_NOT_FOUND, status_code=404)


_NOT_FOUND = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Not found: syncwatch'
    "</title></head>\n<body><h1>Not found</h1><p>Nothing is served at this address. See the "
    '<a href="/">index</a>.</p></body></html>\n'
)


def _pages() -> Environment:
    """The HTML templates, autoescaped (names, causes and errors come from config and store)."""
    environment = Environment(
        loader=PackageLoader("syncwatch", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(FILTERS)
    return environment


class _StatusPages:
    """``/status`` and the JSON API, all served from the board's cached snapshot."""

    def __init__(self, board: StatusBoard, pages: Environment) -> None:
        self.board = board
        self.template = pages.get_template("status.html")

    def _render(self, status_code: int = 200, **values: Any) -> Response:
        html = self.template.render(refresh_s=STATUS_REFRESH_S, **values)
        return HTMLResponse(html, status_code=status_code)

    async def page(self, _request: Request) -> Response:
        try:
            snapshot = self.board.snapshot()
        except StoreError as exc:
            log.warning("status page unavailable", error=str(exc))
            return self._render(503, error=str(exc))
        return self._render(board=snapshot)

    async def integrations(self, _request: Request) -> Response:
        try:
            snapshot = self.board.snapshot()
        except StoreError as exc:
            return _store_unavailable(exc)
        keys = ("generated_at", "window_hours", "integrations", "contracts", "quota")
        return JSONResponse({key: snapshot[key] for key in keys})

    async def incidents(self, request: Request) -> Response:
        wanted = request.query_params.get("status", "open")
        if wanted not in INCIDENT_STATUSES:
            error = f"status must be one of {', '.join(INCIDENT_STATUSES)}, not {wanted!r}"
            return JSONResponse({"error": error}, status_code=400)
        try:
            snapshot = self.board.snapshot()
        except StoreError as exc:
            return _store_unavailable(exc)
        return JSONResponse(
            {
                "generated_at": snapshot["generated_at"],
                "status": wanted,
                "incidents": incident_rows(snapshot, wanted),
            }
        )


def _store_unavailable(exc: StoreError) -> Response:
    log.warning("status API unavailable", error=str(exc))
    return JSONResponse({"error": "store unavailable", "detail": str(exc)}, status_code=503)


class _RunbookPages:
    """``/runbooks``: the index, and each page rendered, raw, or redirected to the wiki."""

    def __init__(self, runbooks: Runbooks, base_url: str | None, pages: Environment) -> None:
        self.runbooks = runbooks
        self.base_url = base_url
        self.template = pages.get_template("runbook.html")

    def _render(self, status_code: int = 200, **values: Any) -> Response:
        html = self.template.render(base_url=self.base_url, **values)
        return HTMLResponse(html, status_code=status_code, headers={"vary": "accept"})

    async def index(self, _request: Request) -> Response:
        try:
            entries = [
                (name, summary(self.runbooks.markdown(name))) for name in self.runbooks.names()
            ]
        except OSError as exc:
            return self._render(503, error=f"cannot read the runbooks: {exc.strerror or exc}")
        return self._render(index=entries)

    async def page(self, request: Request) -> Response:
        name = request.path_params["name"]
        if self.base_url is not None:
            if not RUNBOOK_NAME.fullmatch(name):
                return self._missing(name)
            return RedirectResponse(self.base_url + name, status_code=302)
        try:
            markdown = self.runbooks.markdown(name)
        except RunbookNotFound:
            return self._missing(name)
        except OSError as exc:
            return self._render(503, error=f"cannot read runbook {name}: {exc.strerror or exc}")
        if _wants_markdown(request):
            return Response(markdown, media_type=MARKDOWN, headers={"vary": "accept"})
        body = Markup(render_markdown(markdown))  # safe: markdown-it escapes raw HTML
        return self._render(name=name, title=title(markdown), body=body)

    def _missing(self, name: str) -> Response:
        return self._render(404, missing=name, index=None)


def _wants_markdown(request: Request) -> bool:
    """``?format=md``, or ``text/markdown`` among the Accept header's media types."""
    if request.query_params.get("format") == "md":
        return True
    accepted = request.headers.get("accept", "")
    return any(part.split(";")[0].strip() == "text/markdown" for part in accepted.split(","))


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
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise SyncwatchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    # Accepted connections inherit it. asyncio sets it only on sockets it creates, so without
    # it every keep-alive response waited ~40 ms for the scraper's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
