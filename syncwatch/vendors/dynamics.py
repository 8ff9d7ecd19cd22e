"""Microsoft Dynamics 365 (Dataverse Web API) as a destination: find probes, delete them, sweep.

One query per tick finds every in-flight probe (``$filter=emailaddress1 eq 'a' or emailaddress1
eq 'b' ...`` on the ``leads`` or ``contacts`` entity set); it is split only when its URL would
pass our budget, and results page through ``@odata.nextLink``. Latency comes from ``createdon``,
the owner from ``_ownerid_value``. Deletes go one ``DELETE leads(<id>)`` per record: a 404 means
already gone. Not ``$batch``: a batch still counts every operation against the entitlement
limits and adds to the execution-time limit, Microsoft finds single requests fastest for most
work, and a probe's clean-up is one record (two when a connector delivered twice).

Quota: Dataverse reports no daily figure. Its service protection headers say what remains of two
5-minute windows, per user and per web server ("intended for debugging"); they are recorded as
the advisory windows ``burst`` (requests) and ``time`` (execution seconds), with the account's
configured limits. The entitlement (Power Platform request) limits are per 24 hours but never
reported, so the ``daily`` window never has a figure and the quota guard lets every probe through
for this account. A 429 carries ``Retry-After`` in seconds, which the HTTP layer honours.
Tokens live in ``dynamics_auth``.

Vendor docs (repo MicrosoftDocs/powerapps-docs, the source of learn.microsoft.com/power-apps/
developer/data-platform/...):
- query, ``$select``/``$filter``/``$top``, 5,000 rows a page, ``@odata.nextLink`` used unchanged,
  GET URLs at most 32,768 characters: ``webapi/query/overview.md``, ``webapi/query/page-results.md``
- ``eq``/``or``/``and``/``lt``, ``endswith``, string filters case-insensitive, a quote doubled
  inside a literal, special characters URL-encoded: ``webapi/query/filter-rows.md``
- ``%``, ``_``, ``[]`` as wildcards in ``endswith``, literal inside brackets:
  ``wildcard-characters.md``
- ``DELETE leads(<id>)``: 204, or 404 when the row is not found:
  ``webapi/update-delete-entities-using-web-api.md``
- headers every request should send, status codes, the error body ``{"error": {"code",
  "message"}}``, 412 for ``DuplicateRecord``: ``webapi/compose-http-requests-handle-errors.md``
- duplicate detection answering 500 with ``0x80040333``:
  ``webapi/manage-duplicate-detection-create-update.md``
- error names and codes (``0x80040217`` ObjectDoesNotExist, ``0x80040237`` DuplicateRecord,
  ``0x80060892`` DuplicateRecordEntityKey): ``includes/data-service-error-codes.md``
- 429 with ``Retry-After`` seconds, ``0x80072322``/``0x80072321``/``0x80072326``, the
  ``x-ms-ratelimit-*`` headers, 6,000 requests and 1,200 s per 5 minutes: ``api-limits.md``
- entitlement limits per 24 hours: https://learn.microsoft.com/power-apps/maker/data-platform/api-limits-overview
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx

from syncwatch.config.accounts import DynamicsAccount
from syncwatch.config.model import Destination
from syncwatch.errors import (
    AuthError,
    ConfigError,
    DuplicateRejected,
    MalformedResponse,
    RateLimited,
    ValidationRejected,
    VendorError,
)
from syncwatch.events import QuotaFigure
from syncwatch.http import AccountHttp, CallContext, Rate, classify_status, json_body, retry_after
from syncwatch.redact import REDACTOR
from syncwatch.vendors.base import Probe, Record, Wiring, earliest, find_context
from syncwatch.vendors.dynamics_auth import DynamicsAuth

VENDOR = "dynamics"
DAILY_WINDOW = "daily"
"""Never reported (entitlement limits have no header); named so the guard and metrics look."""
BURST_WINDOW, TIME_WINDOW = "burst", "time"
BURST_HEADER = "x-ms-ratelimit-burst-remaining-xrm-requests"
TIME_HEADER = "x-ms-ratelimit-time-remaining-xrm-requests"
# unconfirmed: Microsoft documents no steady rate, only 6,000 requests per 5 minutes per user and
# web server, and 52 concurrent; a tenth of each leaves the production integrations the rest.
RATES = {"default": Rate(600, 300.0)}
MAX_CONCURRENT = 5
MAX_URL_CHARS = 16_384
"""Half the documented 32,768: the ``@odata.nextLink`` Dataverse builds from our URL adds a
paging cookie, and proxies between us may allow less (unconfirmed)."""
ENTITY_SETS = {"lead": ("leads", "leadid"), "contact": ("contacts", "contactid")}
EMAIL, CREATED, OWNER = "emailaddress1", "createdon", "_ownerid_value"
CREATED_RESOLUTION_S = 1.0
"""unconfirmed: ``createdon`` appears in whole seconds (``2016-09-28T23:14:00Z``) in every
documented example; Microsoft states no precision."""
ODATA_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    "If-None-Match": "null",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_FIGURE = re.compile(r"\d{1,3}(,\d{3})*(\.\d+)?|\d+(\.\d+)?")
_WILDCARDS = str.maketrans({"[": "[[]", "%": "[%]", "_": "[_]"})


def account_http(account: DynamicsAccount, wiring: Wiring) -> AccountHttp:
    """The account's client: the environment URL as base, the advisory windows as quota."""
    return wiring.account_http(
        VENDOR,
        account.name,
        account.base_url,
        classify=classify,
        quota=quota_parser(account),
        daily_window=DAILY_WINDOW,
        rates=RATES,
        max_concurrent=MAX_CONCURRENT,
    )


