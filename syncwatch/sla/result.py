"""Credits, money, deadlines, latency, incidents and the month's result (DESIGN §7.7-7.11)."""

from __future__ import annotations

import calendar
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from syncwatch.config.contracts import Contract
from syncwatch.sla.folded import FoldedMonth, usable_folds
from syncwatch.sla.intervals import (
    DOWN,
    Bucket,
    CallEvent,
    Counts,
    Event,
    Interval,
    ProbeEvent,
    bucket_events,
    count_minutes,
    down_runs,
    interval_statuses,
    merge_buckets,
)
from syncwatch.sla.periods import (
    MINUTE,
    Period,
    excluded_mask,
    mark,
    month_period,
    parse_month,
    previous_month,
)

CENT = Decimal("0.01")


def credit_percent(contract: Contract, uptime: Fraction | None) -> Decimal:
    """The largest tier credit whose ``below`` the uptime is strictly under, capped."""
    if uptime is None:
        return Decimal(0)
    percent = uptime * 100
    earned = [tier.credit for tier in contract.credits if percent < Fraction(tier.below)]
    return min(max(earned, default=Decimal(0)), contract.credit_cap_percent)


def credit_amount(contract: Contract, percent: Decimal) -> tuple[Decimal, Decimal]:
    """(credit %, amount): fee * credit / 100, half-up to cents; under the minimum, nothing."""
    amount = (contract.monthly_fee * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    if amount < contract.min_credit_amount:
        return Decimal(0), Decimal("0.00")
    return percent, amount


def claim_deadline(contract: Contract, month: str) -> date:
    """The last day to claim, inclusive (DESIGN §7.9), in the contract's local calendar."""
    year, number = parse_month(month)
    last_day = date(year, number, calendar.monthrange(year, number)[1])
    if contract.claim_deadline == "end_of_next_month":
        following = last_day + timedelta(days=1)
        return date(
            following.year, following.month, calendar.monthrange(*following.timetuple()[:2])[1]
        )
    return last_day + timedelta(days=contract.claim_window_days or 0)


def nearest_rank(values: Sequence[float], percentile: float) -> float | None:
    """The ⌈p/100·n⌉-th smallest value (DESIGN §7.10); exact for whole percentiles."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(Fraction(str(percentile)) * len(ordered) / 100)
    return ordered[max(rank, 1) - 1]


# -- the result ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyResult:
    percentile: float
    threshold_s: float
    observed_s: float | None
    probes: int
    met: bool | None


@dataclass(frozen=True)
class Incident:
    """A maximal run of down intervals: the raw material of a claim's evidence."""

    start: datetime
    end: datetime
    minutes: int
    dominant_error_class: str | None
    counts: dict[str, int]
    closed: bool


@dataclass(frozen=True)
class SlaResult:
    contract: str
    month: str
    timezone: str
    period_start: datetime
    period_end: datetime
    period_minutes: int
    excluded_minutes: int
    unknown_minutes: int
    eligible_minutes: int
    downtime_minutes: int
    uptime: Fraction | None
    objective_percent: Decimal
    met: bool | None
    credit_percent: Decimal
    credit_amount: Decimal
    currency: str
    consecutive_misses: int
    termination_right: bool
    claim_deadline: date
    latency: LatencyResult | None
    incidents: list[Incident]
    mttr_minutes: float | None

    @property
    def uptime_percent(self) -> float | None:
        """For display only: the exact figure is ``uptime``."""
        return None if self.uptime is None else float(self.uptime * 100)

    @property
    def missed(self) -> bool:
        return self.met is False

    def to_json(self) -> dict[str, Any]:
        """DESIGN §7's result object: money as a string, uptime as a float from the fraction."""
        return {
            "contract": self.contract,
            "month": self.month,
            "timezone": self.timezone,
            "period_start": _iso(self.period_start),
            "period_end": _iso(self.period_end),
            "period_minutes": self.period_minutes,
            "excluded_minutes": self.excluded_minutes,
            "unknown_minutes": self.unknown_minutes,
            "eligible_minutes": self.eligible_minutes,
            "downtime_minutes": self.downtime_minutes,
            "uptime_percent": self.uptime_percent,
            "uptime_fraction": None if self.uptime is None else str(self.uptime),
            "objective_percent": float(self.objective_percent),
            "met": self.met,
            "credit_percent": float(self.credit_percent),
            "credit_amount": str(self.credit_amount),
            "currency": self.currency,
            "consecutive_misses": self.consecutive_misses,
            "termination_right": self.termination_right,
            "claim_deadline": self.claim_deadline.isoformat(),
            "latency": None if self.latency is None else vars(self.latency),
            "incidents": [_incident_json(incident) for incident in self.incidents],
            "mttr_minutes": self.mttr_minutes,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "start": _iso(incident.start),
        "end": _iso(incident.end),
        "minutes": incident.minutes,
        "dominant_error_class": incident.dominant_error_class,
        "counts": dict(sorted(incident.counts.items())),
        "closed": incident.closed,
    }


def evaluate(
    contract: Contract,
    month: str,
    events: Iterable[Event],
    *,
    until: datetime | None = None,
    folds: Mapping[str, FoldedMonth] | None = None,
) -> SlaResult:
    """The month's result for one contract, from every event given (DESIGN §7).

    ``until`` makes it month-to-date: minutes from then on have not happened yet and count as
    excluded, so a policy of ``unknown: down`` does not charge the vendor for the future.
    ``folds`` are what retention folded of each month (``sla.folded``), by month; they add to
    the raw events (an event is either folded or raw, never both).
    """
    folded = usable_folds(contract, folds or {})
    by_month = partition_by_month(contract, month, events)
    for label in folded:
        by_month.setdefault(label, [])
    kept = by_month.get(month, [])
    figures = _month(contract, month, kept, until, folded.get(month))
    counts, intervals, period, buckets = figures
    percent, amount = credit_amount(contract, credit_percent(contract, counts.uptime))
    met = (
        None
        if counts.uptime is None
        else counts.uptime * 100 >= Fraction(contract.objective_percent)
    )
    misses = _consecutive_misses(contract, month, by_month, met, folded)
    incidents = _incidents(period, intervals, buckets, contract.interval_minutes)
    closed = [incident.minutes for incident in incidents if incident.closed]
    return SlaResult(
        contract=contract.name,
        month=month,
        timezone=contract.timezone,
        period_start=period.start,
        period_end=period.end,
        period_minutes=counts.period,
        excluded_minutes=counts.excluded,
        unknown_minutes=counts.unknown,
        eligible_minutes=counts.eligible,
        downtime_minutes=counts.down,
        uptime=counts.uptime,
        objective_percent=contract.objective_percent,
        met=met,
        credit_percent=percent,
        credit_amount=amount,
        currency=contract.currency,
        consecutive_misses=misses,
        termination_right=bool(contract.termination_after)
        and misses >= (contract.termination_after or 0),
        claim_deadline=claim_deadline(contract, month),
        latency=_latency(contract, period, kept, folded.get(month)),
        incidents=incidents,
        mttr_minutes=sum(closed) / len(closed) if closed else None,
    )


def _month(
    contract: Contract,
    month: str,
    events: list[Event],
    until: datetime | None = None,
    fold: FoldedMonth | None = None,
) -> tuple[Counts, list[Interval], Period, dict[int, Bucket]]:
    period = month_period(contract, month)
    buckets = bucket_events(contract, period, events)
    if fold is not None:
        merge_buckets(buckets, fold.buckets)
    counts, intervals = _counted(contract, period, excluded_mask(contract, period), buckets, until)
    return counts, intervals, period, buckets


def _counted(
    contract: Contract,
    period: Period,
    mask: bytearray,
    buckets: dict[int, Bucket],
    until: datetime | None,
) -> tuple[Counts, list[Interval]]:
    """Minutes by status; ``mask`` is copied, so a caller may keep one for the whole month."""
    mask = bytearray(mask)
    if until is not None:
        mark(mask, period, until, period.end, 1)
    intervals = interval_statuses(contract, period, mask, buckets)
    return count_minutes(contract, period, intervals), intervals


def _consecutive_misses(
    contract: Contract,
    month: str,
    by_month: dict[str, list[Event]],
    met: bool | None,
    folded: Mapping[str, FoldedMonth],
) -> int:
    """Missed months ending at this one; a month with no uptime ends the run (DESIGN §7.8)."""
    if met is not False:
        return 0
    misses, current = 1, previous_month(month)
    while current in by_month:
        fold = folded.get(current)
        uptime = _month(contract, current, by_month[current], None, fold)[0].uptime
        if uptime is None or uptime * 100 >= Fraction(contract.objective_percent):
            break
        misses, current = misses + 1, previous_month(current)
    return misses


MAX_MONTHS_BACK = 120
"""How far back consecutive misses look: ten years of evidence is more than any contract asks."""


def partition_by_month(
    contract: Contract, month: str, events: Iterable[Event]
) -> dict[str, list[Event]]:
    """The events of ``month`` and of each earlier local month, in one pass.

    Consecutive misses need earlier months; sorting each event into its month once (a binary
    search over month starts) keeps that from re-reading every event for every month.
    """
    kept = events if isinstance(events, list) else list(events)
    earliest = min((_moment(event) for event in kept), default=None)
    months, current = [month], month
    target = month_period(contract, month)
    starts = [target.start]
    while earliest is not None and starts[0] > earliest and len(months) <= MAX_MONTHS_BACK:
        current = previous_month(current)
        months.insert(0, current)
        starts.insert(0, month_period(contract, current).start)
    by_month: dict[str, list[Event]] = {label: [] for label in months}
    for event in kept:
        moment = _moment(event)
        if moment < starts[0] or moment >= target.end:
            continue
        by_month[months[bisect_right(starts, moment) - 1]].append(event)
    return by_month


def _moment(event: Event) -> datetime:
    return event.at if isinstance(event, CallEvent) else event.started_at


def _latency(
    contract: Contract, period: Period, events: list[Event], fold: FoldedMonth | None = None
) -> LatencyResult | None:
    objective = contract.latency_objective
    if objective is None:
        return None
    covered = set(contract.integrations)
    values = [
        event.latency_s
        for event in events
        if isinstance(event, ProbeEvent)
        and event.latency_s is not None
        and event.integration in covered
        and period.start <= event.started_at < period.end
    ]
    if fold is not None:
        values.extend(fold.latencies)
    observed = nearest_rank(values, objective.percentile)
    met = None if observed is None else observed <= objective.threshold_s
    return LatencyResult(objective.percentile, objective.threshold_s, observed, len(values), met)


def _incidents(
    period: Period, intervals: list[Interval], buckets: dict[int, Bucket], width: int
) -> list[Incident]:
    incidents = []
    for run in down_runs(intervals):
        counts: Counter[str] = Counter()
        for interval in run:
            if interval.status == DOWN and interval.index in buckets:
                counts.update(buckets[interval.index].classes)
        dominant = min(counts, key=lambda c: (-counts[c], c)) if counts else None
        start = period.start + run[0].start_minute * MINUTE
        end = period.start + run[-1].end_minute * MINUTE
        minutes = sum(interval.counted for interval in run if interval.status == DOWN)
        incidents.append(Incident(start, end, minutes, dominant, dict(counts), end < period.end))
    return incidents
