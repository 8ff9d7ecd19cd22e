"""The real daemon and the sandbox on one virtual clock: hours of probing in seconds.

Used by the benchmarks (``python -m bench``) and ``syncwatch simulate``. Nothing here is a model
of the daemon: it is the daemon, with the sandbox reached in-process (no sockets:
``InProcessTransport``) and time advanced by hand.

``scenario_for`` fits a sandbox scenario to a config: the sandbox emulates one HubSpot portal,
one Account Engagement business unit and one connector per source vendor, so the config's
integrations decide where each connector writes, which forms and form handlers exist, and that
any credentials are accepted (the simulation's are placeholders).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.config import Config, Integration
from syncwatch.daemon import Daemon, Tally
from syncwatch.demo import demo_config
from syncwatch.errors import ConfigError
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import (
    DEFAULT_FORM_GUID,
    PARDOT_FORM_FIELDS,
    FormHandlerSpec,
    FormSpec,
    Scenario,
)
from syncwatch.sandbox.transport import InProcessTransport
from syncwatch.sandbox_config import handler_path
from syncwatch.store import Store

T = TypeVar("T")
SANDBOX_ORIGIN = "http://sandbox.invalid"
"""Never resolved: requests go straight into the in-process sandbox."""


@dataclass
class Simulation:
    config: Config
    store: Store
    clock: VirtualClock
    sandbox: Starlette
    seed: int = 0
    daemons: list[Daemon] = field(default_factory=list)

    def transport(self) -> httpx.AsyncBaseTransport:
        return InProcessTransport(self.sandbox)

    def daemon(self, **overrides: Any) -> Daemon:
        """A daemon wired to the sandbox; each one draws its own seeded dice."""
        daemon = Daemon(
            self.config,
            self.store,
            self.clock,
            CollectorRegistry(),
            self.transport(),
            random.Random(self.seed + len(self.daemons)),
            serve_http=False,
            **{"offload": inline, **overrides},
        )
        self.daemons.append(daemon)
        return daemon

    async def run(
        self,
        seconds: float,
        *,
        drain_s: float = 0.0,
        daemon: Daemon | None = None,
        during: Callable[[float], object] | None = None,
        step_s: float = 60.0,
    ) -> Tally:
        """Probe for ``seconds`` of virtual time, then stop as SIGTERM would (draining up to
        ``drain_s``); ``during`` is called after every step with the time elapsed."""
        daemon = daemon or self.daemon()
        stop = asyncio.Event()
        task = asyncio.ensure_future(daemon.run(stop, drain_s=drain_s))
        elapsed = 0.0
        while elapsed < seconds:
            step = min(step_s, seconds - elapsed)
            with self._batch():
                await self.clock.advance(step)
            elapsed += step
            if during is not None:
                during(elapsed)
            if task.done():
                task.result()  # re-raises what killed it
                raise RuntimeError(f"the daemon stopped on its own after {elapsed:g}s")
        stop.set()
        while not task.done():
            with self._batch():
                await self.clock.advance(1.0)
        return task.result()

    def _batch(self) -> contextlib.AbstractContextManager[None]:
        """A throwaway store commits once per step (``Store.batch``); another, at every write."""
        return self.store.batch() if self.store.throwaway else contextlib.nullcontext()


def demo_simulation(
    config_path: Path, scenario: Scenario, database: Path, seed: int = 0
) -> Simulation:
    """config/demo.yaml against an in-process sandbox running ``scenario``."""
    config = demo_config(config_path, SANDBOX_ORIGIN, database)
    clock = VirtualClock()
    sandbox = create_app(scenario, clock, seed)
    return Simulation(config, Store.open(config.database, throwaway=True), clock, sandbox, seed)


async def inline(work: Callable[..., T], *args: Any) -> T:
    """``Daemon.offload`` for a simulation: the work, on the loop (nothing here waits in real
    time, so a worker thread would only contend for the GIL)."""
    return work(*args)


CONNECTORS: dict[str, dict[str, tuple[str, ...]]] = {
    "hubspot": {"salesforce": ("Lead", "Contact"), "dynamics": ("lead", "contact")},
    "marketo": {"salesforce": ("Lead",), "dynamics": ("lead",), "hubspot": ("contacts",)},
    "pardot": {"salesforce": ("Lead",), "hubspot": ("contacts",)},
    "eloqua": {"salesforce": ("Lead",)},
}
"""Per source vendor, the CRMs its sandbox connector can write to and the objects it creates
there (``sandbox/sync.py``)."""


def scenario_for(config: Config, scenario: Scenario) -> Scenario:
    """``scenario`` fitted to ``config``: connectors, forms, portal, business unit, domain.

    Everything else (quotas, latencies, faults, seed) is the scenario's. Raises ConfigError
    listing every integration the one sandbox cannot serve beside the others.
    """
    problems: list[str] = []
    fitted = scenario.model_copy(deep=True)
    fitted.probe_domain = config.probe_domain
    _accept_any_credentials(fitted)
    chosen: dict[str, tuple[str, str, str]] = {}  # source vendor → (destination, object, pair)
    for integration in config.integrations:
        source, destination = _vendors(config, integration)
        target = (destination, integration.destination.object, integration.name)
        objects = CONNECTORS.get(source, {}).get(destination)
        if objects is None:
            problems.append(
                f"{integration.name}: the sandbox has no {source} → {destination} connector"
            )
        elif integration.destination.object not in objects:
            problems.append(
                f"{integration.name}: the sandbox's {source} connector creates "
                f"{' or '.join(objects)} in {destination}, not {integration.destination.object}"
            )
        elif source in chosen and chosen[source][:2] != target[:2]:
            other = chosen[source]
            problems.append(
                f"{integration.name}: the sandbox has one {source} connector, and "
                f"{other[2]} already sends it to {other[0]} {other[1]}; simulate "
                f"{integration.name} with a config of its own"
            )
        else:
            chosen[source] = target
            _wire(fitted, source, destination, integration.destination.object)
    problems += _forms(config, fitted) + _pardot(config, fitted)
    if problems:
        raise ConfigError([f"{config.source}: {problem}" for problem in problems])
    return fitted


def _vendors(config: Config, integration: Integration) -> tuple[str, str]:
    source = config.account(integration.source.account)
    destination = config.account(integration.destination.account)
    assert source is not None and destination is not None  # the loader checked the references
    return getattr(source, "vendor", ""), getattr(destination, "vendor", "")


def _wire(scenario: Scenario, source: str, destination: str, obj: str) -> None:
    """Point ``source``'s connector at ``destination`` (and HubSpot's at the right object)."""
    if source == "hubspot":
        scenario.sync.destination = "dynamics" if destination == "dynamics" else "salesforce"
        scenario.sync.sobject = "Contact" if obj.lower() == "contact" else "Lead"
    elif source == "marketo" and destination in ("salesforce", "dynamics", "hubspot"):
        scenario.marketo.sync_to = destination  # type: ignore[assignment]
    elif source == "pardot" and destination in ("salesforce", "hubspot"):
        scenario.pardot.sync_to = destination  # type: ignore[assignment]


def _accept_any_credentials(scenario: Scenario) -> None:
    """The simulation's credentials are placeholders: no pinned token, client or user."""
    scenario.hubspot.token = None
    scenario.salesforce.client_id = scenario.salesforce.client_secret = None
    scenario.marketo.client_id = scenario.marketo.client_secret = None
    scenario.eloqua.company = scenario.eloqua.username = scenario.eloqua.password = None
    dynamics = scenario.dynamics
    dynamics.tenant_id = dynamics.client_id = dynamics.client_secret = None


