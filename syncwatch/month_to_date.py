"""Month-to-date uptime and credit per contract: the figures behind ``syncwatch_uptime_ratio``
and ``syncwatch_service_credit_ratio``.

``month_to_date`` is the definition: ``sla.evaluate`` of the local month so far. ``MonthToDate``
is what the daemon runs every few minutes, and gives exactly the same figures at a cost that
grows with what happened since its last refresh, not with the month (a simulated month spent
a seventh of its time re-reading and re-bucketing the last two hours of evidence):

- the month is read from the store once, at the first refresh; after that the daemon hands
  over every API call it records and every probe that concludes, as it happens;
- each event is bucketed once, into buckets kept for the month (buckets add up);
- the minutes of the intervals that can no longer change are kept as running counts
  (``MinuteTally``); a refresh only works out the last ``settle`` of intervals. An event that
  arrives later than that anyway (a destination that could not be queried for hours, probes
  resumed after a restart) rewinds the counts to its interval, so the figures stay exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import NamedTuple

from syncwatch.config import Config, Contract
from syncwatch.events import ApiCall
from syncwatch.evidence import api_call_event, probe_event, stored_events
from syncwatch.sla import CallEvent, Event, Interval, Period, evaluate, month_period
from syncwatch.sla.intervals import (
    DOWN,
    UNKNOWN,
    UP,
    Bucket,
    bucket_events,
    interval_count,
    merge_buckets,
    raw_intervals,
)
from syncwatch.sla.periods import excluded_mask, mark
from syncwatch.sla.result import credit_amount, credit_percent
from syncwatch.store import Store

Figures = dict[str, tuple[float | None, float | None]]
"""(uptime ratio, credit ratio) by contract name; (None, None) while there is no evidence."""

SETTLE_MARGIN = timedelta(minutes=10)
"""Beyond the slowest timeout: a call's time is when it was sent, recorded when it returns."""
CHECKPOINT_EVERY = 64
"""Intervals between the counts kept for a late event to rewind to (a day is 288 intervals of
five minutes; a month of one-minute intervals keeps 700 small tuples)."""


def month_to_date(config: Config, events: list[Event], now: datetime) -> Figures:
    """Each contract's (uptime ratio, credit ratio) for its local month up to ``now``, from
    every event given: the definition ``MonthToDate`` keeps to. Pure."""
    figures: Figures = {}
    for contract in config.contracts:
        result = evaluate(contract, local_month(contract, now), events, until=now)
        if result.uptime is None:
            figures[contract.name] = (None, None)
        else:
            figures[contract.name] = (float(result.uptime), float(result.credit_percent / 100))
    return figures


# -- minutes, counted as intervals become final -------------------------------------------------


class MinuteTally(NamedTuple):
    """The minutes of the intervals counted so far, as ``count_minutes`` would count them after
    ``consecutive_rule``: a running total, so final intervals are never looked at again."""

    counted: int = 0
    """Non-excluded minutes."""
    down: int = 0
    """Down minutes of the runs that have ended (and were long enough to count)."""
    unknown: int = 0
    decided: bool = False
    """Some interval was up or down."""
    open_run: int = 0
    """Down minutes of the run still going at the last interval: the consecutive rule can only
    judge a run once it has ended (or the period so far ends with it)."""


NOTHING_COUNTED = MinuteTally()


def tally_intervals(
    threshold: int | None, intervals: Iterable[Interval], tally: MinuteTally = NOTHING_COUNTED
) -> MinuteTally:
    """``tally`` with ``intervals`` (the ones right after those it counted) added.

    The consecutive rule as ``down_runs`` draws runs: down intervals, with fully excluded ones
    inside a run transparent (they count no minutes), ended by an up or unknown interval; a run
    of fewer than ``threshold`` minutes counts as up (DESIGN §7.5)."""
    counted, down, unknown, decided, run = tally
    for interval in intervals:
        status, minutes = interval.status, interval.counted
        counted += minutes
        if status == DOWN:
            decided = True
            run += minutes
        elif status in (UP, UNKNOWN):
            down += _run_minutes(threshold, run)
            run = 0
            if status == UP:
                decided = True
            else:
                unknown += minutes
    return MinuteTally(counted, down, unknown, decided, run)


