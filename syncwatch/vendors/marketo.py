"""Adobe Marketo Engage as a source: inject probe leads, delete them, read the daily usage.

Probes go in by Sync Leads (``leads``: ``createOnly`` keyed on ``email``, so a probe can never
update somebody else's lead) or Push Lead (``push``: always an upsert, which also creates the
triggerable "Push Lead to Marketo" activity some instances hang their Salesforce sync on). The
lead id in the answer is the probe's source ref; Delete Leads takes ids, 300 a call.

Marketo reports no quota in headers. The daily usage endpoint is read at most every 15 minutes,
piggybacked on an injection, and recorded as the account's ``daily`` window: used = the day's
``total``, limit = the configured ``daily_limit`` (Marketo reports no limit). Errors arrive as
HTTP 200 with ``success: false`` and a quoted code, or per record as ``status: skipped`` with
``reasons``: both are classified from the body, by the tables at the end of this module. Tokens
live in ``marketo_auth``; every call carries ``Authorization: Bearer``.

Vendor docs (repo AdobeDocs/marketo-developer.en, the source of the Experience League pages under
https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/):
- base URL ``https://<Munchkin id>.mktorest.com/rest``: ``help/rest-api/base-url.md``
- Sync Leads (``action``, ``lookupField`` default ``email``, 300 records, 90 s timeout), Push
  Lead (``programName`` required; ``lookupField``, ``source``, ``reason`` optional), Get Leads by
  Filter Type (up to 300 comma-separated ``filterValues``, paging by ``nextPageToken``, a URI
  over 8 KB is a 414), Delete Leads (300 ids a call): ``help/rest-api/leads.md``
- 50,000 calls a day (reset 12:00 AM CST), 100 calls per 20 s, 10 concurrent, no rate-limit
  headers, the Authorization header: ``help/rest-api/rest-api.md``
- ``GET /rest/v1/stats/usage.json`` (``date``, ``total``, ``users``): ``help/rest-api/usage.md``
- response-level (601-799, quoted) and record-level (1xxx, ``skipped``) errors, and that 6xx
  requests "failed completely and were not executed": ``help/rest-api/error-codes.md``
- operationIds and schemas: repo AdobeDocs/marketo-apis, ``static/swagger-mapi.json``
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import httpx
import structlog

from syncwatch.config.accounts import MarketoAccount
from syncwatch.config.model import Source as SourceSettings
from syncwatch.errors import (
    AuthError,
    ConfigError,
    DuplicateRejected,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    ValidationRejected,
    VendorError,
    VendorUnavailable,
)
from syncwatch.events import QuotaFigure
from syncwatch.http import (
    AccountHttp,
    CallContext,
    Rate,
    classify_status,
    exchanged_at,
    json_body,
    json_document,
    report_quota,
)
from syncwatch.redact import REDACTOR
from syncwatch.vendors.base import Injection, Probe, SourceRef, Wiring, cleanup_context, probe_id_of
from syncwatch.vendors.marketo_auth import MarketoAuth, TokenRefused

log = structlog.get_logger("syncwatch.vendors.marketo")

VENDOR = "marketo"
DAILY_WINDOW = "daily"
RATES: Mapping[str, Rate] = {"default": Rate(100, 20.0)}
"""100 calls per 20 s per instance. The Identity call does not count, but shares the window:
one call an hour is not worth a window of its own."""
MAX_CONCURRENT = 10
LEADS_PATH = "/rest/v1/leads.json"
PUSH_PATH = "/rest/v1/leads/push.json"
DELETE_PATH = "/rest/v1/leads/delete.json"
USAGE_PATH = "/rest/v1/stats/usage.json"
BATCH = 300
"""Records per Sync Leads / Push Lead / Delete Leads call, values per filter, leads per page."""
FILTER_BUDGET = 7_000
"""Encoded characters of ``filterValues`` per lookup: the URI must stay under 8 KB (414 beyond),
and about 55 characters an email means far fewer than 300 emails fit."""
USAGE_EVERY_S = 15 * 60.0
PUSH_SOURCE = "syncwatch"
"""Push Lead's free-text ``source``, for triggers and filters ("Lead is Pushed to Marketo")."""
LEDGER_LIMIT = 10_000
"""Probe emails remembered for the sweep; the oldest are forgotten past this."""
MAX_MESSAGE = 500


def account_http(account: MarketoAccount, wiring: Wiring) -> AccountHttp:
    """The account's client: the REST host as base URL, the documented rate and concurrency."""
    return wiring.account_http(
        VENDOR,
        account.name,
        account.base_url,
        classify=classify,
        quota=lambda _headers: [],  # no quota headers; the usage endpoint's body reports it
        daily_window=DAILY_WINDOW,
        rates=RATES,
        max_concurrent=MAX_CONCURRENT,
    )