class DynamicsDestination:
    """Leads (or contacts) found, deleted and swept through one environment's Web API.

    ``fields`` are the expected column names (logical names) of the templates that use this
    destination; every query selects them beside the id, email, ``createdon`` and owner.
    """

    def __init__(
        self,
        account: DynamicsAccount,
        settings: Destination,
        http: AccountHttp,
        fields: Sequence[str] = (),
    ) -> None:
        if settings.object not in ENTITY_SETS:
            objects = ", ".join(ENTITY_SETS)
            raise ConfigError([f"destination.object: {settings.object!r} is not one of {objects}"])
        self.account = account
        self.http = http
        self.auth = DynamicsAuth(account, http)
        self.entity_set, self.id_column = ENTITY_SETS[settings.object]
        self.fields = _select_list([self.id_column, EMAIL, CREATED, OWNER, *fields])
        self._collection = f"/api/data/{account.api_version}/{self.entity_set}"

    def __repr__(self) -> str:
        return f"DynamicsDestination(account={self.account.name!r}, set={self.entity_set!r})"

    async def find(self, probes: Sequence[Probe]) -> dict[str, Record]:
        """Every probe's record, from one query (more only past the URL budget).

        Where a connector created duplicates, the earliest record is the probe's; the others'
        ids ride along in ``duplicate_ids`` so clean-up deletes them too.
        """
        if not probes:
            return {}
        by_email = {probe.email.casefold(): probe.probe_id for probe in probes}
        context = find_context(probes)
        found: dict[str, Record] = {}
        for emails in self._batches(list(by_email)):
            for record in await self._query(self._find_path(emails), context):
                probe_id = by_email.get(record.email.casefold())
                if probe_id is not None:
                    found[probe_id] = earliest(found.get(probe_id), record)
        return found

    async def delete(self, records: Sequence[Record]) -> None:
        """One DELETE per row (ids compared as GUIDs: case-insensitive); rows already gone are
        fine, refusals of single rows raise after every row has been tried (an outage or a
        refused token raises at once)."""
        ids = list(dict.fromkeys(record.record_id.lower() for record in records))
        context = CallContext(probe_id=records[0].probe_id) if len(ids) == 1 else CallContext()
        refused: list[VendorError] = []
        for record_id in ids:
            if not _GUID.fullmatch(record_id):
                refused.append(ValidationRejected(f"{VENDOR} delete: {record_id!r} is no id"))
                continue
            try:
                await self._delete_row(record_id, context)
            except (ValidationRejected, DuplicateRejected) as refusal:
                refused.append(refusal)
        if refused:
            raise _refusal(refused, len(ids))

    async def sweep(self, probe_domain: str, older_than: datetime) -> list[Record]:
        """Synthetic records at ``probe_domain`` created before ``older_than``."""
        at = "@" + probe_domain
        where = f"endswith({EMAIL},{odata_ends_with(at)}) and {CREATED} lt "
        select = _select_list([self.id_column, EMAIL, CREATED])
        records = await self._query(self._path(select, where + odata_datetime(older_than)))
        return [r for r in records if r.probe_id and r.email.casefold().endswith(at.casefold())]

    # -- calls --------------------------------------------------------------------------------

    async def _query(self, path: str, context: CallContext | None = None) -> list[Record]:
        """All pages of a query, each record stamped with when its page arrived."""
        url: str | None = path
        records: list[Record] = []
        while url is not None:
            page = await self._page(url, context or CallContext())
            observed_at, offset = self.http.clock.now(), self.http.offset.seconds
            records += [
                replace(record, observed_at=observed_at, clock_offset_s=offset)
                for record in page.records
            ]
            url = page.next_url
        return records

    async def _page(self, url: str, context: CallContext) -> _Page:
        parse = _page_parser(self.id_column, self.account.base_url)
        return await self.auth.request("query_records", "GET", url, parse, context, ODATA_HEADERS)

    async def _delete_row(self, record_id: str, context: CallContext) -> None:
        """DELETE one row; a 404 is let through as success: the row is already gone."""
        await self.auth.request(
            "delete_record",
            "DELETE",
            self._row(record_id),
            _deleted,
            context,
            ODATA_HEADERS,
            classify=_delete_status,
        )

    # -- OData ----------------------------------------------------------------------------------

    def _find_path(self, emails: Sequence[str]) -> str:
        return self._path(self.fields, " or ".join(_email_is(email) for email in emails))

    def _path(self, select: Sequence[str], where: str) -> str:
        return (
            f"{self._collection}?$select={quote(','.join(select), safe=',')}"
            f"&$filter={quote(where, safe='')}"
        )

    def _row(self, record_id: str) -> str:
        return f"{self._collection}({record_id.lower()})"

    def _batches(self, emails: list[str]) -> list[list[str]]:
        """As few batches as keep each query's whole URL within ``MAX_URL_CHARS``.

        Percent-encoding works character by character, so a URL's length is the empty filter's
        plus each condition's encoded length (and the encoded `` or `` between two).
        """
        fixed = len(self.account.base_url) + len(self._path(self.fields, ""))
        joint = len(quote(" or ", safe=""))
        batches: list[list[str]] = [[]]
        length = fixed
        for email in emails:
            cost = len(quote(_email_is(email), safe="")) + (joint if batches[-1] else 0)
            if batches[-1] and length + cost > MAX_URL_CHARS:
                batches.append([])
                length, cost = fixed, cost - joint
            batches[-1].append(email)
            length += cost
        return batches


