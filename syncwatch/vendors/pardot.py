"""Account Engagement (Pardot) as a source: inject probe prospects, delete them, read usage.

Probes go in by Prospect v5 ``upsertLatestByEmail`` (``api``: the prospect id in the answer is
the probe's source ref; an upsert keyed on a probe's unique email can only create it, and sent
again after a timeout it finds the same prospect, so it is retried like a read; unconfirmed:
that its match reads the primary data, not the read cache) or by a form
handler (``form_handler``: a urlencoded POST whose only outcome is a redirect to the handler's
success or error location, with no prospect id; accepted at the middle of the call, as HubSpot's
form path is). Delete is v5 ``DELETE`` by id, one prospect a call (the recycle bin); a ref
without an id is found first by querying prospects by email.

Every API call carries the Salesforce OAuth bearer token (``salesforce_auth``, the same code and
tokens as the Salesforce destination) and ``Pardot-Business-Unit-Id``; code 184 or an HTTP 401
earns one new token and one retry. The form handler is a public endpoint: it gets neither, so no
token ever travels to a marketing tracker domain. Errors are the v5 body ``{"code", "message"}``
and are classified by code first, HTTP status second, by the tables at the end of this module.
Calls send ``X-Return-Api-Usage: 1``; the ``x-api-usage`` answer is the ``daily`` quota figure,
its limit the configured ``daily_limit`` when the header gives none.

Vendor docs:
- Bearer token plus ``Pardot-Business-Unit-Id`` (``0Uv``, 18 characters), the ``pardot_api``
  scope, hosts ``pi.pardot.com`` / ``pi.demo.pardot.com``:
  https://developer.salesforce.com/docs/marketing/pardot/guide/authentication.html
- Prospect v5 operations (upsert by email, query, read, delete) and field names:
  https://developer.salesforce.com/docs/marketing/pardot/guide/prospect-v5
- upsertLatestByEmail finds the most recently updated prospect with the email, else creates one;
  querying by ``email`` returns every prospect with it; delete is by id:
  https://developer.salesforce.com/docs/marketing/pardot/guide/transitioning-v5.html
- ``fields`` required, ``nextPageToken`` paging (only ``fields`` beside it), reads served from a
  cache up to 60 s behind: https://developer.salesforce.com/docs/marketing/pardot/guide/version5overview.html
- error codes (66, 122, 181, 183, 184, 192, 201, 202, ...):
  https://developer.salesforce.com/docs/marketing/pardot/guide/error-codes.html
- five concurrent requests, 25,000 to 100,000 calls a day by edition:
  https://help.salesforce.com/s/articleView?id=sf.pardot_admin_api_using.htm&language=en_US&type=5
- form handlers (urlencoded or empty enctype, no multipart; Kiosk mode for server posts):
  https://help.salesforce.com/apex/HTViewHelpDoc?id=mktg.pardot_considerations_for_using_form_handlers.htm
Secondary sources, marked where used: the upsert body (segmentio/action-destinations
``actions-pardot``), ``X-Return-Api-Usage`` (API Evangelist ``pardot-rate-limits.yml``), the
error redirect's ``errors=true`` (kumahq/kuma-gui#40).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from syncwatch.config.accounts import PardotAccount
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
from syncwatch.http import (
    AccountHttp,
    CallContext,
    Rate,
    classify_status,
    exchanged_at,
    json_body,
)
from syncwatch.quota import parse_pardot_usage
from syncwatch.redact import REDACTOR
from syncwatch.vendors.base import Injection, Probe, SourceRef, Wiring, cleanup_context, probe_id_of
from syncwatch.vendors.salesforce_auth import SalesforceAuth, Session

VENDOR = "pardot"
DAILY_WINDOW = "daily"
# unconfirmed: no per-second or per-minute rate is documented (code 202 "Minute rate limit
# met" exists without a number); ten a second is far above what probes need.
RATES: Mapping[str, Rate] = {"default": Rate(10, 1.0)}
MAX_CONCURRENT = 5
PROSPECTS_PATH = "/api/v5/objects/prospects"
UPSERT_PATH = f"{PROSPECTS_PATH}/do/upsertLatestByEmail"
READ_FIELDS = ("id", "email", "createdAt")
BUSINESS_UNIT_HEADER = "Pardot-Business-Unit-Id"
USAGE_REQUEST = {"X-Return-Api-Usage": "1"}
USAGE_HEADER = "x-api-usage"
LEDGER_LIMIT = 10_000
"""Probe emails remembered for the sweep; the oldest are forgotten past this."""
MAX_MESSAGE = 500
T = TypeVar("T")


def account_http(account: PardotAccount, wiring: Wiring) -> AccountHttp:
    """The account's client: the API host as base URL, five in flight, usage from a header."""
    return wiring.account_http(
        VENDOR,
        account.name,
        account.base_url,
        classify=classify,
        quota=lambda headers: parse_pardot_usage(headers.get(USAGE_HEADER), account.daily_limit),
        daily_window=DAILY_WINDOW,
        rates=RATES,
        max_concurrent=MAX_CONCURRENT,
    )