class MarketoSource:
    """Probe leads created (``leads``) or pushed (``push``), deleted by id; usage on a timer."""

    def __init__(
        self, account: MarketoAccount, settings: SourceSettings, http: AccountHttp
    ) -> None:
        if settings.method not in MarketoAccount.source_methods:
            raise ConfigError([f"source.method: {settings.method!r} is not a Marketo method"])
        if settings.method == "push" and account.push_program is None:
            raise ConfigError([f"accounts: {account.name}: push_program: required by method push"])
        self.account = account
        self.settings = settings
        self.http = http
        self.auth = MarketoAuth(account, http)
        self._usage_read_at: float | None = None
        self._ledger: dict[str, datetime] = {}

    def __repr__(self) -> str:
        return f"MarketoSource(account={self.account.name!r}, method={self.settings.method!r})"

    async def inject(self, probe: Probe) -> Injection:
        """Create (or push) the probe's lead; accepted at the middle of the call on our clock."""
        context = CallContext(integration=probe.integration, probe_id=probe.probe_id)
        self._remember(probe.email)
        operation, path, body = self._injection(probe)
        injection = await self.auth.request(
            operation, "POST", path, _accepted, context, idempotent=False, json=body
        )
        await self._read_usage_when_due(CallContext(integration=probe.integration))
        return injection

    async def delete(self, refs: Sequence[SourceRef]) -> None:
        """Delete every ref's lead: ids directly, emails after a lookup finds their ids.

        Leads already gone are fine; other refusals raise after every batch has been tried.
        """
        context = cleanup_context(refs)
        ids = {int(ref.record_id) for ref in refs if ref.record_id and ref.record_id.isdigit()}
        emails = sorted({ref.email.lower() for ref in refs if not ref.record_id})
        ids.update(lead.id for lead in await self._find(emails, context))
        refused: list[_Reason] = []
        for batch in _chunks(sorted(ids), BATCH):
            body = {"input": [{"id": lead_id} for lead_id in batch]}
            refused += await self.auth.request(
                "delete_leads", "POST", DELETE_PATH, _refusals, context, idempotent=True, json=body
            )
        if refused:
            raise _refusal(refused, len(ids))
        for ref in refs:
            self._ledger.pop(ref.email.lower(), None)

    async def sweep(self, probe_domain: str, older_than: datetime) -> list[SourceRef]:
        """Leads of the probe emails this process injected before ``older_than``.

        Marketo cannot search leads by email domain or creation time (``filterType`` takes exact
        values of a searchable field), so this is all a sweep can do; leads injected before a
        restart are cleaned through the ids the store keeps, not found here. unconfirmed: that
        no documented query does better at a cost the quota guard would accept.
        """
        suffix = "@" + probe_domain.lower()
        emails = sorted(
            e for e, at in self._ledger.items() if at < older_than and e.endswith(suffix)
        )
        leads = await self._find(emails, CallContext())
        found = {lead.email.lower() for lead in leads}
        for email in set(emails) - found:
            del self._ledger[email]  # never created, or deleted since: nothing to sweep
        return [
            SourceRef(probe_id=probe_id, email=lead.email, record_id=str(lead.id))
            for lead in leads
            if (probe_id := probe_id_of(lead.email)) is not None
        ]

    # -- calls --------------------------------------------------------------------------------

    def _injection(self, probe: Probe) -> tuple[str, str, dict[str, Any]]:
        """Sync Leads creating only (an existing probe email is skipped, 1005), or Push Lead
        with its required ``programName`` and ``source`` tagging the activity as ours."""
        lead = {**probe.fields, "email": probe.email}
        if self.settings.method == "push":
            program = self.account.push_program
            push = {"programName": program, "source": PUSH_SOURCE, "lookupField": "email"}
            return "push_lead", PUSH_PATH, {**push, "input": [lead]}
        sync = {"action": "createOnly", "lookupField": "email"}
        return "sync_lead", LEADS_PATH, {**sync, "input": [lead]}

    async def _find(self, emails: Sequence[str], context: CallContext) -> list[_Lead]:
        """Every lead with one of ``emails``: as few lookups as the URI budget allows, paged."""
        leads: list[_Lead] = []
        for chunk in _filter_chunks(emails):
            token: str | None = None
            while True:
                params = {"filterType": "email", "filterValues": ",".join(chunk)}
                params["fields"] = "id,email,createdAt"
                if token:
                    params["nextPageToken"] = token
                page = await self.auth.request(
                    "find_leads", "GET", LEADS_PATH, _page, context, idempotent=True, params=params
                )
                leads += page.leads
                if not page.next_token or page.next_token == token:
                    break
                token = page.next_token
        return leads

    async def _read_usage_when_due(self, context: CallContext) -> None:
        """The day's usage at most every ``USAGE_EVERY_S``; a failure costs only the figure."""
        now = self.http.clock.monotonic()
        if self._usage_read_at is not None and now - self._usage_read_at < USAGE_EVERY_S:
            return
        self._usage_read_at = now
        limit = self.account.daily_limit
        try:
            await self.auth.request(
                "daily_usage", "GET", USAGE_PATH, _usage_of(limit), context, idempotent=True
            )
        except VendorError as exc:
            log.warning("marketo usage not read", account=self.account.name, error=str(exc))

    def _remember(self, email: str) -> None:
        """Note a probe email before it is sent: a timed-out create may still have made it."""
        self._ledger[email.lower()] = self.http.clock.now()
        while len(self._ledger) > LEDGER_LIMIT:
            del self._ledger[next(iter(self._ledger))]


