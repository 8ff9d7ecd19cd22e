"""The sandbox's scenario file: accounts, sync behaviour and scheduled faults.

A scenario is test data for the emulator, not syncwatch configuration: it says how the pretend
vendors behave (quotas, latency of the pretend connector, field mapping) and which faults happen
when. Defaults give a healthy HubSpot → Salesforce pair, so an empty file is a valid scenario.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from syncwatch.durations import parse_duration
from syncwatch.sandbox.dynamics_spec import DynamicsSpec
from syncwatch.yamlfile import read_yaml, validate

Seconds = Annotated[float, BeforeValidator(parse_duration)]

FaultKind = Literal[
    "outage",  # 5xx for every call to the vendor
    "rate_limit",  # 429 (HubSpot) / concurrency REQUEST_LIMIT_EXCEEDED (Salesforce) bursts
    "quota_exhausted",  # the daily allowance is spent
    "slow",  # responses delayed by `delay` (past a client timeout)
    "malformed",  # 200 with an HTML error page or truncated JSON
    "token_expiry",  # every token issued before the fault starts is rejected
    "sync_pause",  # the connector stops; its backlog flushes when the window ends
    "drop",  # the connector loses records (at `rate`)
    "corrupt",  # a mapped field arrives changed (`value`) or empty
    "validation",  # a validation rule rejects records missing/with `field`
    "duplicate",  # the connector creates each record twice; API creates hit a duplicate rule
]
SYNC_FAULTS = frozenset({"sync_pause", "drop", "corrupt", "duplicate"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FaultSpec(_Strict):
    """One fault, scheduled relative to the sandbox's start (scenario) or to now (live)."""

    kind: FaultKind
    vendor: (
        Literal[
            "dynamics",
            "eloqua",
            "hubspot",
            "marketo",
            "pardot",
            "salesforce",
            "pagerduty",
            "slack",
            "webhook",
        ]
        | None
    ) = None
    after: Seconds = 0.0
    duration: Seconds | None = Field(default=None, alias="for")
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    status: int = Field(default=503, ge=500, le=599)
    body: Literal["html", "truncated_json"] = "html"
    delay: Seconds = 30.0
    field: str | None = None
    value: str = ""

    @model_validator(mode="after")
    def _vendor_where_needed(self) -> FaultSpec:
        if self.kind not in SYNC_FAULTS and self.kind != "validation" and self.vendor is None:
            raise ValueError(f"fault kind {self.kind!r} needs a vendor: hubspot or salesforce")
        if self.kind == "corrupt" and self.field is None:
            raise ValueError("a corrupt fault needs the Salesforce `field` it damages")
        return self


class LatencySpec(_Strict):
    """Log-normal connector latency, given by its median and 95th percentile."""

    median: Seconds = 45.0
    p95: Seconds = 150.0

    @model_validator(mode="after")
    def _ordered(self) -> LatencySpec:
        if not 0 < self.median <= self.p95:
            raise ValueError("latency needs 0 < median <= p95")
        return self


class FormSpec(_Strict):
    guid: str
    fields: list[str]
    required: list[str] = ["email"]


DEFAULT_FORM_GUID = "5c1e8f2a-9b7d-4e3a-8c61-2f0d4b9a7e15"


MARKETO_HUBSPOT_MAPPING = {
    "email": "email",
    "firstName": "firstname",
    "lastName": "lastname",
    "company": "company",
    "phone": "phone",
    "title": "jobtitle",
    "country": "country",
}
"""Marketo REST names → HubSpot contact properties. unconfirmed: Marketo has no documented
HubSpot sync; a middleware (iPaaS) recipe maps what its builder chooses. These pair the fields of
Marketo's default CRM mapping with the HubSpot properties of the same meaning."""
PARDOT_HUBSPOT_MAPPING = {
    "email": "email",
    "firstName": "firstname",
    "lastName": "lastname",
    "company": "company",
    "phone": "phone",
    "jobTitle": "jobtitle",
    "country": "country",
}
"""v5 prospect fields → HubSpot contact properties; unconfirmed, as above (no documented sync)."""


