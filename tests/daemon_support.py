"""A daemon wired to an in-process sandbox on a virtual clock: the probe loop under test.

``Rig`` holds the sandbox app, the config (the demo config re-pointed at the sandbox, secrets
from files), the store and the virtual clock; ``run_for`` runs a daemon for some virtual time
and stops it the way SIGTERM would.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.config import Config, config_from_data
from syncwatch.daemon import Daemon, Tally
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import Scenario
from syncwatch.sandbox.world import World
from syncwatch.store import Store

REPO = Path(__file__).resolve().parent.parent
SANDBOX = "http://sandbox.test"


def demo_raw(tmp_path: Path) -> dict[str, Any]:
    """config/demo.yaml as data, pointed at the in-process sandbox, secrets in files."""
    raw: dict[str, Any] = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    for name in ("hubspot-token", "salesforce-secret"):
        (tmp_path / name).write_text(f"test-{name}-value\n", encoding="utf-8")
    hubspot, salesforce = raw["accounts"]
    hubspot.update(base_url=f"{SANDBOX}/hubspot", forms_url=f"{SANDBOX}/hsforms")
    hubspot["token"] = {"file": str(tmp_path / "hubspot-token")}
    salesforce["base_url"] = f"{SANDBOX}/salesforce"
    salesforce["auth"]["client_secret"] = {"file": str(tmp_path / "salesforce-secret")}
    raw["probe_templates"] = str(REPO / "probes")
    raw["database"] = str(tmp_path / "syncwatch.db")
    return raw


def build_config(raw: dict[str, Any], tmp_path: Path) -> Config:
    return config_from_data(raw, tmp_path / "syncwatch.yaml")


@dataclass
class Rig:
    config: Config
    clock: VirtualClock
    sandbox: Starlette
    store: Store
    seed: int = 11
    daemons: list[Daemon] = field(default_factory=list)

    @property
    def world(self) -> World:
        world: World = self.sandbox.state.world
        return world

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.sandbox)

    def daemon(self, **overrides: Any) -> Daemon:
        daemon = Daemon(
            self.config,
            self.store,
            self.clock,
            CollectorRegistry(),
            self.transport(),
            random.Random(self.seed + len(self.daemons)),
            serve_http=False,
            **overrides,
        )
        self.daemons.append(daemon)
        return daemon

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
        daemon = daemon or self.daemon()
        stop = asyncio.Event()
        task = asyncio.ensure_future(daemon.run(stop, drain_s=drain_s))
        elapsed = 0.0
        while elapsed < seconds:
            step = min(step_s, seconds - elapsed)
            await self.clock.advance(step)
            elapsed += step
            if during is not None:
                during(elapsed)
            assert not task.done(), task.exception() if task.done() else None
        stop.set()
        while not task.done():
            await self.clock.advance(1.0)
        return task.result()

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
    return Rig(config, clock, sandbox, Store.open(config.database))
