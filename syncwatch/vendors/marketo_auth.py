"""Marketo identity for the source adapter: one cached access token per account.

A token comes from the Identity endpoint (client credentials, documented as a GET or POST with
``grant_type``, ``client_id`` and ``client_secret`` in the query string) with its remaining
lifespan in ``expires_in``; asked again before it expires, Marketo returns the same token with
what is left of it. So the token is kept until ``expires_in`` has passed on our clock, and a REST
call answered 601 (invalid) or 602 (expired) earns one new token (fetched once however many
callers held the stale one) and one retry: ``MarketoAuth.request`` is how the adapter calls.

The secret travels in a query string because that is the only documented form; Adobe's move to
header authentication concerns the *access token* (``Authorization: Bearer``, which every REST
call here uses), not the Identity call. The secret is registered with the redactor before it is
sent, no URL is ever recorded (``ApiCall`` has none), and httpx's own log lines pass the redactor
(``syncwatch.http``).

Vendor docs:
- Identity call, the response, the 3,600 s lifespan, the same token returned before expiry,
  601/602 meaning "renew the token", the Authorization header and the removal of the
  ``access_token`` query parameter: repo AdobeDocs/marketo-developer.en,
  ``help/rest-api/authentication.md``. The removal date conflicts across Adobe's pages (July 31,
  2026 there; June 30, 2025 in ``rest-api.md``; March 31, 2026 on the Japanese and Korean pages;
  January 31, 2026 on the Chinese one): moot here, the header is all this adapter sends.
- ``identityUsingGET`` and ``ResponseOfIdentity`` (``access_token``, ``scope``, ``expires_in``,
  ``token_type: bearer``): repo AdobeDocs/marketo-apis, ``static/swagger-identity.json``
- 401 from Identity for a bad client id or secret: ``help/rest-api/error-codes.md``
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from syncwatch.config.accounts import MarketoAccount
from syncwatch.errors import AuthError, ConfigError
from syncwatch.http import AccountHttp, CallContext
from syncwatch.redact import REDACTOR
from syncwatch.vendors.oauth import Token, TokenCache
from syncwatch.vendors.oauth import token_parser as oauth_token_parser

TOKEN_PATH = "/oauth/token"
"""Appended to the account's ``identity_url`` (``.../identity`` by default)."""
T = TypeVar("T")


class TokenRefused(AuthError):
    """601 (token invalid) or 602 (token expired): cured by one new token, so ``request``
    retries once; past that it is plain ``auth``."""


class MarketoAuth:
    """One account's token: fetched on first use, reused until it expires or is refused."""

    def __init__(self, account: MarketoAccount, http: AccountHttp) -> None:
        self._account = account
        self._http = http
        self._cache = TokenCache(http.clock.monotonic, self._fetch)

    def __repr__(self) -> str:
        return f"MarketoAuth(account={self._account.name!r}, token={self._cache!r})"

    async def request(
        self,
        operation: str,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        context: CallContext,
        *,
        idempotent: bool,
        **kwargs: Any,
    ) -> T:
        """One REST call on the current token; 601/602 earn one new token and one retry (both
        codes mean the request was not executed, so even a create may be resent)."""

        async def send(token: Token) -> T:
            return await self._http.request(
                operation,
                method,
                path,
                parse=parse,
                idempotent=idempotent,
                context=context,
                headers=token.headers,
                **kwargs,
            )

        token = await self.token(context)
        try:
            return await send(token)
        except TokenRefused:
            pass
        return await send(await self.renew(token, context))

    async def token(self, context: CallContext) -> Token:
        """The cached token while it lasts, else a fresh one."""
        return await self._cache.token(context)

    async def renew(self, stale: Token | None, context: CallContext) -> Token:
        """A token other than ``stale``: one token request, however many callers held it."""
        return await self._cache.renew(stale, context)

    async def _fetch(self, context: CallContext) -> Token:
        # Asking twice hands back the same token: safe to retry on a 5xx.
        return await self._http.request(
            "request_token",
            "GET",
            f"{self._account.identity_url}{TOKEN_PATH}",
            params=self._grant(),
            parse=token_parser(self._http.clock.monotonic, self._account.name),
            idempotent=True,
            context=context,
        )

    def _grant(self) -> dict[str, str]:
        """The documented query; the secret is read now and registered for redaction first."""
        try:
            secret = REDACTOR.add(self._account.client_secret.resolve())
        except ConfigError as exc:
            # Our own credentials are unusable: the customer's to fix, like a refused secret.
            raise AuthError(f"marketo {self._account.name}: {exc}") from exc
        self._http.redactor.add(secret)
        return {
            "grant_type": "client_credentials",
            "client_id": self._account.client_id,
            "client_secret": secret,
        }


def token_parser(
    monotonic: Callable[[], float], account: str = ""
) -> Callable[[httpx.Response], Token]:
    """The documented token body, parsed (``oauth.token_parser``)."""
    return oauth_token_parser("marketo identity", monotonic, default_type="bearer", slot=account)
