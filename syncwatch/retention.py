"""Retention: fold the raw events older than ``raw_days`` into each contract's month, roll them
up by hour, delete them; expire what is older than ``rollup_days`` (docs/storage.md).

Whole hours of raw events at a time (one, or more while they are few), in one transaction:
every covered contract's month gains their buckets, latencies and call counts
(``sla.folded``), the hourly rollups gain their counts, and the rows are deleted. So an event
is always either raw or folded, never both and never neither, and a crash between steps loses
nothing. Between steps the event loop gets a turn, so a first run on a large database does not
stall probing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from syncwatch.config import Config, Contract
from syncwatch.errors import StoreError
from syncwatch.evidence import call_event, probe_event
from syncwatch.rollup_store import RollupStore
from syncwatch.sla import Event, month_period
from syncwatch.sla.folded import fold_events, fuller
from syncwatch.sla.periods import parse_month
from syncwatch.store import Store, from_db_time

HOUR = timedelta(hours=1)
ROWS_PER_STEP = (2_000, 20_000)
"""A step folds whole hours: more of them while steps stay under the first figure (a backlog
of a sparse database goes fast), fewer once one passes the second (the event loop waits for
each step)."""


def _next_span(span: timedelta, rows: int) -> timedelta:
    low, high = ROWS_PER_STEP
    if rows < low:
        return min(span * 2, timedelta(days=1))
    if rows > high and span > HOUR:
        return span // 2
    return span


@dataclass
class RetentionReport:
    folded: set[tuple[str, str]]
    """(contract, month) that gained folded events this run."""
    probes_removed: int = 0
    calls_removed: int = 0
    rollups_expired: int = 0
    cutoff: datetime | None = None
    """Raw events before this are gone (folded and rolled up)."""


def raw_cutoff(now: datetime, raw_days: int) -> datetime:
    """Raw events before this go: ``raw_days`` back, floored to the UTC hour."""
    cutoff = (now - timedelta(days=raw_days)).astimezone(UTC)
    return cutoff.replace(minute=0, second=0, microsecond=0)


def local_months(contract: Contract, first: datetime, last: datetime) -> list[str]:
    """The contract's local months from ``first``'s to ``last``'s."""
    month, end = _local(contract, first), _local(contract, last)
    months = [month]
    while month < end:
        year, number = parse_month(month)
        month = f"{year + number // 12:04d}-{number % 12 + 1:02d}"
        months.append(month)
    return months


def _local(contract: Contract, moment: datetime) -> str:
    return moment.astimezone(contract.zone).strftime("%Y-%m")


class Retention:
    """Runs on the daemon's loop (the store's one writer), at start and hourly; idempotent."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.rollups = RollupStore(store)

    async def run(self, now: datetime) -> RetentionReport:
        try:
            return await self._run(now)
        except sqlite3.Error as exc:  # each hour is one transaction: a failed one left nothing
            raise StoreError(f"retention: {exc}") from exc

    async def _run(self, now: datetime) -> RetentionReport:
        policy = self.config.retention
        report = RetentionReport(folded=set(), cutoff=raw_cutoff(now, policy.raw_days))
        assert report.cutoff is not None
        span = HOUR
        while (oldest := self.rollups.oldest_raw()) is not None and oldest < report.cutoff:
            end = min(report.cutoff, oldest.replace(minute=0, second=0, microsecond=0) + span)
            probes, calls = self._fold_hour(end, report)
            if not probes and not calls:
                break  # only probes still in flight are left before the cutoff
            span = _next_span(span, probes + calls)
            await asyncio.sleep(0)
        report.rollups_expired = self.rollups.expire_before(
            now - timedelta(days=policy.rollup_days)
        )
        return report

    def _fold_hour(self, end: datetime, report: RetentionReport) -> tuple[int, int]:
        """Fold, roll up and delete every raw event before ``end`` (whole hours' worth)."""
        probe_rows, call_rows = self.rollups.raw_before(end)
        events: list[Event] = [probe_event(row) for row in probe_rows]
        events.extend(call_event(row) for row in call_rows)
        if events:
            moments = [from_db_time(r["scheduled_at"]) for r in probe_rows]
            moments += [from_db_time(r["at"]) for r in call_rows]
            with self.store.atomic():
                for contract in self.config.contracts:
                    self._fold_contract(
                        contract, events, call_rows, min(moments), max(moments), report
                    )
                self.rollups.roll_up_and_delete(end, probe_rows, call_rows)
        report.probes_removed += len(probe_rows)
        report.calls_removed += len(call_rows)
        return len(probe_rows), len(call_rows)

    def _fold_contract(
        self,
        contract: Contract,
        events: list[Event],
        call_rows: Sequence[Mapping[str, Any]],
        first: datetime,
        last: datetime,
        report: RetentionReport,
    ) -> None:
        accounts = {a.name for a in self.config.accounts if a.vendor == contract.vendor}
        for month in local_months(contract, first, last):
            period = month_period(contract, month)
            quota = _peak_reading(call_rows, accounts, period.start, period.end)
            piece = fold_events(contract, month, events, quota)
            if piece.buckets or piece.latencies or piece.calls:
                self.rollups.add_fold(piece, period.end)
                report.folded.add((contract.name, month))


def _peak_reading(
    call_rows: Sequence[Mapping[str, Any]], accounts: set[str], start: datetime, end: datetime
) -> tuple[int, int] | None:
    """The fullest quota reading of ``accounts`` in [start, end), as claims report it."""
    peak = None
    for row in call_rows:
        used, limit = row["quota_used"], row["quota_limit"]
        if used is None or not limit or row["account"] not in accounts:
            continue
        if start <= from_db_time(row["at"]) < end:
            peak = fuller(peak, (used, limit))
    return peak