class PardotSource:
    """Probe prospects upserted (``api``) or posted to a form handler, deleted by id."""

    def __init__(self, account: PardotAccount, settings: SourceSettings, http: AccountHttp) -> None:
        if settings.method not in PardotAccount.source_methods:
            raise ConfigError([f"source.method: {settings.method!r} is not a Pardot method"])
        if settings.method == "form_handler" and not settings.form_handler_url:
            raise ConfigError(["source.form_handler_url: required with method form_handler"])
        self.account = account
        self.settings = settings
        self.http = http
        self.auth = SalesforceAuth(account, http)
        self._ledger: dict[str, datetime] = {}

    def __repr__(self) -> str:
        return f"PardotSource(account={self.account.name!r}, method={self.settings.method!r})"

    async def inject(self, probe: Probe) -> Injection:
        """Upsert (or post) the probe's prospect; accepted at the middle of the call."""
        context = CallContext(integration=probe.integration, probe_id=probe.probe_id)
        self._remember(probe.email)
        if self.settings.method == "form_handler":
            return await self._submit(probe, context)
        body = _upsert_body(probe)
        return await self._request(
            "upsert_prospect", "POST", UPSERT_PATH, _accepted, context, idempotent=True, json=body
        )

    async def delete(self, refs: Sequence[SourceRef]) -> None:
        """Delete every ref's prospect: ids directly, emails after a query finds their ids.

        Prospects already gone are fine; other refusals raise after every delete was tried.
        """
        context = cleanup_context(refs)
        ids = {int(ref.record_id) for ref in refs if ref.record_id and ref.record_id.isdigit()}
        emails = sorted({ref.email.lower() for ref in refs if not ref.record_id})
        ids.update(prospect.id for prospect in await self._find(emails, context))
        refused: list[VendorError] = []
        for prospect_id in sorted(ids):
            try:
                await self._request(
                    "delete_prospect",
                    "DELETE",
                    f"{PROSPECTS_PATH}/{prospect_id}",
                    _deleted,
                    context,
                    idempotent=True,
                    classify=_classify_delete,
                )
            except VendorError as exc:
                refused.append(exc)
        if refused:
            raise _refusal(refused, len(ids))
        for ref in refs:
            self._ledger.pop(ref.email.lower(), None)

    async def sweep(self, probe_domain: str, older_than: datetime) -> list[SourceRef]:
        """Prospects of the probe emails this process injected before ``older_than``.

        v5 cannot query prospects by email domain, and a scan by date would read every prospect
        of the window, which the quota guard cannot afford; prospects injected before a restart
        are cleaned through the ids the store keeps. unconfirmed: whether v5 filters prospects
        on ``createdAt`` at all (a secondary source lists only ``updatedAt`` filters).
        """
        suffix = "@" + probe_domain.lower()
        emails = sorted(
            e for e, at in self._ledger.items() if at < older_than and e.endswith(suffix)
        )
        prospects = await self._find(emails, CallContext())
        found = {prospect.email.lower() for prospect in prospects}
        for email in set(emails) - found:
            del self._ledger[email]  # never created, or deleted since: nothing to sweep
        return [
            SourceRef(probe_id=probe_id, email=prospect.email, record_id=str(prospect.id))
            for prospect in prospects
            if (probe_id := probe_id_of(prospect.email)) is not None
        ]

    # -- calls --------------------------------------------------------------------------------

    async def _request(
        self,
        operation: str,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        context: CallContext,
        *,
        idempotent: bool,
        **kwargs: Any,
    ) -> T:
        """One API call with the bearer token and the business unit; a refused token earns one
        new token and one retry (the call was refused, so even a write may be resent)."""

        async def send(session: Session) -> T:
            headers = {**session.headers, **USAGE_REQUEST}
            headers[BUSINESS_UNIT_HEADER] = self.account.business_unit_id
            return await self.http.request(
                operation,
                method,
                path,
                parse=parse,
                idempotent=idempotent,
                context=context,
                headers=headers,
                **kwargs,
            )

        session = await self.auth.session(context)
        try:
            return await send(session)
        except TokenRefused:
            pass
        return await send(await self.auth.renew(session, context))

    async def _submit(self, probe: Probe, context: CallContext) -> Injection:
        """The form handler post: the probe's fields as sent, urlencoded, nothing secret."""
        assert self.settings.form_handler_url is not None  # checked in __init__
        return await self.http.request(
            "submit_form_handler",
            "POST",
            self.settings.form_handler_url,
            parse=_redirected,
            idempotent=False,
            context=context,
            classify=classify_form_handler,
            data={**probe.fields, "email": probe.email},
        )

    async def _find(self, emails: Sequence[str], context: CallContext) -> list[_Prospect]:
        """Every prospect with one of ``emails``: one query per email, paged by token."""
        prospects: list[_Prospect] = []
        fields = ",".join(READ_FIELDS)
        for email in emails:
            params = {"fields": fields, "email": email}
            while True:
                page = await self._request(
                    "query_prospects",
                    "GET",
                    PROSPECTS_PATH,
                    _page,
                    context,
                    idempotent=True,
                    params=params,
                )
                prospects += page.prospects
                if not page.next_token or page.next_token == params.get("nextPageToken"):
                    break
                params = {"fields": fields, "nextPageToken": page.next_token}
        return prospects

    def _remember(self, email: str) -> None:
        """Note a probe email before it is sent: a timed-out upsert may still have made it."""
        self._ledger[email.lower()] = self.http.clock.now()
        while len(self._ledger) > LEDGER_LIMIT:
            del self._ledger[next(iter(self._ledger))]