class HubSpotSpec(_Strict):
    portal_id: str = "20112233"
    token: str | None = None  # pin the private-app token; None accepts any non-empty bearer
    daily_limit: int = 1_000_000  # Enterprise tier
    burst_max: int = 190  # per 10 s, Professional/Enterprise
    burst_interval: Seconds = 10.0
    forms: list[FormSpec] = [
        FormSpec(
            guid=DEFAULT_FORM_GUID,
            fields=["email", "firstname", "lastname", "company", "phone", "jobtitle", "country"],
            required=["email", "lastname", "company"],
        )
    ]
    # The owner a middleware connector assigns to the contacts it creates: an owner ``id`` as
    # /crm/v3/owners lists it (the owners guide's example id).
    default_owner_id: str = "41629779"
    marketo_mapping: dict[str, str] = dict(MARKETO_HUBSPOT_MAPPING)
    pardot_mapping: dict[str, str] = dict(PARDOT_HUBSPOT_MAPPING)


class SalesforceSpec(_Strict):
    client_id: str | None = None  # pin the connected app; None accepts any non-empty pair
    client_secret: str | None = None
    org_id: str = "00D5e000000Abcd"
    daily_limit: int = 100_000  # Enterprise base allocation
    token_lifetime: Seconds = 7200.0  # Salesforce's default session timeout, 2 hours
    default_owner_id: str = "0055e000001AbCdAAK"


DEFAULT_MAPPING = {
    "email": "Email",
    "firstname": "FirstName",
    "lastname": "LastName",
    "company": "Company",
    "phone": "Phone",
    "jobtitle": "Title",
    "country": "Country",
}


class SyncSpec(_Strict):
    """The pretend HubSpot → Salesforce connector."""

    latency: LatencySpec = LatencySpec()
    sobject: Literal["Lead", "Contact"] = "Lead"
    mapping: dict[str, str] = dict(DEFAULT_MAPPING)
    lead_source: str = "HubSpot"
    destination: Literal["salesforce", "dynamics"] = "salesforce"
    """Where HubSpot's connector writes: Salesforce (``sobject``) or Dynamics (lead/contact)."""


MARKETO_MAPPING = {
    "email": "Email",
    "firstName": "FirstName",
    "lastName": "LastName",
    "company": "Company",
    "phone": "Phone",
    "title": "Title",
    "country": "Country",
    "leadSource": "LeadSource",
}
"""Marketo REST names → Salesforce Lead fields, as Marketo's documented default CRM mapping pairs
them (Email Address, First/Last Name, Company Name, Phone Number, Job Title, Country, Source)."""


class MarketoSpec(_Strict):
    """The Marketo instance, and its native Salesforce sync of new people (always to a Lead)."""

    client_id: str | None = None  # pin the LaunchPoint service; None accepts any non-empty pair
    client_secret: str | None = None
    daily_limit: int = 50_000  # the documented default subscription quota
    token_lifetime: Seconds = 3600.0  # documented lifespan of a new access token
    rate_max: int = 100  # calls per rate_interval, per instance
    rate_interval: Seconds = 20.0
    concurrency: int = 10
    # A trigger campaign "Person is Created → Sync Person to SFDC" (or a program synced to a
    # Salesforce campaign); without one a Marketo-only person never reaches Salesforce.
    sync_on_create: bool = True
    sync_latency: LatencySpec = LatencySpec(median=60.0, p95=300.0)
    mapping: dict[str, str] = dict(MARKETO_MAPPING)
    sync_to: Literal["salesforce", "dynamics", "hubspot"] = "salesforce"
    """The CRM the instance syncs with ("Sync Person to Microsoft" makes a Dynamics lead; HubSpot
    contacts come from a middleware connector, Marketo having no HubSpot sync of its own)."""


