"""Salesforce REST resources over the sandbox's CRM records: query, sObject rows, collections.

Handlers here take plain values and return a ``Reply``; ``salesforce.py`` owns HTTP, auth,
quota and faults around them, so the documented shapes can be read in one place.

Vendor docs:
- query: https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.md and
  https://developer.salesforce.com/docs/platform/api-rest/guide/dome-query.md
- create: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_res/dome_sobject_create.htm
- delete and error codes: https://developer.salesforce.com/docs/platform/api-rest/guide/errorcodes.md
- collection delete: https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-delete.html
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncwatch.sandbox import soql
from syncwatch.sandbox.world import CrmRecord, World, salesforce_id

BATCH_SIZE = 2000  # documented maximum records per query batch
COLLECTION_LIMIT = 200  # documented maximum ids per collection delete
# unconfirmed: how many open query cursors a user may hold; the sandbox keeps the newest ten.
MAX_CURSORS = 10
_COMMON_FIELDS = ("Id", "Email", "FirstName", "LastName", "OwnerId", "CreatedDate", "LeadSource")
STANDARD_FIELDS: dict[str, tuple[str, ...]] = {
    "Lead": (*_COMMON_FIELDS, "Company", "Status", "Phone", "Title", "Country"),
    "Contact": (*_COMMON_FIELDS, "Phone", "Title"),
}
REQUIRED_FIELDS = {"Lead": ("LastName", "Company"), "Contact": ("LastName",)}
READ_ONLY = ("Id", "CreatedDate")
ROLLED_BACK_MESSAGE = (
    "Record rolled back because not all records were valid and the request was using AllOrNone"
    " header"
)
DUPLICATE_MESSAGE = "Use one of these records?"  # documented DUPLICATES_DETECTED message


@dataclass(frozen=True)
class Reply:
    """What a resource answers: status, JSON payload (None for an empty body)."""

    status: int
    payload: Any = None


def error(status: int, code: str, message: str, fields: list[str] | None = None) -> Reply:
    """The documented error body: a JSON array of ``{message, errorCode[, fields]}``."""
    entry: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        entry["fields"] = fields
    return Reply(status, [entry])


def not_found() -> Reply:
    # unconfirmed: message wording; 404 NOT_FOUND is what the error-code page lists.
    return error(404, "NOT_FOUND", "The requested resource does not exist")


def created_date(record: CrmRecord) -> datetime:
    """Salesforce keeps whole seconds: the true instant with its fraction dropped."""
    return record.created_at.astimezone(UTC).replace(microsecond=0)


def format_datetime(moment: datetime) -> str:
    """The vendor's JSON datetime: UTC, always ``.000``, offset without a colon."""
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + ".000+0000"


def record_row(record: CrmRecord) -> dict[str, Any]:
    """A record as a query sees it: its fields, its ``Id`` and its ``CreatedDate``."""
    return {**record.fields, "Id": record.id, "CreatedDate": created_date(record)}