# -- payload builders and parsers ------------------------------------------------------------


class _Prospect(NamedTuple):
    id: int
    email: str


class _Page(NamedTuple):
    prospects: list[_Prospect]
    next_token: str | None


def _upsert_body(probe: Probe) -> dict[str, Any]:
    """The upsert (its shape from the secondary source above): the probe's fields under v5
    names, the email matched and set, the fields to return, and no search of the recycle bin
    (a probe email is never reused)."""
    prospect = {_v5_name(name): value for name, value in probe.fields.items()}
    prospect["email"] = probe.email
    return {
        "matchEmail": probe.email,
        "prospect": prospect,
        "fields": list(READ_FIELDS),
        "secondaryDeletedSearch": False,
    }


def _v5_name(name: str) -> str:
    """A v3/v4 field name in v5's camel case (``first_name`` → ``firstName``), so a template
    written for either API reaches v5 names; v5 and custom (``__c``) names pass unchanged."""
    if name.endswith("__c") or "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _accepted(response: httpx.Response) -> Injection:
    """The upserted prospect's id (a positive integer) as the source ref."""
    body = _json_object(response, "prospect upsert")
    if not _is_id(body.get("id")):
        raise MalformedResponse(
            "pardot prospect upsert: no prospect id", status=response.status_code
        )
    return Injection(accepted_at=exchanged_at(response), source_ref=str(body["id"]))


def _redirected(response: httpx.Response) -> Injection:
    """A redirect ``classify_form_handler`` let through: the handler accepted the submission."""
    return Injection(accepted_at=exchanged_at(response))


def _page(response: httpx.Response) -> _Page:
    body = _json_object(response, "prospect query")
    values, token = body["values"], body.get("nextPageToken")
    if not isinstance(values, list) or not all(
        isinstance(v, dict) and _is_id(v.get("id")) for v in values
    ):
        raise MalformedResponse("pardot prospect query: no values with ids", status=200)
    prospects = [
        _Prospect(v["id"], v["email"] if isinstance(v.get("email"), str) else "") for v in values
    ]
    return _Page(prospects, token if isinstance(token, str) and token else None)


def _deleted(response: httpx.Response) -> None:
    """204, or the 404 of a prospect already gone (``_classify_delete`` let it through)."""


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    body = json_body(response, f"pardot {what}")
    if not isinstance(body, dict):
        message = f"pardot {what}: body is not a JSON object"
        raise MalformedResponse(message, status=response.status_code)
    return body


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _refusal(refused: list[VendorError], total: int) -> VendorError:
    """The first refusal, its class and status kept, its message counting the others."""
    first = copy.copy(refused[0])
    first.args = (f"{first} ({len(refused)} of {total} prospects not deleted)",)
    return first


# -- error classification --------------------------------------------------------------------


