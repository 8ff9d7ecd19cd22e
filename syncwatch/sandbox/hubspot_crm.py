"""HubSpot CRM v3 contacts on api.hubapi.com: create, read, search, archive, batch archive.

Source for paths, bodies and status codes: repo HubSpot/HubSpot-public-api-spec-collection,
``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json`` (201 on create from the
``2026-03/contacts.json`` sibling); ``?idProperty=email`` from
https://github.com/HubSpot/hubspot-api-python/issues/100; timestamps from the spec's
SimplePublicObject example (vendor-apis.md §1.2, §1.5).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncwatch.sandbox.hubspot_common import Gate, error_response, iso_ms, read_json
from syncwatch.sandbox.hubspot_search import (
    ALWAYS_PROPERTIES,
    DEFAULT_PROPERTIES,
    SearchError,
    parse_search,
    property_value,
)
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.sync import SyncEngine
from syncwatch.sandbox.world import Contact, World

CONTACTS = "/crm/v3/objects/contacts"


def simple_public_object(contact: Contact, names: Iterable[str]) -> dict[str, Any]:
    """A SimplePublicObject; requested properties the contact lacks come back as null."""
    payload: dict[str, Any] = {
        "id": contact.id,
        "properties": {name: property_value(contact, name) for name in sorted(set(names))},
        "createdAt": iso_ms(contact.created_at),
        "updatedAt": iso_ms(contact.updated_at),
        "archived": contact.archived_at is not None,
    }
    if contact.archived_at is not None:
        payload["archivedAt"] = iso_ms(contact.archived_at)
    return payload


def wanted_properties(requested: list[str] | None) -> list[str]:
    """The defaults when nothing is asked for, else what is asked plus the system three."""
    return list(DEFAULT_PROPERTIES) if not requested else [*requested, *ALWAYS_PROPERTIES]


def _requested(request: Request) -> list[str] | None:
    """``?properties=a,b`` and repeated ``?properties=a&properties=b`` both work."""
    names = [n for raw in request.query_params.getlist("properties") for n in raw.split(",")]
    return [n.strip() for n in names if n.strip()] or None


class Contacts:
    """The handlers; ``Gate`` has already checked auth, faults and limits."""

    def __init__(self, world: World, sync: SyncEngine) -> None:
        self.world = world
        self.sync = sync

    def _invalid(self, message: str, **extra: Any) -> Response:
        return error_response(self.world, 400, message, "VALIDATION_ERROR", **extra)

    def _not_found(self, contact_id: str) -> Response:
        # unconfirmed: the 404 body of a missing object (Error schema, OBJECT_NOT_FOUND).
        return error_response(
            self.world,
            404,
            "resource not found",
            "OBJECT_NOT_FOUND",
            context={"id": [contact_id]},
        )

    async def create(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            return self._invalid("Invalid input JSON: expected an object with properties")
        properties = {k: str(v) for k, v in body["properties"].items() if v is not None}
        if rejection := self._rule_rejects(properties):
            return rejection
        self.world.note_submission(properties.get("email", ""))
        existing = self.world.contact_by_email(properties.get("email", ""))
        if existing is not None:
            # secondary source (community reports): the 409 wording and the CONFLICT category.
            message = f"Contact already exists. Existing ID: {existing.id}"
            return error_response(self.world, 409, message, "CONFLICT")
        contact = self.world.new_contact(properties, "api")
        self.sync.enqueue(contact)
        names = [*contact.properties, *ALWAYS_PROPERTIES]
        return JSONResponse(simple_public_object(contact, names), status_code=201)

    def _rule_rejects(self, properties: dict[str, str]) -> Response | None:
        """A ``validation`` fault: the record misses the rule's field (or any record, if none)."""
        rule = self.world.faults.fire("validation", "hubspot", self.world.clock.now())
        if rule is None or (rule.spec.field is not None and properties.get(rule.spec.field)):
            return None
        field = rule.spec.field or "email"
        # unconfirmed: HubSpot has no required contact properties; this mimics a portal rule.
        return self._invalid(
            f"Property values were not valid: {field} is required",
            errors=[{"message": f"{field} is required", "code": "REQUIRED_FIELD"}],
        )

    async def read(self, request: Request) -> Response:
        contact_id = request.path_params["contactId"]
        archived = request.query_params.get("archived", "false").lower() == "true"
        if request.query_params.get("idProperty") == "email":
            contact = None if archived else self.world.contact_by_email(contact_id)
        else:
            contact = self.world.contacts.get(contact_id)
        if contact is None or (contact.archived_at is not None) != archived:
            return self._not_found(contact_id)
        names = wanted_properties(_requested(request))
        return JSONResponse(simple_public_object(contact, names))

    async def search(self, request: Request) -> Response:
        try:
            query = parse_search(await read_json(request))
        except SearchError as exc:
            return self._invalid(str(exc))
        live = self.world.live_contacts()
        matches = sorted((c for c in live if query.matches(c)), key=lambda c: int(c.id))
        end = query.offset + query.limit
        names = wanted_properties(query.properties)
        payload: dict[str, Any] = {
            "total": len(matches),
            "results": [simple_public_object(c, names) for c in matches[query.offset : end]],
        }
        if end < len(matches):
            # unconfirmed: the shape of ``link`` for search (ForwardPaging allows it).
            payload["paging"] = {"next": {"after": str(end), "link": f"?after={end}"}}
        return JSONResponse(payload)

    async def archive(self, request: Request) -> Response:
        # unconfirmed: an unknown or already archived id also gets 204.
        self.world.archive_contact(request.path_params["contactId"])
        return Response(status_code=204)

    async def batch_archive(self, request: Request) -> Response:
        body = await read_json(request)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            return self._invalid('Invalid input JSON: expected {"inputs": [{"id": ...}]}')
        for item in inputs:
            self.world.archive_contact(str(item.get("id", "")))
        return Response(status_code=204)


def routes(world: World, sync: SyncEngine, gate: Gate) -> list[Route]:
    """The contacts routes; ``/search`` and ``/batch/archive`` precede ``/{contactId}``."""
    contacts = Contacts(world, sync)
    crm, search = gate.crm, gate.search
    return [
        Route(CONTACTS, gate.wrap(contacts.create, crm), methods=["POST"]),
        Route(f"{CONTACTS}/search", gate.wrap(contacts.search, search), methods=["POST"]),
        Route(
            f"{CONTACTS}/batch/archive", gate.wrap(contacts.batch_archive, crm), methods=["POST"]
        ),
        Route(f"{CONTACTS}/{{contactId}}", gate.wrap(contacts.read, crm), methods=["GET"]),
        Route(f"{CONTACTS}/{{contactId}}", gate.wrap(contacts.archive, crm), methods=["DELETE"]),
    ]
