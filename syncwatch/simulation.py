"""The real daemon and the sandbox on one virtual clock: hours of probing in seconds.

Used by the benchmarks (``python -m bench``) and, later, ``syncwatch simulate``. Nothing here is
a model of the daemon: it is the daemon, with the sandbox reached in-process through
``httpx.ASGITransport`` and time advanced by hand.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.config import Config
from syncwatch.daemon import Daemon, Tally
from syncwatch.demo import demo_config
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import Scenario
from syncwatch.store import Store

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

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.sandbox)

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
            **overrides,
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
            await self.clock.advance(step)
            elapsed += step
            if during is not None:
                during(elapsed)
            if task.done():
                task.result()  # re-raises what killed it
                raise RuntimeError(f"the daemon stopped on its own after {elapsed:g}s")
        stop.set()
        while not task.done():
            await self.clock.advance(1.0)
        return task.result()


def demo_simulation(
    config_path: Path, scenario: Scenario, database: Path, seed: int = 0
) -> Simulation:
    """config/demo.yaml against an in-process sandbox running ``scenario``."""
    config = demo_config(config_path, SANDBOX_ORIGIN, database)
    clock = VirtualClock()
    sandbox = create_app(scenario, clock, seed)
    return Simulation(config, Store.open(config.database), clock, sandbox, seed)
