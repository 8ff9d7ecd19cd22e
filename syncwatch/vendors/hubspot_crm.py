"""HubSpot CRM as a destination: find probe contacts, archive them, sweep; and the CRM v3 contacts
calls both HubSpot roles share (paged search, batch archive, the bearer header).

One search per tick finds every in-flight probe (``email IN [...]``, up to 100 values a filter
group, five groups ORed); more only past 500 probes; results page through ``paging.next.after``.
Latency comes from the ``createdate`` property (ISO-8601 UTC with milliseconds), the owner from
``hubspot_owner_id``; the templates' expected fields are asked for by name in ``properties``.
Deletion archives (restorable for 90 days) in batches of 100, as the source does: a GDPR delete
of an unknown email would blocklist the address.

Quota: search is exempt from the ten-second burst limit and has its own, 4 requests/s per token
(``RATES["search"]`` in ``hubspot``); its answers carry no ``X-HubSpot-RateLimit-*`` headers, so
the daily figure comes from the other calls (batch archive, and the source's calls when the same
account is both). A 429 on search is classified like any other (``policyName``): ``DAILY`` is the
quota, anything else a retryable throttle. The client, its classifier and the header parser live
in ``hubspot`` (one ``AccountHttp`` per account, whichever roles it plays).

Sources (docs/reference/vendor-apis.md §1.2, §1.3, §1.5):
- Search, batch archive (204), ``SimplePublicObject`` with ``createdAt`` in milliseconds
  (``2019-10-30T03:30:17.883Z``): repo HubSpot/HubSpot-public-api-spec-collection,
  ``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json``
- Filter groups ORed, filters ANDed, ``IN`` with ``values``, ``CONTAINS_TOKEN`` with ``*@domain``,
  the default contact properties (``createdate`` among them):
  https://developers.hubspot.com/docs/api/crm/search and
  https://developers.hubspot.com/docs/api-reference/2026-03/crm/search-the-crm
- Five filter groups (the spec text still says six):
  https://developers.hubspot.com/changelog/breaking-change-expanded-filtering-capabilities-and-error-messaging-in-hubspots-search-api
- Search limit, 4 requests/s per token: https://developers.hubspot.com/changelog/crm-search-api-rate-limit-increase
- Batch archive: https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/delete-contacts
- Owner ids (``id`` of /crm/v3/owners, assigned as a record's owner):
  https://developers.hubspot.com/docs/api-reference/crm-crm-owners-v3/guide
- Datetime filter values are ms epoch: https://developers.hubspot.com/docs/faq/how-should-timestamps-be-formatted-for-hubspots-apis
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import httpx

from syncwatch.config.accounts import HubSpotAccount
from syncwatch.config.model import Destination
from syncwatch.errors import AuthError, ConfigError, MalformedResponse
from syncwatch.http import AccountHttp, CallContext, json_body
from syncwatch.redact import REDACTOR
from syncwatch.vendors.base import Probe, Record, earliest, find_context

VENDOR = "hubspot"
CONTACTS_PATH = "/crm/v3/objects/contacts"
SEARCH_PATH = f"{CONTACTS_PATH}/search"
ARCHIVE_PATH = f"{CONTACTS_PATH}/batch/archive"
# unconfirmed: 100 inputs per CRM batch call comes from a community answer (secondary source,
# community.hubspot.com "Limit for contact batch API"); the spec and reference pages give none.
ARCHIVE_BATCH = 100
IN_VALUES = 100  # unconfirmed: the most values one IN filter takes; no vendor page states it.
MAX_GROUPS = 5
"""The changelog above: five filter groups per search (the spec text still says six)."""
SEARCH_PAGE = 200
"""The spec's maximum ``limit`` for a search."""
SEARCH_RESULT_CAP = 10_000
"""secondary source (Okta, AWS Glue): a search returns at most 10,000 results; paging past fails."""
EMAIL, CREATED, OWNER = "email", "createdate", "hubspot_owner_id"
CREATED_RESOLUTION_S = 0.001
"""``createdate`` (like the documented ``createdAt``) carries milliseconds."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


class Hit(NamedTuple):
    """One search result: the contact's id, its properties and the top-level ``createdAt``."""

    id: str
    properties: dict[str, Any]
    created_at: Any


