"""Events, the status of each interval, runs of downtime and the minute counts (DESIGN §7.4-7.6)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import NamedTuple

from syncwatch.config.contracts import Contract
from syncwatch.errors import ATTRIBUTION
from syncwatch.sla.periods import Period

VENDOR_CLASSES = frozenset(c for c, who in ATTRIBUTION.items() if who == "vendor")
MONITOR_CLASSES = frozenset(c for c, who in ATTRIBUTION.items() if who == "monitor")
UP, DOWN, UNKNOWN, EXCLUDED = "up", "down", "unknown", "excluded"


class ProbeEvent(NamedTuple):
    """A probe's result as evidence (a named tuple: a month is half a million of them)."""

    integration: str
    started_at: datetime
    outcome: str
    error_class: str | None = None
    latency_s: float | None = None


class CallEvent(NamedTuple):
    """An API call as evidence."""

    vendor: str
    at: datetime
    ok: bool
    error_class: str | None = None
    status: int | None = None
    integration: str | None = None


Event = ProbeEvent | CallEvent


# -- interval status ----------------------------------------------------------------------------


@dataclass
class Bucket:
    """What the events of one interval add up to."""

    ok: int = 0
    vendor_failures: int = 0
    evidence: bool = False
    probe_down: bool = False
    classes: Counter[str] = field(default_factory=Counter)

    def merged(self, other: Bucket) -> Bucket:
        """The bucket both event sets add up to (for month-to-date kept incrementally)."""
        return Bucket(
            ok=self.ok + other.ok,
            vendor_failures=self.vendor_failures + other.vendor_failures,
            evidence=self.evidence or other.evidence,
            probe_down=self.probe_down or other.probe_down,
            classes=self.classes + other.classes,
        )

    def status(self, contract: Contract) -> str:
        rule = contract.downtime
        valid = self.ok + self.vendor_failures
        too_many = valid >= rule.min_calls and Fraction(self.vendor_failures, valid) > Fraction(
            rule.error_rate_above
        )
        if too_many or self.probe_down:
            return DOWN
        return UP if self.evidence else UNKNOWN


