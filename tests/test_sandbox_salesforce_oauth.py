"""Salesforce emulation: OAuth token flows, bearer auth, token lifetime and revocation."""

from __future__ import annotations

import base64

import httpx
import pytest
from salesforce_support import (
    DATA,
    INVALID_SESSION,
    LIMIT_INFO,
    SF,
    TOKEN_URL,
    bearer,
    claims,
    fault,
    get_token,
    make_jwt,
    sandbox_client,
    segment,
    world_of,
)
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.sandbox.scenario import SalesforceSpec, Scenario

# -- OAuth ------------------------------------------------------------------------------------


async def test_client_credentials_returns_the_documented_body(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """The client-credentials grant answers every documented key with the org's token."""
    response = await client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": "id", "client_secret": "s"},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token", "signature", "token_format", "instance_url", "id", "token_type",
        "issued_at",
    }  # fmt: skip
    assert body["access_token"].startswith("00D5e000000Abcd!")
    assert body["token_format"] == "opaque"
    assert body["token_type"] == "Bearer"
    assert body["issued_at"] == str(int(clock.now().timestamp() * 1000))
    assert body["id"] == "https://login.salesforce.com/id/00D5e000000Abcd/0055e000001AbCdAAK"
    assert body["instance_url"] == "http://sandbox.test/salesforce"


async def test_instance_url_points_back_at_the_host_the_client_used(clock: VirtualClock) -> None:
    """instance_url follows the request's origin, so it works on 127.0.0.1:PORT as well."""
    async with sandbox_client(Scenario(), clock, "http://127.0.0.1:8765") as http:
        response = await http.post(
            TOKEN_URL,
            data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"},
        )
        body = response.json()
        assert body["instance_url"] == "http://127.0.0.1:8765/salesforce"
        limits = await http.get(
            body["instance_url"] + "/services/data/v62.0/limits/",
            headers=bearer(body["access_token"]),
        )
    assert limits.status_code == 200


async def test_tokens_are_deterministic_per_seed(clock: VirtualClock) -> None:
    """The same seed issues the same token; a different seed a different one."""
    tokens = []
    for seed in (1, 1, 2):
        async with sandbox_client(Scenario(seed=seed), clock) as http:
            tokens.append(await get_token(http))
    assert tokens[0] == tokens[1] != tokens[2]


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "client_credentials", "client_id": "", "client_secret": "s"},
        {"grant_type": "client_credentials", "client_id": "id", "client_secret": ""},
        {"grant_type": "client_credentials"},
    ],
)
async def test_client_credentials_refuses_empty_credentials(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    """An empty or missing client id or secret is invalid_client."""
    response = await client.post(TOKEN_URL, data=form)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }


@pytest.mark.parametrize(
    ("client_id", "client_secret", "status"),
    [("app-key", "app-secret", 200), ("app-key", "wrong", 400), ("other", "app-secret", 400)],
)
async def test_client_credentials_honour_pinned_credentials(
    clock: VirtualClock, client_id: str, client_secret: str, status: int
) -> None:
    """When the scenario pins the connected app, only its key and secret get a token."""
    pinned = Scenario(salesforce=SalesforceSpec(client_id="app-key", client_secret="app-secret"))
    form = {"grant_type": "client_credentials", "client_id": client_id}
    async with sandbox_client(pinned, clock) as http:
        response = await http.post(TOKEN_URL, data={**form, "client_secret": client_secret})
    assert response.status_code == status


@pytest.mark.parametrize("form", [{}, {"grant_type": "password", "username": "u", "password": "p"}])
async def test_unknown_or_missing_grant_type(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    """A grant the sandbox does not offer is unsupported_grant_type."""
    response = await client.post(TOKEN_URL, data=form)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_jwt_bearer_grants_a_working_token(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """A well-formed JWT assertion gets the documented JWT response and a usable token."""
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}
    response = await client.post(TOKEN_URL, data={**form, "assertion": make_jwt(claims(clock))})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "scope", "instance_url", "id", "token_type"}
    assert body["instance_url"] == "http://sandbox.test/salesforce"
    limits = await client.get(DATA + "/limits/", headers=bearer(body["access_token"]))
    assert limits.status_code == 200


