"""Salesforce Platform REST API as a destination: find probes by SOQL, delete them, sweep leftovers.

One query per tick finds every in-flight probe (``WHERE Email IN (...)``); it is split only when
its URL would pass our budget, and results page through ``nextRecordsUrl``. Deletes use sObject
Collections, 200 ids a call. Tokens live in ``salesforce_auth``: every call goes to the
``instance_url`` the token came with, and a 401 there earns one new token and one retry.

Vendor docs:
- query and paging: https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.md
  and https://developer.salesforce.com/docs/platform/api-rest/guide/dome-query.md
- URI and headers together at most 16,384 bytes (414/431 beyond), 2,000 rows a batch:
  https://help.salesforce.com/s/articleView?id=000386264&type=1
- SOQL string escapes (``\\'`` and ``\\\\`` reserved; ``\\%`` ``\\_`` in LIKE only):
  https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-quotedstringescapes.md
- SOQL datetime literals (unquoted ``2026-10-03T14:05:12Z``):
  https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-dateformats.md
- collection delete: https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-delete.html
- ``Sforce-Limit-Info``: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
- status codes, error array, ``REQUEST_LIMIT_EXCEEDED`` for the daily allocation:
  https://developer.salesforce.com/docs/atlas.en-us.264.0.api_rest.meta/api_rest/errorcodes.htm
- ``REQUEST_LIMIT_EXCEEDED`` for concurrent long-running requests:
  https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html
  with the message "ConcurrentRequests (Concurrent API Requests) Limit exceeded":
  https://help.salesforce.com/s/articleView?id=000389067&type=1
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote, quote_plus

import httpx

from syncwatch.config.accounts import SalesforceAccount
from syncwatch.config.model import Destination
from syncwatch.errors import (
    AuthError,
    ConfigError,
    DuplicateRejected,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    ValidationRejected,
    VendorError,
)
from syncwatch.http import AccountHttp, CallContext, Rate, classify_status, json_body
from syncwatch.quota import parse_sforce_limit_info
from syncwatch.redact import REDACTOR
from syncwatch.vendors.base import Probe, Record, Wiring, earliest, find_context
from syncwatch.vendors.salesforce_auth import SalesforceAuth, Session

VENDOR = "salesforce"
DAILY_WINDOW = "api-usage"
# unconfirmed: Salesforce documents no per-second REST rate, only 25 concurrent requests of 20 s
# or longer per production org (cheat sheet above); 25 calls a second stays well inside that.
DEFAULT_RATE = Rate(25, 1.0)
COLLECTION_LIMIT = 200
"""Ids per collection delete, as documented."""
MAX_URL_CHARS = 8_000
"""URI and headers share 16,384 bytes; the same article puts headers near 8,000, so the URI gets
the other half. Well above its 2,000-character suggestion: one query per tick is the point."""
BASE_FIELDS = ("Id", "Email", "CreatedDate", "OwnerId")
SWEEP_FIELDS = ("Id", "Email", "CreatedDate")
CREATED_RESOLUTION_S = 1.0
"""``CreatedDate`` is stored in whole seconds (always ``.000``)."""
# unconfirmed: INVALID_CROSS_REFERENCE_KEY and NOT_FOUND for an id that no longer exists; only
# ENTITY_IS_DELETED is named for a deleted record in the error-code list.
GONE = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND"})
AUTH_CODES = frozenset(
    {"INVALID_SESSION_ID", "API_DISABLED_FOR_ORG", "INSUFFICIENT_ACCESS_OR_READONLY"}
)
# Customer-attributed: our SOQL, a template field or object the org lacks (config), validation
# rules, required fields, a unique field (DUPLICATE_VALUE, not a duplicate rule).
VALIDATION_CODES = frozenset(
    {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE", "FIELD_CUSTOM_VALIDATION_EXCEPTION"}
    | {"REQUIRED_FIELD_MISSING", "DUPLICATE_VALUE"}
)
_HINTS = {"INVALID_FIELD": " (do the probe templates' expected fields exist on the object?)"}
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_SOQL_ESCAPES = str.maketrans(
    {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
)
_LIKE_ESCAPES = str.maketrans({"%": "\\%", "_": "\\_"})
T = TypeVar("T")


def account_http(account: SalesforceAccount, wiring: Wiring) -> AccountHttp:
    """The account's client: Salesforce's classifier, ``Sforce-Limit-Info``, a gentle rate."""
    return wiring.account_http(
        VENDOR,
        account.name,
        account.base_url,
        classify=classify,
        quota=lambda headers: parse_sforce_limit_info(headers.get("sforce-limit-info")),
        daily_window=DAILY_WINDOW,
        rates={"default": DEFAULT_RATE},
    )


class SalesforceDestination:
    """Leads (or Contacts) found, deleted and swept through the REST API of one org.

    ``fields`` are the expected field names of the templates that use this destination: the
    adapter cannot know the templates, so the caller passes their union and every query
    selects them beside ``BASE_FIELDS``.
    """

    def __init__(
        self,
        account: SalesforceAccount,
        settings: Destination,
        http: AccountHttp,
        fields: Sequence[str] = (),
    ) -> None:
        self.account = account
        self.sobject = _api_name(settings.object, "object")
        self.http = http
        self.auth = SalesforceAuth(account, http)
        self.fields = _select_list([*BASE_FIELDS, *fields])
        self._data = f"/services/data/{account.api_version}"
        self._find_head: str | None = None
        """The find query's encoded text up to its email list (the fields are fixed)."""

    def __repr__(self) -> str:
        return f"SalesforceDestination(account={self.account.name!r}, object={self.sobject!r})"

    async def find(self, probes: Sequence[Probe]) -> dict[str, Record]:
        """Every probe's record, from one query (more only past the URL budget).

        Where a connector created duplicates, the earliest record is the probe's: its
        ``CreatedDate`` is when the sync first delivered; the others' ids ride along in
        ``duplicate_ids`` so clean-up deletes them too.
        """
        if not probes:
            return {}
        by_email = {probe.email.casefold(): probe.probe_id for probe in probes}
        context = find_context(probes)
        session = await self.auth.session(context)
        found: dict[str, Record] = {}
        for emails in self._batches(list(by_email), session):
            for record in await self._query(self._find_path(emails), context):
                probe_id = by_email.get(record.email.casefold())
                if probe_id is not None:
                    found[probe_id] = earliest(found.get(probe_id), record)
        return found

    async def delete(self, records: Sequence[Record]) -> None:
        """Delete in collections of 200; records already gone are fine, other refusals raise
        (after every collection has been tried, so one locked record strands no others)."""
        ids = list(dict.fromkeys(record.record_id for record in records))
        context = CallContext(probe_id=records[0].probe_id) if len(ids) == 1 else CallContext()
        refused: list[_ApiError] = []
        for start in range(0, len(ids), COLLECTION_LIMIT):
            chunk = ",".join(quote(i, safe="") for i in ids[start : start + COLLECTION_LIMIT])
            path = f"{self._data}/composite/sobjects?ids={chunk}&allOrNone=false"
            results = await self._call("delete_records", "DELETE", path, _delete_results, context)
            refused += [error for error in results if error and error.code not in GONE]
        if refused:
            raise _refusal(refused, len(ids))

    async def sweep(self, probe_domain: str, older_than: datetime) -> list[Record]:
        """Synthetic records at ``probe_domain`` created before ``older_than``."""
        soql = (
            f"SELECT {', '.join(SWEEP_FIELDS)} FROM {self.sobject}"
            f" WHERE Email LIKE {soql_ends_with('@' + probe_domain)}"
            f" AND CreatedDate < {soql_datetime(older_than)}"
        )
        records = await self._query(self._query_path(soql), CallContext())
        return [record for record in records if record.probe_id is not None]

    # -- calls --------------------------------------------------------------------------------

    async def _query(self, first_path: str, context: CallContext) -> list[Record]:
        """All batches of a query, each record stamped with when its batch arrived."""
        path: str | None = first_path
        records: list[Record] = []
        while path is not None:
            page = await self._call("query_records", "GET", path, _query_page, context)
            observed_at, offset = self.http.clock.now(), self.http.offset.seconds
            records += [
                replace(record, observed_at=observed_at, clock_offset_s=offset)
                for record in page.records
            ]
            path = page.next_path
        return records

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        context: CallContext,
    ) -> T:
        """One data call on the current session; a 401 earns one new token and one retry.

        Queries, and deletes of the same ids, are idempotent: retried on 5xx and throttling.
        """

        async def send(session: Session) -> T:
            url, headers = session.instance_url + path, session.headers
            return await self.http.request(
                operation,
                method,
                url,
                parse=parse,
                idempotent=True,
                context=context,
                headers=headers,
            )

        session = await self.auth.session(context)
        try:
            return await send(session)
        except AuthError as refused:
            if refused.status != 401:
                raise
        return await send(await self.auth.renew(session, context))

    # -- SOQL ---------------------------------------------------------------------------------

    def _find_soql(self, emails: Sequence[str]) -> str:
        listed = ",".join(soql_string(email) for email in emails)
        return f"SELECT {', '.join(self.fields)} FROM {self.sobject} WHERE Email IN ({listed})"

    def _query_path(self, soql: str) -> str:
        return f"{self._data}/query?{httpx.QueryParams({'q': soql})}"

    def _find_path(self, emails: Sequence[str]) -> str:
        """``_query_path(_find_soql(emails))``, joined from encodings already made.

        Percent-encoding works character by character, so the encoded query is its pieces'
        encodings put together; and a probe's email is asked about at every poll until it is
        found, so its literal is encoded once, not at every poll.
        """
        if self._find_head is None:
            head = self._find_soql([])
            assert head.endswith("()")
            self._find_head = _encoded(head[:-1])
        listed = _encoded(",").join(_encoded(soql_string(email)) for email in emails)
        return f"{self._data}/query?q={self._find_head}{listed}{_encoded(')')}"

    def _batches(self, emails: list[str], session: Session) -> list[list[str]]:
        """As few batches as keep each query's whole URL within ``MAX_URL_CHARS``: a URL's
        length is the empty query's plus each literal's encoded length (``_find_path``)."""
        fixed = len(session.instance_url) + len(self._find_path([]))
        batches: list[list[str]] = [[]]
        length = fixed
        for email in emails:
            cost = len(_encoded(soql_string(email))) + len(_encoded(","))
            if batches[-1] and length + cost > MAX_URL_CHARS:
                batches.append([])
                length = fixed
            batches[-1].append(email)
            length += cost
        return batches


