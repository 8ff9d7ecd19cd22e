"""Vendor accounts: one set of credentials at one vendor, the unit of API quota.

Accounts are a tagged union on ``vendor``. Each model declares what an integration may do with it
(``roles``, ``source_methods``, ``destination_objects``, and the optional keys a source method
needs, ``method_needs``), so the loader checks references without knowing any vendor. Adding
a vendor is one model here plus its entry in ``Account`` and ``ACCOUNT_TYPES``; nothing else in
the config changes.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from syncwatch.config.base import BaseUrl, Name, NonEmpty, Strict, matches
from syncwatch.config.secrets import Secret

Role = Literal["source", "destination"]


class QuotaPolicy(Strict):
    """The quota guard (DESIGN §5): the monitor must never cause the outage it watches."""

    reserve: int = Field(default=0, ge=0)
    """Skip probes while the account's remaining daily calls are below this."""
    max_share: float = Field(default=0.01, gt=0, le=1)
    """Skip probes once the monitor's own calls would pass this share of the daily limit."""
    warn_below: int | None = Field(default=None, ge=0)
    """Open a ``quota_low`` incident below this many remaining calls; default twice ``reserve``."""

    @field_validator("warn_below")
    @classmethod
    def _above_reserve(cls, warn_below: int | None, info: ValidationInfo) -> int | None:
        reserve = info.data.get("reserve")
        if warn_below is not None and reserve is not None and warn_below < reserve:
            raise ValueError(f"must be at least reserve ({reserve}): warn before probes stop")
        return warn_below

    @property
    def warning_level(self) -> int:
        return self.warn_below if self.warn_below is not None else 2 * self.reserve


class AccountBase(Strict):
    """What every account has: a name (the ``account`` label) and a quota policy."""

    roles: ClassVar[frozenset[Role]] = frozenset()
    title: ClassVar[str] = ""
    """The vendor as it spells itself, for documents sent to it (claims)."""
    source_methods: ClassVar[tuple[str, ...]] = ()
    destination_objects: ClassVar[tuple[str, ...]] = ()
    method_needs: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Source method → the account's optional keys it cannot do without."""

    name: Name
    quota: QuotaPolicy = QuotaPolicy()