# -- payload builders and parsers ------------------------------------------------------------


class _Lead(NamedTuple):
    id: int
    email: str


class _Page(NamedTuple):
    leads: list[_Lead]
    next_token: str | None


class _Reason(NamedTuple):
    code: str
    message: str


def _accepted(response: httpx.Response) -> Injection:
    """The first (only) record: created (or updated, by a push) with an id, else skipped."""
    record = _records(response, "lead create")[0]
    lead_id = record.get("id")
    if record.get("status") in ("created", "updated") and _is_id(lead_id):
        return Injection(accepted_at=exchanged_at(response), source_ref=str(lead_id))
    reason = _reason_of(record)
    if reason is None:
        raise MalformedResponse("marketo lead create: no id and no reason", status=200)
    raise _record_error(reason)


def _page(response: httpx.Response) -> _Page:
    leads = []
    for record in _records(response, "lead lookup", allow_empty=True):
        email = record.get("email")
        if not _is_id(record.get("id")):
            raise MalformedResponse("marketo lead lookup: a lead without an id", status=200)
        leads.append(_Lead(int(record["id"]), email if isinstance(email, str) else ""))
    token = _body(response, "lead lookup").get("nextPageToken")
    return _Page(leads, token if isinstance(token, str) and token else None)


def _refusals(response: httpx.Response) -> list[_Reason]:
    """Each record not deleted, with its reason; a lead already gone is not a refusal."""
    refused = []
    for record in _records(response, "lead delete", allow_empty=True):
        if record.get("status") == "deleted":
            continue
        reason = _reason_of(record) or _Reason("", f"status {record.get('status')!r}")
        if reason.code not in GONE:
            refused.append(reason)
    return refused


def _usage_of(limit: int) -> Callable[[httpx.Response], QuotaFigure]:
    def parse(response: httpx.Response) -> QuotaFigure:
        """Today's ``total`` as used calls. unconfirmed: an empty result read as none yet."""
        days = _records(response, "daily usage", allow_empty=True)
        total = days[0].get("total", 0) if days else 0
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise MalformedResponse("marketo daily usage: total is not a count", status=200)
        figure = QuotaFigure(DAILY_WINDOW, total, limit)
        report_quota(response, [figure])
        return figure

    return parse


def _records(response: httpx.Response, what: str, allow_empty: bool = False) -> list[Any]:
    """The ``result`` array of a successful answer (``classify`` has seen ``success``)."""
    result = _body(response, what).get("result", [] if allow_empty else None)
    if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
        raise MalformedResponse(f"marketo {what}: no result list", status=response.status_code)
    if not result and not allow_empty:
        raise MalformedResponse(f"marketo {what}: an empty result", status=response.status_code)
    return result


def _body(response: httpx.Response, what: str) -> dict[str, Any]:
    body = json_body(response, f"marketo {what}")
    if not isinstance(body, dict) or body.get("success") is not True:
        message = f"marketo {what}: not a successful Marketo answer"
        raise MalformedResponse(message, status=response.status_code)
    return body