PARDOT_MAPPING = {
    "email": "Email",
    "firstName": "FirstName",
    "lastName": "LastName",
    "company": "Company",
    "phone": "Phone",
    "jobTitle": "Title",
    "country": "Country",
    "source": "LeadSource",
}
"""v5 prospect fields → Salesforce Lead fields. Email, First/Last Name and Company (and Assigned
User → Lead Owner) are Account Engagement's documented default mapping (help.salesforce.com
``mktg.pardot_default_prospect_field_mapping.htm``); unconfirmed: the other four pairs."""
PARDOT_FORM_FIELDS = ("email", "firstName", "lastName", "company", "phone", "jobTitle", "country")


class FormHandlerSpec(_Strict):
    """One form handler: its endpoint path (after ``/pardot``), its fields (external name →
    prospect field) and where it redirects."""

    path: str = "l/1021003/2026-10-01/syncwatch"
    fields: dict[str, str] = {name: name for name in PARDOT_FORM_FIELDS}
    required: list[str] = ["email"]
    success_location: str = "https://www.example.com/thank-you"
    error_location: str = "https://www.example.com/form-error"


class PardotSpec(_Strict):
    """The Account Engagement business unit, and its Salesforce connector (v2)."""

    business_unit_id: str = "0Uv5e0000000SWAAA2"
    daily_limit: int = 25_000  # Growth edition, the lowest documented allowance
    concurrency: int = 5  # documented: up to five concurrent API requests
    # unconfirmed: code 202 "Minute rate limit met" exists, but no per-minute number is
    # documented; None leaves the window off.
    minute_limit: int | None = None
    # An automation or completion action assigning new prospects (to a user, a queue or an
    # active assignment rule): the connector creates a Lead only for an assigned prospect.
    assign_on_create: bool = True
    sync_latency: LatencySpec = LatencySpec(median=120.0, p95=360.0)  # "as often as every 2 min"
    mapping: dict[str, str] = dict(PARDOT_MAPPING)
    form_handlers: list[FormHandlerSpec] = [FormHandlerSpec()]
    sync_to: Literal["salesforce", "hubspot"] = "salesforce"
    """Salesforce (the connector) or HubSpot contacts (a middleware connector, no native sync)."""


ELOQUA_MAPPING = {
    "emailAddress": "Email",
    "firstName": "FirstName",
    "lastName": "LastName",
    "accountName": "Company",
    "businessPhone": "Phone",
    "title": "Title",
    "country": "Country",
    "city": "City",
    "province": "State",
    "postalCode": "PostalCode",
}
"""Eloqua contact properties → Salesforce Lead fields. unconfirmed: the Salesforce Integration
app's "Create Lead" action maps whatever its admin configures; these pair the obvious ones."""


class EloquaSpec(_Strict):
    """The Eloqua site behind ``/eloqua-login/id`` and its pod, and its Salesforce integration."""

    company: str | None = None  # pin the site name; None accepts any non-empty one
    username: str | None = None  # pin the API user; None accepts any non-empty one
    password: str | None = None
    site_id: int = 42  # as in the /id example
    # unconfirmed: Oracle publishes no general rate limit; None leaves the window off.
    rate_max: int | None = None
    rate_interval: Seconds = 60.0
    # A program canvas sending every new contact to the Salesforce Integration app's
    # "Create Lead" step action; without one an Eloqua-only contact never reaches Salesforce.
    sync_on_create: bool = True
    sync_latency: LatencySpec = LatencySpec(median=90.0, p95=420.0)  # unconfirmed cadence
    mapping: dict[str, str] = dict(ELOQUA_MAPPING)


class Scenario(_Strict):
    seed: int = 0
    probe_domain: str = "probe.syncwatch.example"
    hubspot: HubSpotSpec = HubSpotSpec()
    marketo: MarketoSpec = MarketoSpec()
    pardot: PardotSpec = PardotSpec()
    eloqua: EloquaSpec = EloquaSpec()
    salesforce: SalesforceSpec = SalesforceSpec()
    dynamics: DynamicsSpec = DynamicsSpec()
    sync: SyncSpec = SyncSpec()
    faults: list[FaultSpec] = []


def load_scenario(path: Path) -> Scenario:
    """Read a scenario file; every problem names the file and the key."""
    return validate(Scenario, read_yaml(path), path)