def _template_fields(config: Config, integration: Integration) -> list[str]:
    names: list[str] = []
    for run in integration.templates:
        template = config.templates.get(run.template)
        names += [name for name in (template.fields if template else {}) if name not in names]
    return names


def _forms(config: Config, scenario: Scenario) -> list[str]:
    """The config's HubSpot portal, and each form it submits to, taking what its templates send."""
    portals: dict[str, str] = {}
    default_fields = next(
        (form.fields for form in scenario.hubspot.forms if form.guid == DEFAULT_FORM_GUID),
        ["email", "firstname", "lastname", "company", "phone", "jobtitle", "country"],
    )
    for integration in config.integrations:
        guid = integration.source.form_guid
        account = config.account(integration.source.account)
        portal = getattr(account, "portal_id", None)
        if integration.source.method != "form" or guid is None or portal is None:
            continue
        portals.setdefault(portal, integration.name)
        if all(form.guid.lower() != guid.lower() for form in scenario.hubspot.forms):
            fields = [*default_fields, *_template_fields(config, integration)]
            scenario.hubspot.forms.append(FormSpec(guid=guid, fields=list(dict.fromkeys(fields))))
    if len(portals) > 1:
        listed = ", ".join(f"{portal} ({pair})" for portal, pair in portals.items())
        return [f"the sandbox emulates one HubSpot portal; the form sources use {listed}"]
    if portals:
        scenario.hubspot.portal_id = next(iter(portals))
    return []


def _pardot(config: Config, scenario: Scenario) -> list[str]:
    """The config's Account Engagement business unit, and each form handler it posts to."""
    units: dict[str, str] = {}
    for integration in config.integrations:
        account = config.account(integration.source.account)
        unit = getattr(account, "business_unit_id", None)
        if unit is None:
            continue
        units.setdefault(unit, integration.name)
        url = integration.source.form_handler_url
        if integration.source.method != "form_handler" or url is None:
            continue
        path = handler_path(str(url)).removeprefix("/pardot/")
        if all(handler.path.strip("/") != path for handler in scenario.pardot.form_handlers):
            names = [*PARDOT_FORM_FIELDS, *_template_fields(config, integration)]
            fields = {name: name for name in dict.fromkeys(names)}
            scenario.pardot.form_handlers.append(FormHandlerSpec(path=path, fields=fields))
    if len(units) > 1:
        listed = ", ".join(f"{unit} ({pair})" for unit, pair in units.items())
        return [f"the sandbox emulates one Account Engagement business unit; sources use {listed}"]
    if units:
        scenario.pardot.business_unit_id = next(iter(units))
    return []