class ContactsApi:
    """The CRM v3 contacts calls both roles make, on the account's one client."""

    def __init__(self, account: HubSpotAccount, http: AccountHttp) -> None:
        self.account = account
        self.http = http

    async def pages(
        self, body: dict[str, Any], context: CallContext, convert: Callable[[Hit], T]
    ) -> AsyncIterator[list[T]]:
        """Every page of a search, converted inside the call (a bad result makes the call
        ``malformed``), following ``paging.next.after`` to the end or the 10,000-result cap."""
        after: str | None = None
        seen = 0
        while True:
            page = await self.http.request(
                "search_contacts",
                "POST",
                SEARCH_PATH,
                parse=lambda response: _search_page(response, convert),
                idempotent=True,
                limit="search",
                context=context,
                headers=self.auth(),
                json={**body, "after": after} if after else body,
            )
            yield page.items
            seen += len(page.items)
            if page.after is None or page.after == after or seen >= SEARCH_RESULT_CAP:
                return
            after = page.after

    async def archive(self, ids: Sequence[str], context: CallContext) -> None:
        """Archive the contacts in batches (ids in numeric order, so calls are reproducible)."""
        for batch in chunks(sorted(set(ids), key=_id_order), ARCHIVE_BATCH):
            await self.http.request(
                "archive_contacts",
                "POST",
                ARCHIVE_PATH,
                parse=_no_content,
                idempotent=True,
                context=context,
                headers=self.auth(),
                json={"inputs": [{"id": contact_id} for contact_id in batch]},
            )

    def auth(self) -> dict[str, str]:
        """The bearer header, the token read now (rotation needs no restart) and redacted."""
        try:
            token = self.account.token.resolve()
        except ConfigError as exc:
            raise AuthError(f"{VENDOR} {self.account.name}: {exc}") from exc
        REDACTOR.add(token)
        self.http.redactor.add(token)
        return {"Authorization": f"Bearer {token}"}


class HubSpotDestination:
    """Contacts found, archived and swept through one HubSpot account's CRM v3 API.

    ``fields`` are the expected property names of the templates that use this destination;
    every search asks for them beside ``email``, ``createdate`` and ``hubspot_owner_id``.
    """

    def __init__(
        self,
        account: HubSpotAccount,
        settings: Destination,
        http: AccountHttp,
        fields: Sequence[str] = (),
    ) -> None:
        if settings.object not in HubSpotAccount.destination_objects:
            objects = ", ".join(HubSpotAccount.destination_objects)
            raise ConfigError([f"destination.object: {settings.object!r} is not one of {objects}"])
        self.account = account
        self.http = http
        self.api = ContactsApi(account, http)
        self.properties = list(dict.fromkeys([EMAIL, CREATED, OWNER, *fields]))

    def __repr__(self) -> str:
        return f"HubSpotDestination(account={self.account.name!r})"

    async def find(self, probes: Sequence[Probe]) -> dict[str, Record]:
        """Every probe's contact, from one search (more only past 500 probes).

        Where two contacts carry one probe's email, the earliest is the probe's; the others'
        ids ride along in ``duplicate_ids`` so clean-up archives them too.
        """
        if not probes:
            return {}
        by_email = {probe.email.casefold(): probe.probe_id for probe in probes}
        context = find_context(probes)
        found: dict[str, Record] = {}
        for emails in chunks(sorted(by_email), IN_VALUES * MAX_GROUPS):
            body = email_search(emails, self.properties)
            for record in await self._search(body, context):
                probe_id = by_email.get(record.email.casefold())
                if probe_id is not None:
                    found[probe_id] = earliest(found.get(probe_id), record)
        return found

    async def delete(self, records: Sequence[Record]) -> None:
        """Archive every record in batches of 100; contacts already gone are no error."""
        ids = list(dict.fromkeys(record.record_id for record in records if record.record_id))
        context = CallContext(probe_id=records[0].probe_id) if len(ids) == 1 else CallContext()
        await self.api.archive(ids, context)

    async def sweep(self, probe_domain: str, older_than: datetime) -> list[Record]:
        """Probe contacts at ``probe_domain`` created before ``older_than``."""
        suffix = "@" + probe_domain.casefold()
        body = sweep_search(probe_domain, older_than, [EMAIL, CREATED])
        records = await self._search(body, CallContext())
        return [r for r in records if r.probe_id and r.email.casefold().endswith(suffix)]

    async def _search(self, body: dict[str, Any], context: CallContext) -> list[Record]:
        """All pages of a search, each record stamped with when its page arrived."""
        records: list[Record] = []
        async for page in self.api.pages(body, context, _record):
            observed_at, offset = self.http.clock.now(), self.http.offset.seconds
            records += [
                replace(record, observed_at=observed_at, clock_offset_s=offset) for record in page
            ]
        return records