def _reason_of(record: dict[str, Any]) -> _Reason | None:
    """The first of ``reasons`` (the docs) or ``reason`` (the Swagger's Lead schema)."""
    reasons = record.get("reasons")
    first = reasons[0] if isinstance(reasons, list) and reasons else record.get("reason")
    if not isinstance(first, dict):
        return None
    return _Reason(str(first.get("code", "")), str(first.get("message", ""))[:300])


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _filter_chunks(emails: Sequence[str]) -> Iterator[list[str]]:
    """Emails in groups of at most ``BATCH`` whose encoded ``filterValues`` fit the budget."""
    chunk: list[str] = []
    size = 0
    for email in emails:
        cost = len(str(httpx.QueryParams({"v": email + ","}))) - 2
        if chunk and (len(chunk) == BATCH or size + cost > FILTER_BUDGET):
            yield chunk
            chunk, size = [], 0
        chunk.append(email)
        size += cost
    if chunk:
        yield chunk


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _refusal(refused: list[_Reason], total: int) -> VendorError:
    first = refused[0]
    text = _text(f"delete: {len(refused)} of {total} leads not deleted", first.code, first.message)
    return _record_error(first, text)


# -- error classification --------------------------------------------------------------------


def _unavailable(acted: bool) -> Callable[[str], VendorError]:
    return lambda text: VendorUnavailable(text, status=200, may_have_acted=acted)


RESPONSE_CODES: Mapping[str, Callable[[str], VendorError]] = {
    "600": lambda text: AuthError(text, status=200),  # empty token (KB ka-28813 only)
    "601": lambda text: TokenRefused(text, status=200),
    "602": lambda text: TokenRefused(text, status=200),
    "603": lambda text: AuthError(text, status=200),  # no permission, or the IP allowlist
    # 6xx: "failed completely and were not executed", so even a create may be resent.
    "604": _unavailable(acted=False),
    "608": _unavailable(acted=False),
    "611": _unavailable(acted=False),
    "614": _unavailable(acted=False),  # "usually indicates temporary inaccessibility"
    "713": _unavailable(acted=True),  # 7xx: not documented as unexecuted
    # 606: over 100 calls in 20 s; waiting out the window is the documented cure.
    "606": lambda text: RateLimited(text, status=200, retry_after_s=20.0),
    "615": lambda text: RateLimited(text, status=200),  # 10 concurrent
    "607": lambda text: QuotaExhausted(text, status=200, may_have_acted=False),
}
"""Response-level codes → DESIGN §6. Any other 6xx/7xx is a request we got wrong: ``validation``;
the documented 500 and 502 rows, if they come as body codes, are the vendor's."""
RECORD_DUPLICATE = frozenset({"1005", "1007"})
"""Lead already exists (createOnly); several leads match the lookup. Other 1xxx: validation."""
GONE = frozenset({"1004"})
"""unconfirmed: the reason Delete Leads gives for an id that no longer exists ("Lead not found")."""


def classify(response: httpx.Response) -> VendorError | None:
    """DESIGN §6 for a Marketo answer: by the body's code, whatever the HTTP status says.

    A 2xx is an error only when its JSON body says ``success: false``; anything else (including
    an HTML page) is left to the parser, which calls it ``malformed``. Identity's 401 is ``auth``,
    413/414 are ``validation`` (our request was too big), 5xx ``vendor_5xx``. A 3xx is not part
    of the API (the client follows no redirects): ``malformed``.
    """
    status = response.status_code
    body = _error_body(response)
    if status >= 300:
        message = _text(f"HTTP {status}", *_first_error(body))
        if status < 400:
            return MalformedResponse(message, status=status)
        return classify_status(response, message)
    if body.get("success") is not False:
        return None
    code, message = _first_error(body)
    return _by_code(code, _text("error", code, message))


def _by_code(code: str, text: str) -> VendorError:
    known = RESPONSE_CODES.get(code)
    if known is not None:
        return known(text)
    if code.startswith("5"):
        return VendorUnavailable(text, status=200)
    return ValidationRejected(text, status=200)


def _record_error(reason: _Reason, text: str | None = None) -> VendorError:
    """A record-level ``skipped``: 1005/1007 are ``duplicate``, any other reason ``validation``."""
    text = text or _text("lead skipped", reason.code, reason.message)
    if reason.code in RECORD_DUPLICATE:
        return DuplicateRejected(text, status=200, may_have_acted=False)
    return ValidationRejected(text, status=200, may_have_acted=False)


def _first_error(body: dict[str, Any]) -> tuple[str, str]:
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else {}
    if not isinstance(first, dict):
        return "", ""
    return str(first.get("code", "")), str(first.get("message", ""))


def _error_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of the answer, or {} for an HTML page, garbage or another shape."""
    if "json" not in response.headers.get("content-type", "").lower():
        return {}
    try:
        body = json_document(response)  # read once: the parser reads it again
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _text(what: str, code: str, message: str) -> str:
    text = f"{VENDOR} {what} {code}: {message or 'no message'}" if code else f"{VENDOR} {what}"
    text = text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
    return REDACTOR.text(text)
