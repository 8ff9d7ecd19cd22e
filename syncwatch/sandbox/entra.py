"""Microsoft Entra ID's token endpoint, as far as a Dataverse daemon uses it: client credentials.

``POST /entra/{tenant}/oauth2/v2.0/token`` (``/entra`` standing for login.microsoftonline.com)
answers ``{token_type, expires_in, access_token}``; a token is good for one resource, named by
the ``scope`` (``<resource>/.default``), and Dataverse refuses a token meant for another. The
only resource here is the sandbox's own ``/dynamics`` environment, as the request reached it.

Vendor docs: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
(repo MicrosoftDocs/entra-docs, ``docs/identity-platform/v2-oauth2-client-creds-grant-flow.md``):
the form, the success body, the 400 error body with ``invalid_scope`` / AADSTS70011.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncwatch.sandbox.common import delay_if_slow, garbage_if_malformed
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.world import World

VENDOR = "dynamics"
"""Faults for ``dynamics`` reach this endpoint too: one account, one vendor in the fault book."""
ENVIRONMENT_PREFIX = "/dynamics"


@dataclass(frozen=True)
class Issued:
    client_id: str
    resource: str
    issued_at: datetime
    expires_at: datetime


class OAuthRefusal(Exception):
    """A refused token request: the documented error body, with this status."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.aadsts, self.description = status, error, aadsts, description

    def response(self, world: World) -> Response:
        now = world.clock.now()
        trace = str(uuid.UUID(int=world.rng.getrandbits(128), version=4))
        body = {
            "error": self.error,
            "error_description": f"AADSTS{self.aadsts}: {self.description}\r\nTrace ID: {trace}",
            "error_codes": [self.aadsts],
            "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": trace,
            "correlation_id": trace,
        }
        return JSONResponse(body, status_code=self.status)


class EntraTokens:
    """Every access token handed out, so Dataverse can tell valid, expired, revoked, misaimed."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._issued: dict[str, Issued] = {}

    def issue(self, client_id: str, resource: str, tenant: str) -> tuple[str, Issued]:
        """A JWT-shaped token (header and claims readable, signature random); clients must
        treat it as opaque. unconfirmed: any claim beyond ``aud``, ``iss``, ``appid``, ``exp``."""
        now = self.world.clock.now()
        self._issued = {t: i for t, i in self._issued.items() if i.expires_at > now}
        lifetime = timedelta(seconds=self.world.scenario.dynamics.token_lifetime)
        issued = Issued(client_id, resource, now, now + lifetime)
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{tenant}/",
            "appid": client_id,
            "iat": int(now.timestamp()),
            "exp": int(issued.expires_at.timestamp()),
            "uti": f"{self.world.rng.getrandbits(64):016x}",
        }
        signature = self.world.rng.getrandbits(256).to_bytes(32, "big")
        token = ".".join([_b64({"typ": "JWT", "alg": "RS256"}), _b64(claims), _b64url(signature)])
        self._issued[token] = issued
        return token, issued

    def valid(self, token: str, resource: str) -> bool:
        """Issued here, for this resource, not expired, not revoked by a ``token_expiry`` fault."""
        issued = self._issued.get(token)
        now = self.world.clock.now()
        if issued is None or now >= issued.expires_at:
            return False
        return issued.resource.casefold() == resource.casefold() and not self._revoked(issued)

    def _revoked(self, issued: Issued) -> bool:
        now = self.world.clock.now()
        return any(
            fault.kind == "token_expiry"
            and fault.spec.vendor in (None, VENDOR)
            and fault.start <= now
            and issued.issued_at < fault.start
            for fault in self.world.faults.all()
        )


def tokens_for(world: World) -> EntraTokens:
    """The one token book of this world, shared by the token endpoint and the environment."""
    tokens = world.vendor_state.get("entra")
    if not isinstance(tokens, EntraTokens):
        tokens = world.vendor_state["entra"] = EntraTokens(world)
    return tokens


def environment_url(request: Request) -> str:
    """The sandbox's Dataverse environment as this request's client reaches the sandbox."""
    return f"{request.url.scheme}://{request.url.netloc}{ENVIRONMENT_PREFIX}"


def routes(world: World) -> list[Route]:
    """The token endpoint, mounted under ``/entra``."""

    async def token(request: Request) -> Response:
        return await token_endpoint(request, world)

    return [Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"])]


async def token_endpoint(request: Request, world: World) -> Response:
    """``POST /{tenant}/oauth2/v2.0/token``: grant a token or answer the OAuth error body."""
    await delay_if_slow(world, VENDOR)
    if outage := world.faults.fire("outage", VENDOR, world.clock.now()):
        # unconfirmed: the body of an Entra 5xx; the OAuth error shape is assumed.
        refusal = OAuthRefusal(outage.spec.status, "temporarily_unavailable", 50001, "Outage.")
        return refusal.response(world)
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    tenant = request.path_params["tenant"]
    try:
        client_id, resource = _check(world, tenant, form, environment_url(request))
    except OAuthRefusal as refused:
        return refused.response(world)
    token, issued = tokens_for(world).issue(client_id, resource, tenant)
    expires_in = int((issued.expires_at - issued.issued_at).total_seconds())
    body = {"token_type": "Bearer", "expires_in": expires_in, "access_token": token}
    return garbage_if_malformed(world, VENDOR, body) or JSONResponse(body)


def _check(world: World, tenant: str, form: dict[str, str], environment: str) -> tuple[str, str]:
    """The client id and resource of a good request; else the refusal Entra would give.

    unconfirmed: the statuses and AADSTS codes other than the documented AADSTS70011
    (``invalid_scope``, 400): 90002 unknown tenant, 70003 grant type, 700016 unknown client,
    7000215 wrong secret (401), 500011 a resource that is not this environment.
    """
    spec = world.scenario.dynamics
    if spec.tenant_id is not None and tenant.casefold() != spec.tenant_id.casefold():
        raise OAuthRefusal(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
    if form.get("grant_type") != "client_credentials":
        raise OAuthRefusal(400, "unsupported_grant_type", 70003, "The grant type is unsupported.")
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id or (spec.client_id is not None and client_id != spec.client_id):
        message = f"Application with identifier '{client_id}' was not found in the directory."
        raise OAuthRefusal(400, "unauthorized_client", 700016, message)
    if not secret or (spec.client_secret is not None and secret != spec.client_secret):
        raise OAuthRefusal(401, "invalid_client", 7000215, "Invalid client secret provided.")
    scope = form.get("scope", "")
    if not scope.endswith("/.default") or " " in scope.strip():
        message = f"The provided value for the input parameter 'scope' is not valid: {scope}"
        raise OAuthRefusal(400, "invalid_scope", 70011, message)
    resource = scope.removesuffix("/.default")
    if resource.rstrip("/").casefold() != environment.casefold():
        message = f"The resource principal named {resource} was not found in the tenant."
        raise OAuthRefusal(400, "invalid_resource", 500011, message)
    return client_id, environment


def _b64(value: dict[str, object]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
