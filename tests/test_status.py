"""The status board and its routes: figures from the store, the cache, incidents, quota, 503s.

Exact figures come from probes inserted by hand; then a daemon runs an hour through a HubSpot
outage against the sandbox, and ``/status`` and ``/api/v1/...`` must agree with what the store
holds and show the incident it opened, with its runbook link.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from daemon_support import Rig, build_config, demo_raw, make_rig
from prometheus_client import CollectorRegistry

from syncwatch import daemon as daemon_module
from syncwatch.clock import VirtualClock
from syncwatch.config import Config
from syncwatch.daemon import Daemon
from syncwatch.errors import StoreError
from syncwatch.events import QuotaReading
from syncwatch.incident_store import IncidentStore
from syncwatch.incidents import PROBES, Observation, Policy, Track, observe
from syncwatch.metrics import ContractFigures, Metrics
from syncwatch.sandbox.scenario import FaultSpec, Scenario
from syncwatch.sla.result import nearest_rank
from syncwatch.status import (
    DEFAULT_TTL_S,
    StatusBoard,
    duration,
    moment,
    percent,
    ratio_percent,
    seconds,
)
from syncwatch.store import Store
from syncwatch.web import Health, create_web_app

T = TypeVar("T")
INTEGRATION = "hubspot-to-salesforce"
RUNBOOKS = "http://syncwatch.test/runbooks/"
DAILY_WINDOWS = {"hubspot-demo": "daily", "salesforce-demo": "api-usage"}


# -- a store filled by hand ----------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return build_config(demo_raw(tmp_path), tmp_path)


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    store = Store.open(config.database)
    yield store
    store.close()


@pytest.fixture
def contracts() -> ContractFigures:
    return ContractFigures()


@pytest.fixture
def board(
    config: Config, store: Store, clock: VirtualClock, contracts: ContractFigures
) -> StatusBoard:
    return StatusBoard(config, store, clock, contracts, daily_windows=DAILY_WINDOWS)


class Probes:
    """Inserts concluded (or in-flight) probes of the demo integration, minutes before now."""

    def __init__(self, store: Store, clock: VirtualClock) -> None:
        self.store, self.clock, self.count = store, clock, 0

    def add(
        self,
        outcome: str | None,
        latency_s: float | None = None,
        *,
        minutes_ago: float = 10,
        error_class: str | None = None,
        finished: bool = True,
    ) -> str:
        self.count += 1
        probe_id = f"probe{self.count:04d}"
        at = self.clock.now() - timedelta(minutes=minutes_ago)
        verified = outcome in ("ok", "slow", "mismatch", "misrouted")
        self.store.insert_probe(
            {
                "probe_id": probe_id,
                "integration": INTEGRATION,
                "template": "demo-request",
                "email": f"syncwatch+{probe_id}@probe.syncwatch.example",
                "state": "cleaned" if finished else "in_flight",
                "scheduled_at": at,
                "outcome": outcome,
                "error_class": error_class,
                "latency_s": latency_s,
                "verified_at": at + timedelta(seconds=90) if verified else None,
                "finished_at": at + timedelta(seconds=120) if finished else None,
            }
        )
        return probe_id


@pytest.fixture
def probes(store: Store, clock: VirtualClock) -> Probes:
    return Probes(store, clock)


def open_incident(store: Store, at: datetime, cause: str = "vendor_5xx") -> Track:
    """Two bad observations (the default ``confirm``) open an incident, stored as the daemon
    stores it; returns the track, whose ``open`` is the incident."""
    track = Track(INTEGRATION, PROBES)
    for minute in range(2):
        seen = Observation(INTEGRATION, PROBES, at + timedelta(minutes=minute), cause)
        step = observe(track, seen, Policy(), lambda c: RUNBOOKS + c)
        IncidentStore(store).apply(step, [])
        track = step.track
    assert track.open is not None
    return track


def resolve(store: Store, track: Track, at: datetime) -> None:
    """Two good observations (the default ``recover``) resolve the track's incident."""
    for minute in range(2):
        seen = Observation(INTEGRATION, PROBES, at + timedelta(minutes=minute), None)
        step = observe(track, seen, Policy(), lambda c: RUNBOOKS + c)
        IncidentStore(store).apply(step, [])
        track = step.track
    assert track.open is None


