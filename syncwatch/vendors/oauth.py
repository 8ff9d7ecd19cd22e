"""OAuth 2.0 bearer tokens as several vendors hand them out: cached, renewed once, parsed.

Marketo's Identity service and Microsoft Entra ID both answer a client-credentials grant with
``{"access_token", "token_type": "bearer", "expires_in"}`` (RFC 6749 §5.1). What differs is
where the grant goes and how a refusal looks, which stays in each vendor's ``*_auth`` module;
the cache (one token request however many callers hold a stale token) and the parser live here
once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from syncwatch.errors import MalformedResponse
from syncwatch.http import CallContext, json_body
from syncwatch.redact import REDACTOR


@dataclass(frozen=True)
class Token:
    """An access token and when to stop using it, on our monotonic clock; never in a repr."""

    access_token: str = field(repr=False)
    expires_at: float

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class TokenCache:
    """One account's token: fetched on first use, reused until it expires or is refused."""

    def __init__(
        self, monotonic: Callable[[], float], fetch: Callable[[CallContext], Awaitable[Token]]
    ) -> None:
        self._monotonic = monotonic
        self._fetch = fetch
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TokenCache(token={self._token!r})"

    async def token(self, context: CallContext) -> Token:
        """The cached token while it lasts, else a fresh one."""
        current = self._token
        if current is not None and self._monotonic() < current.expires_at:
            return current
        return await self.renew(current, context)

    async def renew(self, stale: Token | None, context: CallContext) -> Token:
        """A token other than ``stale``: one token request, however many callers held it."""
        async with self._lock:
            current = self._token
            expired = current is not None and self._monotonic() >= current.expires_at
            if current is None or current is stale or expired:
                self._token = await self._fetch(context)
            assert self._token is not None
            return self._token


def bearer_safe(token: object) -> bool:
    """A non-empty string that can travel in an ``Authorization: Bearer`` header: visible
    ASCII, no spaces. Anything else is a malformed token answer, refused where it arrives
    rather than failing (unrecorded) when the next request is built with it."""
    return (
        isinstance(token, str)
        and bool(token)
        and token.isascii()
        and token.isprintable()
        and " " not in token
    )


def token_parser(
    what: str,
    monotonic: Callable[[], float],
    *,
    margin_s: float = 0.0,
    default_type: str = "",
    slot: str = "",
) -> Callable[[httpx.Response], Token]:
    """A parser of an RFC 6749 token body, stamping expiry on our clock when it arrives, less
    ``margin_s``; ``default_type`` stands in for a ``token_type`` the vendor leaves out;
    ``slot`` (the account) keeps the redactor to its current and previous token."""

    def parse(response: httpx.Response) -> Token:
        body = json_body(response, what)
        token, expires_in = body["access_token"], body["expires_in"]
        token_type = str(body.get("token_type", default_type)).lower()
        usable = bearer_safe(token) and token_type == "bearer"
        if not usable or isinstance(expires_in, bool) or not isinstance(expires_in, int):
            message = f"{what}: no bearer access_token with an integer expires_in"
            raise MalformedResponse(message, status=response.status_code)
        REDACTOR.rotate(slot or what, token)
        return Token(token, monotonic() + max(expires_in - margin_s, 0.0))

    return parse