def _digits(value: Any) -> Any:
    """Portal ids are numbers to YAML; keep them as the string HubSpot puts in its URLs."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class HubSpotAccount(AccountBase):
    """HubSpot: private-app token. A source (Marketing Hub: forms or contacts API) or a
    destination (the CRM's contacts, for Marketo or Account Engagement → HubSpot setups).

    Forms live on a separate host and are addressed by portal: ``portal_id`` is needed only by a
    ``form`` source; the CRM API knows the account from the token.
    """

    roles: ClassVar[frozenset[Role]] = frozenset({"source", "destination"})
    source_methods: ClassVar[tuple[str, ...]] = ("form", "contacts_api")
    destination_objects: ClassVar[tuple[str, ...]] = ("contacts",)
    method_needs: ClassVar[dict[str, tuple[str, ...]]] = {"form": ("portal_id",)}

    title: ClassVar[str] = "HubSpot"
    vendor: Literal["hubspot"]
    base_url: BaseUrl = "https://api.hubapi.com"
    forms_url: BaseUrl = "https://api.hsforms.com"
    portal_id: (
        Annotated[
            str, BeforeValidator(_digits), AfterValidator(matches(r"[1-9]\d{0,14}", "20112233"))
        ]
        | None
    ) = None
    token: Secret


class ClientCredentials(Strict):
    """OAuth 2.0 client credentials against the My Domain host (connected app with run-as user)."""

    flow: Literal["client_credentials"]
    client_id: NonEmpty
    client_secret: Secret


class JwtBearer(Strict):
    """OAuth 2.0 JWT bearer: an RS256 assertion signed with ``private_key`` (PEM)."""

    flow: Literal["jwt_bearer"]
    client_id: NonEmpty
    username: NonEmpty
    private_key: Secret
    audience: BaseUrl | None = None
    """The JWT ``aud``; defaults to the account's ``base_url`` (the My Domain URL)."""


class SalesforceAccount(AccountBase):
    """Salesforce Platform REST API; ``base_url`` is the My Domain login host."""

    roles: ClassVar[frozenset[Role]] = frozenset({"destination"})
    destination_objects: ClassVar[tuple[str, ...]] = ("Lead", "Contact")

    title: ClassVar[str] = "Salesforce"
    vendor: Literal["salesforce"]
    base_url: BaseUrl
    auth_url: BaseUrl | None = None
    """Where tokens are requested; defaults to ``base_url`` (the My Domain host). Set it to
    ``https://login.salesforce.com`` or ``https://test.salesforce.com`` where that applies."""
    api_version: Annotated[
        str, BeforeValidator(str), AfterValidator(matches(r"v\d{2,3}\.0", "v62.0"))
    ] = "v62.0"
    auth: Annotated[ClientCredentials | JwtBearer, Field(discriminator="flow")]

    @model_validator(mode="after")
    def _defaults_from_base_url(self) -> SalesforceAccount:
        if self.auth_url is None:
            self.auth_url = self.base_url
        if isinstance(self.auth, JwtBearer) and self.auth.audience is None:
            self.auth.audience = self.auth_url
        return self


class MarketoAccount(AccountBase):
    """Adobe Marketo Engage: a LaunchPoint custom service's client id and secret.

    ``base_url`` is the REST API host (Admin > Integration > Web Services, "Endpoint"). Adobe
    shows that endpoint ending in ``/rest``; the adapter appends ``/rest/v1/...`` itself, so a
    pasted ``/rest`` is dropped rather than doubled.
    """

    roles: ClassVar[frozenset[Role]] = frozenset({"source"})
    source_methods: ClassVar[tuple[str, ...]] = ("leads", "push")

    title: ClassVar[str] = "Adobe Marketo Engage"
    vendor: Literal["marketo"]
    base_url: BaseUrl
    identity_url: BaseUrl | None = None
    """Where tokens are requested (Admin > Integration > Web Services, "Identity"); defaults to
    ``base_url`` + ``/identity``. unconfirmed: that default, derived from the Swagger path
    ``/identity/oauth/token``; copy the Identity URL from the admin page when in doubt."""
    client_id: NonEmpty
    client_secret: Secret
    daily_limit: int = Field(default=50_000, gt=0)
    """The subscription's daily API quota: Marketo reports calls used, never the limit."""
    push_program: NonEmpty | None = None
    """``programName`` of Push Lead, which the docs require: needed by a ``push`` source."""

    @model_validator(mode="after")
    def _hosts(self) -> MarketoAccount:
        if self.base_url.endswith("/rest"):
            self.base_url = self.base_url.removesuffix("/rest")
        if self.identity_url is None:
            self.identity_url = f"{self.base_url}/identity"
        return self


class PardotAccount(AccountBase):
    """Marketing Cloud Account Engagement (Pardot): Salesforce OAuth plus a business unit.

    Tokens come from the Salesforce org (``auth_url``: its My Domain host, or
    ``login.salesforce.com`` / ``test.salesforce.com``) through a connected app with the
    ``pardot_api`` scope; every API call names the business unit (``0Uv``, 18 characters).
    """

    roles: ClassVar[frozenset[Role]] = frozenset({"source"})
    source_methods: ClassVar[tuple[str, ...]] = ("api", "form_handler")

    title: ClassVar[str] = "Salesforce Marketing Cloud Account Engagement"
    vendor: Literal["pardot"]
    base_url: BaseUrl = "https://pi.pardot.com"
    """``https://pi.demo.pardot.com`` for developer orgs and sandboxes."""
    auth_url: BaseUrl
    business_unit_id: Annotated[
        str, AfterValidator(matches(r"0Uv[0-9A-Za-z]{15}", "0Uv5e0000000SWAAA2 (18 characters)"))
    ]
    auth: Annotated[ClientCredentials | JwtBearer, Field(discriminator="flow")]
    daily_limit: int = Field(default=25_000, gt=0)
    """The edition's daily API calls (Growth 25,000; Plus 50,000; Advanced and Premium 100,000),
    the limit whenever the opt-in usage header reports calls used without one."""

    @model_validator(mode="after")
    def _audience(self) -> PardotAccount:
        if isinstance(self.auth, JwtBearer) and self.auth.audience is None:
            self.auth.audience = self.auth_url
        return self


class DynamicsAccount(AccountBase):
    """Microsoft Dynamics 365 (Dataverse): an Entra ID app registration and its application user.

    ``base_url`` is the environment URL (``https://ORG.crm.dynamics.com``, Power Apps > Settings >
    Developer resources); tokens are requested from ``auth_url``/``tenant_id`` with the scope
    ``<base_url>/.default``.
    """

    roles: ClassVar[frozenset[Role]] = frozenset({"destination"})
    destination_objects: ClassVar[tuple[str, ...]] = ("lead", "contact")

    title: ClassVar[str] = "Microsoft Dynamics 365"
    vendor: Literal["dynamics"]
    base_url: BaseUrl
    auth_url: BaseUrl = "https://login.microsoftonline.com"
    tenant_id: Annotated[
        str, AfterValidator(matches(r"[A-Za-z0-9][A-Za-z0-9.-]{0,253}", "contoso.onmicrosoft.com"))
    ]
    """The directory (tenant) id, a GUID or a domain name."""
    client_id: NonEmpty
    client_secret: Secret
    api_version: Annotated[
        str, BeforeValidator(str), AfterValidator(matches(r"v9\.\d", "v9.2"))
    ] = "v9.2"
    burst_limit: int = Field(default=6_000, gt=0)
    """Service protection: requests per user per web server in 5 minutes (the documented
    default; "may vary between environments"). Dataverse reports only what remains."""
    time_limit_s: int = Field(default=1_200, gt=0)
    """Service protection: combined execution seconds per 5 minutes (documented default)."""


class EloquaAccount(AccountBase):
    """Oracle Eloqua: HTTP Basic as ``company\\username`` with the user's password.

    The pod's base URL is discovered at ``login_url`` + ``/id`` (same header) and re-discovered
    when the pod refuses a call or cannot be reached; ``base_url`` pins it instead, skipping
    discovery (a sandbox, a test double). Oracle recommends OAuth 2.0, but its documented grants
    need an AppCloud app and either a browser (authorization code, implicit) or this same
    password (resource owner): not offered here.
    """

    roles: ClassVar[frozenset[Role]] = frozenset({"source"})
    source_methods: ClassVar[tuple[str, ...]] = ("contacts_api",)

    title: ClassVar[str] = "Oracle Eloqua"
    vendor: Literal["eloqua"]
    company: Annotated[NonEmpty, AfterValidator(matches(r"[^\\:]+", "AcmeCorp (no \\ or :)"))]
    """The site (company) name entered at login; the part before the backslash."""
    username: Annotated[NonEmpty, AfterValidator(matches(r"[^\\:]+", "api.user (no \\ or :)"))]
    password: Secret
    login_url: BaseUrl = "https://login.eloqua.com"
    """Where ``/id`` answers the pod's base URL."""
    base_url: BaseUrl | None = None
    """Pin the pod (``https://secure.p03.eloqua.com``); None discovers it."""


Account = Annotated[
    DynamicsAccount
    | EloquaAccount
    | HubSpotAccount
    | MarketoAccount
    | PardotAccount
    | SalesforceAccount,
    Field(discriminator="vendor"),
]
ACCOUNT_TYPES: tuple[type[AccountBase], ...] = (
    DynamicsAccount,
    EloquaAccount,
    HubSpotAccount,
    MarketoAccount,
    PardotAccount,
    SalesforceAccount,
)
VENDORS: tuple[str, ...] = tuple(
    get_args(model.model_fields["vendor"].annotation)[0] for model in ACCOUNT_TYPES
)
"""Vendor names, in ``ACCOUNT_TYPES`` order; contracts name one of these."""
VENDOR_TITLES: dict[str, str] = {
    get_args(model.model_fields["vendor"].annotation)[0]: model.title for model in ACCOUNT_TYPES
}
"""Vendor name → how the vendor spells itself."""
