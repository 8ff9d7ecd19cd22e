"""Quota cost and latency accuracy of the probe loop, each beside a baseline from the same run.

- **Calls per probe**: the real daemon on config/demo.yaml for one virtual hour from a cold
  start (its OAuth token and start-up sweep included, as every restart pays them) against the
  sandbox's default scenario (connector median 45 s, p95 150 s), clean-up included, vs a naive
  poller run over the same schedule against a twin sandbox: per probe, one create, one query
  every 10 s until found, and its own three clean-up calls.
- **Latency error**: |measured - true| over a longer run, where true is the sandbox's ground
  truth (CRM record's true creation instant - HubSpot contact's), vs what a poll-time-only
  measurement (detection - acceptance) would report for the same probes.
"""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import httpx

from syncwatch.clock import VirtualClock
from syncwatch.config import Config, Integration, TemplateRun
from syncwatch.events import ApiCall, QuotaFigure
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import Scenario
from syncwatch.simulation import Simulation, demo_simulation
from syncwatch.sla import nearest_rank
from syncwatch.store import from_db_time
from syncwatch.vendors.base import Probe, Record, SourceRef, Wiring, probe_email
from syncwatch.vendors.registry import Adapters, build_adapters, destination_key

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "config" / "demo.yaml"
DEMO_SECONDS = 3600.0
"""An hour: six clean-up flushes at the default cadence, so the figure is the steady cost and
not mostly the start-up's (a daemon runs for months; over a simulated day it is 1.95)."""
NAIVE_POLL_S = 10.0
HEADER = ("| figure | this build | baseline | ratio |", "|---|---|---|---|")


async def daemon_cost(seed: int, workdir: Path) -> tuple[int, int]:
    """(calls, concluded probes) of the real daemon over an hour's probing, drained."""
    sim = demo_simulation(DEMO_CONFIG, Scenario(seed=seed), workdir / f"cost-{seed}.db", seed)
    # The naive poller below runs the first integration's schedule: so does the daemon here,
    # or the two would not be measured on the same work.
    first = sim.config.integrations[:1]
    sim.config = sim.config.model_copy(update={"integrations": first, "contracts": []})
    tally = await sim.run(DEMO_SECONDS, drain_s=1800)
    probes = sum(n for outcome, n in tally.outcomes.items() if outcome != "skipped")
    return sum(tally.calls.values()), probes


