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

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from syncwatch.config.accounts import DynamicsAccount
from syncwatch.errors import AuthError, ConfigError
from syncwatch.http import AccountHttp, CallContext
from syncwatch.redact import REDACTOR
from syncwatch.vendors.oauth import Token, TokenCache
from syncwatch.vendors.oauth import token_parser as oauth_token_parser

TOKEN_PATH = "/oauth2/v2.0/token"
"""Appended to ``auth_url`` + ``/`` + ``tenant_id``."""
EXPIRY_MARGIN_S = 60.0
T = TypeVar("T")


def scope_for(environment_url: str) -> str:
    """The ``.default`` scope of the environment: its URL (``https://ORG.crm.dynamics.com``) +
    ``/.default``. A path (a sandbox's prefix) stays part of the resource."""
    return environment_url.rstrip("/") + "/.default"


class DynamicsAuth:
    """One account's token: fetched on first use, reused until it expires or is refused."""

    def __init__(self, account: DynamicsAccount, http: AccountHttp) -> None:
        self._account = account
        self._http = http
        self._cache = TokenCache(http.clock.monotonic, self._fetch)

    def __repr__(self) -> str:
        return f"DynamicsAuth(account={self._account.name!r}, token={self._cache!r})"

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
        return await self._cache.token(context)

    async def renew(self, stale: Token | None, context: CallContext) -> Token:
        """A token other than ``stale``: one token request, however many callers held it."""
        return await self._cache.renew(stale, context)

    async def _fetch(self, context: CallContext) -> Token:
        # Client credentials change nothing server-side: safe to retry on a 5xx.
        account = self._account
        return await self._http.request(
            "request_token",
            "POST",
            f"{account.auth_url}/{account.tenant_id}{TOKEN_PATH}",
            data=self._grant(),
            parse=token_parser(self._http.clock.monotonic, self._account.name),
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


def token_parser(
    monotonic: Callable[[], float], account: str = ""
) -> Callable[[httpx.Response], Token]:
    """The documented token body, parsed (``oauth.token_parser``)."""
    return oauth_token_parser("entra token", monotonic, margin_s=EXPIRY_MARGIN_S, slot=account)
