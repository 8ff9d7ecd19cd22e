"""The HTTP surface: /metrics, /healthz, /readyz in-process, and serve() on a real socket."""

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
from syncwatch.config import config_from_data
from syncwatch.errors import SyncwatchError
from syncwatch.metrics import Metrics
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
def app(health: Health) -> Starlette:
    raw = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config = config_from_data(raw, REPO / "config" / "demo.yaml")
    return create_web_app(Metrics(config, CollectorRegistry()), health)


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
