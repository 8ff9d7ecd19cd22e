"""What the CLI commands run: the daemon, one probe, one sweep, each with its own lifetime.

Kept apart from ``cli.py`` so the commands stay about arguments, exit codes and output, and so
tests can drive the same coroutines on a virtual clock.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry

from syncwatch.cleanup import SweepReport
from syncwatch.clock import Clock
from syncwatch.config import Config
from syncwatch.daemon import Daemon, Tally
from syncwatch.errors import UsageError
from syncwatch.probing import Result
from syncwatch.sla import nearest_rank
from syncwatch.store import Store
from syncwatch.vendors.registry import destination_key


async def run_daemon(
    config: Config,
    store: Store,
    clock: Clock,
    stop: asyncio.Event,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    drain_s: float = 0.0,
    keep_latencies: bool = False,
) -> Tally:
    tally = Tally(keep_latencies=keep_latencies)
    daemon = Daemon(config, store, clock, CollectorRegistry(), transport, tally=tally)
    # What was just built (the config, every integration's metrics and adapters) lives as long
    # as the daemon: out of the collector's sight, a full collection no longer walks it on the
    # event loop (0.5-0.8 s each at 10,000 integrations). Unfrozen after, for a caller that
    # goes on (tests).
    gc.collect()
    gc.freeze()
    try:
        return await daemon.run(stop, drain_s=drain_s)
    finally:
        gc.unfreeze()


async def probe_once(
    config: Config,
    store: Store,
    clock: Clock,
    integration_name: str,
    template: str | None,
    *,
    wait_s: float | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Result:
    """One probe now, followed until it concludes (or ``wait_s`` passes), then cleaned up."""
    integration = config.integration(integration_name)
    if integration is None:
        known = ", ".join(i.name for i in config.integrations) or "none"
        raise UsageError(f"no integration named {integration_name!r}; configured: {known}")
    run = next((r for r in integration.templates if template in (None, r.template)), None)
    if run is None:
        known = ", ".join(r.template for r in integration.templates)
        raise UsageError(f"{integration_name} runs no template {template!r}; it runs {known}")
    daemon = Daemon(config, store, clock, CollectorRegistry(), transport, serve_http=False)
    concluded: list[Result] = []
    daemon.engine.on_result = concluded.append
    try:
        result = await daemon.engine.launch(integration, run)
        key = destination_key(integration)
        deadline = clock.monotonic() + (wait_s if wait_s is not None else integration.timeout)
        while not concluded and (due := daemon.engine.next_poll_at(key)) is not None:
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                break  # still in flight; the daemon will resume it
            # The last look is at the deadline itself: at the timeout that look decides `lost`.
            delay = (due - clock.now()).total_seconds()
            await clock.sleep(max(min(delay, remaining), 0.0))
            await daemon.engine.poll(key)
        await daemon.engine.cleaner.flush()
        return concluded[0] if concluded else result
    finally:
        await daemon.adapters.aclose()


async def sweep_once(
    config: Config,
    store: Store,
    clock: Clock,
    *,
    dry_run: bool,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SweepReport:
    daemon = Daemon(config, store, clock, CollectorRegistry(), transport, serve_http=False)
    try:
        return await daemon.engine.cleaner.sweep(dry_run=dry_run)
    finally:
        await daemon.adapters.aclose()


@dataclass(frozen=True)
class LatencySummary:
    probes: int
    p50_s: float | None
    p95_s: float | None


def summarise_latency(values: Sequence[float]) -> LatencySummary:
    return LatencySummary(len(values), nearest_rank(values, 50), nearest_rank(values, 95))
