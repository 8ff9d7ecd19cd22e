"""Helpers shared by the Salesforce sandbox tests: URLs, tokens, JWTs, records, faults."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
from sandbox_support import app_client
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import FaultSpec, Scenario
from syncwatch.sandbox.world import CrmRecord, World

SF = "/salesforce"
TOKEN_URL = SF + "/services/oauth2/token"
DATA = SF + "/services/data/v62.0"
LIMIT_INFO = re.compile(r"^api-usage=\d+/\d+$")
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


@asynccontextmanager
async def sandbox_client(
    scenario: Scenario, clock: VirtualClock, base_url: str = "http://sandbox.test"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a sandbox built from ``scenario``, for tests that need a special org."""
    async with app_client(create_app(scenario, clock), base_url) as http:
        yield http


async def get_token(client: httpx.AsyncClient, **form: str) -> str:
    data = form or {"grant_type": "client_credentials", "client_id": "id", "client_secret": "s"}
    response = await client.post(TOKEN_URL, data=data)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def soql(client: httpx.AsyncClient, token: str, query: str) -> httpx.Response:
    return await client.get(DATA + "/query", params={"q": query}, headers=bearer(token))


async def create(
    client: httpx.AsyncClient, token: str, body: dict[str, Any], sobject: str = "Lead"
) -> httpx.Response:
    return await client.post(f"{DATA}/sobjects/{sobject}/", json=body, headers=bearer(token))


def segment(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def make_jwt(claims: dict[str, Any]) -> str:
    return f"{segment({'alg': 'RS256'})}.{segment(claims)}.c2lnbmF0dXJl"


def claims(clock: VirtualClock, **overrides: Any) -> dict[str, Any]:
    exp = int(clock.now().timestamp()) + 120
    base = {"iss": "consumer-key", "sub": "ops@example.com", "aud": "https://login.salesforce.com"}
    return {**base, "exp": exp, **overrides}


def world_of(sandbox: Starlette) -> World:
    world: World = sandbox.state.world
    return world


def add_lead(world: World, email: str, created_at: datetime, **fields: Any) -> CrmRecord:
    body = {"Email": email, "LastName": "Probe", "Company": "Syncwatch", **fields}
    return world.new_crm_record("Lead", body, created_at)


def fault(world: World, **spec: Any) -> None:
    world.faults.schedule(FaultSpec.model_validate(spec), world.clock.now())
