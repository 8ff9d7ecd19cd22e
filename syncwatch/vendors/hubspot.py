"""HubSpot as a source: inject probes by form or contacts API, find and archive them again;
and the account's client (rates, quota headers, error classification) both HubSpot roles use.

The CRM v3 contacts calls the source shares with the destination (paged search, batch archive,
the bearer header) live in ``hubspot_crm``, beside ``HubSpotDestination``.

Sources (docs/reference/vendor-apis.md §1):
- Secure (authenticated) form submission, its body and its 200 without a contact id:
  https://developers.hubspot.com/docs/api-reference/legacy/marketing/forms/v3-legacy/submit-data-authenticated
- Forms error body and ``errorType`` values: https://legacydocs.hubspot.com/docs/methods/forms/submit_form
- Contacts create (200 in v3, 201 in 2026-03), search, batch archive (204) and the ``Error``
  schema: repo HubSpot/HubSpot-public-api-spec-collection,
  ``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json`` and ``.../2026-03/contacts.json``
- Batch archive: https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/delete-contacts
- Search filters and ``CONTAINS_TOKEN`` with ``*@domain``: https://developers.hubspot.com/docs/api/crm/search
- Filter-group limits: https://developers.hubspot.com/changelog/breaking-change-expanded-filtering-capabilities-and-error-messaging-in-hubspots-search-api
- Search limit, 4 requests/s per token: https://developers.hubspot.com/changelog/crm-search-api-rate-limit-increase
- Burst limits, ``X-HubSpot-RateLimit-*`` headers, the 429 body with ``policyName``:
  https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines
- Datetime filter values are ms epoch: https://developers.hubspot.com/docs/faq/how-should-timestamps-be-formatted-for-hubspots-apis
- Bearer private-app tokens: https://developers.hubspot.com/docs/apps/legacy-apps/authentication/intro-to-auth
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from syncwatch.config.accounts import HubSpotAccount
from syncwatch.config.model import Source as SourceSettings
from syncwatch.errors import (
    ConfigError,
    DuplicateRejected,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    VendorError,
)
from syncwatch.http import (
    AccountHttp,
    CallContext,
    Rate,
    classify_status,
    exchanged_at,
    retry_after,
)
from syncwatch.quota import parse_hubspot_headers
from syncwatch.redact import REDACTOR
from syncwatch.vendors.base import Injection, Probe, SourceRef, Wiring, cleanup_context, probe_id_of
from syncwatch.vendors.hubspot_crm import (
    CONTACTS_PATH,
    EMAIL,
    IN_VALUES,
    MAX_GROUPS,
    ContactsApi,
    Hit,
    chunks,
    email_search,
    epoch_ms,
    json_object,
    sweep_search,
)

VENDOR = "hubspot"
DAILY_WINDOW = "daily"
"""The window name ``parse_hubspot_headers`` gives the daily allowance."""
RATES: Mapping[str, Rate] = {
    # The lowest documented burst tier (Free & Starter, and OAuth apps): 100 calls per 10 s.
    # The secure form submit has "the standard account limits", so it shares this window.
    "default": Rate(100, 10.0),
    # Search is exempt from the burst limit and has its own: 4 requests/s per token.
    "search": Rate(4, 1.0),
}
CONTACT_OBJECT = "0-1"
SUBMIT_PATH = "/submissions/v3/integration/secure/submit/{portal}/{form}"
MAX_MESSAGE = 500


def account_http(account: HubSpotAccount, wiring: Wiring) -> AccountHttp:
    """The account's client: api.hubapi.com as base URL; form calls use absolute forms URLs."""
    return wiring.account_http(
        VENDOR,
        account.name,
        account.base_url,
        classify=classify,
        quota=parse_hubspot_headers,
        daily_window=DAILY_WINDOW,
        rates=RATES,
    )