def only(snapshot: dict[str, Any]) -> dict[str, Any]:
    [integration] = snapshot["integrations"]
    assert integration["name"] == INTEGRATION
    return integration


# -- figures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latencies", "p50", "p95"),
    [
        ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 50, 100),  # ranks ⌈5⌉ and ⌈9.5⌉ = 10
        ([30, 10, 20], 20, 30),  # unsorted input; ranks ⌈1.5⌉ = 2 and ⌈2.85⌉ = 3
        (list(range(1, 21)), 10, 19),  # ranks 10 and 19 exactly
        ([42.5], 42.5, 42.5),
    ],
)
def test_latency_percentiles_are_nearest_rank_over_the_day(
    board: StatusBoard, probes: Probes, latencies: list[float], p50: float, p95: float
) -> None:
    """p50/p95 are the ⌈p/100·n⌉-th smallest latencies of the day's probes (hand-checked)."""
    for latency in latencies:
        probes.add("ok", latency)
    integration = only(board.snapshot())
    assert (integration["latency_p50_s"], integration["latency_p95_s"]) == (p50, p95)
    assert integration["latency_probes"] == len(latencies)


def test_success_ratio_leaves_out_skipped_probes_and_probes_older_than_a_day(
    board: StatusBoard, probes: Probes
) -> None:
    """ok / probes not skipped over 24 h: 3 ok of 5 judged; skipped and day-old ones ignored."""
    for latency in (40.0, 50.0, 60.0):
        probes.add("ok", latency)
    probes.add("slow", 900.0)
    probes.add("lost", error_class="sync_lost")
    probes.add("skipped", error_class="quota_guard")
    probes.add("skipped", error_class="quota_guard")
    probes.add("ok", 5000.0, minutes_ago=24 * 60 + 1)  # outside the window
    integration = only(board.snapshot())
    assert integration["success_ratio"] == pytest.approx(3 / 5)
    assert integration["probes"] == {
        "ok": 3, "slow": 1, "lost": 1, "rejected": 0, "mismatch": 0, "misrouted": 0, "skipped": 2,
    }  # fmt: skip
    assert integration["probes_total"] == 7
    assert integration["latency_p95_s"] == 900.0  # the day-old 5000 s is not in it


def test_last_probe_is_the_latest_concluded_one_and_in_flight_counts_the_rest(
    board: StatusBoard, probes: Probes
) -> None:
    """The last probe carries id, outcome, class and times; in flight counts probes without an
    outcome, not concluded ones waiting for clean-up."""
    probes.add("ok", 30.0, minutes_ago=20)
    last = probes.add("rejected", minutes_ago=5, error_class="vendor_5xx", finished=False)
    probes.add(None, minutes_ago=2, finished=False)
    probes.add(None, minutes_ago=1, finished=False)
    integration = only(board.snapshot())
    assert integration["last_probe"] == {
        "probe_id": last,
        "template": "demo-request",
        "outcome": "rejected",
        "error_class": "vendor_5xx",
        "started_at": "2026-10-05T08:55:00Z",
        "finished_at": None,  # waiting for clean-up
        "latency_s": None,
    }
    assert integration["in_flight"] == 2
    assert integration["status"] == "failing"


def test_an_integration_quiet_for_a_day_still_shows_its_last_probe(
    board: StatusBoard, probes: Probes
) -> None:
    """No probe in the window: no figures (null, not zero), but the last probe is still found."""
    old = probes.add("ok", 12.0, minutes_ago=3 * 24 * 60)
    integration = only(board.snapshot())
    assert integration["last_probe"]["probe_id"] == old
    assert integration["last_probe"]["finished_at"] == "2026-10-02T09:01:30Z"
    assert integration["success_ratio"] is None and integration["latency_p50_s"] is None
    assert integration["probes_total"] == 0 and integration["status"] == "ok"


