"""The HTTP surface: /metrics, /healthz, /readyz, /runbooks and the index in-process, and serve()
on a real socket. /status and /api/v1 are tested with the board, in test_status.py."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.config import Config, config_from_data
from syncwatch.errors import SyncwatchError
from syncwatch.metrics import ContractFigures, Metrics
from syncwatch.runbooks import Runbooks
from syncwatch.status import StatusBoard
from syncwatch.store import Store
from syncwatch.web import Health, create_web_app, serve

REPO = Path(__file__).resolve().parent.parent
TICK_S = 30.0


@pytest.fixture
def health(clock: VirtualClock) -> Health:
    """Health as a running daemon leaves it: config loaded, store written, just ticked."""
    health = Health(clock, tick_stale_after_s=3 * TICK_S)
    health.config_loaded = True
    health.store_ok()
    health.tick()
    return health


@pytest.fixture
def config() -> Config:
    raw = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    return config_from_data(raw, REPO / "config" / "demo.yaml")


@pytest.fixture
def metrics(config: Config) -> Metrics:
    return Metrics(config, CollectorRegistry())


@pytest.fixture
def app(metrics: Metrics, health: Health) -> Starlette:
    """The app as it was before /status and /runbooks: what an old caller still gets."""
    return create_web_app(metrics, health)


@pytest.fixture
async def web(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests go straight into the app, no sockets."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://syncwatch.test") as http:
        yield http


async def test_metrics_endpoint_serves_the_text_format(web: httpx.AsyncClient) -> None:
    """GET /metrics answers the 0.0.4 text content type and a parseable body."""
    response = await web.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"syncwatch_probes", "syncwatch_build_info"} <= names


async def test_healthz_answers_ok(web: httpx.AsyncClient) -> None:
    """GET /healthz is 200 {"status": "ok"} whenever the loop answers at all."""
    response = await web.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_index_links_every_endpoint(web: httpx.AsyncClient) -> None:
    """GET / is a small page linking /metrics, /healthz and /readyz."""
    response = await web.get("/")
    assert response.status_code == 200
    for path in ("/metrics", "/healthz", "/readyz"):
        assert f'href="{path}"' in response.text


async def test_readyz_is_200_when_every_check_passes(web: httpx.AsyncClient) -> None:
    """Config loaded, store writable and a fresh tick make the daemon ready."""
    response = await web.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"config": True, "store": True, "scheduler": True},
        "reasons": {},
    }


async def test_readyz_is_503_when_the_store_is_not_writable(
    web: httpx.AsyncClient, health: Health
) -> None:
    """A failed store write makes the daemon not ready, with the error as the reason."""
    health.store_failed("database or disk is full")
    response = await web.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"config": True, "store": False, "scheduler": True}
    assert body["reasons"] == {"store": "store not writable: database or disk is full"}


async def test_readyz_is_503_when_the_scheduler_tick_is_stale(
    web: httpx.AsyncClient, health: Health, clock: VirtualClock
) -> None:
    """A tick older than the staleness bound makes the daemon not ready; a new tick heals it."""
    await clock.advance(3 * TICK_S)
    assert (await web.get("/readyz")).status_code == 200
    await clock.advance(1)
    response = await web.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reasons"] == {
        "scheduler": "scheduler last ticked 91s ago (stale after 90s)"
    }
    health.tick()
    assert (await web.get("/readyz")).status_code == 200


def test_fresh_health_is_not_ready_and_says_why(clock: VirtualClock) -> None:
    """Before the daemon reports anything, every check fails with its own reason."""
    ok, body = Health(clock, tick_stale_after_s=90).ready()
    assert not ok
    assert body["checks"] == {"config": False, "store": False, "scheduler": False}
    assert body["reasons"] == {
        "config": "config not loaded",
        "store": "store not open",
        "scheduler": "scheduler has not ticked yet",
    }


def test_uvicorn_still_has_the_signal_hook_we_override() -> None:
    """serve() disables uvicorn's signal capture by overriding Server.capture_signals."""
    assert callable(vars(uvicorn.Server).get("capture_signals"))


