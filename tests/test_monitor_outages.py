"""The monitor's own outages are never the vendor's (issue #8, part 3).

Two ways the monitor goes blind, each run with the real daemon against the in-process sandbox
on a virtual clock (the demo's HubSpot → Salesforce pair, a contract on each vendor):

- **our network fails** for half an hour: the self-check fails and every vendor host is
  unreachable from the moment it goes down. The contracts' intervals in that half hour must be
  ``unknown`` (no evidence either way), never ``down``; the failures are recorded as the
  monitor's, and no incident blaming a vendor opens (the store, and ``/api/v1/incidents``).
- **the daemon is stopped** for an hour and a new one starts on the same database: that hour
  must be ``unknown`` in ``evaluate`` and in ``report credits``, never ``up``, and no probe is
  charged to a vendor for it (the probes in flight across the gap are resumed and end ``ok``).

An outage that begins within ``http.RECHECK_S`` (5 s) after a passing periodic self-check was
charged to the vendor: a failed call trusted that check although it predated the call. A failed
call now re-checks when the last check predates it (``NetworkHealth.confirm``).
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from chaos_support import intervals, minutes_between, month_result, started
from daemon_support import Rig, build_config, demo_raw
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from syncwatch.cli import app
from syncwatch.clock import VirtualClock
from syncwatch.daemon import SELF_CHECK_EVERY_S, Daemon
from syncwatch.errors import attribution
from syncwatch.incident_store import IncidentStore
from syncwatch.metrics import Metrics
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import Scenario
from syncwatch.status import StatusBoard
from syncwatch.store import Store, from_db_time
from syncwatch.web import Health, create_web_app

SELF_CHECK = "http://selfcheck.test/ping"
CONTRACTS = ("hubspot-demo", "salesforce-demo")
MINUTE = timedelta(minutes=1)
OUTAGE_S = 30 * 60


def rig_with_contracts(tmp_path: Path) -> tuple[Rig, dict[str, Any]]:
    """The demo pair with a self-check and a contract on each vendor; a quick connector, so
    no probe is slow or lost by chance. Returns the raw config too (for the CLI)."""
    raw = demo_raw(tmp_path)
    raw["self_check_url"] = SELF_CHECK
    salesforce = {k: v for k, v in raw["contracts"][0].items() if k != "latency_objective"}
    raw["contracts"].append({**salesforce, "name": "salesforce-demo", "vendor": "salesforce"})
    config = build_config(raw, tmp_path)
    clock = VirtualClock()
    scenario = Scenario.model_validate(
        {"seed": 5, "sync": {"latency": {"median": "20s", "p95": "40s"}}}
    )
    rig = Rig(config, Store.open(config.database), clock, create_app(scenario, clock))
    return rig, raw


class OurNetwork(httpx.AsyncBaseTransport):
    """The sandbox behind our own network, down during ``down`` (monotonic seconds): the
    self-check and every vendor host fail from the first moment of it (nothing waits for the
    daemon to notice)."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, clock: VirtualClock, down: tuple[float, float]
    ) -> None:
        self.inner, self.clock, self.down = inner, clock, down
        self.checks: list[tuple[float, bool]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.monotonic()
        down = self.down[0] <= now < self.down[1]
        if request.url.host == "selfcheck.test":
            self.checks.append((now, not down))
        if down:
            raise httpx.ConnectError("[Errno 101] Network is unreachable", request=request)
        if request.url.host == "selfcheck.test":
            return httpx.Response(204, request=request)
        return await self.inner.handle_async_request(request)


class SteadyJitter(random.Random):
    """Dice whose ``uniform`` always lands a fifth of the way: every schedule starts 2 s in,
    so the probes' timing against the 30-second self-check is known (probe ids stay random)."""

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * 0.2


async def incidents_api(rig: Rig) -> list[dict[str, Any]]:
    """``/api/v1/incidents?status=all`` as the daemon serves it, from the store."""
    metrics = Metrics(rig.config, CollectorRegistry())
    board = StatusBoard(rig.config, rig.store, rig.clock, metrics.contracts)
    web = create_web_app(metrics, Health(rig.clock, 90.0), status=board)
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://sw") as client:
        response = await client.get("/api/v1/incidents", params={"status": "all"})
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()["incidents"]
    return found


@pytest.mark.parametrize(
    "down_at_s",
    [
        pytest.param(30 * 60 + 15, id="between-self-checks"),
        pytest.param(
            30 * 60 + 1,
            id="just-after-a-passing-self-check",
        ),
    ],
)
async def test_our_network_down_is_unknown_and_opens_no_vendor_incident(
    tmp_path: Path, down_at_s: float
) -> None:
    """Guarantee: while our own network is down (self-check failing, every vendor host
    unreachable), the contracts' intervals are ``unknown`` (never ``down``), every failure is
    recorded as the monitor's, the probes launched are ``skipped``, and no incident blaming a
    vendor opens; once it is back, probing is ``ok`` again. The outage starts 15 s after a
    passing periodic self-check, or 1 s after one, with a probe launched a second later: the
    first failures must not be charged to the vendor on the word of a check from before them."""
    assert SELF_CHECK_EVERY_S == 30  # the outage starts relative to the periodic checks
    rig, _ = rig_with_contracts(tmp_path)
    network = OurNetwork(rig.transport(), rig.clock, (down_at_s, down_at_s + OUTAGE_S))
    await rig.run_for(90 * 60, drain_s=1800, daemon=steady_daemon(rig, network))
    start = started(rig)
    down_from, down_until = (start + timedelta(seconds=s) for s in network.down)

    assert any(not healthy for _, healthy in network.checks) and network.checks[-1][1]
    during = [c for c in rig.store.calls() if down_from <= from_db_time(c["at"]) < down_until]
    assert during and {c["error_class"] for c in during} == {"monitor"}
    assert all(attribution(c["error_class"]) == "monitor" for c in during)
    probes = list(rig.store.db.query("SELECT * FROM probes ORDER BY scheduled_at"))
    launched = [p for p in probes if down_from <= from_db_time(p["scheduled_at"]) < down_until]
    assert len(launched) >= 30
    assert {(p["outcome"], p["error_class"]) for p in launched} == {("skipped", "monitor")}
    others = [p for p in probes if p not in launched]
    assert {p["outcome"] for p in others} == {"ok"}

    for contract in CONTRACTS:
        spans = intervals(rig, contract)
        assert set(minutes_between(spans, down_from, down_until)) == {"unknown"}
        assert month_result(rig, contract).downtime_minutes == 0

    stored = IncidentStore(rig.store).recent_incidents(50)
    assert stored and {i.attribution for i in stored} == {"monitor"}  # ours, paged as ours
    served = await incidents_api(rig)
    assert served and {i["attribution"] for i in served} == {"monitor"}


def steady_daemon(rig: Rig, transport: httpx.AsyncBaseTransport | None = None) -> Daemon:
    """A daemon on the rig whose schedules start 2 s in (``SteadyJitter``); each draws its
    own probe ids."""
    rig.daemons.append(
        Daemon(
            rig.config,
            rig.store,
            rig.clock,
            transport=transport or rig.transport(),
            rng=SteadyJitter(len(rig.daemons)),
            serve_http=False,
        )
    )
    return rig.daemons[-1]


async def test_an_hour_with_the_daemon_stopped_is_unknown_never_up(tmp_path: Path) -> None:
    """Guarantee: an hour in which no daemon runs is ``unknown`` in the claim (``evaluate``
    and ``report credits``), never ``up``, and charges no vendor: the probe in flight when the
    daemon stopped is resumed by the next one (never injected again) and ends ``ok``; no
    interval is down and no incident opens. The daemon stops 28 s after a probe was sent
    (before its first look) and the next starts an hour later on the same database."""
    rig, raw = rig_with_contracts(tmp_path)
    start = started(rig)
    stop_at = start + timedelta(seconds=30 * 60 + 30)
    restart_at = stop_at + 60 * MINUTE
    await rig.run_for((stop_at - start).total_seconds(), daemon=steady_daemon(rig))
    in_flight = {row["probe_id"] for row in rig.store.unfinished_probes() if not row["outcome"]}
    assert in_flight  # the stop left a probe to resume
    resumed = next(iter(in_flight))
    await rig.clock.advance((restart_at - rig.clock.now()).total_seconds())
    await rig.run_for(30 * 60, drain_s=1800, daemon=steady_daemon(rig))

    probes = list(rig.store.db.query("SELECT * FROM probes ORDER BY scheduled_at"))
    assert {p["outcome"] for p in probes} == {"ok"}
    assert {p["state"] for p in probes} == {"cleaned"}
    assert not [p for p in probes if stop_at <= from_db_time(p["scheduled_at"]) < restart_at]
    injections = [c["probe_id"] for c in rig.store.calls() if c["operation"] == "submit_form"]
    assert len(injections) == len(set(injections)) == len(probes)  # none sent twice
    gap = [c for c in rig.store.calls() if stop_at + MINUTE <= from_db_time(c["at"]) < restart_at]
    assert not gap  # the stopping daemon's last clean-up aside, nothing ran
    assert IncidentStore(rig.store).recent_incidents(50) == []
    row = rig.store.get_probe(resumed)
    assert row is not None and row["outcome"] == "ok"
    assert from_db_time(row["verified_at"]) >= restart_at  # judged by the next daemon
    assert row["latency_s"] < 60  # from the CRM's own timestamp: the gap is not latency

    for contract in CONTRACTS:
        spans = intervals(rig, contract)
        # The intervals wholly in the gap (55 of its minutes: it starts and ends mid-interval)
        # are unknown; the two it cuts hold the daemons' evidence.
        assert minutes_between(spans, stop_at, restart_at) == {"unknown": 55}
        assert set(minutes_between(spans, start, stop_at)) == {"up"}
        assert set(minutes_between(spans, restart_at, restart_at + 25 * MINUTE)) == {"up"}
        result = month_result(rig, contract)
        assert result.downtime_minutes == 0
        decided = sum(s.minutes for s in spans if s.status in ("up", "down"))
        assert result.eligible_minutes == decided  # the stopped hour is not counted as up

    claims = await report_credits(tmp_path, raw)
    for contract in CONTRACTS:
        claim = claims[contract]
        assert claim["downtime_minutes"] == 0
        assert claim["unknown_minutes"] == month_result(rig, contract).unknown_minutes
        assert claim["eligible_minutes"] == month_result(rig, contract).eligible_minutes
        assert claim["uptime_percent"] == 100.0


async def report_credits(tmp_path: Path, raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``syncwatch report credits --format json`` on the rig's own config and database."""
    config_file = tmp_path / "syncwatch.yaml"
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    args = ["report", "credits", "--config", str(config_file), "--month", "2026-10"]
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return {claim["contract"]: claim for claim in json.loads(result.stdout)}