def test_nothing_probed_yet_reads_as_unknown(board: StatusBoard) -> None:
    """A fresh store: every figure null, the integration's status unknown, routes described."""
    integration = only(board.snapshot())
    assert integration["last_probe"] is None and integration["status"] == "unknown"
    assert integration["source"] == {
        "account": "hubspot-demo",
        "vendor": "hubspot",
        "method": "form",
    }
    assert integration["destination"] == {
        "account": "salesforce-demo",
        "vendor": "salesforce",
        "object": "Lead",
    }


# -- contracts and quota -------------------------------------------------------------------------


async def test_contract_figures_are_null_until_the_sla_loop_caches_them(
    board: StatusBoard, contracts: ContractFigures, clock: VirtualClock
) -> None:
    """Month-to-date uptime and credit come from the cache, as percentages, with the objective."""
    [contract] = board.snapshot()["contracts"]
    assert contract == {
        "name": "hubspot-demo",
        "vendor": "hubspot",
        "integrations": [INTEGRATION],
        "objective_percent": 99.9,
        "uptime_percent": None,
        "credit_percent": None,
        "met": None,
    }
    contracts.set_contract_figures("hubspot-demo", 0.9985, 0.10)
    await clock.advance(DEFAULT_TTL_S)
    [contract] = board.snapshot()["contracts"]
    assert (contract["uptime_percent"], contract["credit_percent"]) == (99.85, 10.0)
    assert contract["met"] is False


def test_an_uptime_of_exactly_the_objective_is_met(
    board: StatusBoard, contracts: ContractFigures
) -> None:
    """0.999 as a float is a hair under 99.9 %; rounded for display it meets a 99.9 objective."""
    contracts.set_contract_figures("hubspot-demo", 0.999, 0.0)
    [contract] = board.snapshot()["contracts"]
    assert contract["uptime_percent"] == 99.9 and contract["met"] is True


def test_quota_is_low_under_the_accounts_warning_level(
    board: StatusBoard, store: Store, clock: VirtualClock
) -> None:
    """Salesforce (reserve 500, so warning level 1,000) with 999 left is low; HubSpot with plenty
    is not; every window is listed with its remaining calls."""
    now = clock.now()
    store.save_quota(QuotaReading("salesforce-demo", "api-usage", "salesforce", 14001, 15000, now))
    store.save_quota(QuotaReading("hubspot-demo", "daily", "hubspot", 1000, 250000, now))
    store.save_quota(QuotaReading("hubspot-demo", "10s", "hubspot", 189, 190, now))
    hubspot, salesforce = board.snapshot()["quota"]
    assert salesforce["low"] is True and salesforce["warning_level"] == 1000
    assert salesforce["windows"] == [
        {
            "window": "api-usage",
            "used": 14001,
            "limit": 15000,
            "remaining": 999,
            "observed_at": "2026-10-05T09:00:00Z",
        }
    ]
    assert hubspot["low"] is False and hubspot["warning_level"] == 2000
    assert [(w["window"], w["remaining"]) for w in hubspot["windows"]] == [
        ("10s", 1),
        ("daily", 249000),
    ]


def test_an_account_without_a_daily_reading_is_neither_low_nor_ok(board: StatusBoard) -> None:
    """No figure yet: ``low`` is null, not a reassuring false."""
    hubspot, salesforce = board.snapshot()["quota"]
    assert hubspot["low"] is None and salesforce["low"] is None
    assert hubspot["windows"] == [] and hubspot["daily_window"] == "daily"


# -- incidents -----------------------------------------------------------------------------------


def test_open_incidents_carry_their_runbook_and_how_long_they_have_lasted(
    board: StatusBoard, store: Store, clock: VirtualClock
) -> None:
    """An open incident is listed with its runbook link and its duration so far; the
    integration's status says an incident is open."""
    open_incident(store, clock.now() - timedelta(minutes=30))
    snapshot = board.snapshot()
    [incident] = snapshot["incidents"]["open"]
    assert incident["runbook_url"] == RUNBOOKS + "vendor_5xx"
    assert incident["status"] == "open" and incident["elapsed_s"] == 30 * 60
    assert snapshot["incidents"]["resolved"] == []
    assert only(snapshot)["status"] == "incident"