class HubSpotSource:
    """Probes go in by the secure form submit (``form``) or a contacts create (``contacts_api``).

    Deletion archives (HubSpot's restorable delete) rather than GDPR-deletes: a GDPR delete of
    an unknown email blocklists that address, and archiving is all cleanup needs.
    """

    def __init__(
        self, account: HubSpotAccount, settings: SourceSettings, http: AccountHttp
    ) -> None:
        if settings.method not in HubSpotAccount.source_methods:
            raise ConfigError([f"source.method: {settings.method!r} is not a HubSpot method"])
        if settings.method == "form" and not settings.form_guid:
            raise ConfigError(["source.form_guid: required with method form"])
        if settings.method == "form" and account.portal_id is None:
            raise ConfigError([f"accounts: {account.name}: portal_id: required by method form"])
        self.account = account
        self.settings = settings
        self.http = http
        self.api = ContactsApi(account, http)

    def __repr__(self) -> str:
        return f"HubSpotSource(account={self.account.name!r}, method={self.settings.method!r})"

    async def inject(self, probe: Probe) -> Injection:
        """Create the probe's contact; accepted at the middle of the call on our clock."""
        context = CallContext(integration=probe.integration, probe_id=probe.probe_id)
        headers = self.api.auth()
        if self.settings.method == "form":
            return await self._submit_form(probe, context, headers)
        return await self._create_contact(probe, context, headers)

    async def delete(self, refs: Sequence[SourceRef]) -> None:
        """Archive every ref: ids directly, emails after one batched search finds their ids."""
        context = cleanup_context(refs)
        ids = {ref.record_id for ref in refs if ref.record_id}
        emails = sorted({ref.email.lower() for ref in refs if not ref.record_id})
        for chunk in chunks(emails, IN_VALUES * MAX_GROUPS):
            found = await self._search_all(email_search(chunk, [EMAIL]), context)
            ids.update(contact_id for contact_id, _ in found)
        await self.api.archive(list(ids), context)

    async def sweep(self, probe_domain: str, older_than: datetime) -> list[SourceRef]:
        """Probe contacts at ``probe_domain`` created before ``older_than``, for deletion."""
        suffix = "@" + probe_domain.lower()
        body = sweep_search(probe_domain, older_than, [EMAIL])
        found = await self._search_all(body, CallContext())
        refs = []
        for contact_id, email in found:
            probe_id = probe_id_of(email)
            if probe_id is not None and email.lower().endswith(suffix):
                refs.append(SourceRef(probe_id=probe_id, email=email, record_id=contact_id))
        return refs

    async def _submit_form(
        self, probe: Probe, context: CallContext, headers: dict[str, str]
    ) -> Injection:
        assert self.settings.form_guid is not None  # checked in __init__
        path = SUBMIT_PATH.format(portal=self.account.portal_id, form=self.settings.form_guid)
        return await self.http.request(
            "submit_form",
            "POST",
            f"{self.account.forms_url}{path}",
            parse=_form_accepted,
            idempotent=False,
            context=context,
            headers=headers,
            json=_form_body(probe, self.http.clock.now()),
        )

    async def _create_contact(
        self, probe: Probe, context: CallContext, headers: dict[str, str]
    ) -> Injection:
        return await self.http.request(
            "create_contact",
            "POST",
            CONTACTS_PATH,
            parse=_created_id,
            idempotent=False,
            context=context,
            headers=headers,
            json={"properties": {**probe.fields, "email": probe.email}},
        )

    async def _search_all(
        self, body: dict[str, Any], context: CallContext
    ) -> list[tuple[str, str]]:
        """``(id, email)`` of every match, on every page."""
        return [
            pair async for page in self.api.pages(body, context, _id_and_email) for pair in page
        ]


# -- payload builders and parsers ------------------------------------------------------------


def _form_body(probe: Probe, now: datetime) -> dict[str, Any]:
    """The documented submission: contact fields (email first), submittedAt in ms, context."""
    values = {"email": probe.email, **{k: v for k, v in probe.fields.items() if k != "email"}}
    return {
        "fields": [
            {"objectTypeId": CONTACT_OBJECT, "name": name, "value": value}
            for name, value in values.items()
        ],
        "submittedAt": str(epoch_ms(now)),
        "context": {"pageName": "syncwatch probe"},
    }


def _form_accepted(response: httpx.Response) -> Injection:
    """A 200 whose body is a JSON object (``inlineMessage`` or ``redirectUri``); no id in it."""
    json_object(response, "form submission")
    return Injection(accepted_at=exchanged_at(response))


def _created_id(response: httpx.Response) -> Injection:
    body = json_object(response, "contact create")
    record_id = body.get("id")
    if isinstance(record_id, bool) or not isinstance(record_id, str | int) or record_id == "":
        raise MalformedResponse("contact create: no contact id", status=response.status_code)
    return Injection(accepted_at=exchanged_at(response), source_ref=str(record_id))


def _id_and_email(hit: Hit) -> tuple[str, str]:
    email = hit.properties.get(EMAIL)
    return hit.id, email if isinstance(email, str) else ""


# -- error classification --------------------------------------------------------------------


def classify(response: httpx.Response) -> VendorError | None:
    """HubSpot's answer as a DESIGN §6 error class, or None for a success.

    A 404 (unknown portal or form guid, or object) is ``validation``: the account is
    misconfigured, which is the customer's to fix, not a vendor outage. A 409 is a contact that
    already has the probe's email (``duplicate``). A 3xx is not part of the API (the client does
    not follow redirects): ``malformed``.
    """
    status = response.status_code
    if status < 300:
        return None
    body = _error_body(response)
    message = _describe(response, body)
    if status < 400:
        return MalformedResponse(message, status=status)
    if status == 429:
        return _throttled(response, body, message)
    if status == 409:
        return DuplicateRejected(message, status=status)
    return classify_status(response, message)


def _throttled(response: httpx.Response, body: dict[str, Any], message: str) -> VendorError:
    """``policyName`` DAILY (or no daily calls left) is the quota; any other is the burst."""
    daily_left = response.headers.get("x-hubspot-ratelimit-daily-remaining", "").strip()
    if body.get("policyName") == "DAILY" or daily_left == "0":
        return QuotaExhausted(message, status=429, may_have_acted=False)
    return RateLimited(message, status=429, retry_after_s=retry_after(response))


def _error_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON error object, or {} for an HTML page, garbage or another JSON shape."""
    if "json" not in response.headers.get("content-type", "").lower():
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _describe(response: httpx.Response, body: dict[str, Any]) -> str:
    """Status, HubSpot's kind (policy, category or errorType), message and field errors."""
    kind = body.get("policyName") or body.get("category") or body.get("errorType")
    head = f"{VENDOR} HTTP {response.status_code}" + (f" {kind}" if kind else "")
    if not body:
        content_type = response.headers.get("content-type", "").split(";")[0]
        return f"{head}: no JSON error body ({content_type or 'no content type'})"
    details = [str(body["message"])] if body.get("message") else []
    errors = body.get("errors")
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, dict):
            code = error.get("errorType") or error.get("code") or "error"
            details.append(f"{code}: {error.get('message', '')}")
    text = f"{head}: {'; '.join(details) or 'no message'}"
    return REDACTOR.text(text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…")