async def test_jwt_exp_allows_three_minutes_of_skew(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """An assertion expired by under three minutes still passes; past that it is refused."""
    now = int(clock.now().timestamp())
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}
    inside = make_jwt(claims(clock, exp=now - 179))
    outside = make_jwt(claims(clock, exp=now - 181))
    assert (await client.post(TOKEN_URL, data={**form, "assertion": inside})).status_code == 200
    refused = await client.post(TOKEN_URL, data={**form, "assertion": outside})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


def _bad_assertions() -> list[str]:
    good = claims(VirtualClock())
    return [
        "",
        "only.two",
        "a.b.c.d",
        f"{segment({'alg': 'RS256'})}.{segment(good)}.",
        f"{segment({'alg': 'RS256'})}.not*base64.sig",
        f"{segment({'alg': 'RS256'})}.{base64.urlsafe_b64encode(b'not json').decode()}.sig",
        f"{segment({'alg': 'RS256'})}.{segment(['a list'])}.sig",  # type: ignore[arg-type]
        make_jwt({k: v for k, v in good.items() if k != "sub"}),
        make_jwt({k: v for k, v in good.items() if k != "aud"}),
        make_jwt({k: v for k, v in good.items() if k != "exp"}),
        make_jwt({**good, "iss": ""}),
        make_jwt({**good, "exp": "tomorrow"}),
    ]


@pytest.mark.parametrize("assertion", _bad_assertions())
async def test_jwt_bearer_refuses_malformed_assertions(
    client: httpx.AsyncClient, assertion: str
) -> None:
    """Not three base64url JSON segments, or a claim missing, is invalid_grant."""
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    response = await client.post(TOKEN_URL, data=form)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_jwt_issuer_must_match_a_pinned_client_id(clock: VirtualClock) -> None:
    """With the connected app pinned, iss must be its consumer key."""
    pinned = Scenario(salesforce=SalesforceSpec(client_id="app-key"))
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}
    async with sandbox_client(pinned, clock) as http:
        wrong = await http.post(TOKEN_URL, data={**form, "assertion": make_jwt(claims(clock))})
        right = make_jwt(claims(clock, iss="app-key"))
        ok = await http.post(TOKEN_URL, data={**form, "assertion": right})
    assert (wrong.status_code, ok.status_code) == (400, 200)


# -- REST auth and routing --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
)
async def test_rest_refuses_missing_or_invalid_sessions(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """No bearer token, an unknown one, or another scheme gets 401 INVALID_SESSION_ID."""
    response = await client.get(DATA + "/limits/", headers=headers)
    assert response.status_code == 401
    assert response.json() == INVALID_SESSION
    assert LIMIT_INFO.match(response.headers["Sforce-Limit-Info"])


async def test_tokens_expire_after_their_lifetime(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """A token works until token_lifetime has passed on the sandbox clock, then is refused."""
    token = await get_token(client)
    await clock.advance(7200 - 1)
    assert (await client.get(DATA + "/limits/", headers=bearer(token))).status_code == 200
    await clock.advance(1)
    expired = await client.get(DATA + "/limits/", headers=bearer(token))
    assert expired.status_code == 401
    assert expired.json() == INVALID_SESSION


@pytest.mark.parametrize(
    ("version", "status"), [("v62.0", 200), ("v59.0", 200), ("62.0", 404), ("v62", 404)]
)
async def test_any_vNN_N_version_is_served(
    client: httpx.AsyncClient, version: str, status: int
) -> None:
    """Every vNN.N version path works; anything else is NOT_FOUND."""
    token = await get_token(client)
    path = f"{SF}/services/data/{version}/limits/"
    response = await client.get(path, headers=bearer(token))
    assert response.status_code == status
    if status == 404:
        assert response.json()[0]["errorCode"] == "NOT_FOUND"


async def test_token_expiry_fault_revokes_earlier_tokens(
    client: httpx.AsyncClient, sandbox: Starlette, clock: VirtualClock
) -> None:
    """Tokens issued before a token_expiry fault fail for good; new tokens work."""
    old = await get_token(client)
    fault(world_of(sandbox), kind="token_expiry", vendor="salesforce", after=10, **{"for": 60})
    assert (await client.get(DATA + "/limits/", headers=bearer(old))).status_code == 200
    await clock.advance(10)
    assert (await client.get(DATA + "/limits/", headers=bearer(old))).json() == INVALID_SESSION
    fresh = await get_token(client)
    assert (await client.get(DATA + "/limits/", headers=bearer(fresh))).status_code == 200
    await clock.advance(120)
    assert (await client.get(DATA + "/limits/", headers=bearer(old))).status_code == 401