def odata_string(value: str) -> str:
    """An OData string literal: single quotes around, a quote inside doubled."""
    return "'" + value.replace("'", "''") + "'"


def odata_ends_with(suffix: str) -> str:
    """The literal for ``endswith`` matching ``suffix`` as text: ``[``, ``%`` and ``_`` are
    wildcards there, so each is bracketed (documented) before the quotes are doubled."""
    return odata_string(suffix.translate(_WILDCARDS))


def odata_datetime(moment: datetime) -> str:
    """An unquoted OData DateTimeOffset literal in UTC, whole seconds."""
    if moment.tzinfo is None:
        raise ValueError("an OData datetime needs an aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _email_is(email: str) -> str:
    return f"{EMAIL} eq {odata_string(email)}"


def _select_list(names: Sequence[str]) -> tuple[str, ...]:
    """Column names once each, each checked before it is written into a URL."""
    unique: dict[str, str] = {}
    for name in names:
        if not _NAME.fullmatch(name):
            raise ConfigError([f"dynamics destination: field {name!r} is not a logical name"])
        unique.setdefault(name.casefold(), name)
    return tuple(unique.values())


# -- parsers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Page:
    records: list[Record]
    next_url: str | None


def _page_parser(id_column: str, environment: str) -> Callable[[httpx.Response], _Page]:
    def parse(response: httpx.Response) -> _Page:
        """One page: ``value`` rows; ``@odata.nextLink`` only back to this environment."""
        body = json_body(response, "dynamics query")
        rows = body["value"]
        if not isinstance(rows, list):
            raise MalformedResponse("dynamics query: value is not a list", status=200)
        next_url = body.get("@odata.nextLink")
        home = f"{environment}/api/data/".casefold()
        if next_url is not None and not (
            isinstance(next_url, str) and next_url.casefold().startswith(home)
        ):
            raise MalformedResponse("dynamics query: nextLink leaves the environment", status=200)
        return _Page([_record(row, id_column) for row in rows], next_url)

    return parse


def _record(row: Any, id_column: str) -> Record:
    record_id, email, owner = row[id_column], row.get(EMAIL), row.get(OWNER)
    if not isinstance(record_id, str) or not isinstance(email, str | None):
        raise MalformedResponse(f"dynamics query: a row without {id_column} or {EMAIL}")
    return Record(
        record_id=record_id,
        email=email or "",
        created_at=_created(row.get(CREATED)),
        fields={name: value for name, value in row.items() if "@" not in name},
        owner=owner if isinstance(owner, str) else None,
        created_resolution_s=CREATED_RESOLUTION_S,
    )


def _created(value: Any) -> datetime | None:
    """``2026-10-03T14:05:12Z`` as an aware UTC datetime."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("createdon without a UTC offset")
    return moment.astimezone(UTC)


def _deleted(response: httpx.Response) -> None:
    """204 deleted, or 404 (let through by ``_delete_status``): gone either way."""


def _delete_status(response: httpx.Response) -> VendorError | None:
    return None if response.status_code == 404 else classify(response)


def _refusal(refused: list[VendorError], total: int) -> VendorError:
    counts = Counter(error.error_class for error in refused)
    summary = ", ".join(f"{name} x{count}" for name, count in counts.most_common())
    first = refused[0]
    text = REDACTOR.text(
        f"{VENDOR} delete: {len(refused)} of {total} records not deleted: {summary}"
        f" (first: {first})"
    )
    return type(first)(text, status=first.status)


def quota_parser(account: DynamicsAccount) -> Callable[[httpx.Headers], list[QuotaFigure]]:
    """The two service protection windows, as used of the account's configured limits.

    Dataverse sends what remains: ``5993`` requests and ``1,199.46`` seconds (a thousands
    separator and two decimals, as captured in Microsoft's own portal docs; unconfirmed in
    the Web API reference). A remainder above the configured limit raises the limit to it.
    """

    def parse(headers: httpx.Headers) -> list[QuotaFigure]:
        figures = []
        for window, header, limit in (
            (BURST_WINDOW, BURST_HEADER, account.burst_limit),
            (TIME_WINDOW, TIME_HEADER, account.time_limit_s),
        ):
            remaining = _figure(headers.get(header))
            if remaining is not None:
                ceiling = max(limit, math.ceil(remaining))
                figures.append(QuotaFigure(window, ceiling - math.floor(remaining), ceiling))
        return figures

    return parse


def _figure(value: str | None) -> float | None:
    if value is None or not _FIGURE.fullmatch(value.strip()):
        return None
    return float(value.strip().replace(",", ""))


# -- classification ---------------------------------------------------------------------------


class _ApiError(NamedTuple):
    code: str
    message: str
    oauth: bool = False


THROTTLE_CODES = frozenset({"0x80072322", "0x80072321", "0x80072326"})
"""Requests, execution time, concurrency: documented with 429 and ``Retry-After``."""
DUPLICATE_CODES = frozenset({"0x80040333", "0x80040237", "0x80060892"})
"""Duplicate detection (a 500!), SQL integrity (412), alternate key. A probe never creates
here; a connector's or a test's create may."""


def classify(response: httpx.Response) -> VendorError | None:
    """DESIGN §6 for a Dataverse or Entra answer: by error code first, by HTTP status for the rest.

    Bodies are the Web API's ``{"error": {"code", "message"}}`` (the code "frequently empty") or,
    from the token endpoint, OAuth's ``{"error", "error_description"}``. 401/403 are ``auth``,
    429 ``rate_limited``, 5xx ``vendor_5xx``, other 4xx ``validation``. A 2xx is judged by its
    parser; a 3xx is not part of the API (the client follows no redirects): ``malformed``.
    """
    status = response.status_code
    if status < 300:
        return None
    error = _error_of(response)
    code = f" {error.code}" if error.code else ""
    text = REDACTOR.text(f"{VENDOR} HTTP {status}{code}: {error.message or 'no message'}")
    if status < 400:
        return MalformedResponse(text, status=status)
    return _by_code(error, text, response) or classify_status(response, text)


def _by_code(error: _ApiError, text: str, response: httpx.Response) -> VendorError | None:
    """The class an error code settles, or None to fall back on the status."""
    status = response.status_code
    if error.code in DUPLICATE_CODES:
        return DuplicateRejected(text, status=status, may_have_acted=False)
    if error.code in THROTTLE_CODES:
        return RateLimited(text, status=status, retry_after_s=retry_after(response))
    if error.oauth and status in (400, 401):
        return AuthError(text, status=status)
    return None


def _error_of(response: httpx.Response) -> _ApiError:
    """The code and message of either documented error body; the reason phrase otherwise."""
    try:
        body = response.json()
    except ValueError:
        return _ApiError("", response.reason_phrase)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return _ApiError(str(error.get("code") or ""), str(error.get("message", ""))[:300])
    if isinstance(error, str):
        return _ApiError(error, str(body.get("error_description", ""))[:300], oauth=True)
    return _ApiError("", response.reason_phrase)