def _run_minutes(threshold: int | None, run: int) -> int:
    """The down minutes a run of ``run`` minutes counts once it has ended."""
    return run if threshold is None or run >= threshold else 0


def uptime_of(contract: Contract, tally: MinuteTally) -> Fraction | None:
    """Uptime by the contract's ``unknown`` policy (DESIGN §7.6), as ``count_minutes`` has it,
    with the run still open at the end judged as ending there."""
    down = tally.down + _run_minutes(contract.downtime.min_consecutive_minutes, tally.open_run)
    eligible = tally.counted
    if contract.unknown == "exclude":
        eligible -= tally.unknown
    elif contract.unknown == "down":
        down += tally.unknown
    return Fraction(eligible - down, eligible) if eligible > 0 and tally.decided else None


# -- the daemon's incremental figures -----------------------------------------------------------


@dataclass
class _ContractMonth:
    """One contract's month so far: every event bucketed, and the counts of the intervals that
    can no longer change."""

    month: str
    period: Period
    mask: bytearray
    """The period's ``excluded_mask``, computed once."""
    buckets: dict[int, Bucket] = field(default_factory=dict)
    """Every event of the month handed over so far, by interval."""
    final: int = 0
    """Intervals ``[0, final)`` are counted in ``tally``."""
    tally: MinuteTally = NOTHING_COUNTED
    checkpoints: list[MinuteTally] = field(default_factory=list)
    """``checkpoints[k]`` counts intervals ``[0, (k + 1) * CHECKPOINT_EVERY)``: where a late
    event rewinds to, instead of the month's start."""

    def add(self, contract: Contract, events: list[Event]) -> None:
        """Bucket ``events`` (the ones of this period; others are ignored), rewinding the counts
        if one lands in an interval already counted."""
        fresh = bucket_events(contract, self.period, events)
        if not fresh:
            return
        merge_buckets(self.buckets, fresh)
        earliest = min(fresh)
        if earliest < self.final:  # late: count again from the checkpoint before it
            kept = earliest // CHECKPOINT_EVERY
            del self.checkpoints[kept:]
            self.final = kept * CHECKPOINT_EVERY
            self.tally = self.checkpoints[-1] if self.checkpoints else NOTHING_COUNTED

    def count_until(self, contract: Contract, last: int) -> None:
        """Count intervals up to ``last`` (exclusive) into ``tally``: call only for intervals
        wholly in the past, whose raw status needs no "not yet happened" minutes."""
        last = min(last, interval_count(contract, self.period))
        threshold = contract.downtime.min_consecutive_minutes
        while self.final < last:
            stop = min(last, (self.final // CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY)
            intervals = raw_intervals(
                contract, self.period, self.mask, self.buckets, self.final, stop
            )
            self.tally = tally_intervals(threshold, intervals, self.tally)
            self.final = stop
            if stop % CHECKPOINT_EVERY == 0:
                self.checkpoints.append(self.tally)

    def uptime(self, contract: Contract, now: datetime) -> Fraction | None:
        """Uptime up to ``now``: the counted intervals, and the rest worked out with the minutes
        from ``now`` on excluded (``evaluate(..., until=now)``)."""
        mask = bytearray(self.mask)
        mark(mask, self.period, now, self.period.end, 1)
        width = timedelta(minutes=contract.interval_minutes)
        last = math.ceil((now - self.period.start) / width)
        tail = raw_intervals(contract, self.period, mask, self.buckets, self.final, last)
        threshold = contract.downtime.min_consecutive_minutes
        return uptime_of(contract, tally_intervals(threshold, tail, self.tally))


class MonthToDate:
    """Month-to-date uptime and credit per contract, kept up to date incrementally.

    On the daemon's event loop: ``call_recorded`` and ``probe_concluded`` as things happen, and
    ``read`` at each refresh (the store's thread). Off the loop: ``compute``, which alone
    touches the month's state, and never runs beside ``read``. The figures are exactly
    ``month_to_date``'s over the store's events before ``now`` (tests compare them over
    simulated runs, across a restart and a month's end).

    Every event is counted exactly once: until the month is first read, what the daemon hands
    over is dropped (it was written to the store before it was handed over, so the read has it);
    after that, what is handed over was written after the read.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        slowest = max((i.timeout for i in config.integrations), default=0.0)
        self.settle = timedelta(seconds=slowest) + SETTLE_MARGIN
        """Events are expected within this of their time; a later one costs a recount."""
        self._vendors = {contract.vendor for contract in config.contracts}
        self._integrations = {name for c in config.contracts for name in c.integrations}
        self._loaded = False
        self._calls: list[Event] = []
        self._concluded: dict[str, None] = {}
        """Probe ids concluded since the last read (a dict: ordered, and each id once)."""
        self._months: dict[str, _ContractMonth] = {}
        self._early: list[Event] = []
        """Events at or after the last refresh's ``now``: they count from a later one on."""

    # -- on the event loop ---------------------------------------------------------------------

    def call_recorded(self, call: ApiCall) -> None:
        """An API call the store has just written."""
        if self._loaded and call.vendor in self._vendors:
            self._calls.append(api_call_event(call))

    def probe_concluded(self, probe_id: str, integration: str) -> None:
        """A probe whose outcome the store has just written (read back by ``read``: the store
        has the probe's time and latency as evidence holds them)."""
        if self._loaded and integration in self._integrations:
            self._concluded[probe_id] = None

    def read(self, store: Store, now: datetime) -> list[Event]:
        """The events ``compute`` has not had yet: the month's at the first refresh (then
        ``compute`` starts afresh), after that what was handed over since the last one."""
        if not self._loaded:
            periods = [month_period(c, local_month(c, now)) for c in self.config.contracts]
            if not periods:
                return []
            since = min(period.start for period in periods)
            until = max(period.end for period in periods)  # even what is not before ``now`` yet
            events = stored_events(store, since, until)
            self._months, self._early = {}, []
            self._calls, self._concluded = [], {}
            self._loaded = True
            return events
        events = [probe_event(row) for row in store.concluded_probes_by_id(list(self._concluded))]
        events.extend(self._calls)
        self._calls, self._concluded = [], {}
        return events

    # -- off the event loop --------------------------------------------------------------------

    def compute(self, events: list[Event], now: datetime) -> Figures:
        """(uptime, credit) ratios per contract at ``now``, with ``events`` (from ``read``)
        added. A failure leaves the state half-updated: the next read starts over."""
        try:
            return self._compute(events, now)
        except Exception:
            self._loaded = False
            raise

    def _compute(self, events: list[Event], now: datetime) -> Figures:
        arrived = [*self._early, *events]
        due = [event for event in arrived if _moment(event) < now]
        self._early = [event for event in arrived if _moment(event) >= now]
        settled = now - self.settle
        figures: Figures = {}
        for contract in self.config.contracts:
            state = self._month(contract, now)
            state.add(contract, due)
            width = timedelta(minutes=contract.interval_minutes)
            state.count_until(contract, max(0, (settled - state.period.start) // width))
            uptime = state.uptime(contract, now)
            if uptime is None:
                figures[contract.name] = (None, None)
            else:  # as ``evaluate`` has it: no credit under the contract's minimum amount
                credit = credit_amount(contract, credit_percent(contract, uptime))[0]
                figures[contract.name] = (float(uptime), float(credit / 100))
        return figures

    def _month(self, contract: Contract, now: datetime) -> _ContractMonth:
        month = local_month(contract, now)
        state = self._months.get(contract.name)
        if state is None or state.month != month:
            period = month_period(contract, month)
            state = _ContractMonth(month, period, excluded_mask(contract, period))
            self._months[contract.name] = state
        return state


def _moment(event: Event) -> datetime:
    return event.at if isinstance(event, CallEvent) else event.started_at


def local_month(contract: Contract, now: datetime) -> str:
    """The contract's month (``YYYY-MM``) at ``now``, in its own time zone."""
    return now.astimezone(contract.zone).strftime("%Y-%m")