def bucket_events(contract: Contract, period: Period, events: Iterable[Event]) -> dict[int, Bucket]:
    """The covered events of the period, by interval index (DESIGN §7.4)."""
    width = timedelta(minutes=contract.interval_minutes)
    covered = set(contract.integrations)
    buckets: dict[int, Bucket] = {}
    for event in events:
        moment = event.at if isinstance(event, CallEvent) else event.started_at
        if not period.start <= moment < period.end:
            continue
        if isinstance(event, CallEvent):
            if event.vendor == contract.vendor:
                _add_call(_bucket(buckets, (moment - period.start) // width), event)
        elif event.integration in covered:
            _add_probe(_bucket(buckets, (moment - period.start) // width), event, contract)
    return buckets


def merge_buckets(into: dict[int, Bucket], more: dict[int, Bucket]) -> None:
    """Add ``more``'s buckets into ``into``, never changing a bucket ``into`` shares (buckets
    add up: month to date kept incrementally, folded months plus raw events)."""
    for index, bucket in more.items():
        known = into.get(index)
        into[index] = bucket if known is None else known.merged(bucket)


def _bucket(buckets: dict[int, Bucket], index: int) -> Bucket:
    bucket = buckets.get(index)
    if bucket is None:
        bucket = buckets[index] = Bucket()
    return bucket


def _add_call(bucket: Bucket, call: CallEvent) -> None:
    if call.ok:
        bucket.ok += 1
        bucket.evidence = True
        return
    error_class = call.error_class or ""
    if error_class in VENDOR_CLASSES:
        bucket.vendor_failures += 1
        bucket.classes[error_class] += 1
    if error_class not in MONITOR_CLASSES:
        bucket.evidence = True


def _add_probe(bucket: Bucket, probe: ProbeEvent, contract: Contract) -> None:
    rule = contract.downtime
    if probe.outcome != "skipped":
        bucket.evidence = True
    error_class = probe.error_class or ("sync_lost" if probe.outcome == "lost" else None)
    if rule.lost_probe and probe.outcome == "lost" and error_class in VENDOR_CLASSES:
        bucket.probe_down = True
        bucket.classes[error_class] += 1
    if rule.latency_above_s is not None and (probe.latency_s or 0) > rule.latency_above_s:
        bucket.probe_down = True
        bucket.classes["latency"] += 1


@dataclass(frozen=True)
class Interval:
    index: int
    start_minute: int
    end_minute: int
    counted: int
    """Non-excluded minutes."""
    status: str


def interval_statuses(
    contract: Contract, period: Period, mask: bytearray, buckets: dict[int, Bucket]
) -> list[Interval]:
    """Every interval with its non-excluded minutes and status, the consecutive rule applied."""
    return consecutive_rule(contract, raw_intervals(contract, period, mask, buckets))


def raw_intervals(
    contract: Contract,
    period: Period,
    mask: bytearray,
    buckets: dict[int, Bucket],
    first: int = 0,
    last: int | None = None,
) -> list[Interval]:
    """Intervals ``first`` to ``last`` (exclusive; default: all) before the consecutive rule,
    which needs its neighbours: apply ``consecutive_rule`` to the whole list."""
    width, minutes = contract.interval_minutes, period.minutes  # a month has ~9,000 intervals
    count = interval_count(contract, period)
    intervals = []
    for index in range(first, count if last is None else min(last, count)):
        start = index * width
        end = min(start + width, minutes)
        counted = mask[start:end].count(0)
        bucket = buckets.get(index)
        status = EXCLUDED if counted == 0 else bucket.status(contract) if bucket else UNKNOWN
        intervals.append(Interval(index, start, end, counted, status))
    return intervals


def interval_count(contract: Contract, period: Period) -> int:
    return -(-period.minutes // contract.interval_minutes)


def consecutive_rule(contract: Contract, intervals: list[Interval]) -> list[Interval]:
    """DESIGN §7.5 on a run of intervals (the whole period, or its start)."""
    threshold = contract.downtime.min_consecutive_minutes
    return intervals if threshold is None else _forgive_short_runs(intervals, threshold)


def _forgive_short_runs(intervals: list[Interval], threshold: int) -> list[Interval]:
    """Runs of down intervals shorter than ``threshold`` minutes count as up (DESIGN §7.5)."""
    result = list(intervals)
    for run in down_runs(intervals):
        if sum(interval.counted for interval in run) < threshold:
            for interval in run:
                if interval.status == DOWN:
                    result[interval.index] = Interval(
                        interval.index, interval.start_minute, interval.end_minute,
                        interval.counted, UP,
                    )  # fmt: skip
    return result


def down_runs(intervals: Sequence[Interval]) -> list[list[Interval]]:
    """Maximal runs of down intervals; fully excluded ones inside a run belong to it."""
    runs: list[list[Interval]] = []
    current: list[Interval] = []
    pending: list[Interval] = []  # excluded intervals after the last down one
    for interval in intervals:
        if interval.status == DOWN:
            current.extend(pending)
            current.append(interval)
            pending = []
        elif interval.status == EXCLUDED and current:
            pending.append(interval)
        else:
            if current:
                runs.append(current)
            current, pending = [], []
    if current:
        runs.append(current)
    return runs


# -- the month's figures ------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    period: int
    excluded: int
    unknown: int
    down: int
    eligible: int
    uptime: Fraction | None


def count_minutes(contract: Contract, period: Period, intervals: Sequence[Interval]) -> Counts:
    """E, U, D, eligible and uptime by the contract's ``unknown`` policy (DESIGN §7.6)."""
    excluded = period.minutes - sum(interval.counted for interval in intervals)
    down = sum(i.counted for i in intervals if i.status == DOWN)
    unknown = sum(i.counted for i in intervals if i.status == UNKNOWN)
    eligible = period.minutes - excluded
    if contract.unknown == "exclude":
        eligible -= unknown
    elif contract.unknown == "down":
        down += unknown
    decided = any(i.status in (UP, DOWN) for i in intervals)
    uptime = Fraction(eligible - down, eligible) if eligible > 0 and decided else None
    return Counts(period.minutes, excluded, unknown, down, eligible, uptime)