def soql_string(value: str) -> str:
    """A SOQL string literal: quote and backslash escaped, control characters spelled out."""
    return "'" + value.translate(_SOQL_ESCAPES) + "'"


def soql_ends_with(suffix: str) -> str:
    """A LIKE literal for values ending in ``suffix`` taken as text (``%``, ``_`` escaped after
    the string escapes, or their backslashes would be escaped too and match as wildcards)."""
    return "'%" + suffix.translate(_SOQL_ESCAPES).translate(_LIKE_ESCAPES) + "'"


def soql_datetime(moment: datetime) -> str:
    """An unquoted SOQL datetime literal in UTC, whole seconds."""
    if moment.tzinfo is None:
        raise ValueError("a SOQL datetime needs an aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=4096)
def _encoded(text: str) -> str:
    """``text`` as it stands in the query string: what httpx writes for ``q`` (its
    ``QueryParams`` use ``urlencode``, which is ``quote_plus`` with nothing safe), without
    building a ``QueryParams`` for each new literal. The find-path test holds the two equal."""
    return quote_plus(text, safe="")


def _select_list(names: Sequence[str]) -> tuple[str, ...]:
    """Field names once each (SOQL refuses a repeated field, in any case)."""
    unique: dict[str, str] = {}
    for name in names:
        unique.setdefault(_api_name(name, "field").casefold(), name)
    return tuple(unique.values())


def _api_name(name: str, what: str) -> str:
    """A field or object API name, checked before it is written into SOQL."""
    if not _API_NAME.fullmatch(name):
        raise ConfigError([f"salesforce destination: {what} {name!r} is not an API name"])
    return name


# -- parsers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Page:
    records: list[Record]
    next_path: str | None


def _query_page(response: httpx.Response) -> _Page:
    """One batch of query results; anything but the documented shape is ``malformed``."""
    body = json_body(response, "salesforce query")
    records = [_record(row) for row in body["records"]]
    if body["done"] is True:
        return _Page(records, None)
    next_path = body.get("nextRecordsUrl")
    # Only a path is accepted: it is appended to instance_url, which must stay the host.
    if not isinstance(next_path, str) or not next_path.startswith("/services/data/"):
        message = "salesforce query: not done, but no nextRecordsUrl"
        raise MalformedResponse(message, status=response.status_code)
    return _Page(records, next_path)


def _record(row: Any) -> Record:
    record_id, email, owner = row["Id"], row["Email"], row.get("OwnerId")
    if not isinstance(record_id, str) or not isinstance(email, str | None):
        raise MalformedResponse("salesforce query: a record without Id or Email")
    return Record(
        record_id=record_id,
        email=email or "",
        created_at=_created(row.get("CreatedDate")),
        fields={name: value for name, value in row.items() if name != "attributes"},
        owner=owner if isinstance(owner, str) else None,
        created_resolution_s=CREATED_RESOLUTION_S,
    )


def _created(value: Any) -> datetime | None:
    """``2026-10-03T14:05:12.000+0000`` as an aware UTC datetime."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("CreatedDate without a UTC offset")
    return moment.astimezone(UTC)


class _ApiError(NamedTuple):
    code: str
    message: str
    oauth: bool = False


def _delete_results(response: httpx.Response) -> list[_ApiError | None]:
    """One entry per id, in order: None where deleted, else its first error."""
    results = json_body(response, "salesforce delete")
    if not isinstance(results, list):
        message = "salesforce delete: expected a list of results"
        raise MalformedResponse(message, status=response.status_code)
    return [None if result["success"] is True else _first(result["errors"]) for result in results]


def _first(errors: Any) -> _ApiError:
    """The first entry of an error list (``statusCode`` per record, ``errorCode`` per call)."""
    entry = errors[0] if isinstance(errors, list) and errors else {}
    code = entry.get("statusCode") or entry.get("errorCode") or "UNKNOWN"
    return _ApiError(str(code), str(entry.get("message", ""))[:300])


def _refusal(refused: list[_ApiError], total: int) -> VendorError:
    counts = Counter(error.code for error in refused)
    summary = ", ".join(f"{code} x{count}" for code, count in counts.most_common())
    first = refused[0]
    text = REDACTOR.text(
        f"{VENDOR} delete: {len(refused)} of {total} records not deleted: {summary}"
        f" (first: {first.message})"
    )
    return _by_code(first, text, status=200) or ValidationRejected(text, status=200)


# -- classification ---------------------------------------------------------------------------


def classify(response: httpx.Response) -> VendorError | None:
    """DESIGN §6 for a Salesforce answer: by ``errorCode`` first, by HTTP status for the rest.

    Bodies are the REST error array ``[{"message", "errorCode", "fields"}]`` or, from the token
    endpoint, OAuth's ``{"error", "error_description"}``. A 2xx is judged by its parser; a 3xx
    is not part of the API (the client follows no redirects): ``malformed``.
    """
    status = response.status_code
    if status < 300:
        return None
    error = _error_of(response)
    hint = _HINTS.get(error.code, "")
    text = REDACTOR.text(f"{VENDOR} HTTP {status} {error.code}: {error.message}{hint}")
    if status < 400:
        return MalformedResponse(text, status=status)
    return _by_code(error, text, response.status_code) or classify_status(response, text)


def _by_code(error: _ApiError, text: str, status: int | None) -> VendorError | None:
    """The class a Salesforce error code settles, or None to fall back on the status."""
    if error.code == "REQUEST_LIMIT_EXCEEDED":
        # One code, two limits: the concurrency message means "wait", anything else is the
        # daily allocation (errorcodes page) and waiting minutes will not help.
        if "concurrent" in error.message.lower():
            return RateLimited(text, status=status)
        return QuotaExhausted(text, status=status, may_have_acted=False)
    if error.code == "DUPLICATES_DETECTED":
        return DuplicateRejected(text, status=status)
    if error.code in VALIDATION_CODES:
        return ValidationRejected(text, status=status)
    if error.code in AUTH_CODES or (error.oauth and status in (400, 401)):
        return AuthError(text, status=status)
    return None


def _error_of(response: httpx.Response) -> _ApiError:
    """The first error of either documented error body; the reason phrase when neither."""
    try:
        body = response.json()
    except ValueError:
        return _ApiError("", response.reason_phrase)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return _first(body)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        description = str(body.get("error_description", ""))[:300]
        return _ApiError(body["error"], description, oauth=True)
    return _ApiError("", response.reason_phrase)
