"""Salesforce OAuth 2.0 token endpoint (client credentials and JWT bearer) and the tokens it issues.

The token response's ``instance_url`` points back at this sandbox as the request reached it, so
an adapter that does what the docs say (use ``instance_url`` for every later call) stays inside
the sandbox whether it runs in-process or against ``127.0.0.1:PORT``.

Vendor docs:
- client credentials: https://developer.salesforce.com/docs/atlas.en-us.262.0.chatterapi.meta/chatterapi/quickstart_connecting.htm
- JWT bearer: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.world import World

VENDOR = "salesforce"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_SKEW = timedelta(minutes=3)  # the documented clock-skew allowance on ``exp``
TOKEN_PATH = "/services/oauth2/token"
TOKENS = "salesforce_oauth"
"""The key of the token book in ``world.vendor_state``."""
_TOKEN_ALPHABET = string.ascii_letters + string.digits + "._"
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Session:
    issued_at: datetime
    expires_at: datetime


class OAuthError(Exception):
    """A refused token request, rendered as the OAuth ``{"error", "error_description"}`` body."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def response(self) -> Response:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=400)


class TokenBook:
    """Every access token handed out, so REST calls can be told valid, expired or revoked."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._sessions: dict[str, Session] = {}

    def issue(self) -> tuple[str, Session]:
        """A fresh opaque token ``<org id>!<random>``, drawn from the world's seeded dice."""
        now = self.world.clock.now()
        self._forget_expired(now)
        lifetime = timedelta(seconds=self.world.scenario.salesforce.token_lifetime)
        # unconfirmed: only the ``00D...!...`` outline is documented; length and alphabet of
        # the part after ``!`` are the sandbox's choice.
        secret = "".join(self.world.rng.choices(_TOKEN_ALPHABET, k=96))
        token = f"{self.world.scenario.salesforce.org_id}!{secret}"
        session = Session(now, now + lifetime)
        self._sessions[token] = session
        return token, session

    def session_of(self, token: str) -> Session | None:
        """The session a token was issued for (None if never issued or forgotten)."""
        return self._sessions.get(token)

    def valid(self, token: str) -> bool:
        """Known, not past its lifetime, and not issued before a ``token_expiry`` fault began.

        unconfirmed: real sessions time out after inactivity; the sandbox counts the lifetime
        from issue, which is the stricter reading for a client.
        """
        session = self._sessions.get(token)
        now = self.world.clock.now()
        return session is not None and now < session.expires_at and not self._revoked(session)

    def _revoked(self, session: Session) -> bool:
        """A token_expiry fault revokes what was issued before it, even after its window ends."""
        now = self.world.clock.now()
        return any(
            fault.kind == "token_expiry"
            and fault.spec.vendor in (None, VENDOR)
            and fault.start <= now
            and session.issued_at < fault.start
            for fault in self.world.faults.all()
        )

    def _forget_expired(self, now: datetime) -> None:
        """Keep memory bounded: an expired token can never become valid again."""
        for token in [t for t, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[token]


def tokens_for(world: World) -> TokenBook:
    """The org's one token book, shared by every emulation that takes its tokens: the REST API
    and Account Engagement (which accepts the same Salesforce access tokens)."""
    book = world.vendor_state.get(TOKENS)
    if not isinstance(book, TokenBook):
        book = world.vendor_state[TOKENS] = TokenBook(world)
    return book


async def token_endpoint(request: Request, world: World, tokens: TokenBook) -> Response:
    """``POST /services/oauth2/token``: grant a token or answer the OAuth error body."""
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    try:
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            check_client(world, form.get("client_id", ""), form.get("client_secret", ""))
        elif grant == JWT_GRANT:
            check_assertion(world, form.get("assertion", ""))
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
    except OAuthError as refused:
        return refused.response()
    return JSONResponse(grant_body(request, world, tokens, grant, form))


def check_client(world: World, client_id: str, client_secret: str) -> None:
    """Any non-empty pair, unless the scenario pins the connected app's key and secret."""
    spec = world.scenario.salesforce
    pinned_ok = (spec.client_id is None or client_id == spec.client_id) and (
        spec.client_secret is None or client_secret == spec.client_secret
    )
    if not (client_id and client_secret and pinned_ok):
        raise OAuthError("invalid_client", "invalid client credentials")


def check_assertion(world: World, assertion: str) -> None:
    """Shape and claims of the JWT: three base64url parts, JSON claims iss/sub/aud/exp.

    Not emulated: the RS256 signature is not verified, because the sandbox holds no certificate.
    unconfirmed: the error code and description for each kind of bad assertion.
    """
    claims = decode_claims(assertion)
    spec = world.scenario.salesforce
    for name in ("iss", "sub", "aud"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise OAuthError("invalid_grant", "invalid assertion")
    if spec.client_id is not None and claims["iss"] != spec.client_id:
        raise OAuthError("invalid_grant", "invalid assertion")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise OAuthError("invalid_grant", "invalid assertion")
    if world.clock.now().timestamp() > exp + JWT_SKEW.total_seconds():
        raise OAuthError("invalid_grant", "invalid assertion")


def decode_claims(assertion: str) -> dict[str, Any]:
    """The claims object of a compact JWS, or ``invalid_grant`` when it is not one."""
    parts = assertion.split(".")
    if len(parts) != 3 or not all(_SEGMENT.match(part) for part in parts):
        raise OAuthError("invalid_grant", "invalid assertion")
    try:
        header, claims = (
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            for part in parts[:2]
        )
    except (ValueError, binascii.Error) as exc:
        raise OAuthError("invalid_grant", "invalid assertion") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise OAuthError("invalid_grant", "invalid assertion")
    return claims


def instance_url(request: Request) -> str:
    """This sandbox's Salesforce prefix as the client reached it (mount root, scheme, host)."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def grant_body(
    request: Request, world: World, tokens: TokenBook, grant: str, form: dict[str, str]
) -> dict[str, Any]:
    """The documented success body; JWT bearer answers fewer keys than client credentials."""
    token, session = tokens.issue()
    spec = world.scenario.salesforce
    identity = f"https://login.salesforce.com/id/{spec.org_id}/{spec.default_owner_id}"
    body: dict[str, Any] = {"access_token": token, "instance_url": instance_url(request)}
    if grant == JWT_GRANT:
        # unconfirmed: the scope granted depends on the connected app; "api" is the minimum.
        return {**body, "scope": "api", "id": identity, "token_type": "Bearer"}
    issued_at = str(int(session.issued_at.timestamp() * 1000))
    return {
        **body,
        "signature": signature(form.get("client_secret", ""), identity + issued_at),
        "token_format": "opaque",
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
    }


def signature(client_secret: str, text: str) -> str:
    """unconfirmed: HMAC-SHA256 of id + issued_at keyed by the client secret, base64."""
    digest = hmac.new(client_secret.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()