class RecordRow(Mapping[str, Any]):
    """``record_row(record)``, read field by field as the query's conditions ask: every
    record of the object is tested, and most fail at their first field, so the whole row
    (with its ``CreatedDate`` worked out) is not built for each."""

    __slots__ = ("record",)

    def __init__(self, record: CrmRecord) -> None:
        self.record = record

    def get(self, name: str, default: Any = None) -> Any:
        if name == "Id":
            return self.record.id
        if name == "CreatedDate":
            return created_date(self.record)
        return self.record.fields.get(name, default)

    def __getitem__(self, name: str) -> Any:
        if name in ("Id", "CreatedDate") or name in self.record.fields:
            return self.get(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(record_row(self.record))

    def __len__(self) -> int:
        return len(record_row(self.record))


class DataApi:
    """The REST resources syncwatch uses, over ``world.crm``."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._cursors: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._cursor_numbers = iter(range(1, 1 << 62))
        self._deleted: set[str] = set()

    # -- schema -----------------------------------------------------------------------------

    def known_fields(self, sobject: str) -> list[str]:
        """Standard fields, the connector's mapped fields, and any field a record carries."""
        names = dict.fromkeys(self._declared_fields(sobject))
        for record in self.world.crm.values():
            if record.sobject == sobject:
                names.update(dict.fromkeys(record.fields))
        return list(names)

    def _declared_fields(self, sobject: str) -> tuple[str, ...]:
        """Standard fields and the connector's mapped fields: known without reading records."""
        names = STANDARD_FIELDS[sobject]
        if self.world.scenario.sync.sobject == sobject:
            names = (*names, *self.world.scenario.sync.mapping.values())
        return names

    def _resolve(self, parsed: soql.Query) -> soql.Query:
        """``resolve_fields`` over ``known_fields``. The first spelling of a name wins, so
        where the declared fields know every name the query uses, the records (which only
        add names after them) cannot change the answer and are not read."""
        declared = self._declared_fields(parsed.sobject)
        try:
            return soql.resolve_fields(parsed, declared)
        except soql.SoqlError:
            return soql.resolve_fields(parsed, self.known_fields(parsed.sobject))

    def row(self, record: CrmRecord) -> dict[str, Any]:
        return record_row(record)

    def render(self, version: str, record: CrmRecord, fields: list[str]) -> dict[str, Any]:
        """A record as the REST API shows it: ``attributes`` first, then the fields asked for."""
        row = self.row(record)
        url = f"/services/data/{version}/sobjects/{record.sobject}/{record.id}"
        body: dict[str, Any] = {"attributes": {"type": record.sobject, "url": url}}
        for name in fields:
            value = row.get(name)
            body[name] = format_datetime(value) if isinstance(value, datetime) else value
        return body

    # -- query ------------------------------------------------------------------------------

    def query(self, version: str, text: str) -> Reply:
        """``GET query?q=``: the first batch, with a cursor when more than one batch matches."""
        try:
            parsed = soql.parse(text)
            query = self._resolve(parsed)
        except soql.SoqlError as refused:
            return error(400, refused.error_code, refused.message)
        rows = [RecordRow(r) for r in self.world.crm.values() if r.sobject == query.sobject]
        found = [row.record for row in soql.select(query, rows)]
        rendered = [self.render(version, r, list(query.fields)) for r in found]
        return Reply(200, self._batch(version, self._open_cursor(rendered), rendered, 0))

    def query_more(self, version: str, locator: str) -> Reply:
        """``GET query/<locator>-<offset>``: a later batch of an earlier query."""
        cursor, _, offset = locator.rpartition("-")
        rendered = self._cursors.get(cursor)
        if rendered is None or not offset.isdigit() or int(offset) > len(rendered):
            # unconfirmed: code and wording for an unknown or expired query locator.
            return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return Reply(200, self._batch(version, cursor, rendered, int(offset)))

    def _open_cursor(self, rendered: list[dict[str, Any]]) -> str:
        if len(rendered) <= BATCH_SIZE:
            return ""
        cursor = salesforce_id("01g", next(self._cursor_numbers))[:15]
        self._cursors[cursor] = rendered
        while len(self._cursors) > MAX_CURSORS:
            self._cursors.popitem(last=False)
        return cursor

    @staticmethod
    def _batch(
        version: str, cursor: str, rendered: list[dict[str, Any]], offset: int
    ) -> dict[str, Any]:
        end = offset + BATCH_SIZE
        body: dict[str, Any] = {"totalSize": len(rendered), "done": end >= len(rendered)}
        if end < len(rendered):
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{cursor}-{end}"
        body["records"] = rendered[offset:end]
        return body

    # -- single records ---------------------------------------------------------------------

    def find(self, sobject: str, record_id: str) -> CrmRecord | None:
        """A live record by its 18-character id or the case-sensitive 15-character form."""
        record = self.world.crm.get(record_id)
        if record is None and len(record_id) == 15:
            record = next((r for r in self.world.crm.values() if r.id[:15] == record_id), None)
        return record if record is not None and record.sobject == sobject else None

    def get(self, version: str, sobject: str, record_id: str) -> Reply:
        """``GET sobjects/<type>/<id>``: every field of the record."""
        record = self.find(sobject, record_id) if sobject in STANDARD_FIELDS else None
        if record is None:
            return not_found()
        return Reply(200, self.render(version, record, self.known_fields(sobject)))

    def delete(self, sobject: str, record_id: str) -> Reply:
        """``DELETE sobjects/<type>/<id>``: 204 with no body."""
        record = self.find(sobject, record_id) if sobject in STANDARD_FIELDS else None
        if record is None:
            if record_id in self._deleted:
                # unconfirmed: status and wording for deleting a record already deleted.
                return error(404, "ENTITY_IS_DELETED", "entity is deleted", [])
            return not_found()
        self._remove(record)
        return Reply(204)

    def _remove(self, record: CrmRecord) -> None:
        self.world.deleted_crm[record.id] = self.world.crm.pop(record.id)
        self._deleted.add(record.id)

    def create(self, sobject: str, body: Any, allow_duplicates: bool) -> Reply:
        """``POST sobjects/<type>/``: system checks, validation rules, duplicate rules, insert.

        That order is Salesforce's order of execution, so a record missing a required field
        never reaches a validation or duplicate rule.
        """
        if sobject not in STANDARD_FIELDS:
            return not_found()
        if not isinstance(body, dict):
            # unconfirmed: code and wording for a body that is not a JSON object.
            return error(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject")
        fields = self._canonical(sobject, body)
        if isinstance(fields, Reply):
            return fields
        problem = self._missing(sobject, fields) or self._validation_rule(sobject, fields)
        if problem is None and not allow_duplicates:
            problem = self._duplicate_rule(sobject, fields)
        if problem is not None:
            return problem
        spec = self.world.scenario.salesforce
        fields.setdefault("OwnerId", spec.default_owner_id)  # the running user owns it
        if sobject == "Lead":
            fields.setdefault("Status", "Open - Not Contacted")  # the standard picklist default
        record = self.world.new_crm_record(sobject, fields, self.world.clock.now())
        return Reply(201, {"id": record.id, "errors": [], "success": True})

    def _canonical(self, sobject: str, body: Mapping[str, Any]) -> dict[str, Any] | Reply:
        """Field names as the schema spells them; read-only or unknown fields are refused."""
        by_lower = {name.lower(): name for name in self.known_fields(sobject)}
        fields: dict[str, Any] = {}
        for key, value in body.items():
            name = by_lower.get(key.lower(), key)
            if name == "Id":
                message = "The Id field should not be specified in the sobject data."
                return error(400, "INVALID_FIELD", message)  # documented verbatim
            if name in READ_ONLY:
                # unconfirmed: code and wording for other read-only fields.
                message = f"Unable to create/update fields: {name}."
                return error(400, "INVALID_FIELD_FOR_INSERT_UPDATE", message, [name])
            if key.lower() == "attributes":
                continue
            if name not in by_lower.values() and not name.endswith("__c"):
                # unconfirmed: wording; custom (__c) fields are accepted as if defined.
                message = f"No such column '{key}' on sobject of type {sobject}"
                return error(400, "INVALID_FIELD", message)
            fields[name] = value
        return fields

    @staticmethod
    def _missing(sobject: str, fields: Mapping[str, Any]) -> Reply | None:
        missing = [name for name in REQUIRED_FIELDS[sobject] if fields.get(name) in (None, "")]
        if not missing:
            return None
        message = f"Required fields are missing: [{', '.join(missing)}]"
        return error(400, "REQUIRED_FIELD_MISSING", message, missing)

    def _validation_rule(self, sobject: str, fields: Mapping[str, Any]) -> Reply | None:
        """A ``validation`` fault acts as a rule rejecting records without its ``field``."""
        rule = self.world.faults.fire("validation", "salesforce", self.world.clock.now())
        if rule is None or (rule.spec.field is not None and fields.get(rule.spec.field)):
            return None
        named = [rule.spec.field] if rule.spec.field else []
        # The message is whatever the admin wrote on the rule; this one names the sandbox.
        message = f"{sobject} rejected by validation rule syncwatch_sandbox_rule"
        return error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", message, named)

    def _duplicate_rule(self, sobject: str, fields: Mapping[str, Any]) -> Reply | None:
        """A ``duplicate`` fault acts as an active duplicate rule that blocks the save."""
        if self.world.faults.fire("duplicate", "salesforce", self.world.clock.now()) is None:
            return None
        email = str(fields.get("Email") or "").casefold()
        twins = [
            r
            for r in self.world.crm.values()
            if r.sobject == sobject and r.email.casefold() == email
        ]
        return Reply(400, [duplicate_entry(sobject, twins)])

    # -- collections ------------------------------------------------------------------------

    def delete_collection(self, ids: list[str], all_or_none: bool) -> Reply:
        """``DELETE composite/sobjects?ids=``: one SaveResult per id, in order."""
        if not ids:
            # unconfirmed: code and wording when ``ids`` is missing or empty.
            return error(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > COLLECTION_LIMIT:
            # unconfirmed: code and wording; the 200-id ceiling itself is documented.
            message = f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records"
            return error(400, "EXCEEDED_ID_LIMIT", message)
        found = [self._find_any(record_id) for record_id in ids]
        failed = any(record is None for record in found)
        results = [
            self._delete_result(record_id, record, rolled_back=all_or_none and failed)
            for record_id, record in zip(ids, found, strict=True)
        ]
        return Reply(200, results)

    def _find_any(self, record_id: str) -> CrmRecord | None:
        return self.find("Lead", record_id) or self.find("Contact", record_id)

    def _delete_result(
        self, record_id: str, record: CrmRecord | None, rolled_back: bool
    ) -> dict[str, Any]:
        """A SaveResult. unconfirmed: failed entries omit ``id`` and errors carry ``statusCode``,
        as in the vendor's collection examples that the reference file does not quote."""
        if record is not None and not rolled_back:
            self._remove(record)
            return {"id": record.id, "success": True, "errors": []}
        if record is not None:
            reason = ("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK_MESSAGE)
        elif record_id in self._deleted:
            reason = ("ENTITY_IS_DELETED", "entity is deleted")
        else:
            reason = ("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        failure = {"statusCode": reason[0], "message": reason[1], "fields": []}
        return {"success": False, "errors": [failure]}


def duplicate_entry(sobject: str, twins: list[CrmRecord]) -> dict[str, Any]:
    """One ``DUPLICATES_DETECTED`` error, with the vendor's own key spelling ``duplicateResut``."""
    match_records = [
        # unconfirmed: the reference shows ``attributes`` abbreviated as ``{}``.
        {"matchConfidence": 100.0, "record": {"attributes": {"type": sobject}, "Id": twin.id}}
        for twin in twins
    ]
    result = {
        "allowSave": False,
        "duplicateRule": f"Syncwatch_Sandbox_{sobject}_Rule",  # rule names are admin-chosen
        "duplicateRuleEntityType": sobject,
        "errorMessage": DUPLICATE_MESSAGE,
        "matchResults": [
            {
                "entityType": sobject,
                "matchRecords": match_records,
                "rule": f"Syncwatch_Sandbox_{sobject}_Matching_Rule",
                "size": len(match_records),
                "success": True,
            }
        ],
    }
    return {
        "duplicateResut": result,
        "errorCode": "DUPLICATES_DETECTED",
        "message": DUPLICATE_MESSAGE,
    }
