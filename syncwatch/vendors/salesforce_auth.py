"""Salesforce OAuth 2.0 for the adapters that use it: one cached session per account.

Salesforce answers a token request with an ``access_token`` and the ``instance_url`` every later
call goes to, but with no lifetime and, for these two flows, no refresh token. So the session is
kept until a data call answers 401 ``INVALID_SESSION_ID``; the adapter then asks ``renew`` for
one new token (fetched once however many callers held the stale one) and retries once. Account
Engagement (Pardot) takes the very same tokens, so its source adapter uses this module too, for
any account shaped like ``OAuthAccount``.

The JWT bearer assertion is RS256 (RSASSA-PKCS1-v1_5 with SHA-256), signed by ``cryptography``:
key parsing and constant-time signing are not code to write by hand.

Vendor docs:
- client credentials: https://developer.salesforce.com/docs/atlas.en-us.262.0.chatterapi.meta/chatterapi/quickstart_connecting.htm
- JWT bearer (claims iss/sub/aud/exp, ``{"alg":"RS256"}``, exp within 3 minutes):
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm
- RS256: RFC 7518 §3.3
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from syncwatch.config.accounts import ClientCredentials, JwtBearer
from syncwatch.errors import AuthError, ConfigError, MalformedResponse
from syncwatch.http import AccountHttp, CallContext, json_body
from syncwatch.redact import REDACTOR
from syncwatch.vendors.oauth import bearer_safe

TOKEN_PATH = "/services/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 180
"""The docs accept an ``exp`` at most 3 minutes ahead; ours is exactly that, on our clock."""


class OAuthAccount(Protocol):
    """What a token request needs from an account: Salesforce's, or Account Engagement's."""

    @property
    def name(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    @property
    def auth_url(self) -> str | None: ...

    @property
    def auth(self) -> ClientCredentials | JwtBearer: ...


@dataclass(frozen=True)
class Session:
    """An access token and the instance it is good for; the token never shows in a repr."""

    access_token: str = field(repr=False)
    instance_url: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class SalesforceAuth:
    """One account's session: fetched on first use, replaced only when Salesforce refuses it."""

    def __init__(self, account: OAuthAccount, http: AccountHttp) -> None:
        self._account = account
        self._http = http
        self._session: Session | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SalesforceAuth(account={self._account.name!r}, session={self._session!r})"

    async def session(self, context: CallContext) -> Session:
        """The cached session, or a new one when there is none yet."""
        return self._session or await self.renew(None, context)

    async def renew(self, stale: Session | None, context: CallContext) -> Session:
        """A session other than ``stale``: one token call, however many callers held it."""
        async with self._lock:
            if self._session is None or self._session is stale:
                self._session = await self._fetch(context)
            return self._session

    async def _fetch(self, context: CallContext) -> Session:
        url = f"{self._account.auth_url or self._account.base_url}{TOKEN_PATH}"
        # A token request changes nothing a second one would not: safe to retry on a 5xx.
        return await self._http.request(
            "request_token",
            "POST",
            url,
            data=self._grant(),
            parse=functools.partial(session_from, account=self._account.name),
            idempotent=True,
            context=context,
        )

    def _grant(self) -> dict[str, str]:
        """The form for the configured flow; secrets are read now and registered for redaction."""
        auth = self._account.auth
        try:
            if isinstance(auth, ClientCredentials):
                secret = REDACTOR.add(auth.client_secret.resolve())
                grant = "client_credentials"
                return {"grant_type": grant, "client_id": auth.client_id, "client_secret": secret}
            assertion = self._assertion(auth)
        except (ConfigError, ValueError) as exc:
            # Our own credentials are unusable: the customer's to fix, like a refused token.
            raise AuthError(f"{self._http.vendor} {self._account.name}: {exc}") from exc
        assertion = REDACTOR.rotate(f"{self._account.name} assertion", assertion)
        return {"grant_type": JWT_GRANT, "assertion": assertion}

    def _assertion(self, auth: JwtBearer) -> str:
        pem = REDACTOR.add(auth.private_key.resolve())
        audience = auth.audience or self._account.auth_url or self._account.base_url
        return jwt_assertion(auth.client_id, auth.username, audience, self._http.clock.now(), pem)


def session_from(response: httpx.Response, account: str = "") -> Session:
    """The documented token body's ``access_token`` and ``instance_url``, or ``malformed``."""
    body = json_body(response, "salesforce token")
    token, instance_url = body["access_token"], body["instance_url"]
    usable = bearer_safe(token) and isinstance(instance_url, str)
    if not usable or not instance_url.startswith(("https://", "http://")):
        message = "salesforce token: no access_token, or instance_url is not a URL"
        raise MalformedResponse(message, status=response.status_code)
    REDACTOR.rotate(f"{account} salesforce token", token)
    return Session(token, instance_url.rstrip("/"))


# -- JWT bearer assertion -------------------------------------------------------------------


def jwt_assertion(client_id: str, username: str, audience: str, now: datetime, pem: str) -> str:
    """The signed assertion: ``{"alg":"RS256"}``, claims iss/sub/aud/exp, base64url, no padding."""
    claims = {
        "iss": client_id,
        "sub": username,
        "aud": audience,
        "exp": int(now.timestamp()) + ASSERTION_LIFETIME_S,
    }
    signing_input = f"{_b64url_json({'alg': 'RS256'})}.{_b64url_json(claims)}"
    signature = sign_rs256(rsa_private_key(pem), signing_input.encode("ascii"))
    return f"{signing_input}.{_b64url(signature)}"


def _b64url_json(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_rs256(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3)."""
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def rsa_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An unencrypted PKCS #1 or PKCS #8 PEM RSA key; messages never quote the key."""
    try:
        key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(
            "private_key: not an unencrypted PEM RSA private key (PKCS #1 or #8)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("private_key: the key is not an RSA key; RS256 needs one")
    return key
