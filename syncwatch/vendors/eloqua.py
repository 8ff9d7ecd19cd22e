"""Oracle Eloqua as a source: inject probe contacts, delete them, sweep the ones left behind.

Probes go in as contacts created through the application API (REST 1.0): ``emailAddress`` plus
the template's fields under Eloqua's property names (``firstName``, ``lastName``,
``accountName``, ``businessPhone``, ``title``, ``country``...). The contact's id in the answer
is the probe's source ref; a delete takes one id a call (the API has no batch delete), and a
404 means the contact is gone already. The sweep searches contacts by the probe email prefix and
keeps those at the probe domain whose ``createdAt`` (Unix epoch seconds, sent as a string) is
older than the cut-off. The Basic header and the pod's base URL come from ``eloqua_auth``.

Eloqua reports no quota: no headers, no usage endpoint, no published general rate limit. Calls
are throttled to a rate of our own choosing, a 429 is ``rate_limited`` (its ``Retry-After``
honoured when sent, else the HTTP layer backs off 1, 2, 4 s), a 503 is temporary ("retry, placing
more delay between retries") and retried for reads. Errors are classified by the table at the
end of this module.

Vendor docs:
- contact create (201), retrieve, delete, list/search, and the Contact and QueryResultContact
  shapes (``type``, string ``id``, ``createdAt``; ``elements``, ``page``, ``pageSize``,
  ``total``): https://docs.oracle.com/en/cloud/saas/marketing/eloqua-rest-api/op-api-rest-1.0-data-contact-post.html,
  https://docs.oracle.com/cloud/latest/marketingcs_gs/OMCAC/rest-endpoints.html; the schemas
  as split from Oracle's published Swagger: repo api-evangelist/eloqua,
  ``openapi/eloqua-application-1-0-contacts-api-openapi.yml`` (secondary source)
- ``createdAt`` in epoch seconds as a string, and minimal depth (``type``, ``id``,
  ``createdAt``, ``name``, ``updatedAt``, ``emailAddress``):
  https://docs.oracle.com/en/cloud/saas/marketing/eloqua-rest-api/APIRequests_RequestDepth.html
- ``search={term}{operator}{value}``, ``*`` after a value for partial matches, ``count`` 1 to
  1000, ``page`` from 1: https://docs.oracle.com/en/cloud/saas/marketing/eloqua-rest-api/APIRequests_URLParameters.html
  and https://docs.oracle.com/cloud/latest/marketingcs_gs/OMCAB/Developers/RESTAPI/Tutorials/search_parameter.htm
- status codes (301/401 "Login required", 403, 404, 409 "There was a conflict.", 412, 413
  "Storage space exceeded.", 429 "Too Many Requests", 503 with retry advice):
  https://docs.oracle.com/en/cloud/saas/marketing/eloqua-rest-api/APIRequests_HTTPStatusCodes.html
- 400 validation errors, a list of ``{type, property|parameter, value, requirement: {type}}``:
  https://docs.oracle.com/en/cloud/saas/marketing/eloqua-rest-api/APIRequests_HTTPValidationErrors.html
- ids are opaque strings: community.oracle.com topliners "Eloqua REST API - Request URL
  Parameters" (2012)

unconfirmed (nothing in Oracle's docs settles these; verify against a live account):
- the email search: that ``emailAddress`` is a searchable term on contacts (the docs' examples
  search other fields; client libraries use ``emailAddress='x@y.com'``), that a quoted value is
  accepted, that ``+`` matches literally and that matching ignores case; the sweep therefore
  uses only the documented trailing ``*`` (the probe prefix) and checks the domain itself;
- whether more than one search criterion may be combined (the sweep filters ``createdAt`` here);
- that a create with an existing email answers 409 (a client library treats it so) and the body;
- any general rate limit or concurrency bound, and whether a 429 carries ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx

from syncwatch.config.accounts import EloquaAccount
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
from syncwatch.http import AccountHttp, CallContext, Rate, exchanged_at, json_body, retry_after
from syncwatch.redact import REDACTOR
from syncwatch.vendors.base import (
    PROBE_LOCAL_PART,
    Injection,
    Probe,
    SourceRef,
    Wiring,
    cleanup_context,
    probe_id_of,
)
from syncwatch.vendors.eloqua_auth import EloquaAuth, LoginRequired

VENDOR = "eloqua"
DAILY_WINDOW = "daily"
"""The window the quota guard would read; Eloqua reports none, so it stays empty."""
RATES: Mapping[str, Rate] = {"default": Rate(10, 1.0)}
"""unconfirmed: Oracle publishes no general limit (only endpoint-specific ones, none of these);
ten calls a second is syncwatch's own politeness bound, far above what probing needs."""
CONTACT_PATH = "/api/REST/1.0/data/contact"
CONTACTS_PATH = "/api/REST/1.0/data/contacts"
SEARCH_TERM = "emailAddress"
PAGE_SIZE = 1_000
"""The documented maximum ``count``."""
MAX_PAGES = 20
"""A sweep reads at most this many pages (20,000 contacts) per run; the rest waits a day."""
MAX_MESSAGE = 500


