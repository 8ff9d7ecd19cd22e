"""The registry is the one list of vendors, and every adapter it builds keeps its Protocol.

``runtime_checkable`` only checks that the methods exist; these tests also compare each method's
parameters, their type hints and the return type with the Protocol's, and that it is a coroutine
function, so an adapter cannot drift from the contract the probing engine calls.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any, get_args

import pytest
from daemon_support import SANDBOX, build_config, demo_raw
from dynamics_support import add_dynamics
from eloqua_support import with_eloqua
from hubspot_crm_support import add_hubspot_destination
from marketo_support import with_marketo
from pardot_support import with_pardot

from syncwatch.clock import VirtualClock
from syncwatch.config import ACCOUNT_TYPES
from syncwatch.config import VENDORS as CONFIG_VENDORS
from syncwatch.vendors.base import Destination, Source, Wiring
from syncwatch.vendors.hubspot import HubSpotSource
from syncwatch.vendors.hubspot_crm import HubSpotDestination
from syncwatch.vendors.registry import VENDORS, build_adapters


def vendor_of(model: Any) -> str:
    name: str = get_args(model.model_fields["vendor"].annotation)[0]
    return name


def test_the_registry_lists_exactly_the_configurable_vendors_in_their_roles() -> None:
    """One registry line per account model, offering just the roles the model declares."""
    assert set(VENDORS) == set(CONFIG_VENDORS)
    for model in ACCOUNT_TYPES:
        module = VENDORS[vendor_of(model)]
        assert ("source" in model.roles) == (module.source is not None), model.__name__
        assert ("destination" in model.roles) == (module.destination is not None), model.__name__


def drift(adapter: Any, protocol: type) -> list[str]:
    """How ``adapter``'s methods differ from ``protocol``'s; [] when they match."""
    problems = []
    for name, declared in vars(protocol).items():
        if name.startswith("_") or not inspect.isfunction(declared):
            continue
        method = getattr(adapter, name, None)
        if method is None or not inspect.iscoroutinefunction(method):
            problems.append(f"{name}: not a coroutine method")
            continue
        expected = list(inspect.signature(declared).parameters)[1:]  # without self
        if list(inspect.signature(method).parameters) != expected:
            problems.append(f"{name}: parameters differ from {expected}")
        hints = typing.get_type_hints(method)
        if hints != typing.get_type_hints(declared):
            problems.append(f"{name}: type hints {hints} differ")
    return problems


async def test_every_built_adapter_keeps_the_protocol_its_role_claims(tmp_path: Path) -> None:
    """A config with every vendor: each source is a Source, each destination a Destination,
    down to parameter names, type hints and return types."""
    raw = demo_raw(tmp_path)
    with_marketo(tmp_path, SANDBOX)(raw)
    with_pardot(tmp_path, SANDBOX)(raw)
    add_dynamics(tmp_path, SANDBOX)(raw)
    with_eloqua(tmp_path, SANDBOX)(raw)
    add_hubspot_destination(tmp_path)(raw)
    config = build_config(raw, tmp_path)
    assert {account.vendor for account in config.accounts} == set(VENDORS)
    adapters = build_adapters(config, Wiring(clock=VirtualClock(), sink=lambda *_: None))
    try:
        built: list[tuple[Any, type]] = [(s, Source) for s in adapters.sources.values()]
        built += [(d, Destination) for d in adapters.destinations.values()]
        assert {type(adapter).__name__ for adapter, _ in built} == {
            "DynamicsDestination",
            "EloquaSource",
            "HubSpotDestination",
            "HubSpotSource",
            "MarketoSource",
            "PardotSource",
            "SalesforceDestination",
        }
        for adapter, protocol in built:
            assert isinstance(adapter, protocol)
            assert drift(adapter, protocol) == [], type(adapter).__name__
    finally:
        await adapters.aclose()


async def test_hubspot_plays_both_roles_on_one_account_client(tmp_path: Path) -> None:
    """The demo's HubSpot account is a Source (its form pair) and a Destination (a Marketo pair)
    at once: both adapters keep their Protocol and share the account's one client (one search
    throttle, one quota figure)."""
    raw = demo_raw(tmp_path)
    with_marketo(tmp_path, SANDBOX)(raw)
    add_hubspot_destination(tmp_path)(raw)
    config = build_config(raw, tmp_path)
    adapters = build_adapters(config, Wiring(clock=VirtualClock(), sink=lambda *_: None))
    try:
        source = adapters.sources["hubspot-to-salesforce"]
        destination = adapters.destinations["hubspot-demo/contacts"]
        assert isinstance(source, Source) and drift(source, Source) == []
        assert isinstance(destination, Destination) and drift(destination, Destination) == []
        assert isinstance(source, HubSpotSource) and isinstance(destination, HubSpotDestination)
        assert source.http is destination.http is adapters.https["hubspot-demo"]
    finally:
        await adapters.aclose()


def test_the_drift_check_notices_a_changed_signature() -> None:
    """The check itself: a method with another parameter name or a sync method is reported."""

    class Wrong:
        async def inject(self, lead: Any) -> Any: ...

        def delete(self, refs: Any) -> None: ...

        async def sweep(self, probe_domain: str, older_than: Any) -> list[Any]:
            return []

    problems = drift(Wrong(), Source)
    assert any(p.startswith("inject: parameters") for p in problems)
    assert "delete: not a coroutine method" in problems
    assert any(p.startswith("sweep: type hints") for p in problems)


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_each_vendor_names_its_daily_window(vendor: str) -> None:
    """The quota guard and the metrics find each account's daily figure by this name."""
    assert VENDORS[vendor].daily_window
