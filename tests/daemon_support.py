"""A daemon wired to an in-process sandbox on a virtual clock: the probe loop under test.

``Rig`` holds the sandbox app, the config (the demo config re-pointed at the sandbox, secrets
from files), the store and the virtual clock; ``run_for`` runs a daemon for some virtual time
and stops it the way SIGTERM would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from syncwatch.clock import VirtualClock
from syncwatch.config import Config, config_from_data
from syncwatch.daemon import Daemon, Tally
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import Scenario
from syncwatch.sandbox.world import World
from syncwatch.simulation import Simulation
from syncwatch.store import Store

REPO = Path(__file__).resolve().parent.parent
SANDBOX = "http://sandbox.test"


MARKETO_PAIR = "marketo-to-salesforce"
TEST_SECRETS = {
    "hubspot-token": "test-hubspot-token-value",
    "salesforce-secret": "test-salesforce-secret-value",
}


UTC_CONTRACT: dict[str, Any] = {
    "name": "salesforce-utc",
    "vendor": "salesforce",
    "timezone": "UTC",
    "objective_percent": 99.5,
    "credits": [{"below": 99.5, "credit": 5}],
    "monthly_fee": "1000.00",
}
"""A second contract for the demo config: another vendor, on UTC, where month ends differ."""


def demo_raw(
    tmp_path: Path,
    origin: str = SANDBOX,
    secrets: dict[str, str] = TEST_SECRETS,
    *,
    marketo: bool = False,
) -> dict[str, Any]:
    """config/demo.yaml as data, pointed at the sandbox at ``origin``, secrets in files.

    Without ``marketo`` only the HubSpot → Salesforce pair is kept (what most tests are about,
    and what their counts assume); with it, the demo's Marketo → Salesforce pair too."""
    raw: dict[str, Any] = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    for name, value in {**secrets, "marketo-secret": "test-marketo-secret-value"}.items():
        (tmp_path / name).write_text(f"{value}\n", encoding="utf-8")
    hubspot, salesforce, marketo_account = raw["accounts"]
    if marketo:
        marketo_account["base_url"] = f"{origin}/marketo"
        marketo_account["client_secret"] = {"file": str(tmp_path / "marketo-secret")}
    else:
        raw["accounts"] = [hubspot, salesforce]
        raw["integrations"] = [i for i in raw["integrations"] if i["name"] != MARKETO_PAIR]
        raw["contracts"] = [c for c in raw["contracts"] if c["vendor"] != "marketo"]
    hubspot.update(base_url=f"{origin}/hubspot", forms_url=f"{origin}/hsforms")
    hubspot["token"] = {"file": str(tmp_path / "hubspot-token")}
    salesforce["base_url"] = f"{origin}/salesforce"
    salesforce["auth"]["client_secret"] = {"file": str(tmp_path / "salesforce-secret")}
    raw["probe_templates"] = str(REPO / "probes")
    raw["database"] = str(tmp_path / "syncwatch.db")
    return raw


def build_config(raw: dict[str, Any], tmp_path: Path) -> Config:
    return config_from_data(raw, tmp_path / "syncwatch.yaml")


@dataclass
class Rig(Simulation):
    """A simulation with the handles tests reach for."""

    seed: int = 11

    @property
    def world(self) -> World:
        world: World = self.sandbox.state.world
        return world

    async def run_for(
        self,
        seconds: float,
        *,
        drain_s: float = 0.0,
        daemon: Daemon | None = None,
        during: Callable[[float], Any] | None = None,
        step_s: float = 60.0,
    ) -> Tally:
        """Run a daemon for ``seconds`` of virtual time, then stop it as SIGTERM would."""
        return await self.run(seconds, drain_s=drain_s, daemon=daemon, during=during, step_s=step_s)

    async def sandbox_state(self) -> dict[str, Any]:
        async with httpx.AsyncClient(transport=self.transport(), base_url=SANDBOX) as client:
            state: dict[str, Any] = (await client.get("/_sandbox/state")).json()
            return state


def make_rig(
    tmp_path: Path,
    scenario: Scenario | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Rig:
    raw = demo_raw(tmp_path)
    if edit is not None:
        edit(raw)
    config = build_config(raw, tmp_path)
    clock = VirtualClock()
    sandbox = create_app(scenario or Scenario(seed=5), clock)
    return Rig(config, Store.open(config.database), clock, sandbox)