def test_resolved_incidents_are_the_latest_few_newest_first(
    config: Config, store: Store, clock: VirtualClock, contracts: ContractFigures
) -> None:
    """Only the last ``resolved`` incidents that recovered are kept, newest first; an open
    one is never among them."""
    board = StatusBoard(config, store, clock, contracts, resolved=2)
    start = clock.now() - timedelta(hours=5)
    for hour in range(3):
        at = start + timedelta(hours=hour)
        resolve(store, open_incident(store, at), at + timedelta(minutes=20))
    open_incident(store, clock.now() - timedelta(minutes=10), cause="sync_lost")
    incidents = board.snapshot()["incidents"]
    assert [i["cause"] for i in incidents["open"]] == ["sync_lost"]
    assert [i["started_at"] for i in incidents["resolved"]] == [
        "2026-10-05T06:00:00Z",
        "2026-10-05T05:00:00Z",
    ]
    assert all(i["status"] == "resolved" and i["duration_s"] for i in incidents["resolved"])


# -- the cache and the store's failures ----------------------------------------------------------


async def test_one_set_of_queries_per_ttl_however_many_requests(
    board: StatusBoard, store: Store, probes: Probes, clock: VirtualClock
) -> None:
    """Four SELECTs build a snapshot (the latest quota figures are the store's memory);
    requests within the TTL read none and see the same data; after the TTL the store is read
    again."""
    probes.add("ok", 20.0)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    first = board.snapshot()
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 4
    statements.clear()
    probes.add("lost", error_class="sync_lost")
    statements.clear()
    for _ in range(50):
        assert board.snapshot() is first
    assert statements == []
    await clock.advance(DEFAULT_TTL_S)
    assert only(board.snapshot())["probes_total"] == 2
    assert statements


def test_a_store_that_cannot_be_read_raises_a_store_error_and_caches_nothing(
    board: StatusBoard, store: Store
) -> None:
    """sqlite's own error is translated once, here, into StoreError."""
    store.close()
    with pytest.raises(StoreError, match="cannot read the status from the store"):
        board.snapshot()
    with pytest.raises(StoreError):
        board.snapshot()


# -- presentation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("format_", "value", "text"),
    [
        (seconds, None, "n/a"),
        (seconds, 4.25, "4.2 s"),
        (seconds, 84.2, "84 s"),
        (seconds, 390.0, "6.5 min"),
        (seconds, 7560.0, "2.1 h"),
        (duration, None, "n/a"),
        (duration, 45.0, "45 s"),
        (duration, 720.0, "12 min"),
        (duration, 3 * 3600 + 300.0, "3 h 05 min"),
        (duration, 2 * 86400 + 4 * 3600 + 59.0, "2 d 4 h"),
        (percent, 99.854, "99.9 %"),
        (percent, None, "n/a"),
        (ratio_percent, 0.5, "50.0 %"),
        (moment, "2026-10-05T09:59:12Z", "2026-10-05 09:59 UTC"),
        (moment, None, "n/a"),
    ],
)
def test_figures_are_formatted_for_people(
    format_: Callable[[Any], str], value: Any, text: str
) -> None:
    """The page's filters: latencies, durations, percentages and times, n/a when unknown."""
    assert format_(value) == text


# -- routes, against a store filled by hand ------------------------------------------------------


@pytest.fixture
def metrics(config: Config) -> Metrics:
    return Metrics(config, CollectorRegistry())


