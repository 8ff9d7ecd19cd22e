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
    vendor: Literal["hubspot", "marketo", "salesforce", "pagerduty", "slack", "webhook"] | None = (
        None
    )
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


class Scenario(_Strict):
    seed: int = 0
    probe_domain: str = "probe.syncwatch.example"
    hubspot: HubSpotSpec = HubSpotSpec()
    marketo: MarketoSpec = MarketoSpec()
    salesforce: SalesforceSpec = SalesforceSpec()
    sync: SyncSpec = SyncSpec()
    faults: list[FaultSpec] = []


def load_scenario(path: Path) -> Scenario:
    """Read a scenario file; every problem names the file and the key."""
    return validate(Scenario, read_yaml(path), path)
