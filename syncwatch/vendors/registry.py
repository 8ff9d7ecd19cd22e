"""The one place a vendor is registered: vendor name → its module's builders.

Adding a vendor is adding its module and one line in ``VENDORS`` (and its sandbox emulation);
the daemon, probing and CLI never name a vendor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncwatch.config import Config, Integration
from syncwatch.http import AccountHttp
from syncwatch.vendors import dynamics, eloqua, hubspot, hubspot_crm, marketo, pardot, salesforce
from syncwatch.vendors.base import Destination, Source, Wiring


@dataclass(frozen=True)
class VendorModule:
    """What a vendor module offers: its HTTP client builder and the roles it can play."""

    account_http: Callable[[Any, Wiring], AccountHttp]
    daily_window: str
    source: Callable[[Any, Any, AccountHttp], Source] | None = None
    destination: Callable[[Any, Any, AccountHttp, Sequence[str]], Destination] | None = None


VENDORS: dict[str, VendorModule] = {
    "dynamics": VendorModule(
        dynamics.account_http,
        dynamics.DAILY_WINDOW,
        destination=lambda account, settings, http, fields: dynamics.DynamicsDestination(
            account, settings, http, fields=fields
        ),
    ),
    "eloqua": VendorModule(eloqua.account_http, eloqua.DAILY_WINDOW, source=eloqua.EloquaSource),
    "hubspot": VendorModule(
        hubspot.account_http,
        hubspot.DAILY_WINDOW,
        source=hubspot.HubSpotSource,
        destination=lambda account, settings, http, fields: hubspot_crm.HubSpotDestination(
            account, settings, http, fields=fields
        ),
    ),
    "marketo": VendorModule(
        marketo.account_http, marketo.DAILY_WINDOW, source=marketo.MarketoSource
    ),
    "pardot": VendorModule(pardot.account_http, pardot.DAILY_WINDOW, source=pardot.PardotSource),
    "salesforce": VendorModule(
        salesforce.account_http,
        salesforce.DAILY_WINDOW,
        destination=lambda account, settings, http, fields: salesforce.SalesforceDestination(
            account, settings, http, fields=fields
        ),
    ),
}


def destination_key(integration: Integration) -> str:
    """Integrations sharing an account and object share one batched poll."""
    return f"{integration.destination.account}/{integration.destination.object}"


@dataclass
class Adapters:
    """Every account's client and every integration's source and destination, built once."""

    https: dict[str, AccountHttp] = field(default_factory=dict)
    daily_windows: dict[str, str] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    """By integration name."""
    destinations: dict[str, Destination] = field(default_factory=dict)
    """By ``destination_key``."""

    async def aclose(self) -> None:
        for http in self.https.values():
            await http.aclose()


def build_adapters(config: Config, wiring: Wiring) -> Adapters:
    """One ``AccountHttp`` per account, one source per integration, one destination per key."""
    adapters = Adapters()
    accounts = {account.name: account for account in config.accounts}
    for account in config.accounts:
        module = VENDORS[account.vendor]
        adapters.https[account.name] = module.account_http(account, wiring)
        adapters.daily_windows[account.name] = module.daily_window
    for integration in config.integrations:
        source_account = accounts[integration.source.account]
        build_source = VENDORS[source_account.vendor].source
        assert build_source is not None, "the config loader checks roles"
        adapters.sources[integration.name] = build_source(
            source_account, integration.source, adapters.https[source_account.name]
        )
    for key, integrations in _by_destination(config).items():
        first = integrations[0]
        account = accounts[first.destination.account]
        build_destination = VENDORS[account.vendor].destination
        assert build_destination is not None, "the config loader checks roles"
        fields = _expected_fields(config, integrations)
        adapters.destinations[key] = build_destination(
            account, first.destination, adapters.https[account.name], fields
        )
    return adapters


def _by_destination(config: Config) -> dict[str, list[Integration]]:
    grouped: dict[str, list[Integration]] = {}
    for integration in config.integrations:
        grouped.setdefault(destination_key(integration), []).append(integration)
    return grouped


def _expected_fields(config: Config, integrations: list[Integration]) -> list[str]:
    """Every destination field a template of these integrations checks, for one SELECT."""
    names: set[str] = set()
    for integration in integrations:
        for run in integration.templates:
            names.update(config.templates[run.template].expect)
    return sorted(names)
