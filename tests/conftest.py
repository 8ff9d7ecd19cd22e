"""Shared fixtures: a virtual clock and an in-process sandbox reached through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from sandbox_support import app_client
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import Scenario


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (the crash test waits on real processes for two minutes): pytest-xdist
    hands out files in this order, so the other worker spends those minutes on the rest
    instead of idling at the end while the crash test runs alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI tests configure structlog onto CliRunner's stream, closed once they end; every test
    starts and ends with structlog's defaults so none writes to another's closed stream."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def scenario() -> Scenario:
    """The default scenario; override this fixture in a test module to change it."""
    return Scenario(seed=7)


@pytest.fixture
def sandbox(scenario: Scenario, clock: VirtualClock) -> Starlette:
    return create_app(scenario, clock)


@pytest.fixture
async def client(sandbox: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose requests go straight into the sandbox app, no sockets."""
    async with app_client(sandbox) as http:
        yield http
