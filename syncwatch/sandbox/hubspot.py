"""HubSpot emulation: forms v3 submissions (api.hsforms.com) and CRM v3 contacts (api.hubapi.com).

Forms sources (vendor-apis.md §1.1):
- https://developers.hubspot.com/docs/api-reference/legacy/marketing/forms/v3-legacy/submit-data-unauthenticated
- https://developers.hubspot.com/docs/api-reference/legacy/marketing/forms/v3-legacy/submit-data-authenticated
- https://developers.hubspot.com/changelog/validation-change-to-the-forms-api-submission-endpoints
- https://developers.hubspot.com/changelog/reminder-forms-submission-rate-limits

A submission answers 200 with an inline message and no contact id; the contact it creates (or
updates, matched by email) is what the pretend connector copies to Salesforce. The CRM side lives
in ``hubspot_crm``; auth, limits and faults in ``hubspot_common``.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncwatch.sandbox import hubspot_crm
from syncwatch.sandbox.hubspot_common import VENDOR, correlation_id, gate_for, read_json
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.scenario import FormSpec
from syncwatch.sandbox.sync import SyncEngine
from syncwatch.sandbox.world import World

CONTACT_OBJECT = "0-1"
THANKS = "Thanks for submitting the form."
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SUBMIT = "/submissions/v3/integration/submit/{portalId}/{formGuid}"
_SECURE_SUBMIT = "/submissions/v3/integration/secure/submit/{portalId}/{formGuid}"


def crm_routes(world: World, sync: SyncEngine) -> list[Route]:
    """api.hubapi.com: CRM v3 contacts behind bearer auth and the account's limits."""
    return hubspot_crm.routes(world, sync, gate_for(world))


def forms_routes(world: World, sync: SyncEngine) -> list[Route]:
    """api.hsforms.com: the open and the ``secure`` v3 integration submit endpoints."""
    gate = gate_for(world)
    forms = Forms(world, sync)

    async def open_submit(request: Request) -> Response:
        return await forms.submit(request, secure=False)

    async def secure_submit(request: Request) -> Response:
        return await forms.submit(request, secure=True)

    return [
        Route(_SUBMIT, gate.wrap(open_submit, gate.open_form), methods=["POST"]),
        Route(_SECURE_SUBMIT, gate.wrap(secure_submit, gate.secure_form), methods=["POST"]),
    ]


def _field_error(name: str, error_type: str, reason: str) -> dict[str, str]:
    # unconfirmed: the per-field message wording; the errorType values are documented.
    return {"message": f"Error in 'fields.{name}'. {reason}", "errorType": error_type}


class Forms:
    """Form submissions: validate against the scenario's form, then create or update a contact."""

    def __init__(self, world: World, sync: SyncEngine) -> None:
        self.world = world
        self.sync = sync

    def _error(self, status: int, message: str, errors: list[dict[str, str]]) -> Response:
        body = {
            "status": "error",
            "message": message,
            "correlationId": correlation_id(self.world),
            "errors": errors,
        }
        return JSONResponse(body, status_code=status)

    def _form(self, portal_id: str, guid: str) -> FormSpec | None:
        spec = self.world.scenario.hubspot
        if portal_id != spec.portal_id:
            return None
        return next((form for form in spec.forms if form.guid == guid), None)

    async def submit(self, request: Request, *, secure: bool) -> Response:
        params = request.path_params
        form = self._form(params["portalId"], params["formGuid"])
        if form is None:
            # unconfirmed: the wording of HubSpot's 404 for an unknown portal or form.
            return self._error(404, f"Form not found: {params['formGuid']}", [])
        body = await read_json(request)
        fields = _submitted_fields(body)
        if fields is None:
            # unconfirmed: the body of a submission that is not the documented JSON shape.
            return self._error(400, "Invalid input JSON", [])
        errors = self._problems(form, fields, secure)
        if errors:
            # unconfirmed: the top-level message; the body shape and errorTypes are documented.
            return self._error(400, "The request is not valid", errors)
        self._record(fields)
        return JSONResponse({"inlineMessage": THANKS})

    def _problems(
        self, form: FormSpec, fields: list[tuple[str, str, str]], secure: bool
    ) -> list[dict[str, str]]:
        """Field errors in HubSpot's vocabulary; a ``validation`` fault adds a required field."""
        values = {name: value for kind, name, value in fields if kind == CONTACT_OBJECT}
        errors = [
            _field_error(name, "FIELD_NOT_IN_FORM_DEFINITION", f"Field '{name}' is not in form.")
            for kind, name, _ in fields
            if not secure and (kind != CONTACT_OBJECT or name not in form.fields)
        ]
        missing = [name for name in form.required if not values.get(name)]
        if (rule_field := self._rule_field(values)) and rule_field not in missing:
            missing.append(rule_field)
        errors += [
            _field_error(name, "REQUIRED_FIELD", f"Required field '{name}' is missing")
            for name in missing
        ]
        email = values.get("email")
        if email and not _EMAIL.match(email):
            errors.append(_field_error("email", "INVALID_EMAIL", f"Invalid email '{email}'"))
        return errors

    def _rule_field(self, values: dict[str, str]) -> str | None:
        """The field a firing ``validation`` fault finds missing (any record if it names none)."""
        rule = self.world.faults.fire("validation", VENDOR, self.world.clock.now())
        if rule is None or (rule.spec.field is not None and values.get(rule.spec.field)):
            return None
        # unconfirmed: a fault without a field is reported against email.
        return rule.spec.field or "email"

    def _record(self, fields: list[tuple[str, str, str]]) -> None:
        """Create the contact (and queue it for the connector) or update the live one by email."""
        # unconfirmed: values for other objects (companies, "0-2") are not stored in the sandbox.
        properties = {name: value for kind, name, value in fields if kind == CONTACT_OBJECT}
        email = properties.get("email", "")
        if not email:
            return  # HubSpot keeps a submission without an email but makes no contact
        self.world.note_submission(email)
        existing = self.world.contact_by_email(email)
        if existing is None:
            self.sync.enqueue(self.world.new_contact(properties, "form"))
            return
        existing.properties.update(properties)
        existing.updated_at = self.world.clock.now()


def _submitted_fields(body: Any) -> list[tuple[str, str, str]] | None:
    """``(objectTypeId, name, value)`` per submitted field, or None if the body is malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("fields"), list):
        return None
    fields: list[tuple[str, str, str]] = []
    for item in body["fields"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return None
        # unconfirmed: a field without objectTypeId is taken as a contact field (older examples).
        kind = str(item.get("objectTypeId", CONTACT_OBJECT))
        fields.append((kind, item["name"], str(item.get("value", ""))))
    return fields
