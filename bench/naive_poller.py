"""The scale figure's baseline: ``python -m bench.naive_poller CONFIG OUT``, run until SIGTERM.

What a monitor written in an afternoon does with the same config: every integration injects a
probe on the daemon's own schedule (first at the same jittered start, then every ``every``), and
every probe is its own task that asks the CRM for itself alone every 10 s until found (or the
integration's timeout), then deletes its two records (``probe_cost.one_probe``, the naive
poller of the calls-per-probe figure). It uses syncwatch's own vendor adapters over real
loopback HTTP, with their throttles and retries, but keeps no store, no metrics and no logs:
it is cheaper than the daemon per line of work and has no bookkeeping to pay for.

It samples its event loop's lag as the daemon does (a 0.5 s sleeper) and, on SIGTERM, writes
``OUT`` as JSON: wall-clock times of launches and conclusions, failures, lag samples.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.probe_cost import one_probe
from syncwatch.clock import RealClock
from syncwatch.config import Config, Integration, TemplateRun, load_config
from syncwatch.daemon import LOOP_LAG_EVERY_S, start_window
from syncwatch.errors import VendorError
from syncwatch.events import ApiCall, QuotaFigure
from syncwatch.vendors.base import Wiring
from syncwatch.vendors.registry import Adapters, build_adapters

READY = "ready"
"""Written beside ``OUT`` once the adapters are built and the schedules start."""


@dataclass
class Record:
    launched: list[float] = field(default_factory=list)
    concluded: list[float] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=dict)
    """By error class (``dataclasses.asdict`` would turn a Counter's items into its keys)."""
    lag: list[tuple[float, float]] = field(default_factory=list)
    """(wall time, seconds late) per sample."""
    calls: int = 0

    def fail(self, why: str) -> None:
        self.failed[why] = self.failed.get(why, 0) + 1


@dataclass
class NaivePoller:
    config: Config
    adapters: Adapters
    record: Record
    rng: random.Random
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _ids: int = 0

    async def schedule(self, integration: Integration, run: TemplateRun) -> None:
        schedules = sum(len(i.templates) for i in self.config.integrations)
        await asyncio.sleep(self.rng.uniform(0, start_window(run.every, schedules)))  # as ours
        while True:
            task = asyncio.ensure_future(self.probe(integration))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            await asyncio.sleep(run.every)

    async def probe(self, integration: Integration) -> None:
        self._ids += 1
        probe_id = f"naive{self._ids:011d}"
        self.record.launched.append(time.time())
        try:
            await one_probe(self.adapters, self.config, integration, probe_id)
        except VendorError as exc:
            self.record.fail(exc.error_class)
        except Exception as exc:  # counted, never fatal: the baseline must keep its schedule
            self.record.fail(type(exc).__name__)
        else:
            self.record.concluded.append(time.time())

    async def sample_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(LOOP_LAG_EVERY_S)
            late = max(0.0, loop.time() - started - LOOP_LAG_EVERY_S)
            self.record.lag.append((time.time(), late))


async def main(config_path: Path, out: Path, seed: int = 1) -> None:
    """Probe until SIGTERM, then write ``out`` at once (a saturated loop may take a while to
    wind down, and the harness does not wait for that)."""
    config = load_config(config_path)
    record = Record()

    def sink(call: ApiCall, other_windows: tuple[QuotaFigure, ...]) -> None:
        record.calls += 1

    adapters = build_adapters(config, Wiring(RealClock(), sink))
    poller = NaivePoller(config, adapters, record, random.Random(seed))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loops = [
        asyncio.ensure_future(poller.schedule(integration, run))
        for integration in config.integrations
        for run in integration.templates
    ]
    loops.append(asyncio.ensure_future(poller.sample_lag()))
    (out.parent / READY).touch()
    await stop.wait()
    out.write_text(json.dumps(asdict(record)))  # noqa: ASYNC240 - once, after the run
    for task in [*loops, *poller.tasks]:
        task.cancel()
    await asyncio.gather(*loops, *poller.tasks, return_exceptions=True)
    await adapters.aclose()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
