"""The scenario's ``dynamics`` section: the emulated Dataverse environment and its Entra tenant.

A leaf module (no sandbox imports) so ``scenario.py`` can hold it without an import cycle; the
connectors' field mappings into Dataverse live here too, beside the environment they write to.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from syncwatch.durations import parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration)]

MARKETO_DYNAMICS_MAPPING = {
    "email": "emailaddress1",
    "firstName": "firstname",
    "middleName": "middlename",
    "lastName": "lastname",
    "salutation": "salutation",
    "company": "companyname",
    "title": "jobtitle",
    "phone": "telephone1",
    "mobilePhone": "mobilephone",
    "address": "address1_line1",
    "city": "address1_city",
    "state": "address1_stateorprovince",
    "postalCode": "address1_postalcode",
    "country": "address1_country",
    "annualRevenue": "revenue",
}
"""Marketo REST names → Dataverse lead columns, Marketo's default Dynamics field mapping (repo
AdobeDocs/marketo.en, ``help/marketo/product-docs/crm-sync/microsoft-dynamics-sync/
microsoft-dynamics-sync-details/default-dynamics-field-mapping.md``). Person Source →
``leadsourcecode`` is left out: a choice column; how Marketo converts its text is unconfirmed."""

HUBSPOT_DYNAMICS_MAPPING = {
    "email": "emailaddress1",
    "firstname": "firstname",
    "lastname": "lastname",
    "company": "companyname",
    "phone": "telephone1",
    "jobtitle": "jobtitle",
    "country": "address1_country",
}
"""HubSpot properties → Dataverse columns. unconfirmed: HubSpot publishes no default mapping for
its Dynamics 365 integration; these pair the same properties as its Salesforce one with the
standard Dataverse columns (``companyname`` exists on leads only; contacts get none)."""


class DynamicsSpec(BaseModel):
    """One Dataverse environment and the one app registration the sandbox knows."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    tenant_id: str | None = None  # pin the directory; None accepts any
    client_id: str | None = None  # pin the app registration; None accepts any non-empty pair
    client_secret: str | None = None
    token_lifetime: Seconds = 3599.0  # ``expires_in`` in the documented token response
    default_owner_id: str = "d1a9e3f4-6b2c-ed11-9db1-0022481d68cd"
    """The connector's sync user, owner of what it creates (a systemuser id)."""
    burst_limit: int = Field(default=6_000, gt=0)  # requests per window per user, documented
    time_limit: Seconds = 1_200.0  # combined execution seconds per window, documented
    window: Seconds = 300.0  # the documented 5-minute sliding window
    request_cost: Seconds = 0.05  # unconfirmed: execution time a simple request is charged
    concurrency: int = Field(default=52, gt=0)  # documented "52 or higher"
    page_size: int = Field(default=5_000, gt=0, le=5_000)  # documented default and maximum
    hubspot_mapping: dict[str, str] = dict(HUBSPOT_DYNAMICS_MAPPING)
    marketo_mapping: dict[str, str] = dict(MARKETO_DYNAMICS_MAPPING)