async def naive_cost(config: Config, seed: int) -> tuple[int, int]:
    """(calls, probes) of a per-probe poller on the same schedule, against a twin sandbox."""
    clock = VirtualClock()
    sandbox = create_app(Scenario(seed=seed), clock, seed)
    calls: list[ApiCall] = []

    def sink(call: ApiCall, other_windows: tuple[QuotaFigure, ...]) -> None:
        calls.append(call)

    wiring = Wiring(clock, sink, transport=httpx.ASGITransport(app=sandbox))
    adapters = build_adapters(config, wiring)
    integration = config.integrations[0]
    tasks: list[asyncio.Task[None]] = []

    async def schedule(run: TemplateRun) -> None:
        for n in range(int(DEMO_SECONDS // run.every)):
            probe_id = f"naive{seed}{run.template[:4]}{n:04d}"
            tasks.append(asyncio.ensure_future(one_probe(adapters, config, integration, probe_id)))
            await clock.sleep(run.every)

    schedules = [asyncio.ensure_future(schedule(run)) for run in integration.templates]
    while not all(task.done() for task in schedules) or not all(t.done() for t in tasks):
        await clock.advance(10.0)
    await adapters.aclose()
    return len(calls), len(tasks)


async def one_probe(
    adapters: Adapters, config: Config, integration: Integration, probe_id: str
) -> None:
    """Inject, look every 10 s for this probe alone, then delete it alone."""
    email = probe_email(probe_id, config.probe_domain)
    template = config.templates[integration.templates[0].template]
    probe = Probe(
        probe_id,
        email,
        integration.name,
        template.render(template.fields, probe_id, email, config.probe_domain),
    )
    source = adapters.sources[integration.name]
    destination = adapters.destinations[destination_key(integration)]
    clock = adapters.https[integration.source.account].clock
    injection = await source.inject(probe)
    found: Record | None = None
    waited = 0.0
    while found is None and waited < integration.timeout:
        await clock.sleep(NAIVE_POLL_S)
        waited += NAIVE_POLL_S
        found = (await destination.find([probe])).get(probe_id)
    if found is not None:
        await destination.delete([found])
    await source.delete([SourceRef(probe_id, email, injection.source_ref)])


async def accuracy(hours: float, workdir: Path) -> tuple[list[float], list[float]]:
    """|measured - true| and |poll-time - true| per probe over ``hours`` of virtual time."""
    sim = demo_simulation(DEMO_CONFIG, Scenario(seed=101), workdir / "accuracy.db", 101)
    await sim.run(hours * 3600, drain_s=3600)
    truth = true_latencies(sim)
    measured, poll_time = [], []
    for row in sim.store.db.query("SELECT * FROM probes WHERE latency_s IS NOT NULL"):
        true = truth.get(row["email"].lower())
        if true is None:
            continue
        detected = from_db_time(row["detected_at"]) - from_db_time(row["accepted_at"])
        measured.append(abs(row["latency_s"] - true))
        poll_time.append(abs(detected.total_seconds() - true))
    return measured, poll_time


def true_latencies(sim: Simulation) -> dict[str, float]:
    world = sim.sandbox.state.world
    contacts: dict[str, datetime] = {c.email.lower(): c.created_at for c in world.contacts.values()}
    records = [*world.crm.values(), *world.deleted_crm.values()]
    return {
        r.email.lower(): (r.created_at - contacts[r.email.lower()]).total_seconds()
        for r in records
        if r.email.lower() in contacts
    }


def spread(values: Sequence[float]) -> str:
    p50, p95 = nearest_rank(values, 50), nearest_rank(values, 95)
    if p50 is None or p95 is None:
        return "n/a"
    return f"{p50:.2f} / {p95:.2f} / {max(values):.2f}"


async def report(seeds: int, hours: float) -> str:
    """These two figures as a table of their own, with the machine and the command."""
    machine = (
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs. Virtual time: figures do not depend on machine speed."
    )
    return "\n".join(
        [
            *HEADER,
            *await rows(seeds, hours),
            "",
            machine,
            f"Command: python -m bench --seeds {seeds} --hours {hours:g}",
        ]
    )


async def rows(seeds: int, hours: float) -> list[str]:
    """The calls-per-probe and latency-accuracy rows (virtual time, deterministic)."""
    with tempfile.TemporaryDirectory(prefix="syncwatch-bench-") as tmp:
        workdir = Path(tmp)
        ours = [await daemon_cost(seed, workdir) for seed in range(1, seeds + 1)]
        config = demo_simulation(DEMO_CONFIG, Scenario(), workdir / "naive.db").config
        naive = [await naive_cost(config, seed) for seed in range(1, seeds + 1)]
        measured, poll_time = await accuracy(hours, workdir)
    ours_rate = sum(c for c, _ in ours) / sum(p for _, p in ours)
    naive_rate = sum(c for c, _ in naive) / sum(p for _, p in naive)
    worst = max(c / p for c, p in ours)
    return [
        f"| vendor calls per probe, clean-up included ({seeds} x 1-hour run from a cold start, "
        f"{sum(p for _, p in ours)} probes) | {ours_rate:.2f} (worst run {worst:.2f}) | "
        f"{naive_rate:.2f} naive per-probe poller every {NAIVE_POLL_S:g}s | "
        f"{naive_rate / ours_rate:.1f}x fewer |",
        f"| latency error p50 / p95 / max, s ({len(measured)} probes, {hours:g} h, "
        f"polling every 30 s) | {spread(measured)} | {spread(poll_time)} poll-time only | "
        f"p95 {_ratio(poll_time, measured)} smaller |",
    ]


def _ratio(baseline: Sequence[float], ours: Sequence[float]) -> str:
    b, o = nearest_rank(baseline, 95), nearest_rank(ours, 95)
    if b is None or not o:
        return "n/a"
    return f"{b / o:.0f}x"
