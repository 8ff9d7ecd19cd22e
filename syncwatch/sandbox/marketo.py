"""Marketo emulation: Identity, the lead endpoints syncwatch uses, and the daily usage report.

Sources (docs/reference/vendor-apis.md §3; repo AdobeDocs/marketo-developer.en, ``help/rest-api/``):
- ``GET|POST /identity/oauth/token`` with the grant in the query, 401 for bad credentials:
  ``authentication.md``, ``error-codes.md``; repo AdobeDocs/marketo-apis,
  ``static/swagger-identity.json``
- ``POST /rest/v1/leads.json`` (Sync Leads: ``action`` createOnly/updateOnly/createOrUpdate/
  createDuplicate, ``lookupField`` default email, an id refused with createOnly),
  ``POST /rest/v1/leads/push.json`` (always an upsert; ``programName`` required),
  ``GET /rest/v1/leads.json?filterType=&filterValues=`` (comma-separated, at most 300; more than
  1,000 matches is 1003; default fields; ``nextPageToken``; a URI over 8 KB is a 414, and a POST
  with ``_method=GET`` is the way around it), ``POST /rest/v1/leads/delete.json`` (at most 300
  ids, ``deleted`` per record): ``leads.md``
- ``GET /rest/v1/stats/usage.json``: ``usage.md``
- record-level codes 1003-1011: ``error-codes.md``

A new person made by Sync Leads or Push Lead goes to the pretend Salesforce sync when the scenario
says the instance has a "Person is Created → Sync Person to SFDC" campaign (the default). Shared
checks (tokens, quota, rate, concurrency, faults) live in ``marketo_common``.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from syncwatch.sandbox.common import delay_if_slow, garbage_if_malformed
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.marketo_common import (
    SCOPE,
    VENDOR,
    Gate,
    envelope,
    failure,
    gate_for,
    iso_seconds,
    read_json,
    skipped,
)
from syncwatch.sandbox.sync import SyncEngine
from syncwatch.sandbox.world import MarketoLead, World

BATCH = 300
MAX_MATCHES = 1_000
MAX_URI = 8 * 1024
DEFAULT_FIELDS = ("id", "email", "updatedAt", "createdAt", "firstName", "lastName")
FILTER_TYPES = ("email", "id")
"""unconfirmed: the sandbox filters on these two of the many documented filter types."""
LEAD_FIELDS = frozenset(
    {"email", "firstName", "middleName", "lastName", "salutation", "company", "title", "phone"}
    | {"mobilePhone", "fax", "website", "address", "city", "state", "postalCode", "country"}
    | {"leadSource", "industry", "numberOfEmployees", "annualRevenue", "dateOfBirth"}
)
"""Standard REST field names (``leads.md``, Get Lead Fields); others are 1006 "not found"."""
ACTIONS = ("createOnly", "updateOnly", "createOrUpdate", "createDuplicate")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def routes(world: World, sync: SyncEngine) -> list[Route]:
    """Identity and REST paths, mounted under ``/marketo`` (the ``mktorest.com`` host)."""
    gate = gate_for(world)
    leads = Leads(world, sync)

    async def token(request: Request) -> Response:
        return await identity(request, world, gate)

    return [
        Route("/identity/oauth/token", token, methods=["GET", "POST"]),
        Route("/rest/v1/leads.json", gate.wrap(leads.find), methods=["GET"]),
        Route("/rest/v1/leads.json", gate.wrap(leads.sync_or_find), methods=["POST"]),
        Route("/rest/v1/leads/push.json", gate.wrap(leads.push), methods=["POST"]),
        Route("/rest/v1/leads/delete.json", gate.wrap(leads.delete), methods=["POST"]),
        Route("/rest/v1/stats/usage.json", gate.wrap(leads.usage), methods=["GET"]),
    ]


async def identity(request: Request, world: World, gate: Gate) -> Response:
    """A token for good client credentials: the live one while it lasts, else a fresh one.

    unconfirmed: the bodies of Identity's 401 and 400 and of a 5xx (an HTML error page here).
    """
    await delay_if_slow(world, VENDOR)
    if outage := world.faults.fire("outage", VENDOR, world.clock.now()):
        return PlainTextResponse("Service Unavailable", status_code=outage.spec.status)
    params = request.query_params
    if params.get("grant_type") != "client_credentials":
        body = {"error": "unsupported_grant_type", "error_description": "Unsupported grant type"}
        return JSONResponse(body, status_code=400)
    if not _client_ok(world, params.get("client_id", ""), params.get("client_secret", "")):
        body = {"error": "unauthorized", "error_description": "Bad client credentials"}
        return JSONResponse(body, status_code=401)
    issued = gate.tokens.issue()
    remaining = int((issued.expires_at - world.clock.now()).total_seconds())
    payload = {
        "access_token": issued.token,
        "token_type": "bearer",
        "expires_in": remaining,
        "scope": SCOPE,
    }
    return garbage_if_malformed(world, VENDOR, payload) or JSONResponse(payload)


def _client_ok(world: World, client_id: str, client_secret: str) -> bool:
    """Any non-empty pair, unless the scenario pins the LaunchPoint service's id and secret."""
    spec = world.scenario.marketo
    pinned = (spec.client_id is None or client_id == spec.client_id) and (
        spec.client_secret is None or client_secret == spec.client_secret
    )
    return bool(client_id and client_secret and pinned)


