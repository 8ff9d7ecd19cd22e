"""Eloqua emulation: base URL discovery and the REST 1.0 contact endpoints of the pod.

``/eloqua-login`` stands for login.eloqua.com and ``/eloqua`` for the pod
(``https://secure.p0N.eloqua.com``): ``GET /eloqua-login/id`` answers the pod's base URL on the
sandbox's own host, so a client that discovers its base URL lands on ``/eloqua``.

Sources (docs/reference/vendor-apis.md §6):
- ``GET https://login.eloqua.com/id`` (Basic or OAuth), its body (``site``, ``user``, ``urls``)
  and its failure, HTTP 200 with ``"Not authenticated."``:
  https://docs.oracle.com/en/cloud/saas/marketing/eloqua-rest-api/DeterminingBaseURL.html
- ``POST /api/REST/1.0/data/contact`` (201 with the Contact), ``GET .../contact/{id}``,
  ``DELETE .../contact/{id}``, ``GET .../contacts`` (``search``, ``depth``, ``count`` 1-1000,
  ``page``; ``{elements, page, pageSize, total}``):
  https://docs.oracle.com/cloud/latest/marketingcs_gs/OMCAC/rest-endpoints.html, the URL
  parameters and HTTP verbs pages, and Oracle's published Swagger as split by repo
  api-evangelist/eloqua (``openapi/eloqua-application-1-0-contacts-api-openapi.yml``)
- depths (minimal: ``type, id, createdAt, depth, name, updatedAt, emailAddress``), epoch-second
  strings, properties without a value left out:
  https://docs.oracle.com/en/cloud/saas/marketing/eloqua-rest-api/APIRequests_RequestDepth.html

A new contact goes to the pretend Salesforce integration when the scenario says a program sends
new contacts to a "Create Lead" step action (the default). Shared checks live in
``eloqua_common``. unconfirmed: the search grammar beyond ``{term}{operator}{value}`` (terms
``emailAddress``/``C_EmailAddress``, ``firstName``, ``lastName``, ``createdAt``, ``updatedAt``;
quotes around the value; ``*`` anywhere; case-insensitive), 409 with ``UniquenessRequirement``
for an existing email, unknown properties ignored, an empty search answering 200 (the Swagger
also lists 204), the delete's 204 (the Swagger's; the pages show none).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncwatch.sandbox.common import delay_if_slow, garbage_if_malformed
from syncwatch.sandbox.eloqua_common import (
    VENDOR,
    accepted,
    credentials,
    epoch,
    gate_for,
    invalid,
    read_json,
    text,
)
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.sync import SyncEngine
from syncwatch.sandbox.world import EloquaContact, World

POD = "/eloqua"
REST = "/api/REST/1.0/data"
WRITABLE = frozenset(
    {"emailAddress", "firstName", "lastName", "accountName", "title", "businessPhone"}
    | {"mobilePhone", "fax", "address1", "address2", "address3", "city", "province"}
    | {"postalCode", "country", "salesPerson", "description", "emailFormatPreference"}
    | {"isSubscribed", "isBounceback", "fieldValues"}
)
"""Contact properties a create keeps (the Contact schema less its read-only ones)."""
MINIMAL = ("type", "id", "createdAt", "depth", "name", "updatedAt", "emailAddress")
TERMS = {
    "emailAddress": "emailAddress",
    "C_EmailAddress": "emailAddress",
    "firstName": "firstName",
    "lastName": "lastName",
    "createdAt": "createdAt",
    "updatedAt": "updatedAt",
}
_SEARCH = re.compile(r"(?:(?P<term>[A-Za-z_]\w*)(?P<op>!=|>=|<=|=|>|<))?(?P<value>.*)", re.S)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Matcher = Callable[[EloquaContact], bool]
_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def login_routes(world: World) -> list[Route]:
    """``/id``, mounted under ``/eloqua-login`` (login.eloqua.com)."""

    async def identify(request: Request) -> Response:
        return await discover(request, world)

    return [Route("/id", identify, methods=["GET"])]


def pod_routes(world: World, sync: SyncEngine) -> list[Route]:
    """The contact endpoints, mounted under ``/eloqua`` (the pod's host)."""
    gate = gate_for(world)
    contacts = Contacts(world, sync)
    return [
        Route(f"{REST}/contact", gate.wrap(contacts.create), methods=["POST"]),
        Route(f"{REST}/contact/{{id}}", gate.wrap(contacts.retrieve), methods=["GET"]),
        Route(f"{REST}/contact/{{id}}", gate.wrap(contacts.delete), methods=["DELETE"]),
        Route(f"{REST}/contacts", gate.wrap(contacts.search), methods=["GET"]),
    ]


async def discover(request: Request, world: World) -> Response:
    """The site, the user and the pod's URLs, or the documented 200 ``"Not authenticated."``."""
    await delay_if_slow(world, VENDOR)
    if outage := world.faults.fire("outage", VENDOR, world.clock.now()):
        return text(outage.spec.status)
    found = credentials(request)
    if found is None or not accepted(world, found):
        return JSONResponse("Not authenticated.")
    company, username, _ = found
    base = f"{request.url.scheme}://{request.url.netloc}{POD}"
    payload = {
        "site": {"id": world.scenario.eloqua.site_id, "name": company},
        "user": {
            "id": 314,
            "username": username,
            "displayName": username,
            "firstName": "Syncwatch",
            "lastName": "Sandbox",
            "emailAddress": f"{username}@sandbox.example",
        },
        "urls": {
            "base": base,
            "apis": {
                "soap": {"standard": f"{base}/API/{{version}}/Service.svc"},
                "rest": {
                    "standard": f"{base}/API/REST/{{version}}/",
                    "bulk": f"{base}/API/Bulk/{{version}}/",
                },
            },
        },
    }
    return garbage_if_malformed(world, VENDOR, payload) or JSONResponse(payload)


class Contacts:
    """The contact database: create, retrieve, delete, list with ``search``."""

    def __init__(self, world: World, sync: SyncEngine) -> None:
        self.world = world
        self.sync = sync

    async def create(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            return text(400, "There was a parsing error.")
        if problem := self._refusal(body):
            return problem
        self.world.note_submission(str(body.get("emailAddress", "")))
        contact = self.world.new_eloqua_contact({k: v for k, v in body.items() if k in WRITABLE})
        if self.world.scenario.eloqua.sync_on_create:
            self.sync.enqueue_eloqua(contact)
        return JSONResponse(render(contact, "complete"), status_code=201)

    async def retrieve(self, request: Request) -> Response:
        contact_id = _id(request.path_params["id"])
        if contact_id is None:
            return invalid(
                "EndpointParameterError", "id", "IdRequirement", request.path_params["id"]
            )
        contact = self.world.eloqua_contacts.get(contact_id)
        if contact is None:
            return text(404)
        return JSONResponse(render(contact, request.query_params.get("depth", "complete")))

    async def delete(self, request: Request) -> Response:
        contact_id = _id(request.path_params["id"])
        if contact_id is None:
            return invalid(
                "EndpointParameterError", "id", "IdRequirement", request.path_params["id"]
            )
        if self.world.eloqua_contacts.pop(contact_id, None) is None:
            return text(404)
        return Response(status_code=204)

    async def search(self, request: Request) -> Response:
        params = request.query_params
        count, page = _int(params.get("count", "1000")), _int(params.get("page", "1"))
        if count is None or not 1 <= count <= 1000:
            return invalid("EndpointParameterError", "count", "IntegerRequirement", count)
        if page is None or page < 1:
            return invalid("EndpointParameterError", "page", "IdRequirement", page)
        matches = _matcher(params.get("search", ""))
        if matches is None:
            return invalid("EndpointParameterError", "search", "SyntaxRequirement")
        found = sorted((c for c in self.world.eloqua_contacts.values() if matches(c)), key=_key)
        depth = params.get("depth", "minimal")
        elements = [render(c, depth) for c in found[(page - 1) * count : page * count]]
        body = {"elements": elements, "page": page, "pageSize": count, "total": len(found)}
        return JSONResponse(body)

    def _refusal(self, body: dict[str, Any]) -> Response | None:
        """An invalid or missing email, a ``validation`` fault, an email already taken."""
        email = body.get("emailAddress")
        if email in (None, ""):
            return invalid("ObjectValidationError", "emailAddress", "NotNullRequirement")
        if not (isinstance(email, str) and _EMAIL.match(email)):
            return invalid(
                "ObjectValidationError", "emailAddress", "EmailAddressRequirement", email
            )
        now = self.world.clock.now()
        rule = self.world.faults.fire("validation", VENDOR, now)
        if rule and (rule.spec.field is None or not body.get(rule.spec.field)):
            return invalid(
                "ObjectValidationError", rule.spec.field or "fieldValues", "NotNullRequirement"
            )
        taken = self.world.eloqua_contact_by_email(email) is not None
        if taken or self.world.faults.fire("duplicate", VENDOR, now):
            return invalid(
                "ObjectValidationError", "emailAddress", "UniquenessRequirement", email, status=409
            )
        return None


def render(contact: EloquaContact, depth: str) -> dict[str, Any]:
    """The Contact at ``depth`` (anything but minimal or partial is complete, as documented);
    properties without a value are left out."""
    full: dict[str, Any] = {
        "type": "Contact",
        "currentStatus": "Awaiting action",
        "id": str(contact.id),
        "createdAt": epoch(contact.created_at),
        "depth": depth if depth in ("minimal", "partial") else "complete",
        "name": contact.email,
        "updatedAt": epoch(contact.updated_at),
        "emailFormatPreference": "unspecified",
        "isBounceback": "false",
        "isSubscribed": "true",
        "subscriptionDate": epoch(contact.created_at),
        **{k: v for k, v in contact.fields.items() if v not in (None, "")},
    }
    if full["depth"] == "minimal":
        return {key: full[key] for key in MINIMAL if key in full}
    if full["depth"] == "complete":
        full.setdefault("fieldValues", [])
    return full


def _matcher(search: str) -> Matcher | None:
    """A predicate for ``{term}{operator}{value}``; a bare value is matched against the email;
    None for a term or operator the sandbox does not search with."""
    parts = _SEARCH.fullmatch(search.strip())
    assert parts is not None  # the pattern matches any string
    term, op, value = parts["term"], parts["op"] or "=", parts["value"].strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        value = value[1:-1]
    if term is not None and term not in TERMS:
        return None
    name = TERMS[term] if term else "emailAddress"
    if not value and not term:
        return lambda contact: True
    if name in ("createdAt", "updatedAt"):
        return _compare(name, op, value)
    if op not in ("=", "!="):
        return None
    pattern = re.compile(".*".join(re.escape(part) for part in value.split("*")), re.I | re.S)
    wanted = op == "="
    return lambda c: bool(pattern.fullmatch(str(c.fields.get(name, "")))) == wanted


def _compare(name: str, op: str, value: str) -> Matcher | None:
    """``createdAt`` / ``updatedAt`` against epoch seconds, with any comparison operator."""
    limit = _int(value)
    if limit is None:
        return None
    compare = _COMPARISONS[op]

    def matches(contact: EloquaContact) -> bool:
        moment = contact.created_at if name == "createdAt" else contact.updated_at
        return compare(int(epoch(moment)), limit)

    return matches


def _key(contact: EloquaContact) -> int:
    return contact.id


def _id(raw: str) -> int | None:
    value = _int(raw)
    return value if value is not None and value > 0 else None


def _int(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdecimal() else None