# -- payload builders and parsers ------------------------------------------------------------


class _Page(NamedTuple):
    items: list[Any]
    after: str | None


def email_search(emails: Sequence[str], properties: Sequence[str]) -> dict[str, Any]:
    """One filter group per 100 emails; groups are ORed."""
    # unconfirmed: that IN on a string property wants lower-case values (probe emails are).
    groups = [
        {"filters": [{"propertyName": EMAIL, "operator": "IN", "values": list(chunk)}]}
        for chunk in chunks([email.lower() for email in emails], IN_VALUES)
    ]
    return {"filterGroups": groups, "properties": list(properties), "limit": SEARCH_PAGE}


def sweep_search(
    probe_domain: str, older_than: datetime, properties: Sequence[str]
) -> dict[str, Any]:
    """Emails at the domain (the documented ``*@domain`` token form) created before a time."""
    filters = [
        {"propertyName": EMAIL, "operator": "CONTAINS_TOKEN", "value": f"*@{probe_domain}"},
        {"propertyName": CREATED, "operator": "LT", "value": str(epoch_ms(older_than))},
    ]
    return {
        "filterGroups": [{"filters": filters}],
        "properties": list(properties),
        "limit": SEARCH_PAGE,
    }


def _search_page(response: httpx.Response, convert: Callable[[Hit], T]) -> _Page:
    body = json_object(response, "contact search")
    results = body.get("results")
    if not isinstance(results, list):
        raise MalformedResponse("contact search: no results list", status=response.status_code)
    items = []
    for item in results:
        record_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(record_id, str | int) or not isinstance(item.get("properties"), dict):
            raise MalformedResponse(
                "contact search: a result without id or properties", status=response.status_code
            )
        items.append(convert(Hit(str(record_id), item["properties"], item.get("createdAt"))))
    return _Page(items, _next_after(body.get("paging")))


def _next_after(paging: Any) -> str | None:
    following = paging.get("next") if isinstance(paging, dict) else None
    after = following.get("after") if isinstance(following, dict) else None
    return str(after) if isinstance(after, str | int) and str(after) else None


def _record(hit: Hit) -> Record:
    """A contact as a Record: ``createdate`` (``createdAt`` when it was not returned), owner."""
    email, owner = hit.properties.get(EMAIL), hit.properties.get(OWNER)
    return Record(
        record_id=hit.id,
        email=email if isinstance(email, str) else "",
        created_at=_created(hit.properties.get(CREATED) or hit.created_at),
        fields=dict(hit.properties),
        owner=str(owner) if isinstance(owner, str | int) and str(owner) else None,
        created_resolution_s=CREATED_RESOLUTION_S,
    )


def _created(value: Any) -> datetime | None:
    """``2019-10-30T03:30:17.883Z`` as an aware UTC datetime (a ValueError is ``malformed``)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("createdate without a UTC offset")
    return moment.astimezone(UTC)


def _no_content(response: httpx.Response) -> None:
    """The documented 204; a 2xx with a body must at least be JSON, not a proxy's page."""
    if response.status_code != 204 and response.content:
        json_body(response, "contact archive")


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    body = json_body(response, what)
    if not isinstance(body, dict):
        raise MalformedResponse(f"{what}: body is not a JSON object", status=response.status_code)
    return body


def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _id_order(contact_id: str) -> tuple[int, str]:
    return len(contact_id), contact_id