class Leads:
    """The lead database: Sync Leads, Push Lead, Get Leads by Filter Type, Delete Leads."""

    def __init__(self, world: World, sync: SyncEngine) -> None:
        self.world = world
        self.sync = sync

    async def sync_or_find(self, request: Request) -> Response:
        """Sync Leads, or the documented long lookup: a POST with ``_method=GET``."""
        if request.query_params.get("_method", "").upper() == "GET":
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
            return self._find({**request.query_params, **form})
        body = await read_json(request)
        if not isinstance(body, dict):
            return failure(self.world, "609")
        records = body.get("input")
        action = body.get("action", "createOrUpdate")
        if not isinstance(records, list) or not records:
            return failure(self.world, "701", "input cannot be blank")
        if action not in ACTIONS:
            # unconfirmed: the code for an unknown action.
            return failure(self.world, "1003", f"Invalid action '{action}'")
        lookup = body.get("lookupField", "email")
        results = [self._upsert(record, action, lookup, "leads") for record in records]
        return JSONResponse(envelope(self.world, results))

    async def push(self, request: Request) -> Response:
        """Push Lead: an upsert on ``lookupField`` (default email), attributed to a program."""
        body = await read_json(request)
        if not isinstance(body, dict):
            return failure(self.world, "609")
        if not body.get("programName"):
            # unconfirmed: that a missing programName is 701 ("%s cannot be blank").
            return failure(self.world, "701", "programName cannot be blank")
        records = body.get("input")
        if not isinstance(records, list) or not records:
            return failure(self.world, "701", "input cannot be blank")
        lookup = body.get("lookupField", "email")
        results = [self._upsert(r, "createOrUpdate", lookup, "push") for r in records]
        return JSONResponse(envelope(self.world, results))

    async def find(self, request: Request) -> Response:
        if len(str(request.url.path)) + len(request.url.query) > MAX_URI:
            return PlainTextResponse("Request-URI Too Long", status_code=414)
        return self._find(dict(request.query_params))

    async def delete(self, request: Request) -> Response:
        """Delete by ``input[].id``, or by the ``id`` query parameter when the body is empty."""
        ids: list[Any] = []
        if not (await request.body()).strip():
            ids = [i for i in request.query_params.get("id", "").split(",") if i]
        else:
            body = await read_json(request)
            if not isinstance(body, dict):
                return failure(self.world, "609")
            entries = body.get("input")
            for entry in entries if isinstance(entries, list) else []:
                ids.append(entry.get("id") if isinstance(entry, dict) else None)
        if not ids:
            return failure(self.world, "701", "input cannot be blank")
        return JSONResponse(envelope(self.world, [self._delete_one(i) for i in ids[:BATCH]]))

    async def usage(self, request: Request) -> Response:
        """Today's (CST) calls, this one included, all by the one API user the sandbox knows."""
        gate = gate_for(self.world)
        now = self.world.clock.now()
        total = gate.usage.used_today(now)
        day = gate.usage.day.isoformat() if gate.usage.day else ""
        users = [{"userId": SCOPE, "count": total}] if total else []
        return JSONResponse(envelope(self.world, [{"date": day, "total": total, "users": users}]))

    # -- records ------------------------------------------------------------------------------

    def _upsert(self, record: Any, action: str, lookup: str, origin: str) -> dict[str, Any]:
        """One input record's result, in the order and shapes ``leads.md`` documents."""
        if not isinstance(record, dict):
            return skipped("1003", "Invalid data")
        if problem := self._invalid(record, action, lookup):
            return problem
        self.world.note_submission(str(record.get("email", "")))
        matches = self._matches(lookup, record.get(lookup))
        if action in ("updateOnly", "createOrUpdate") and len(matches) > 1:
            return skipped("1007", "Multiple leads match the lookup criteria")
        if action == "createOnly" and matches:
            return skipped("1005", "Lead already exists")
        if action == "updateOnly" and not matches:
            return skipped("1004", "Lead not found")
        if matches and action != "createDuplicate":
            lead = matches[0]
            lead.fields.update(record)
            lead.updated_at = self.world.clock.now()
            return {"id": lead.id, "status": "updated"}
        lead = self.world.new_marketo_lead(record, origin)
        if self.world.scenario.marketo.sync_on_create:
            self.sync.enqueue_marketo(lead)
        return {"id": lead.id, "status": "created"}

    def _invalid(self, record: dict[str, Any], action: str, lookup: str) -> dict[str, Any] | None:
        """Record-level refusals before any lookup; a ``validation`` fault adds one."""
        if action == "createOnly" and "id" in record:
            return skipped("1003", "Invalid data")  # id is system-managed (leads.md)
        if lookup not in ("email", "id"):
            return skipped("1011", f"Field '{lookup}' not supported")
        if unknown := sorted(set(record) - LEAD_FIELDS - {"id"}):
            return skipped("1006", f"Field '{unknown[0]}' not found")
        if action != "createDuplicate" and record.get(lookup) in (None, ""):
            # unconfirmed: the code for a record without its lookup field.
            return skipped("1003", f"Missing value for the lookup field '{lookup}'")
        email = record.get("email")
        if email is not None and not (isinstance(email, str) and _EMAIL.match(email)):
            return skipped("1003", "Invalid email address")  # unconfirmed: wording
        rule = self.world.faults.fire("validation", VENDOR, self.world.clock.now())
        if rule and (rule.spec.field is None or not record.get(rule.spec.field)):
            # unconfirmed: how a Marketo-side rule (e.g. a field made required) reports itself.
            return skipped("1003", f"Invalid data: {rule.spec.field or 'record'} is required")
        return None

    def _matches(self, field: str, value: Any) -> list[MarketoLead]:
        if field == "id":
            lead = self.world.marketo_leads.get(value) if isinstance(value, int) else None
            return [lead] if lead else []
        return self.world.marketo_leads_by_email(value) if isinstance(value, str) else []

    def _delete_one(self, raw_id: Any) -> dict[str, Any]:
        lead_id = _int(raw_id)
        if lead_id is None or self.world.marketo_leads.pop(lead_id, None) is None:
            # unconfirmed: the reason for an id that is not (or no longer) a lead.
            return {"id": lead_id or 0, **skipped("1004", "Lead not found")}
        return {"id": lead_id, "status": "deleted"}

    def _find(self, params: dict[str, str]) -> Response:
        """Get Leads by Filter Type: ``filterType``, comma-separated ``filterValues``, paged."""
        kind, values = params.get("filterType", ""), params.get("filterValues", "")
        if not kind or not values:
            blank = "filterType" if not kind else "filterValues"
            return failure(self.world, "701", f"{blank} cannot be blank")
        if kind not in FILTER_TYPES:
            return failure(self.world, "1011", f"Field '{kind}' not supported")
        wanted = [v.strip() for v in values.split(",") if v.strip()]
        if len(wanted) > BATCH:
            # unconfirmed: the code for more than 300 filter values.
            return failure(self.world, "1003", "Too many values in the filter")
        matches = sorted(self._filter(kind, wanted), key=lambda lead: lead.id)
        if len(matches) > MAX_MATCHES:
            return failure(self.world, "1003", "Too many results match the filter")
        start = _page_start(params.get("nextPageToken"))
        size = min(_int(params.get("batchSize")) or BATCH, BATCH)
        page = matches[start : start + size]
        fields = [f for f in params.get("fields", "").split(",") if f] or list(DEFAULT_FIELDS)
        extra = {"nextPageToken": _page_token(start + size)} if start + size < len(matches) else {}
        rendered = [_render(lead, fields) for lead in page]
        return JSONResponse(envelope(self.world, rendered, **extra))

    def _filter(self, kind: str, wanted: list[str]) -> list[MarketoLead]:
        if kind == "id":
            ids = {_int(v) for v in wanted}
            return [lead for lead in self.world.marketo_leads.values() if lead.id in ids]
        emails = {v.lower() for v in wanted}
        return [lead for lead in self.world.marketo_leads.values() if lead.email.lower() in emails]


def _render(lead: MarketoLead, fields: list[str]) -> dict[str, Any]:
    """The requested fields (``id`` always); a field without a value is left out ("null")."""
    known = {
        **lead.fields,
        "createdAt": iso_seconds(lead.created_at),
        "updatedAt": iso_seconds(lead.updated_at),
    }
    row: dict[str, Any] = {"id": lead.id}
    row.update({f: known[f] for f in fields if f != "id" and known.get(f) not in (None, "")})
    return row


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _page_token(offset: int) -> str:
    """An opaque base32 token like the docs' examples; it holds the next offset."""
    return base64.b32encode(f"syncwatch:{offset}".encode()).decode()


def _page_start(token: str | None) -> int:
    if not token:
        return 0
    try:
        _, _, offset = base64.b32decode(token.encode()).decode().partition(":")
    except ValueError:
        return 0
    return _int(offset) or 0
