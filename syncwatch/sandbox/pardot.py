"""Account Engagement (Pardot) emulation: the v5 prospect endpoints syncwatch uses, and handlers.

Sources (docs/reference/vendor-apis.md §5):
- ``POST /api/v5/objects/prospects/do/upsertLatestByEmail`` (the most recently updated prospect
  with the email, else a new one), ``GET /api/v5/objects/prospects`` (``fields`` required,
  querying by ``email`` returns every prospect with it, ``values`` and ``nextPageToken``),
  ``GET``/``DELETE /api/v5/objects/prospects/<id>`` (delete moves to the recycle bin):
  https://developer.salesforce.com/docs/marketing/pardot/guide/prospect-v5 and
  .../transitioning-v5.html; paging, ``fields``, 204 on delete, ``deleted``:
  .../version5overview.html
- the upsert body ``{matchEmail, prospect, fields, secondaryDeletedSearch}``: secondary sources
  (segmentio/action-destinations ``actions-pardot``), the vendor page's example not seen
- form handlers: a urlencoded POST answered only by a redirect to the success or error
  location, the error one carrying ``errorMessage=...&errors=true``:
  https://help.salesforce.com/apex/HTViewHelpDoc?id=mktg.pardot_considerations_for_using_form_handlers.htm
  (no multipart); the redirect parameters from secondary sources (kumahq/kuma-gui#40)

A new prospect (by either path) goes to the pretend Salesforce connector when the scenario says
an automation assigns new prospects (the default): only assigned prospects become Leads. Shared
checks (tokens, business unit, quota, concurrency, faults) live in ``pardot_common``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from syncwatch.sandbox.common import delay_if_slow, garbage_if_malformed
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.pardot_common import MESSAGES, VENDOR, failure, gate_for, iso
from syncwatch.sandbox.scenario import FormHandlerSpec
from syncwatch.sandbox.sync import SyncEngine
from syncwatch.sandbox.world import PardotProspect, World

PROSPECTS = "/api/v5/objects/prospects"
DEFAULT_LIMIT = 200
MAX_LIMIT = 1_000
WRITABLE = frozenset(
    {"email", "firstName", "lastName", "salutation", "company", "jobTitle", "department"}
    | {"phone", "fax", "website", "addressOne", "addressTwo", "city", "state", "zip"}
    | {"country", "territory", "industry", "annualRevenue", "employees", "yearsInBusiness"}
    | {"source", "comments", "notes", "isDoNotCall", "isDoNotEmail", "campaignId"}
)
"""Standard editable v5 prospect fields (the object page); custom fields end in ``__c``."""
READ_ONLY = frozenset({"id", "createdAt", "updatedAt", "isDeleted"})
QUERY_FILTERS = frozenset({"email", "deleted", "limit", "orderBy", "fields"})
"""unconfirmed: the sandbox filters prospects by ``email`` (and ``deleted``) only."""
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def routes(world: World, sync: SyncEngine) -> list[Route]:
    """API and form handler paths, mounted under ``/pardot`` (pi.pardot.com; handlers stand for
    go.pardot.com or the account's tracker domain)."""
    gate = gate_for(world)
    prospects = Prospects(world, sync)
    return [
        Route(f"{PROSPECTS}/do/upsertLatestByEmail", gate.wrap(prospects.upsert), methods=["POST"]),
        Route(PROSPECTS, gate.wrap(prospects.query), methods=["GET"]),
        Route(PROSPECTS + "/{id}", gate.wrap(prospects.read), methods=["GET"]),
        Route(PROSPECTS + "/{id}", gate.wrap(prospects.delete), methods=["DELETE"]),
        Route("/l/{handler:path}", prospects.submit, methods=["POST"]),
    ]


class Prospects:
    """The prospect database: upsert by email, query, read, delete; form handler posts."""

    def __init__(self, world: World, sync: SyncEngine) -> None:
        self.world = world
        self.sync = sync

    async def upsert(self, request: Request) -> Response:
        """The latest live prospect with ``matchEmail`` updated (200), a recycled one restored
        when ``secondaryDeletedSearch`` (200), else a new one (201)."""
        body = await _json(request)
        if not isinstance(body, dict):
            return failure(150)
        match, fields, record = body.get("matchEmail"), body.get("fields"), body.get("prospect")
        if not isinstance(match, str) or not isinstance(record, dict):
            return failure(153)
        record = {"email": match, **record}
        if problem := self._invalid(record) or _unknown_read(fields):
            return problem
        prospect, created = self._upsert(record, bool(body.get("secondaryDeletedSearch")), "api")
        if not fields:
            return Response(status_code=204)  # unconfirmed: nothing readable requested
        return JSONResponse(_render(prospect, fields), status_code=201 if created else 200)

    async def query(self, request: Request) -> Response:
        params = dict(request.query_params)
        fields = [f for f in params.get("fields", "").split(",") if f]
        token = params.get("nextPageToken")
        if not fields:
            return failure(13, "One or more required parameters are missing: fields")
        if problem := _unknown_read(fields):
            return problem
        if token is not None and set(params) - {"fields", "nextPageToken"}:
            return failure(5)  # only fields may accompany a page token
        if token is None and set(params) - QUERY_FILTERS:
            return failure(5)
        query = params if token is None else _token_filter(token)
        if query is None:
            return failure(211, "Page token is invalid.")
        start = _int(query.get("offset")) or 0
        limit = min(_int(query.get("limit")) or DEFAULT_LIMIT, MAX_LIMIT)
        matches = self._filter(query)
        page = matches[start : start + limit]
        more = start + limit < len(matches)
        next_token = _page_token(start + limit, query) if more else None
        next_url = f"{request.url.path}?nextPageToken={next_token}" if next_token else None
        values = [_render(p, fields) for p in page]
        return JSONResponse(
            {"values": values, "nextPageToken": next_token, "nextPageUrl": next_url}
        )

    async def read(self, request: Request) -> Response:
        prospect = self._live(request.path_params["id"])
        fields = [f for f in request.query_params.get("fields", "").split(",") if f]
        if prospect is None:
            return failure(192)
        if not fields:
            return failure(13, "One or more required parameters are missing: fields")
        return _unknown_read(fields) or JSONResponse(_render(prospect, fields))

    async def delete(self, request: Request) -> Response:
        """Move a live prospect to the recycle bin: 204; unknown or recycled already: 192."""
        prospect = self._live(request.path_params["id"])
        if prospect is None:
            return failure(192)
        prospect.deleted_at = self.world.clock.now()
        return Response(status_code=204)

    async def submit(self, request: Request) -> Response:
        """A form handler post: a redirect to the success or the error location, nothing else."""
        await delay_if_slow(self.world, VENDOR)
        now = self.world.clock.now()
        if outage := self.world.faults.fire("outage", VENDOR, now):
            return HTMLResponse("<html><body>Service Unavailable</body></html>", outage.spec.status)
        handler = self._handler(request.path_params["handler"])
        if handler is None:
            return HTMLResponse("<html><body>Not Found</body></html>", 404)  # unconfirmed
        content_type = request.headers.get("content-type", "")
        if "multipart/form-data" in content_type.lower():
            return _error_redirect(handler, "Form handlers do not accept multipart/form-data")
        posted = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        record = {handler.fields[k]: v for k, v in posted.items() if k in handler.fields and v}
        if problem := self._form_problem(handler, posted, record):
            return _error_redirect(handler, problem)
        self._upsert(record, False, "form_handler")
        response = garbage_if_malformed(self.world, VENDOR, {})
        return response or RedirectResponse(handler.success_location, status_code=302)

    # -- records ------------------------------------------------------------------------------

    def _upsert(
        self, record: dict[str, Any], include_deleted: bool, origin: str
    ) -> tuple[PardotProspect, bool]:
        self.world.note_submission(str(record["email"]))
        matches = self.world.pardot_prospects_by_email(str(record["email"]))
        if not matches and include_deleted:
            matches = self._recycled(str(record["email"]))
        if matches:
            prospect = matches[0]
            prospect.fields.update(record)
            prospect.updated_at, prospect.deleted_at = self.world.clock.now(), None
            return prospect, False
        prospect = self.world.new_pardot_prospect(record, origin)
        if self.world.scenario.pardot.assign_on_create:
            self.sync.enqueue_pardot(prospect)
        return prospect, True

    def _invalid(self, record: dict[str, Any]) -> Response | None:
        """API-level refusals of a prospect body; a ``validation`` fault adds one."""
        unknown = [k for k in record if k not in WRITABLE and not k.endswith("__c")]
        if unknown:
            return failure(180, f"{MESSAGES[180]}: {', '.join(sorted(unknown))}")
        email = record.get("email")
        if not isinstance(email, str) or len(email) > 255 or not _EMAIL.match(email):
            return failure(4)
        rule = self.world.faults.fire("validation", VENDOR, self.world.clock.now())
        if rule and (rule.spec.field is None or not record.get(rule.spec.field)):
            # unconfirmed: how a business unit's own rule would refuse an API write.
            return failure(154, f"Invalid property in request: {rule.spec.field or 'prospect'}")
        return None

    def _form_problem(
        self, handler: FormHandlerSpec, posted: dict[str, str], record: dict[str, Any]
    ) -> str | None:
        """Why a submission goes to the error location (unconfirmed: the wordings)."""
        missing = [name for name in handler.required if not posted.get(name)]
        if missing:
            return f"Missing required fields: {', '.join(missing)}"
        if not _EMAIL.match(str(record.get("email", ""))):
            return "Please input a valid email address"
        rule = self.world.faults.fire("validation", VENDOR, self.world.clock.now())
        if rule and (rule.spec.field is None or not record.get(rule.spec.field)):
            return f"{rule.spec.field or 'This field'} is required"
        return None

    def _handler(self, path: str) -> FormHandlerSpec | None:
        wanted = "l/" + path.strip("/")
        handlers = self.world.scenario.pardot.form_handlers
        return next((h for h in handlers if h.path.strip("/") == wanted), None)

    def _live(self, raw_id: str) -> PardotProspect | None:
        prospect = self.world.pardot_prospects.get(_int(raw_id) or 0)
        return prospect if prospect is not None and prospect.deleted_at is None else None

    def _recycled(self, email: str) -> list[PardotProspect]:
        wanted = email.lower()
        recycled = [
            p
            for p in self.world.pardot_prospects.values()
            if p.deleted_at is not None and p.email.lower() == wanted
        ]
        return sorted(recycled, key=lambda p: (p.updated_at, p.id), reverse=True)

    def _filter(self, params: dict[str, str]) -> list[PardotProspect]:
        """Prospects by ``email`` and ``deleted`` (false by default), in id order."""
        deleted = params.get("deleted", "false").lower()
        email = params.get("email", "").lower()
        found = []
        for prospect in sorted(self.world.pardot_prospects.values(), key=lambda p: p.id):
            recycled = prospect.deleted_at is not None
            if deleted != "all" and recycled != (deleted == "true"):
                continue
            if email and prospect.email.lower() != email:
                continue
            found.append(prospect)
        return found


def _render(prospect: PardotProspect, fields: list[str]) -> dict[str, Any]:
    """The requested fields only (v5 returns nothing unasked); a field without a value is null."""
    known = {
        **prospect.fields,
        "id": prospect.id,
        "createdAt": iso(prospect.created_at),
        "updatedAt": iso(prospect.updated_at),
        "isDeleted": prospect.deleted_at is not None,
    }
    return {name: known.get(name) for name in fields}


def _unknown_read(fields: Any) -> Response | None:
    if fields is None:
        return None
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        return failure(154, "Invalid property in request: fields")
    unknown = [f for f in fields if f not in WRITABLE | READ_ONLY and not f.endswith("__c")]
    return failure(180, f"{MESSAGES[180]}: {', '.join(unknown)}") if unknown else None


def _error_redirect(handler: FormHandlerSpec, message: str) -> Response:
    query = urlencode({"errorMessage": message, "errors": "true"})
    return RedirectResponse(f"{handler.error_location}?{query}", status_code=302)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _page_token(offset: int, params: dict[str, str]) -> str:
    """An opaque token holding the next offset and the query's filters."""
    filters = {k: v for k, v in params.items() if k in ("email", "deleted", "limit")}
    raw = urlencode({**filters, "offset": offset})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _token_filter(token: str) -> dict[str, str] | None:
    """The filters and offset a page token holds, or None for a token we never issued."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, binascii.Error):
        return None
    query = dict(parse_qsl(raw))
    return query if "offset" in query else None
