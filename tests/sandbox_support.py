"""The one way tests reach a sandbox: an httpx client over ASGITransport, no sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette


@asynccontextmanager
async def app_client(
    app: Starlette, base_url: str = "http://sandbox.test"
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose requests go straight into ``app``."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as http:
        yield http
