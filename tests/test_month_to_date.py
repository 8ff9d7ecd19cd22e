"""The daemon's incremental month to date against its definition: the running minute counts
against ``consecutive_rule`` and ``count_minutes``; a daemon run across the end of October, a
restart and a destination outage against ``month_to_date`` over the store's events at every
refresh; and why folded months never concern it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from annotated_types import Ge
from daemon_support import UTC_CONTRACT, Rig, build_config, demo_raw

from syncwatch.clock import VirtualClock
from syncwatch.config import Config, Contract
from syncwatch.config.model import Retention
from syncwatch.events import ApiCall
from syncwatch.evidence import api_call_event, call_event, stored_events
from syncwatch.month_to_date import (
    Figures,
    MonthToDate,
    local_month,
    month_to_date,
    tally_intervals,
    uptime_of,
)
from syncwatch.retention import raw_cutoff
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import FaultSpec, Scenario
from syncwatch.sla import CallEvent, Event, Interval, ProbeEvent, month_period
from syncwatch.sla.intervals import (
    DOWN,
    EXCLUDED,
    UNKNOWN,
    UP,
    bucket_events,
    consecutive_rule,
    count_minutes,
)
from syncwatch.store import Store

# -- the running minute counts ------------------------------------------------------------------


def a_contract(**fields: Any) -> Contract:
    return Contract.model_validate(
        {
            "name": "hubspot-demo",
            "vendor": "hubspot",
            "timezone": "America/New_York",
            "objective_percent": "99.9",
            "credits": [{"below": 99.9, "credit": 10}],
            "monthly_fee": "3600.00",
            **fields,
        }
    )


def random_intervals(rng: random.Random, count: int) -> list[Interval]:
    """Statuses in runs (so down runs of every length occur), some intervals partly counted."""
    intervals: list[Interval] = []
    status = UP
    for index in range(count):
        if rng.random() < 0.3:
            status = rng.choice([UP, DOWN, DOWN, UNKNOWN, EXCLUDED])
        counted = 0 if status == EXCLUDED else rng.choice([5, 5, 5, 1, 3])
        intervals.append(Interval(index, index * 5, index * 5 + 5, counted, status))
    return intervals


@pytest.mark.parametrize("threshold", [None, 1, 5, 10, 17])
@pytest.mark.parametrize("unknown", ["exclude", "up", "down"])
def test_counting_in_pieces_is_counting_the_whole(threshold: int | None, unknown: str) -> None:
    """Intervals counted piece by piece, any number of times over, give the uptime that
    ``consecutive_rule`` then ``count_minutes`` give for the whole list: runs that cross a
    boundary between pieces, a run still open at the end, excluded intervals inside runs."""
    contract = a_contract(unknown=unknown, downtime={"min_consecutive_minutes": threshold})
    period = month_period(contract, "2026-10")
    rng = random.Random(f"{threshold}{unknown}")
    for _ in range(200):
        intervals = random_intervals(rng, rng.randrange(0, 40))
        expected = count_minutes(contract, period, consecutive_rule(contract, intervals)).uptime
        cuts = sorted(rng.sample(range(len(intervals) + 1), min(3, len(intervals) + 1)))
        tally = tally_intervals(threshold, [])
        for start, end in zip([0, *cuts], [*cuts, len(intervals)], strict=True):
            tally = tally_intervals(threshold, intervals[start:end], tally)
        assert uptime_of(contract, tally) == expected, intervals


# -- a daemon across the end of October, restarted, with late probes ----------------------------

START = datetime(2026, 10, 31, 21, tzinfo=UTC)
"""Three hours before midnight UTC; seven before New York's, and daylight saving ends two hours
after that."""
HOUR = 3600.0
FAULTS = [
    FaultSpec(kind="drop", after=HOUR, duration=HOUR),
    FaultSpec(kind="outage", vendor="salesforce", after=HOUR, duration=2.5 * HOUR),
]
"""The connector loses an hour's probes, and no destination query succeeds for longer than
``settle``: the first half hour's lost probes are only found so when the queries work again,
most of them later than ``settle`` after they started, so intervals go down after they were
counted."""
RUNS = ((4 * HOUR, 0.5 * HOUR), (5 * HOUR, 0.0))
"""(how long a daemon runs, how long nothing runs after it)."""


@dataclass
class Refresh:
    now: datetime
    figures: Figures
    expected: Figures
    buckets_agree: bool
    late: list[Event]
    """Events handed over more than ``settle`` after their time (the first read's aside)."""


class CheckedMonthToDate(MonthToDate):
    """MonthToDate that, at every refresh, also works the figures out from the definition: the
    store's events before ``now`` (the refresh runs on the loop here, so the store is as the
    read left it). It keeps what the daemon handed over too."""

    def __init__(self, config: Config, store: Store) -> None:
        super().__init__(config)
        self.store = store
        self.refreshes: list[Refresh] = []
        self.first_read: list[Event] | None = None
        self.calls_seen: list[ApiCall] = []
        self.probes_seen: list[str] = []

    def call_recorded(self, call: ApiCall) -> None:
        self.calls_seen.append(call)
        super().call_recorded(call)

    def probe_concluded(self, probe_id: str, integration: str) -> None:
        self.probes_seen.append(probe_id)
        super().probe_concluded(probe_id, integration)

    def read(self, store: Store, now: datetime) -> list[Event]:
        events = super().read(store, now)
        if self.first_read is None:
            self.first_read = events
        return events

    def compute(self, events: list[Event], now: datetime) -> Figures:
        figures = super().compute(events, now)
        periods = [month_period(c, local_month(c, now)) for c in self.config.contracts]
        stored = stored_events(self.store, min(p.start for p in periods), now)
        buckets_agree = all(
            self._months[c.name].buckets == bucket_events(c, period, stored)
            for c, period in zip(self.config.contracts, periods, strict=True)
        )
        late = []
        if events is not self.first_read:
            late = [event for event in events if _moment(event) < now - self.settle]
        expected = month_to_date(self.config, stored, now)
        self.refreshes.append(Refresh(now, figures, expected, buckets_agree, late))
        return figures


@dataclass
class MonthEnd:
    rig: Rig
    checked: list[CheckedMonthToDate] = field(default_factory=list)

    @property
    def refreshes(self) -> list[Refresh]:
        return [refresh for each in self.checked for refresh in each.refreshes]


@pytest.fixture(scope="module")
def month_end(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonthEnd]:
    """The demo's HubSpot pair and a Salesforce contract in UTC from ``START``: a daemon for 4
    hours, half an hour with none, then another daemon on the same store for 5 hours."""
    tmp = tmp_path_factory.mktemp("month_end")
    raw = demo_raw(tmp)
    raw["contracts"].append(dict(UTC_CONTRACT))
    raw["notifications"] = []  # the incidents have nowhere to go: not what this is about
    config = build_config(raw, tmp)
    clock = VirtualClock(START)
    sandbox = create_app(Scenario(seed=5, faults=FAULTS), clock)
    found = MonthEnd(Rig(config, Store.open(config.database), clock, sandbox))

    async def run() -> None:
        for seconds, idle in RUNS:
            daemon = found.rig.daemon()
            daemon.month_to_date = CheckedMonthToDate(config, found.rig.store)
            found.checked.append(daemon.month_to_date)
            await found.rig.run_for(seconds, daemon=daemon)
            await clock.advance(idle)

    asyncio.run(run())
    yield found
    found.rig.store.close()


def test_every_refresh_equals_the_definition_over_the_stored_events(month_end: MonthEnd) -> None:
    """At every refresh of both daemons, the gauges' figures are exactly ``month_to_date`` over
    the store's events, and the buckets hold each of those events once."""
    refreshes = month_end.refreshes
    assert len(refreshes) >= 100
    wrong = [r.now for r in refreshes if r.figures != r.expected or not r.buckets_agree]
    assert wrong == []


def test_the_run_crossed_both_month_ends_restarted_and_had_late_probes(
    month_end: MonthEnd,
) -> None:
    """The run is what the test above needs it to be: refreshes on both sides of each
    contract's month end, with figures on both sides; a second daemon whose first read found
    the month so far; and lost probes found so long after ``settle`` (the Salesforce outage),
    which take intervals already counted down."""
    refreshes = month_end.refreshes
    utc_end, new_york_end = (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=ZoneInfo("America/New_York")),
    )
    for end in (utc_end, new_york_end):
        assert refreshes[0].now < end < refreshes[-1].now
    assert refreshes[-1].figures["hubspot-demo"][0] is not None
    assert refreshes[-1].figures["salesforce-utc"][0] is not None
    assert any(r.figures["salesforce-utc"][0] is not None for r in refreshes if r.now < utc_end)
    restarted = month_end.checked[1].first_read
    assert restarted is not None and len(restarted) > 500
    late = [event for refresh in refreshes for event in refresh.late]
    assert sum(1 for e in late if isinstance(e, ProbeEvent) and e.outcome == "lost") >= 10


