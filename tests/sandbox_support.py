"""The one way tests reach a sandbox: an httpx client over ASGITransport, no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from hypothesis import strategies as st
from starlette.applications import Starlette


@asynccontextmanager
async def app_client(
    app: Starlette, base_url: str = "http://sandbox.test"
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose requests go straight into ``app``."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as http:
        yield http


def send_once(app: Starlette, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request from synchronous code (hypothesis tests), on a loop of its own."""

    async def send() -> httpx.Response:
        async with app_client(app) as http:
            return await http.request(method, url, **kwargs)

    return asyncio.run(send())


#: Arbitrary JSON, the shape of vendor-API garbage a client (or a fuzzer) might send.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