async def test_serve_binds_a_free_port_answers_and_stops_cleanly(app: Starlette) -> None:
    """serve() on 127.0.0.1:0 answers /healthz over TCP, keeps our SIGTERM handler, and stops."""
    before = signal.getsignal(signal.SIGTERM)
    tasks_before = asyncio.all_tasks()
    server = await serve(app, "127.0.0.1", 0)
    try:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.get("/healthz")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        await server.stop()
    assert asyncio.all_tasks() == tasks_before
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=server.url) as http:
            await http.get("/healthz")


async def test_serve_reports_a_port_in_use_as_a_syncwatch_error(app: Starlette) -> None:
    """A busy port is an error the daemon can report, not a SystemExit inside a task."""
    server = await serve(app, "127.0.0.1", 0)
    try:
        with pytest.raises(SyncwatchError, match=f"cannot listen on 127.0.0.1:{server.port}"):
            await serve(app, "127.0.0.1", server.port)
    finally:
        await server.stop()


# -- runbooks --------------------------------------------------------------------------------------

VENDOR_5XX = """# vendor_5xx: the vendor answers with server errors

A vendor's API is failing. <script>alert("not run")</script>

## Meaning

HTTP 5xx from the vendor, after retries.

## Impact

Leads queue at the source.

## Diagnosis

Run `syncwatch probe --json` and read the detail.

## Mitigation

Keep probing; the evidence accrues.

## Escalation

| vendor | where |
|---|---|
| HubSpot | support portal |
"""
WIKI = "https://wiki.example.com/ops/syncwatch/"


@pytest.fixture
def runbooks(tmp_path: Path) -> Runbooks:
    """Two small runbooks of our own, so these tests do not depend on the shipped pages."""
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "vendor_5xx.md").write_text(VENDOR_5XX, encoding="utf-8")
    (directory / "sync_lost.md").write_text("# sync_lost\n\nThe lead never arrived.\n")
    (directory / "README.md").write_text("# Runbooks\n\nThe index, not a runbook.\n")
    return Runbooks(directory)


def client_for(app: Starlette) -> httpx.AsyncClient:
    """A client whose requests go straight into ``app``; use it as ``async with``."""
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://syncwatch.test")


async def test_runbook_index_lists_each_runbook_with_its_summary(
    metrics: Metrics, health: Health, runbooks: Runbooks
) -> None:
    """GET /runbooks links every runbook (not the README) with its one-line summary."""
    async with client_for(create_web_app(metrics, health, runbooks=runbooks)) as http:
        response = await http.get("/runbooks")
    assert response.status_code == 200
    assert '<a href="/runbooks/sync_lost">sync_lost</a>' in response.text
    assert '<a href="/runbooks/vendor_5xx">vendor_5xx</a>' in response.text
    assert "A vendor&#39;s API is failing." in response.text
    assert "/runbooks/README" not in response.text