class TokenRefused(AuthError):
    """184 (token invalid, unknown or malformed) or an HTTP 401: cured by one new token, so
    ``_request`` retries once; past that it is plain ``auth``."""


def _as(kind: type[VendorError], **options: Any) -> Callable[[str, int | None], VendorError]:
    return lambda text, status: kind(text, status=status, **options)


CODES: Mapping[int, Callable[[str, int | None], VendorError]] = {
    66: _as(RateLimited),  # more than five concurrent requests: waiting is the cure
    202: _as(RateLimited, retry_after_s=60.0),  # "Minute rate limit met"
    122: _as(QuotaExhausted, may_have_acted=False),  # "Daily API rate limit met"
    184: _as(TokenRefused),  # access_token invalid, unknown or malformed
    # Our own setup refused: header missing or bad, access, API off, business unit, IP.
    **dict.fromkeys((46, 49, 53, 76, 126, 181, 182, 199, 201), _as(AuthError)),
    # "An internal error occurred, please try your request again"; "API request timed out".
    **dict.fromkeys((183, 214), _as(VendorUnavailable)),
    # A prospect with this email exists (create); the address is taken (update).
    **dict.fromkeys((9, 54), _as(DuplicateRejected, may_have_acted=False)),
    **dict.fromkeys((4, 180), _as(ValidationRejected)),  # bad email; fields not writable
}
"""v5 body codes → DESIGN §6. Any other code is settled by its HTTP status: 5xx ``vendor_5xx``,
401 a refused token, other 4xx (a request or record we got wrong) ``validation``."""
GONE = frozenset({3, 192})
"""Invalid prospect ID; object specified does not exist: a delete that has nothing to do."""


def classify(response: httpx.Response) -> VendorError | None:
    """DESIGN §6 for an API answer: by the v5 body's ``code``, then by HTTP status.

    The token endpoint shares this client: its OAuth body (``{"error", "error_description"}``)
    is ``auth``. A 2xx is judged by its parser; a 3xx is not part of the API (the client follows
    no redirects): ``malformed``.
    """
    status = response.status_code
    if status < 300:
        return None
    body = _error_body(response)
    code, message = _code_of(body)
    text = _text(f"HTTP {status} {code if code is not None else ''}".rstrip() + f": {message}")
    if status < 400:
        return MalformedResponse(text, status=status)
    known = CODES.get(code) if code is not None else None
    if known is not None:
        return known(text, status)
    if isinstance(body.get("error"), str) and status in (400, 401):
        return AuthError(text, status=status)  # the OAuth token endpoint
    if status == 401:
        return TokenRefused(text, status=status)
    return classify_status(response, text)


def _classify_delete(response: httpx.Response) -> VendorError | None:
    """A prospect already gone (404, or codes 3 and 192) is no error for a delete."""
    code, _ = _code_of(_error_body(response))
    if response.status_code == 404 or code in GONE:
        return None
    return classify(response)


def classify_form_handler(response: httpx.Response) -> VendorError | None:
    """A form handler's only answer is a redirect: to the error location (``errors=true``,
    with ``errorMessage``) it is ``validation``, anywhere else the submission was accepted.

    unconfirmed: that a handler answers nothing but a redirect; a 2xx page is ``malformed``.
    A 404 is a handler URL that does not exist: the customer's configuration, ``validation``.
    """
    status = response.status_code
    location = response.headers.get("location", "")
    if 300 <= status < 400 and location:
        query = parse_qs(urlsplit(location).query)
        if query.get("errors", [""])[0].lower() == "true":
            reason = query.get("errorMessage", ["no errorMessage"])[0]
            text = _text(f"form handler redirected to its error location: {reason}")
            return ValidationRejected(text, status=status, may_have_acted=False)
        return None
    if status < 400:
        return MalformedResponse(_text(f"form handler answered HTTP {status}, not a redirect"))
    if status == 404:
        return ValidationRejected(
            _text("form handler HTTP 404: no handler at that URL"), status=404
        )
    return classify_status(response, _text(f"form handler HTTP {status}"))


def _code_of(body: dict[str, Any]) -> tuple[int | None, str]:
    code = body.get("code")
    message = body.get("message") or body.get("error_description") or body.get("error") or ""
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    usable = isinstance(code, int) and not isinstance(code, bool)
    return (code if usable else None), str(message)[:300] or "no message"


def _error_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of the answer, or {} for an HTML page, garbage or another shape."""
    if "json" not in response.headers.get("content-type", "").lower():
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _text(what: str) -> str:
    text = f"{VENDOR} {what}"
    text = text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
    return REDACTOR.text(text)