def account_http(account: EloquaAccount, wiring: Wiring) -> AccountHttp:
    """The account's client: the login host as base URL (pod calls use absolute URLs)."""
    return wiring.account_http(
        VENDOR,
        account.name,
        account.login_url,
        classify=classify,
        quota=lambda _headers: [],  # Eloqua reports no quota figures
        daily_window=DAILY_WINDOW,
        rates=RATES,
    )


class EloquaSource:
    """Probe contacts created through REST 1.0, deleted one id a call, swept by email prefix."""

    def __init__(self, account: EloquaAccount, settings: SourceSettings, http: AccountHttp) -> None:
        if settings.method not in EloquaAccount.source_methods:
            raise ConfigError([f"source.method: {settings.method!r} is not an Eloqua method"])
        self.account = account
        self.settings = settings
        self.http = http
        self.auth = EloquaAuth(account, http)

    def __repr__(self) -> str:
        return f"EloquaSource(account={self.account.name!r}, method={self.settings.method!r})"

    async def inject(self, probe: Probe) -> Injection:
        """Create the probe's contact; accepted at the middle of the call on our clock."""
        context = CallContext(integration=probe.integration, probe_id=probe.probe_id)
        body = {**probe.fields, "emailAddress": probe.email}
        return await self.auth.request(
            "create_contact", "POST", CONTACT_PATH, _created, context, idempotent=False, json=body
        )

    async def delete(self, refs: Sequence[SourceRef]) -> None:
        """Delete every ref's contact: ids directly, emails after a search finds their ids.

        A contact already gone (404) is fine; the first other refusal stops the run, and the
        clean-up tries again later (contacts deleted meanwhile then answer 404).
        """
        context = cleanup_context(refs)
        ids = {ref.record_id for ref in refs if ref.record_id}
        for email in sorted({ref.email.lower() for ref in refs if not ref.record_id}):
            ids.update(c.id for c in await self._search(_exact(email), context) if c.has(email))
        for contact_id in sorted(ids, key=_id_order):
            await self.auth.request(
                "delete_contact",
                "DELETE",
                f"{CONTACT_PATH}/{quote(contact_id, safe='')}",
                _deleted,
                context,
                idempotent=True,
                classify=_gone_is_deleted,
            )

    async def sweep(self, probe_domain: str, older_than: datetime) -> list[SourceRef]:
        """Probe contacts at ``probe_domain`` created before ``older_than``, for deletion."""
        suffix = "@" + probe_domain.lower()
        found = await self._search(f"{SEARCH_TERM}='{PROBE_LOCAL_PART}*'", CallContext())
        refs = []
        for contact in found:
            probe_id = probe_id_of(contact.email)
            old = contact.created_at < older_than
            if probe_id is not None and contact.email.lower().endswith(suffix) and old:
                refs.append(SourceRef(probe_id=probe_id, email=contact.email, record_id=contact.id))
        return refs

    async def _search(self, search: str, context: CallContext) -> list[_Contact]:
        """Every contact the search matches, at minimal depth, page after page."""
        found: list[_Contact] = []
        for page in range(1, MAX_PAGES + 1):
            params = {"search": search, "depth": "minimal", "count": PAGE_SIZE, "page": page}
            result = await self.auth.request(
                "search_contacts",
                "GET",
                CONTACTS_PATH,
                _page,
                context,
                idempotent=True,
                params=params,
            )
            found += result.contacts
            if not result.contacts or page * PAGE_SIZE >= result.total:
                break
        return found


# -- payload builders and parsers ------------------------------------------------------------


class _Contact(NamedTuple):
    id: str
    email: str
    created_at: datetime

    def has(self, email: str) -> bool:
        return self.email.lower() == email.lower()


class _Page(NamedTuple):
    contacts: list[_Contact]
    total: int


def _exact(email: str) -> str:
    """One email, quoted as the docs quote search values (``M_City=''``)."""
    return f"{SEARCH_TERM}='{email}'"


def _created(response: httpx.Response) -> Injection:
    """The created Contact: ``type: Contact`` and its (opaque, string) id."""
    body = _object(response, "contact create")
    if body.get("type") != "Contact" or not _is_id(body.get("id")):
        raise MalformedResponse("eloqua contact create: no Contact id", status=response.status_code)
    return Injection(accepted_at=exchanged_at(response), source_ref=str(body["id"]))


def _page(response: httpx.Response) -> _Page:
    """A QueryResultContact page; a 204 (the Swagger's "no matching contacts") is empty."""
    if response.status_code == 204:
        return _Page([], 0)
    body = _object(response, "contact search")
    elements, total = body.get("elements"), body.get("total", 0)
    if not isinstance(elements, list) or isinstance(total, bool) or not isinstance(total, int):
        raise MalformedResponse("eloqua contact search: no elements", status=response.status_code)
    return _Page([_contact_of(element, response) for element in elements], total)