async def test_runbook_page_renders_the_markdown_sections_and_escapes_raw_html(
    metrics: Metrics, health: Health, runbooks: Runbooks
) -> None:
    """GET /runbooks/<name> is the Markdown rendered into a page: the five sections as
    headings, code and tables rendered, and raw HTML in the file shown, not run."""
    async with client_for(create_web_app(metrics, health, runbooks=runbooks)) as http:
        response = await http.get("/runbooks/vendor_5xx")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert "<h1>vendor_5xx: the vendor answers with server errors</h1>" in html
    for section in ("Meaning", "Impact", "Diagnosis", "Mitigation", "Escalation"):
        assert f"<h2>{section}</h2>" in html
    assert "<code>syncwatch probe --json</code>" in html
    assert "<td>HubSpot</td>" in html
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert "<title>vendor_5xx: the vendor answers with server errors · syncwatch runbooks" in html


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/runbooks/vendor_5xx?format=md", {}),
        ("/runbooks/vendor_5xx", {"accept": "text/markdown"}),
        ("/runbooks/vendor_5xx", {"accept": "text/html;q=0.5, text/markdown"}),
    ],
)
async def test_runbook_markdown_on_request(
    metrics: Metrics, health: Health, runbooks: Runbooks, path: str, headers: dict[str, str]
) -> None:
    """``?format=md`` or ``Accept: text/markdown`` returns the file itself."""
    async with client_for(create_web_app(metrics, health, runbooks=runbooks)) as http:
        response = await http.get(path, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.text == VENDOR_5XX


@pytest.mark.parametrize(
    "path",
    [
        "/runbooks/no_such_cause",
        "/runbooks/Vendor_5xx",
        "/runbooks/README",
        "/runbooks/..%2Fetc%2Fpasswd",
        "/runbooks/..%2F..%2Frunbooks%2Fvendor_5xx",
        "/runbooks/%2E%2E",
        "/runbooks/vendor_5xx.md",
    ],
)
async def test_unknown_and_traversing_runbook_names_are_a_404_page(
    metrics: Metrics, health: Health, runbooks: Runbooks, path: str
) -> None:
    """Anything but a runbook's own name is a 404 HTML page; nothing outside the directory,
    or under another name, is ever read."""
    async with client_for(create_web_app(metrics, health, runbooks=runbooks)) as http:
        response = await http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "root:" not in response.text and "server errors" not in response.text


async def test_runbooks_redirect_to_the_operators_wiki_when_configured(
    metrics: Metrics, health: Health, runbooks: Runbooks
) -> None:
    """With ``runbook_base_url``, /runbooks/<name> is a 302 to base + name (alert rules link to
    the daemon, and land on the wiki); names that are not runbook names still 404."""
    app = create_web_app(metrics, health, runbooks=runbooks, runbook_base_url=WIKI)
    async with client_for(app) as http:
        response = await http.get("/runbooks/vendor_5xx")
        assert response.status_code == 302
        assert response.headers["location"] == WIKI + "vendor_5xx"
        assert (await http.get("/runbooks/..%2Fetc")).status_code == 404
        assert (await http.get("/runbooks/%2E%2E")).status_code == 404
        index = await http.get("/runbooks")
    assert WIKI in index.text and 'href="/runbooks/vendor_5xx"' in index.text


# -- the index and what an old caller gets ---------------------------------------------------------


async def test_index_lists_the_status_page_api_and_runbooks_when_served(
    config: Config,
    metrics: Metrics,
    health: Health,
    runbooks: Runbooks,
    clock: VirtualClock,
    tmp_path: Path,
) -> None:
    """With a board and runbooks, / links /status, both API endpoints and /runbooks too."""
    store = Store.open(tmp_path / "web.db")
    board = StatusBoard(config, store, clock, ContractFigures())
    app = create_web_app(metrics, health, status=board, runbooks=runbooks)
    async with client_for(app) as http:
        response = await http.get("/")
        for path in ("/status", "/api/v1/integrations", "/api/v1/incidents", "/runbooks"):
            assert f'href="{path}"' in response.text
            assert (await http.get(path)).status_code == 200
    store.close()


async def test_without_a_board_or_runbooks_the_app_serves_what_it_always_did(
    web: httpx.AsyncClient,
) -> None:
    """create_web_app(metrics, health) still works: no /status, no /runbooks, and the index
    does not link them; a missing page is a 404 page, and JSON under /api."""
    index = (await web.get("/")).text
    assert "/status" not in index and "/runbooks" not in index
    missing = await web.get("/status")
    assert missing.status_code == 404 and "Not found" in missing.text
    assert (await web.get("/runbooks/vendor_5xx")).status_code == 404
    api = await web.get("/api/v1/incidents")
    assert (api.status_code, api.json()) == (404, {"error": "not found"})


def test_the_listening_socket_hands_out_connections_without_nagle_delay() -> None:
    """Every keep-alive response used to wait ~40 ms for the scraper's delayed ACK."""
    import socket

    from syncwatch.web import _bind

    server = _bind("127.0.0.1", 0)
    with server, socket.create_connection(server.getsockname()):
        accepted, _ = server.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