def test_the_daemon_hands_over_every_call_and_probe_it_stores(month_end: MonthEnd) -> None:
    """Each call the store holds was handed over once, as the evidence its row gives; each
    concluded probe once (both daemons, the probes the restart resumed included)."""
    store = month_end.rig.store
    handed = [call for each in month_end.checked for call in each.calls_seen]
    assert [api_call_event(call) for call in handed] == [call_event(row) for row in store.calls()]
    probes = [probe for each in month_end.checked for probe in each.probes_seen]
    concluded = [row["probe_id"] for row in store.db.query(CONCLUDED)]
    assert sorted(probes) == sorted(concluded) and len(probes) > 400


CONCLUDED = "SELECT probe_id FROM probes WHERE outcome IS NOT NULL"


def _moment(event: Event) -> datetime:
    return event.at if isinstance(event, CallEvent) else event.started_at


# -- folded months ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone", ["Pacific/Kiritimati", "Etc/GMT+12", "America/New_York", "Australia/Lord_Howe", "UTC"]
)
def test_retention_never_folds_any_of_the_current_month(zone: str) -> None:
    """Month to date reads raw events only, as ``month_to_date`` does, and ignores folded
    months: sound because even the shortest raw retention allowed keeps every contract's whole
    local month raw, in any time zone (UTC+14 to UTC-12, half-hour daylight saving), at any
    hour of the year."""
    [least] = [m.ge for m in Retention.model_fields["raw_days"].metadata if isinstance(m, Ge)]
    contract = a_contract(timezone=zone)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    while now < datetime(2027, 1, 1, tzinfo=UTC):
        period = month_period(contract, local_month(contract, now))
        assert raw_cutoff(now, int(least)) < period.start, now
        now += timedelta(minutes=30)
