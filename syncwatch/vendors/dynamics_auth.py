"""Microsoft Entra ID client credentials for the Dataverse destination: a cached token per account.

A daemon has no user, so it signs in as an app registration whose Dataverse *application user*
holds the security role; the token is asked for the environment itself (``scope`` is the
environment URL plus ``/.default``: every application permission granted on that resource).
Entra answers with the token's lifetime in ``expires_in``, so the token is kept until a minute
before that passes on our clock (a token that dies mid-request earns a needless 401), and a data
call answered 401 earns one new token (fetched once however many callers held the stale one) and
one retry: ``DynamicsAuth.request`` is how the adapter calls.

The secret travels only in the form body of the token request (never in a URL, which httpx logs),
is registered with the redactor before it is sent, and no body is ever recorded.

Vendor docs:
- the token request (``POST {authority}/{tenant}/oauth2/v2.0/token`` with ``client_id``,
  ``client_secret``, ``scope``, ``grant_type=client_credentials``), the success body
  ``{token_type, expires_in, access_token}`` and the 400 error body ``{error, error_description,
  error_codes, timestamp, trace_id, correlation_id}``:
  https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
  (repo MicrosoftDocs/entra-docs, ``docs/identity-platform/v2-oauth2-client-creds-grant-flow.md``)
- the ``/.default`` scope of a resource: https://learn.microsoft.com/entra/identity-platform/scopes-oidc
- Dataverse as that resource (``https://ORG.crm.dynamics.com/.default``), app registration and
  application user: https://learn.microsoft.com/power-apps/developer/data-platform/authenticate-oauth
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from syncwatch.config.accounts import DynamicsAccount
from syncwatch.errors import AuthError, ConfigError, MalformedResponse
from syncwatch.http import AccountHttp, CallContext, json_body
from syncwatch.redact import REDACTOR

TOKEN_PATH = "/oauth2/v2.0/token"
"""Appended to ``auth_url`` + ``/`` + ``tenant_id``."""
EXPIRY_MARGIN_S = 60.0
T = TypeVar("T")


def scope_for(environment_url: str) -> str:
    """The ``.default`` scope of the environment: its URL (``https://ORG.crm.dynamics.com``) +
    ``/.default``. A path (a sandbox's prefix) stays part of the resource."""
    return environment_url.rstrip("/") + "/.default"


@dataclass(frozen=True)
class Token:
    """An access token and when to stop using it, on our monotonic clock; never in a repr."""

    access_token: str = field(repr=False)
    expires_at: float

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class DynamicsAuth:
    """One account's token: fetched on first use, reused until it expires or is refused."""

    def __init__(self, account: DynamicsAccount, http: AccountHttp) -> None:
        self._account = account
        self._http = http
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"DynamicsAuth(account={self._account.name!r}, token={self._token!r})"

    async def request(
        self,
        operation: str,
        method: str,
        url: str,
        parse: Callable[[httpx.Response], T],
        context: CallContext,
        headers: Mapping[str, str],
        **kwargs: Any,
    ) -> T:
        """One Web API call on the current token; a 401 earns one new token and one retry.

        Every call here (queries, and deletes of given ids) is idempotent: the HTTP layer may
        retry it on 5xx and throttling.
        """

        async def send(token: Token) -> T:
            return await self._http.request(
                operation,
                method,
                url,
                parse=parse,
                idempotent=True,
                context=context,
                headers={**headers, **token.headers},
                **kwargs,
            )

        token = await self.token(context)
        try:
            return await send(token)
        except AuthError as refused:
            if refused.status != 401:
                raise
        return await send(await self.renew(token, context))

    async def token(self, context: CallContext) -> Token:
        """The cached token while it lasts, else a fresh one."""
        current = self._token
        if current is not None and self._http.clock.monotonic() < current.expires_at:
            return current
        return await self.renew(current, context)

    async def renew(self, stale: Token | None, context: CallContext) -> Token:
        """A token other than ``stale``: one token request, however many callers held it."""
        async with self._lock:
            current = self._token
            expired = current is not None and self._http.clock.monotonic() >= current.expires_at
            if current is None or current is stale or expired:
                self._token = await self._fetch(context)
            assert self._token is not None
            return self._token

    async def _fetch(self, context: CallContext) -> Token:
        # Client credentials change nothing server-side: safe to retry on a 5xx.
        account = self._account
        return await self._http.request(
            "request_token",
            "POST",
            f"{account.auth_url}/{account.tenant_id}{TOKEN_PATH}",
            data=self._grant(),
            parse=token_parser(self._http.clock.monotonic),
            idempotent=True,
            context=context,
        )

    def _grant(self) -> dict[str, str]:
        """The documented form; the secret is read now and registered for redaction first."""
        try:
            secret = REDACTOR.add(self._account.client_secret.resolve())
        except ConfigError as exc:
            # Our own credentials are unusable: the customer's to fix, like a refused secret.
            raise AuthError(f"dynamics {self._account.name}: {exc}") from exc
        self._http.redactor.add(secret)
        return {
            "grant_type": "client_credentials",
            "client_id": self._account.client_id,
            "client_secret": secret,
            "scope": scope_for(self._account.base_url),
        }


def token_parser(monotonic: Callable[[], float]) -> Callable[[httpx.Response], Token]:
    """A parser of the documented token body, stamping expiry on our clock when it arrives."""

    def parse(response: httpx.Response) -> Token:
        body = json_body(response, "entra token")
        token, expires_in = body["access_token"], body["expires_in"]
        token_type = str(body.get("token_type", "")).lower()
        usable = isinstance(token, str) and token and token_type == "bearer"
        if not usable or isinstance(expires_in, bool) or not isinstance(expires_in, int):
            message = "entra token: no Bearer access_token with an integer expires_in"
            raise MalformedResponse(message, status=response.status_code)
        REDACTOR.add(token)
        return Token(token, monotonic() + max(expires_in - EXPIRY_MARGIN_S, 0.0))

    return parse
