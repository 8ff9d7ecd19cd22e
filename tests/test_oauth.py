"""The shared bearer-token cache and parser (Marketo Identity, Microsoft Entra ID)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from syncwatch.errors import MalformedResponse
from syncwatch.http import CallContext
from syncwatch.vendors.oauth import Token, TokenCache, token_parser


class Fetcher:
    """Hands out token-1, token-2, … each lasting ``lifetime`` on a hand-moved clock."""

    def __init__(self, lifetime: float = 100.0) -> None:
        self.now = 0.0
        self.lifetime = lifetime
        self.calls = 0

    def monotonic(self) -> float:
        return self.now

    async def fetch(self, _context: CallContext) -> Token:
        self.calls += 1
        await asyncio.sleep(0)  # let concurrent callers pile up behind the lock
        return Token(f"token-{self.calls}", self.now + self.lifetime)


async def test_many_callers_share_one_token_request() -> None:
    """Ten callers at once: one fetch, one token."""
    fetcher = Fetcher()
    cache = TokenCache(fetcher.monotonic, fetcher.fetch)
    tokens = await asyncio.gather(*(cache.token(CallContext()) for _ in range(10)))
    assert {t.access_token for t in tokens} == {"token-1"} and fetcher.calls == 1


async def test_expiry_and_refusal_each_cost_one_new_token() -> None:
    """Past its expiry a token is replaced; a refused one is renewed once however many callers
    report it, and a caller holding an old token gets the current one without a fetch."""
    fetcher = Fetcher()
    cache = TokenCache(fetcher.monotonic, fetcher.fetch)
    first = await cache.token(CallContext())
    fetcher.now = 100.0
    second = await cache.token(CallContext())
    assert (first.access_token, second.access_token) == ("token-1", "token-2")
    renewed = await asyncio.gather(*(cache.renew(second, CallContext()) for _ in range(3)))
    assert {t.access_token for t in renewed} == {"token-3"}
    assert (await cache.renew(first, CallContext())).access_token == "token-3"
    assert fetcher.calls == 3
    assert "token-3" not in repr(cache)


def response(body: object) -> httpx.Response:
    return httpx.Response(200, json=body, request=httpx.Request("POST", "https://id.example"))


def test_the_parser_stamps_expiry_less_the_margin() -> None:
    parse = token_parser("entra token", lambda: 1000.0, margin_s=60.0)
    token = parse(response({"access_token": "abc", "token_type": "Bearer", "expires_in": 3599}))
    assert token == Token("abc", 1000.0 + 3599 - 60)


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "", "token_type": "bearer", "expires_in": 3600},
        {"access_token": "abc", "token_type": "mac", "expires_in": 3600},
        {"access_token": "abc", "token_type": "bearer", "expires_in": "3600"},
        {"access_token": "abc", "token_type": "bearer", "expires_in": True},
        {"access_token": "abc", "expires_in": 3600},  # no type, and no default for it
    ],
)
def test_bodies_that_are_not_a_bearer_token_are_malformed(body: dict[str, object]) -> None:
    with pytest.raises(MalformedResponse, match="no bearer access_token"):
        token_parser("entra token", lambda: 0.0)(response(body))


def test_a_default_type_stands_in_for_a_missing_one() -> None:
    """Marketo's Identity body may leave token_type out."""
    parse = token_parser("marketo identity", lambda: 0.0, default_type="bearer")
    assert parse(response({"access_token": "abc", "expires_in": 10})).expires_at == 10.0
