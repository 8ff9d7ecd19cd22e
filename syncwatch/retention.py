"""Retention: fold whole contract months past ``raw_days``, roll up and delete the raw events
behind them, and expire what is older than ``rollup_days`` (docs/storage.md).

The order is what keeps claims exact: a contract's month is folded (``sla.folded``) from its
complete raw evidence first, and raw events are deleted only below the start of every
contract's oldest unfolded month, so nothing is ever deleted that a fold has not counted.
Deletion goes an hour at a time, yielding to the event loop between hours, so a first run on a
large database does not stall probing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from syncwatch.config import Config, Contract
from syncwatch.errors import StoreError
from syncwatch.evidence import stored_events
from syncwatch.reports import peak_quota
from syncwatch.rollup_store import RollupStore
from syncwatch.sla import evaluate, month_period
from syncwatch.sla.folded import FoldedLatency, fold_month
from syncwatch.sla.periods import parse_month
from syncwatch.store import Store

HOUR = timedelta(hours=1)


@dataclass
class RetentionReport:
    folded: list[tuple[str, str]] = field(default_factory=list)
    """(contract, month) folded this run."""
    probes_removed: int = 0
    calls_removed: int = 0
    rollups_expired: int = 0
    cutoff: datetime | None = None
    """Raw events before this are gone (rolled up)."""


def local_month(contract: Contract, moment: datetime) -> str:
    return moment.astimezone(contract.zone).strftime("%Y-%m")


def next_month(month: str) -> str:
    year, number = parse_month(month)
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def months_to_fold(contract: Contract, oldest: datetime, horizon: datetime) -> list[str]:
    """The contract's local months from ``oldest``'s that ended by ``horizon``."""
    months, month = [], local_month(contract, oldest)
    while month_period(contract, month).end <= horizon:
        months.append(month)
        month = next_month(month)
    return months


def raw_cutoff(contracts: list[Contract], horizon: datetime) -> datetime:
    """Where raw deletion stops: the horizon, held back to the start of each contract's month
    that straddles it (only whole months are folded), floored to the UTC hour."""
    starts = [month_period(c, local_month(c, horizon)).start for c in contracts]
    cutoff = min([horizon, *starts]).astimezone(UTC)
    return cutoff.replace(minute=0, second=0, microsecond=0)


class Retention:
    """Runs on the daemon's loop (the store's one writer), hourly; idempotent."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.rollups = RollupStore(store)

    async def run(self, now: datetime) -> RetentionReport:
        try:
            return await self._run(now)
        except sqlite3.Error as exc:  # each step is one transaction: a failed one left nothing
            raise StoreError(f"retention: {exc}") from exc

    async def _run(self, now: datetime) -> RetentionReport:
        report = RetentionReport()
        policy = self.config.retention
        horizon = now - timedelta(days=policy.raw_days)
        oldest = self.rollups.oldest_raw()
        if oldest is not None and oldest < horizon:
            self._fold_months(oldest, horizon, now, report)
            report.cutoff = raw_cutoff(self.config.contracts, horizon)
            await self._delete_raw(report.cutoff, report)
        report.rollups_expired = self.rollups.expire_before(
            now - timedelta(days=policy.rollup_days)
        )
        return report

    def _fold_months(
        self, oldest: datetime, horizon: datetime, now: datetime, report: RetentionReport
    ) -> None:
        done = self.rollups.folded_keys()
        for contract in self.config.contracts:
            for month in months_to_fold(contract, oldest, horizon):
                if (contract.name, month) not in done:
                    self._fold(contract, month, now)
                    report.folded.append((contract.name, month))

    def _fold(self, contract: Contract, month: str, now: datetime) -> None:
        period = month_period(contract, month)
        events = stored_events(self.store, period.start, period.end)
        result = evaluate(contract, month, events)
        latency = (
            None
            if result.latency is None
            else FoldedLatency(result.latency.observed_s, result.latency.probes)
        )
        readings = self.store.quota_figures_between(period.start, period.end)
        quota = peak_quota(self.config, contract, result, readings)
        fold = fold_month(contract, month, events, latency, quota)
        self.rollups.save_fold(fold, period.end, now)

    async def _delete_raw(self, cutoff: datetime, report: RetentionReport) -> None:
        while (oldest := self.rollups.oldest_raw()) is not None and oldest < cutoff:
            chunk_end = oldest.replace(minute=0, second=0, microsecond=0) + HOUR
            probes, calls = self.rollups.fold_raw_before(cutoff, chunk_end)
            report.probes_removed += probes
            report.calls_removed += calls
            if not probes and not calls:
                break  # only unfinished probes are left below the cutoff
            await asyncio.sleep(0)
