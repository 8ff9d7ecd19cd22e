"""A daemon probing one or two vendor pairs through a sandbox fault, and what to check after.

``chaos_rig`` keeps the integrations of ``every_vendor_support``'s config that a scenario
needs (by pair name), with a short timeout so a lost probe concludes within minutes, and runs
the sandbox on the scenario fitted to that config. ``intervals`` works out a contract's month
over the store's evidence (``syncwatch.sla`` over ``syncwatch.evidence.stored_events``) and
``minutes_between`` counts the minutes of each status inside a window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from every_vendor_support import every_vendor_raw, every_vendor_scenario

from syncwatch.clock import VirtualClock
from syncwatch.config import Config, Contract, config_from_data
from syncwatch.evidence import stored_events
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import Scenario
from syncwatch.simulation import Simulation
from syncwatch.sla import SlaResult, evaluate, month_period
from syncwatch.sla.intervals import bucket_events, interval_statuses
from syncwatch.sla.periods import excluded_mask
from syncwatch.store import Store

ORIGIN = "http://sandbox.invalid"
SIDES = ("hubspot", "marketo", "pardot", "eloqua", "salesforce", "dynamics")
"""Every side ``/_sandbox/state`` counts synthetic records on."""
SLOW_SYNC_S = 600
"""A sync slower than this is down in the chaos contracts (twice the objective)."""
UNEXPECTED = "unexpected failure; carrying on"
"""What ``Daemon._guarded`` logs when a step raises something no one translated."""


def chaos_raw(
    tmp_path: Path, pairs: Iterable[str], *, every: str = "2m", timeout: str = "15m"
) -> dict[str, Any]:
    """``every_vendor_raw`` with only ``pairs``, probing every ``every`` (objective 5 minutes),
    a lead lost after ``timeout``, and one contract per vendor covering the pairs it is in.

    The contracts count a sync slower than ``SLOW_SYNC_S`` as down (DESIGN §7.4 c): a paused
    connector stops the customer's leads as surely as a lost one."""
    raw = every_vendor_raw(tmp_path, ORIGIN)
    keep = set(pairs)
    raw["integrations"] = [i for i in raw["integrations"] if i["name"] in keep]
    vendors = {account["name"]: account["vendor"] for account in raw["accounts"]}
    covered: dict[str, list[str]] = {}
    for integration in raw["integrations"]:
        integration["timeout"] = timeout
        integration["templates"][0].update(every=every, latency_objective="5m")
        for side in ("source", "destination"):
            vendor = vendors[integration[side]["account"]]
            covered.setdefault(vendor, []).append(integration["name"])
    raw["contracts"] = [
        {
            "name": f"{vendor}-sla",
            "vendor": vendor,
            "integrations": names,
            "timezone": "UTC",
            "objective_percent": 99.9,
            "monthly_fee": "1000.00",
            "downtime": {"latency_above_s": SLOW_SYNC_S},
        }
        for vendor, names in sorted(covered.items())
    ]
    return raw


def chaos_rig(
    tmp_path: Path, scenario: Scenario, pairs: Iterable[str], **options: str
) -> Simulation:
    config = config_from_data(chaos_raw(tmp_path, pairs, **options), tmp_path / "syncwatch.yaml")
    raw_scenario = scenario.model_dump(mode="json", by_alias=True, exclude_unset=True)
    fitted = every_vendor_scenario(config, ORIGIN, **raw_scenario)
    clock = VirtualClock()
    sandbox = create_app(fitted, clock)
    return Simulation(config, Store.open(config.database, throwaway=True), clock, sandbox)


async def sandbox_state(sim: Simulation) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=sim.transport(), base_url=ORIGIN) as client:
        state: dict[str, Any] = (await client.get("/_sandbox/state")).json()
        return state


def synthetic_left(state: dict[str, Any]) -> dict[str, int]:
    """Synthetic records per side, and the connectors' queue, that are not zero."""
    left = {side: state[side]["synthetic"] for side in SIDES if state[side]["synthetic"]}
    if state["sync"]["pending"]:
        left["sync pending"] = state["sync"]["pending"]
    return left


def started(sim: Simulation) -> datetime:
    """When the rig's virtual clock (and its sandbox, and the scenario's ``after``) began."""
    return sim.clock.now() - timedelta(seconds=sim.clock.monotonic())


def contract(config: Config, name: str) -> Contract:
    return next(c for c in config.contracts if c.name == name)


def month_result(sim: Simulation, name: str, month: str = "2026-10") -> SlaResult:
    """``evaluate`` of contract ``name``'s month over everything the store holds."""
    chosen = contract(sim.config, name)
    period = month_period(chosen, month)
    return evaluate(chosen, month, stored_events(sim.store, period.start, period.end))


@dataclass(frozen=True)
class Span:
    """One interval of a contract's month: its UTC bounds, status and non-excluded minutes."""

    start: datetime
    end: datetime
    status: str
    minutes: int


def intervals(sim: Simulation, name: str, month: str = "2026-10") -> list[Span]:
    """Every interval of contract ``name``'s month, from the store's evidence, as ``evaluate``
    sees it (the same bucketing, exclusions and consecutive rule)."""
    chosen = contract(sim.config, name)
    period = month_period(chosen, month)
    buckets = bucket_events(chosen, period, stored_events(sim.store, period.start, period.end))
    mask = excluded_mask(chosen, period)
    return [
        Span(
            period.start + timedelta(minutes=interval.start_minute),
            period.start + timedelta(minutes=interval.end_minute),
            interval.status,
            interval.counted,
        )
        for interval in interval_statuses(chosen, period, mask, buckets)
    ]


def minutes_between(spans: Iterable[Span], since: datetime, until: datetime) -> Counter[str]:
    """Minutes by status of the intervals lying wholly in [since, until)."""
    minutes: Counter[str] = Counter()
    for span in spans:
        if since <= span.start and span.end <= until:
            minutes[span.status] += span.minutes
    return minutes
