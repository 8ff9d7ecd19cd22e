"""Eloqua identity for the source adapter: the Basic header and the pod's base URL.

Every call carries ``Authorization: Basic base64("<company>\\<username>:<password>")``, built
from the password read at use time (rotation needs no restart) and registered with the redactor
in both forms, plain and encoded, before it is sent.

An instance lives on one of several pods and may move between them, so its base URL is asked of
``GET {login_url}/id`` (same header) and kept, then asked again: when it is a day old, and once
whenever the pod answers 401 or cannot be reached (Oracle's troubleshooting page names "the site
was moved to a different data center" among the causes of a 401, to be confirmed through ``/id``).
After a re-discovery the call is sent once more if it provably did nothing the first time (a
401, a refused connection) or is idempotent. A pinned ``base_url`` skips all of this.

``/id`` refuses in its own way: HTTP 200 with the JSON string ``"Not authenticated."`` (a bad
password, a disabled user, an address outside the IP allowlist), read here as ``auth``.

Vendor docs:
- ``GET https://login.eloqua.com/id``, its success body (``site``, ``user``, ``urls.base``,
  ``urls.apis``) and its ``"Not authenticated."`` failure; pods p01-p08; "some Eloqua instances
  may periodically move between data centers":
  https://docs.oracle.com/en/cloud/saas/marketing/eloqua-rest-api/DeterminingBaseURL.html
- the Basic token ``siteName + '\\' + username + ':' + password``, base-64 encoded:
  https://docs.oracle.com/cloud/latest/marketingcs_gs/OMCAC/Authentication_Basic.html
- 401 causes (IP allowlist, site moved, user disabled) and ``/id`` as the check:
  https://docs.oracle.com/cloud/latest/marketingcs_gs/OMCAB/Developers/GettingStarted/APIRequests/troubleshooting-400-level-errors.htm
- unconfirmed: how often to re-discover without a failure (the docs say only "validate your
  base URL before making any API calls"); a day here.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from syncwatch.config.accounts import EloquaAccount
from syncwatch.errors import AuthError, ConfigError, ConnectionFailed, MalformedResponse
from syncwatch.http import AccountHttp, CallContext, json_body
from syncwatch.redact import REDACTOR

ID_PATH = "/id"
NOT_AUTHENTICATED = "Not authenticated."
DISCOVERY_TTL_S = 24 * 3600.0
T = TypeVar("T")


class LoginRequired(AuthError):
    """A 401 from the pod: maybe a moved site, so worth one re-discovery; the call did nothing."""


@dataclass(frozen=True)
class Pod:
    """The base URL calls go to, and when (our monotonic clock) it was learned."""

    base_url: str
    learned_at: float
    pinned: bool = False


class EloquaAuth:
    """One account's header and pod: discovered on first use, kept, re-discovered on refusal."""

    def __init__(self, account: EloquaAccount, http: AccountHttp) -> None:
        self._account = account
        self._http = http
        self._pod = Pod(account.base_url, 0.0, pinned=True) if account.base_url else None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"EloquaAuth(account={self._account.name!r}, pod={self._pod!r})"

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
        """One call to the pod at ``path``; a 401 or an unreachable pod earns one re-discovery
        and, when resending is safe, one more try."""
        pod = await self.pod(context)
        try:
            return await self._send(
                pod, operation, method, path, parse, context, idempotent, kwargs
            )
        except (LoginRequired, ConnectionFailed) as exc:
            if pod.pinned or not (idempotent or not exc.may_have_acted):
                raise
        pod = await self.rediscover(pod, context)
        return await self._send(pod, operation, method, path, parse, context, idempotent, kwargs)

    async def pod(self, context: CallContext) -> Pod:
        """The known pod while it is younger than a day, else a fresh discovery."""
        current = self._pod
        if current is not None and (current.pinned or not self._stale(current)):
            return current
        return await self.rediscover(current, context)

    async def rediscover(self, stale: Pod | None, context: CallContext) -> Pod:
        """A pod learned after ``stale``: one ``/id`` call, however many callers held it."""
        async with self._lock:
            current = self._pod
            if current is None or current is stale or self._stale(current):
                current = self._pod = Pod(
                    await self._discover(context), self._http.clock.monotonic()
                )
            return current

    def headers(self) -> dict[str, str]:
        """The Basic header, the password read now and registered (plain and encoded) first."""
        try:
            password = REDACTOR.add(self._account.password.resolve())
        except ConfigError as exc:
            # Our own credentials are unusable: the customer's to fix, like a refused password.
            raise AuthError(f"eloqua {self._account.name}: {exc}") from exc
        token = basic_token(self._account.company, self._account.username, password)
        for secret in (password, token):
            REDACTOR.add(secret)
            self._http.redactor.add(secret)
        return {"Authorization": f"Basic {token}"}

    async def _send(
        self,
        pod: Pod,
        operation: str,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        context: CallContext,
        idempotent: bool,
        kwargs: dict[str, Any],
    ) -> T:
        return await self._http.request(
            operation,
            method,
            f"{pod.base_url}{path}",
            parse=parse,
            idempotent=idempotent,
            context=context,
            headers=self.headers(),
            **kwargs,
        )

    async def _discover(self, context: CallContext) -> str:
        # A read: safe to retry on a 5xx or a refused connection.
        return await self._http.request(
            "discover_base_url",
            "GET",
            f"{self._account.login_url}{ID_PATH}",
            parse=base_url_of,
            idempotent=True,
            context=context,
            headers=self.headers(),
        )

    def _stale(self, pod: Pod) -> bool:
        return not pod.pinned and self._http.clock.monotonic() - pod.learned_at >= DISCOVERY_TTL_S


def basic_token(company: str, username: str, password: str) -> str:
    """The documented token: ``company\\username:password``, UTF-8, base-64 encoded.

    unconfirmed: the encoding of non-ASCII characters (RFC 7617 allows UTF-8; Oracle is silent).
    """
    return base64.b64encode(f"{company}\\{username}:{password}".encode()).decode("ascii")


def base_url_of(response: httpx.Response) -> str:
    """``urls.base`` of the ``/id`` answer, without a trailing slash; ``"Not authenticated."``
    is ``auth``; anything else without an http(s) base is ``malformed``."""
    body = json_body(response, "eloqua /id")
    if body == NOT_AUTHENTICATED:
        raise AuthError(f"eloqua /id: {NOT_AUTHENTICATED}", status=response.status_code)
    urls = body.get("urls") if isinstance(body, dict) else None
    base = urls.get("base") if isinstance(urls, dict) else None
    parts = urlsplit(base) if isinstance(base, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        raise MalformedResponse("eloqua /id: no http(s) urls.base", status=response.status_code)
    assert isinstance(base, str)
    return base.rstrip("/")
