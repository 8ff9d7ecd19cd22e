"""Helpers shared by the HubSpot sandbox tests: URLs, payloads, requests, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sandbox_support import app_client
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import DEFAULT_FORM_GUID, HubSpotSpec, Scenario
from syncwatch.sandbox.world import World

TOKEN = "pat-na1-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PORTAL = "20112233"
SUBMIT = f"/hsforms/submissions/v3/integration/submit/{PORTAL}/{DEFAULT_FORM_GUID}"
SECURE_SUBMIT = f"/hsforms/submissions/v3/integration/secure/submit/{PORTAL}/{DEFAULT_FORM_GUID}"
CONTACTS = "/hubspot/crm/v3/objects/contacts"
SEARCH = f"{CONTACTS}/search"
PROBE_EMAIL = "syncwatch+abc123@probe.syncwatch.example"
PROBE = {"email": PROBE_EMAIL, "firstname": "Sync", "lastname": "Probe", "company": "syncwatch"}
RATE_HEADERS = (
    "x-hubspot-ratelimit-daily",
    "x-hubspot-ratelimit-daily-remaining",
    "x-hubspot-ratelimit-max",
    "x-hubspot-ratelimit-remaining",
    "x-hubspot-ratelimit-interval-milliseconds",
)


def form_body(**values: str) -> dict[str, Any]:
    """A documented v3 submission body: contact fields, submittedAt in ms, page context."""
    return {
        "fields": [{"objectTypeId": "0-1", "name": k, "value": v} for k, v in values.items()],
        "submittedAt": "1791190800000",
        "context": {"pageUri": "https://www.example.com/demo", "pageName": "Demo"},
    }


def world_of(app: Starlette) -> World:
    world: World = app.state.world
    return world


async def create(client: httpx.AsyncClient, **properties: str) -> httpx.Response:
    return await client.post(CONTACTS, json={"properties": properties}, headers=AUTH)


async def search(
    client: httpx.AsyncClient, clock: VirtualClock, body: dict[str, Any]
) -> httpx.Response:
    """Search one second later, keeping under the documented 4 searches per second."""
    await clock.advance(1)
    return await client.post(SEARCH, json=body, headers=AUTH)


def email_filter(operator: str, value: Any, key: str = "value") -> dict[str, Any]:
    return {
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": operator, key: value}]}]
    }


async def add_fault(client: httpx.AsyncClient, **spec: Any) -> None:
    response = await client.post("/_sandbox/faults", json={"vendor": "hubspot", **spec})
    assert response.status_code == 201, response.text


@asynccontextmanager
async def sandbox_with(
    hubspot: HubSpotSpec, clock: VirtualClock
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """A sandbox with a changed HubSpot account (limits, pinned token) on ``clock``."""
    app = create_app(Scenario(seed=7, hubspot=hubspot), clock)
    async with app_client(app) as http:
        yield app, http