@pytest.fixture
async def web(
    board: StatusBoard, metrics: Metrics, clock: VirtualClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_web_app(metrics, Health(clock, 90), status=board)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://syncwatch.test") as http:
        yield http


class Page(HTMLParser):
    """What the accessibility checks need from a page: tags, attributes, and captions."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def count(self, tag: str) -> int:
        return sum(1 for name, _ in self.tags if name == tag)


async def test_status_page_is_plain_accessible_html_that_refreshes_itself(
    web: httpx.AsyncClient, store: Store, probes: Probes, clock: VirtualClock
) -> None:
    """Meta refresh, no script, a caption on every table, a scope on every header cell, and
    states in words ("open", "low"), not colour alone."""
    probes.add("ok", 33.0)
    open_incident(store, clock.now() - timedelta(minutes=30))
    store.save_quota(
        QuotaReading("salesforce-demo", "api-usage", "salesforce", 14500, 15000, clock.now())
    )
    response = await web.get("/status")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert '<meta http-equiv="refresh" content="30">' in html
    assert "<script" not in html.lower()
    page = Page(html)
    assert page.count("table") == page.count("caption") >= 4
    assert all(attrs.get("scope") in ("col", "row") for tag, attrs in page.tags if tag == "th")
    assert '<span class="tag bad">open</span>' in html
    assert '<span class="tag bad">low</span>' in html
    assert f'<a href="{RUNBOOKS}vendor_5xx">Runbook: vendor_5xx</a>' in html
    assert "30 min" in html  # how long the incident has been open


async def test_integrations_api_is_the_snapshot_as_json(
    web: httpx.AsyncClient, board: StatusBoard, probes: Probes
) -> None:
    """GET /api/v1/integrations: integrations, contracts and quota, as the board has them."""
    probes.add("ok", 33.0)
    response = await web.get("/api/v1/integrations")
    assert response.status_code == 200
    body = response.json()
    snapshot = board.snapshot()
    assert body == {
        key: snapshot[key]
        for key in ("generated_at", "window_hours", "integrations", "contracts", "quota")
    }
    assert body["integrations"][0]["last_probe"]["probe_id"] == "probe0001"


async def test_incidents_api_lists_open_ones_by_default_and_all_on_request(
    web: httpx.AsyncClient, store: Store, clock: VirtualClock
) -> None:
    """?status=open (the default) lists open incidents; ?status=all adds the resolved."""
    earlier = clock.now() - timedelta(hours=3)
    resolve(store, open_incident(store, earlier), earlier + timedelta(minutes=15))
    open_incident(store, clock.now() - timedelta(minutes=8), cause="sync_lost")
    default = (await web.get("/api/v1/incidents")).json()
    assert default["status"] == "open"
    assert [(i["cause"], i["status"]) for i in default["incidents"]] == [("sync_lost", "open")]
    assert default["incidents"][0]["runbook_url"] == RUNBOOKS + "sync_lost"
    everything = (await web.get("/api/v1/incidents", params={"status": "all"})).json()
    assert [(i["cause"], i["status"]) for i in everything["incidents"]] == [
        ("sync_lost", "open"),
        ("vendor_5xx", "resolved"),
    ]


@pytest.mark.parametrize("value", ["closed", "OPEN", ""])
async def test_incidents_api_refuses_an_unknown_status_with_a_json_400(
    web: httpx.AsyncClient, value: str
) -> None:
    """A bad ?status= is a 400 whose JSON says what is allowed."""
    response = await web.get("/api/v1/incidents", params={"status": value})
    assert response.status_code == 400
    assert response.json() == {"error": f"status must be one of open, all, not {value!r}"}


async def test_a_store_failure_is_a_short_503_never_a_traceback(
    web: httpx.AsyncClient, store: Store
) -> None:
    """With the store unreadable, the page and the API answer 503 with one line of reason; the
    page keeps refreshing itself so it recovers on its own."""
    store.close()
    page = await web.get("/status")
    assert page.status_code == 503
    assert "Status unavailable" in page.text and "Traceback" not in page.text
    assert '<meta http-equiv="refresh" content="30">' in page.text
    for path in ("/api/v1/integrations", "/api/v1/incidents"):
        response = await web.get(path)
        assert response.status_code == 503
        body = response.json()
        assert body["error"] == "store unavailable"
        assert "closed database" in body["detail"] and "Traceback" not in body["detail"]


# -- a daemon's hour through an outage -----------------------------------------------------------

OUTAGE_AT, OUTAGE_FOR, RUN_S = 1200.0, 3600.0, 3600.0


def inline_to_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the daemon's month-to-date computation on the loop: virtual time cannot wait for a
    real thread, so the contract figures would otherwise land whenever the thread finished."""

    async def to_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return function(*args, **kwargs)

    monkeypatch.setattr(daemon_module.asyncio, "to_thread", to_thread)


@dataclass
class Hour:
    rig: Rig
    daemon: Daemon
    board: StatusBoard


@pytest.fixture(scope="module")
def hour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hour]:
    """The demo config for an hour against a sandbox whose HubSpot answers 503 from minute 20
    to past the end: probes are rejected, and an incident opens and stays open."""
    fault = FaultSpec(kind="outage", vendor="hubspot", after=OUTAGE_AT, duration=OUTAGE_FOR)
    rig = make_rig(tmp_path_factory.mktemp("hour"), Scenario(seed=5, faults=[fault]))
    with pytest.MonkeyPatch.context() as monkeypatch:
        inline_to_thread(monkeypatch)
        daemon = rig.daemon()
        asyncio.run(rig.run_for(RUN_S, daemon=daemon))
    board = StatusBoard(
        rig.config,
        rig.store,
        rig.clock,
        daemon.metrics.contracts,
        daily_windows=daemon.adapters.daily_windows,
    )
    yield Hour(rig, daemon, board)
    rig.store.close()


