"""Microsoft Dataverse (Dynamics 365) Web API emulation: the ``leads`` and ``contacts`` entity sets.

Mounted under ``/dynamics`` (an environment URL, ``https://ORG.crm.dynamics.com``); tokens come
from ``/entra`` (``entra.py``), and every route passes the gate in ``dynamics_common``.

- ``GET /api/data/v9.2/leads?$select=&$filter=&$top=``: the ``$filter`` subset of ``odata.py``;
  rows in id order, ``Prefer: odata.maxpagesize`` (default and most 5,000) with
  ``@odata.nextLink`` (the query unchanged plus ``$skiptoken``), ``$top`` ignored when paging
- ``POST /api/data/v9.2/leads``: 204 with ``OData-EntityId``, or 201 and the row with
  ``Prefer: return=representation``; ``MSCRM.SuppressDuplicateDetection: false`` turns on the
  default duplicate rule (same email), answered 500 ``0x80040333`` as documented
- ``GET``/``DELETE /api/data/v9.2/leads(<id>)``: the row / 204; 404 ``0x80040217`` when absent

Rows carry ``@odata.etag``, the columns asked for (absent ones as ``null``), the primary key,
``createdon`` in whole seconds (``2016-09-28T23:14:00Z``, as every documented example shows; the
true instant stays in ``/_sandbox/records``) and the owner as ``_ownerid_value``.

Vendor docs (repo MicrosoftDocs/powerapps-docs, ``powerapps-docs/developer/data-platform/webapi/``):
``create-entity-web-api.md``, ``query/overview.md``, ``query/select-columns.md``,
``query/page-results.md``, ``query/filter-rows.md``, ``update-delete-entities-using-web-api.md``,
``manage-duplicate-detection-create-update.md``, ``compose-http-requests-handle-errors.md``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncwatch.sandbox.dynamics_common import error, gate_for, odata_json
from syncwatch.sandbox.entra import VENDOR, environment_url
from syncwatch.sandbox.odata import ODataError, parse_filter
from syncwatch.sandbox.world import DataverseRecord, World

ENTITY_SETS = {"leads": ("lead", "leadid"), "contacts": ("contact", "contactid")}
COMMON = ("emailaddress1", "firstname", "lastname", "telephone1", "jobtitle", "mobilephone")
ADDRESS = (
    "address1_line1",
    "address1_city",
    "address1_stateorprovince",
    "address1_postalcode",
    "address1_country",
)
SYSTEM = ("createdon", "modifiedon", "_ownerid_value", "statecode", "statuscode")
STANDARD_COLUMNS = {
    "lead": (*COMMON, *ADDRESS, *SYSTEM, "companyname", "subject", "salutation", "middlename"),
    "contact": (*COMMON, *ADDRESS, *SYSTEM, "salutation", "middlename", "description"),
}
STANDARD_COLUMNS["lead"] += ("revenue", "leadsourcecode", "description")
READ_ONLY = frozenset({"createdon", "modifiedon", "_ownerid_value"})
QUERY_OPTIONS = frozenset({"$select", "$filter", "$top", "$skiptoken"})
QUERY_ERROR = "0x80060888"  # unconfirmed: the code of OData query errors
MAX_PAGE = 5_000
DUPLICATE_MESSAGE = (
    "A record was not created or updated because a duplicate of the current record already exists."
)
_RESOURCE = re.compile(r"^(?P<set>[A-Za-z_]+)(?:\((?P<id>[^)]*)\))?$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_MAXPAGESIZE = re.compile(r"odata\.maxpagesize=(\d+)")
_LAST = re.compile(r'last="([0-9a-f-]{36})"')


def routes(world: World) -> list[Route]:
    """The Web API, mounted under ``/dynamics``."""
    api = WebApi(world)
    gate = gate_for(world)
    path = "/api/data/{version}/{resource}"
    return [
        Route(path, gate.wrap(api.read), methods=["GET"]),
        Route(path, gate.wrap(api.create), methods=["POST"]),
        Route(path, gate.wrap(api.delete), methods=["DELETE"]),
    ]


def created_on(record: DataverseRecord) -> datetime:
    """What the API shows: the true instant without its fraction."""
    return record.created_at.astimezone(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class WebApi:
    """The two entity sets over ``world.dataverse``."""

    def __init__(self, world: World) -> None:
        self.world = world

    # -- routing --------------------------------------------------------------------------------

    def _target(self, request: Request) -> tuple[str, str, str | None] | Response:
        """(entity set, entity, row id or None) of the path, or the 404 Dataverse gives."""
        version = request.path_params["version"]
        match = _RESOURCE.match(request.path_params["resource"])
        if not re.fullmatch(r"v9\.\d", version) or match is None or match["set"] not in ENTITY_SETS:
            segment = request.path_params["resource"]
            # unconfirmed: code and wording for a resource the sandbox does not emulate.
            return error(404, "0x8006088a", f"Resource not found for the segment '{segment}'.")
        row_id = match["id"]
        if row_id is not None and not _GUID.match(row_id):
            # unconfirmed: the answer to a key that is not a GUID.
            return error(400, QUERY_ERROR, "Bad Request - Error in query syntax.")
        return match["set"], ENTITY_SETS[match["set"]][0], row_id.lower() if row_id else None

    async def read(self, request: Request) -> Response:
        target = self._target(request)
        if isinstance(target, Response):
            return target
        entity_set, entity, row_id = target
        if row_id is not None:
            return self._one(request, entity_set, entity, row_id)
        return self._query(request, entity_set, entity)

    # -- schema -----------------------------------------------------------------------------------

    def columns(self, entity: str) -> list[str]:
        """The primary key, standard columns, connector targets, and any column a row carries."""
        names = dict.fromkeys((ENTITY_SETS[f"{entity}s"][1], *STANDARD_COLUMNS[entity]))
        spec = self.world.scenario.dynamics
        names.update(
            dict.fromkeys([*spec.hubspot_mapping.values(), *spec.marketo_mapping.values()])
        )
        for record in self.world.dataverse.values():
            if record.entity == entity:
                names.update(dict.fromkeys(record.fields))
        return list(names)

    def row(self, record: DataverseRecord) -> dict[str, Any]:
        id_column = ENTITY_SETS[f"{record.entity}s"][1]
        return {**record.fields, id_column: record.id, "createdon": created_on(record)}

    def render(self, record: DataverseRecord, select: list[str]) -> dict[str, Any]:
        """``@odata.etag``, the selected columns (``null`` when empty), the primary key."""
        row = self.row(record)
        id_column = ENTITY_SETS[f"{record.entity}s"][1]
        etag = int(record.created_at.timestamp() * 1000) % 100_000_000
        body: dict[str, Any] = {"@odata.etag": f'W/"{etag}"'}
        for name in [*select, id_column]:
            value = row.get(name)
            body[name] = iso(value) if isinstance(value, datetime) else value
        return body

    def _select(self, request: Request, entity: str) -> list[str] | Response:
        known = self.columns(entity)
        raw = request.query_params.get("$select")
        select = [name.strip() for name in raw.split(",")] if raw else known
        for name in select:
            if name not in known:
                message = f"Could not find a property named '{name}' on type '{_type(entity)}'."
                return error(400, QUERY_ERROR, message)
        return select

    # -- query ----------------------------------------------------------------------------------

    def _query(self, request: Request, entity_set: str, entity: str) -> Response:
        """Rows matching ``$filter`` in id order, one page, a nextLink when more remain."""
        params = request.query_params
        unknown = sorted(k for k in params if k.startswith("$") and k not in QUERY_OPTIONS)
        if unknown:
            message = f"The query parameter {unknown[0]} is not supported"  # unconfirmed wording
            return error(400, QUERY_ERROR, message)
        select = self._select(request, entity)
        if isinstance(select, Response):
            return select
        where = params.get("$filter")
        try:
            matches = parse_filter(where, set(self.columns(entity))) if where else _everything
        except ODataError as refused:
            return error(400, QUERY_ERROR, str(refused))
        rows = sorted(
            (
                r
                for r in self.world.dataverse.values()
                if r.entity == entity and matches(self.row(r))
            ),
            key=lambda r: r.id,
        )
        last = _LAST.search(params.get("$skiptoken", ""))
        if last:
            rows = [r for r in rows if r.id > last[1]]
        size, paging = self._page_size(request)
        if not paging and params.get("$top", "").isdigit():
            rows, size = rows[: int(params["$top"])], MAX_PAGE
        page, more = rows[:size], len(rows) > size
        root = f"{environment_url(request)}/api/data/{request.path_params['version']}"
        body: dict[str, Any] = {
            "@odata.context": f"{root}/$metadata#{entity_set}({','.join(select)})",
            "value": [self.render(r, select) for r in page],
        }
        if more:
            body["@odata.nextLink"] = self._next_link(request, root, entity_set, page[-1])
        headers = {"Preference-Applied": f"odata.maxpagesize={size}"} if paging else {}
        return odata_json(body, headers=headers)

    def _page_size(self, request: Request) -> tuple[int, bool]:
        """``Prefer: odata.maxpagesize`` (at most 5,000) or the environment's default."""
        wanted = _MAXPAGESIZE.search(request.headers.get("prefer", ""))
        if wanted:
            return max(1, min(int(wanted[1]), MAX_PAGE)), True
        return self.world.scenario.dynamics.page_size, False

    @staticmethod
    def _next_link(request: Request, root: str, entity_set: str, last: DataverseRecord) -> str:
        """The request's own query, unchanged, plus a paging cookie after ``last``.

        unconfirmed: the real cookie's inner structure; clients must treat it as opaque.
        """
        kept = [(k, v) for k, v in parse_qsl(request.url.query) if k != "$skiptoken"]
        query = "&".join(f"{k}={quote(v, safe=',')}" for k, v in kept)
        cookie = f'<cookie pagenumber="2" last="{last.id}" istracking="False" />'
        return (
            f"{root}/{entity_set}?{query}{'&' if query else ''}$skiptoken={quote(cookie, safe='')}"
        )

    def _one(self, request: Request, entity_set: str, entity: str, row_id: str) -> Response:
        record = self.world.dataverse.get(row_id)
        if record is None or record.entity != entity:
            return not_found(entity, row_id)
        select = self._select(request, entity)
        if isinstance(select, Response):
            return select
        root = f"{environment_url(request)}/api/data/{request.path_params['version']}"
        context = {"@odata.context": f"{root}/$metadata#{entity_set}/$entity"}
        return odata_json({**context, **self.render(record, select)})

    # -- create and delete ------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        target = self._target(request)
        if isinstance(target, Response):
            return target
        entity_set, entity, row_id = target
        if row_id is not None:
            return error(405, "0x80060888", "POST is not supported on a single row.")  # unconfirmed
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, "0x80040264", "Invalid JSON in the request body.")  # unconfirmed
        if not isinstance(body, dict):
            return error(
                400, "0x80040264", "The request body must be a JSON object."
            )  # unconfirmed
        problem = self._refuse_create(request, entity, body)
        if problem is not None:
            return problem
        fields = {**body, "_ownerid_value": self.world.scenario.dynamics.default_owner_id}
        record = self.world.new_dataverse_record(entity, fields, self.world.clock.now(), "api")
        root = f"{environment_url(request)}/api/data/{request.path_params['version']}"
        location = f"{root}/{entity_set}({record.id})"
        if "return=representation" in request.headers.get("prefer", ""):
            select = self.columns(entity)
            payload = {
                "@odata.context": f"{root}/$metadata#{entity_set}/$entity",
                **self.render(record, select),
            }
            return odata_json(
                payload,
                201,
                {"OData-EntityId": location, "Preference-Applied": "return=representation"},
            )
        return Response(status_code=204, headers={"OData-EntityId": location})

    def _refuse_create(
        self, request: Request, entity: str, body: dict[str, Any]
    ) -> Response | None:
        """Unknown or read-only columns, a plug-in's refusal (``validation`` fault), the default
        duplicate rule when the caller asks for detection (``duplicate`` fault forces it)."""
        known = set(self.columns(entity))
        for name in body:
            if name not in known or name in READ_ONLY:
                message = (
                    f"The property '{name}' does not exist on type '{_type(entity)}'."
                    " Make sure to only use property names that are defined by the type."
                )
                return error(400, QUERY_ERROR, message)  # unconfirmed: code and wording
        now = self.world.clock.now()
        rule = self.world.faults.fire("validation", VENDOR, now)
        if rule and (rule.spec.field is None or not body.get(rule.spec.field)):
            # The documented shape of a plug-in's InvalidPluginExecutionException.
            return error(400, "0x80040265", f"{entity} rejected by plug-in syncwatch_sandbox_rule")
        detect = request.headers.get("mscrm.suppressduplicatedetection", "").lower() == "false"
        if detect and (
            self.world.faults.fire("duplicate", VENDOR, now) or self._twin(entity, body)
        ):
            return error(500, "0x80040333", DUPLICATE_MESSAGE)
        return None

    def _twin(self, entity: str, body: dict[str, Any]) -> bool:
        email = str(body.get("emailaddress1") or "").casefold()
        return bool(email) and any(
            r.entity == entity and r.email.casefold() == email
            for r in self.world.dataverse.values()
        )

    async def delete(self, request: Request) -> Response:
        target = self._target(request)
        if isinstance(target, Response):
            return target
        _, entity, row_id = target
        if row_id is None:
            return error(405, "0x80060888", "DELETE is not supported on a collection.")
        record = self.world.dataverse.get(row_id)
        if record is None or record.entity != entity:
            return not_found(entity, row_id)
        self.world.deleted_dataverse[row_id] = self.world.dataverse.pop(row_id)
        return Response(status_code=204, headers={"OData-Version": "4.0"})


def _type(entity: str) -> str:
    return f"Microsoft.Dynamics.CRM.{entity}"


def _everything(row: Any) -> bool:
    return True


def not_found(entity: str, row_id: str) -> Response:
    # unconfirmed: the wording; 404 and ObjectDoesNotExist (0x80040217) are documented.
    return error(404, "0x80040217", f"{entity} With Id = {row_id} Does Not Exist")