def _contact_of(element: Any, response: httpx.Response) -> _Contact:
    """A minimal-depth contact; its ``emailAddress`` (or ``name``, which holds it) and epoch."""
    if not isinstance(element, dict) or not _is_id(element.get("id")):
        raise MalformedResponse(
            "eloqua contact search: a contact without an id", status=response.status_code
        )
    email = element.get("emailAddress") or element.get("name") or ""
    created = epoch_seconds(element.get("createdAt"), response)
    return _Contact(str(element["id"]), email if isinstance(email, str) else "", created)


def epoch_seconds(value: Any, response: httpx.Response | None = None) -> datetime:
    """Eloqua's timestamps: Unix epoch seconds as a decimal string (``"1403034086"``), UTC."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdecimal()):
        status = response.status_code if response is not None else None
        raise MalformedResponse(f"eloqua: {value!r} is not epoch seconds", status=status)
    return datetime.fromtimestamp(int(text), UTC)


def _deleted(response: httpx.Response) -> None:
    """200 or 204, or the 404 of a contact already gone; a body, if any, must be JSON."""
    if response.status_code == 200 and response.content.strip():
        json_body(response, "eloqua contact delete")


def _object(response: httpx.Response, what: str) -> dict[str, Any]:
    body = json_body(response, f"eloqua {what}")
    if not isinstance(body, dict):
        raise MalformedResponse(f"eloqua {what}: not a JSON object", status=response.status_code)
    return body


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and str(value) != ""


def _id_order(contact_id: str) -> tuple[int, str]:
    return len(contact_id), contact_id


# -- error classification --------------------------------------------------------------------


def _login_required(text: str, status: int) -> VendorError:
    return LoginRequired(text, status=status, may_have_acted=False)


STATUSES: Mapping[int, Callable[[str, int], VendorError]] = {
    301: _login_required,  # documented "Login required" (the client follows no redirects)
    401: _login_required,
    403: lambda text, status: AuthError(text, status=status, may_have_acted=False),
    409: lambda text, status: DuplicateRejected(text, status=status, may_have_acted=False),
    413: lambda text, status: QuotaExhausted(text, status=status, may_have_acted=False),
}
"""HTTP statuses → DESIGN §6, where the generic reading is not enough. 403 covers "Forbidden",
"This service has not been enabled for your site" and "XSRF Protection Failure"; 409 "There was
a conflict." is a duplicate (unconfirmed, above); 413 "Storage space exceeded." is the site's
allowance. 429 is ``rate_limited``, 5xx ``vendor_5xx``; any other 4xx is ``validation``."""
DUPLICATE_REQUIREMENTS = frozenset({"UniquenessRequirement", "NoDuplicatesRequirement"})
"""A 400 whose validation errors name one of these is a ``duplicate``, not a ``validation``."""


def classify(response: httpx.Response) -> VendorError | None:
    """DESIGN §6 for an Eloqua answer, by status first and the validation body second.

    A 2xx is left to the parser (a body of the wrong shape is ``malformed`` there); any 3xx
    but the documented 301 is not part of the API: ``malformed``.
    """
    status = response.status_code
    if status < 300:
        return None
    errors = _validation_errors(response)
    text = _describe(response, errors)
    if status in STATUSES:
        return STATUSES[status](text, status)
    if status < 400:
        return MalformedResponse(text, status=status)
    if status == 429:
        return RateLimited(text, status=status, retry_after_s=retry_after(response))
    if status >= 500:
        return VendorUnavailable(text, status=status)
    if any(e.get("requirement", {}).get("type") in DUPLICATE_REQUIREMENTS for e in errors):
        return DuplicateRejected(text, status=status, may_have_acted=False)
    return ValidationRejected(text, status=status, may_have_acted=False)


def _gone_is_deleted(response: httpx.Response) -> VendorError | None:
    """A delete's reading: 404 is a contact already gone, not an error."""
    return None if response.status_code == 404 else classify(response)


def _validation_errors(response: httpx.Response) -> list[dict[str, Any]]:
    """The documented list of validation objects (one object alone is accepted too), or []."""
    if "json" not in response.headers.get("content-type", "").lower():
        return []
    try:
        body = response.json()
    except ValueError:
        return []
    items = body if isinstance(body, list) else [body]
    return [_with_requirement(item) for item in items if isinstance(item, dict)]


def _with_requirement(item: dict[str, Any]) -> dict[str, Any]:
    requirement = item.get("requirement")
    return {**item, "requirement": requirement if isinstance(requirement, dict) else {}}


def _describe(response: httpx.Response, errors: list[dict[str, Any]]) -> str:
    """Status, reason, and each error's type, property and requirement (never its value: it
    may be somebody's personal data)."""
    head = f"{VENDOR} HTTP {response.status_code}"
    details = []
    for error in errors:
        where = error.get("property") or error.get("parameter") or ""
        requirement = error["requirement"].get("type", "")
        details.append(
            " ".join(str(p) for p in (error.get("type", "error"), where, requirement) if p)
        )
    if not details:
        content_type = response.headers.get("content-type", "").split(";")[0]
        details.append(f"no validation errors ({content_type or 'no content type'})")
    text = f"{head}: {'; '.join(details)}"
    return REDACTOR.text(text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…")