def test_the_hours_figures_are_those_of_the_probes_in_the_store(hour: Hour) -> None:
    """p50/p95, success ratio, outcome counts and in-flight count agree with the store's own
    probes, and the outage left its mark (rejected probes)."""
    now = hour.rig.clock.now()
    rows = list(hour.rig.store.concluded_probes_between(now - timedelta(days=1), now))
    latencies = [row["latency_s"] for row in rows if row["latency_s"] is not None]
    judged = [row for row in rows if row["outcome"] != "skipped"]
    integration = only(hour.board.snapshot())
    assert integration["latency_p50_s"] == nearest_rank(latencies, 50)
    assert integration["latency_p95_s"] == nearest_rank(latencies, 95)
    assert integration["latency_probes"] == len(latencies) > 10
    ok = sum(1 for row in judged if row["outcome"] == "ok")
    assert integration["success_ratio"] == pytest.approx(ok / len(judged))
    assert integration["probes_total"] == len(rows)
    assert integration["probes"]["rejected"] > 0 and 0 < integration["success_ratio"] < 1
    unfinished = hour.rig.store.unfinished_probes()
    assert integration["in_flight"] == sum(1 for row in unfinished if row["outcome"] is None)


def test_the_hours_incident_contract_and_quota(hour: Hour) -> None:
    """The outage's incident is open with its runbook; the contract is below its objective with
    a credit; the quota figures are the store's latest, and not low."""
    snapshot = hour.board.snapshot()
    [incident] = snapshot["incidents"]["open"]
    assert incident["cause"] == "vendor_5xx" and incident["attribution"] == "vendor"
    assert incident["runbook_url"] == "http://127.0.0.1:9851/runbooks/vendor_5xx"
    started = datetime.fromisoformat(incident["started_at"])
    assert started >= hour.rig.clock.now() - timedelta(seconds=RUN_S - OUTAGE_AT)
    assert only(snapshot)["status"] == "incident"
    [contract] = snapshot["contracts"]
    assert contract["uptime_percent"] < 99.9 and contract["credit_percent"] > 0
    assert contract["met"] is False
    latest = {(q.account, q.window): q.remaining for q in hour.rig.store.latest_quota()}
    shown = {
        (account["account"], window["window"]): window["remaining"]
        for account in snapshot["quota"]
        for window in account["windows"]
    }
    assert shown == latest and not any(account["low"] for account in snapshot["quota"])


async def test_the_hour_on_the_status_page_and_in_the_api(hour: Hour) -> None:
    """/status shows the open incident linked to its runbook and the day's figures; the API
    lists the same incident."""
    app = create_web_app(hour.daemon.metrics, hour.daemon.health, status=hour.board)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://syncwatch.test") as http:
        page = (await http.get("/status")).text
        incidents = (await http.get("/api/v1/incidents")).json()["incidents"]
    [incident] = incidents
    assert f'<a href="{incident["runbook_url"]}">Runbook: vendor_5xx</a>' in page
    assert "1 open incident" in page and "incident open" in page
    integration = only(hour.board.snapshot())
    assert seconds(integration["latency_p95_s"]) in page
    assert ratio_percent(integration["success_ratio"]) in page
    assert re.search(r"rejected \d+", page)
