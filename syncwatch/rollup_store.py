"""What is kept of events past raw retention: folded contract months and hourly rollups.

Schema v4 (``store._v4_retention``). Each folded month is one row holding ``sla.folded``'s JSON (its
non-empty interval buckets, latency result and call counts); hourly rollups count probes per
integration and template, by outcome and class, with the latency histogram of the
``syncwatch_sync_latency_seconds`` buckets, and calls per account and operation, by class. Rows are
merged with ``INSERT ... ON CONFLICT DO UPDATE`` (DESIGN §14.5), so folding the same hour twice
in pieces adds up to folding it once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncwatch.metrics import SYNC_LATENCY_BUCKETS
from syncwatch.sla.folded import FoldedMonth, fold_from_json, fold_json
from syncwatch.store import Store, from_db_time, to_db_time

LATENCY_BOUNDS: tuple[float, ...] = SYNC_LATENCY_BUCKETS
"""Upper bounds of the rollups' latency histogram (a last, open bucket follows): the metrics'
buckets, so a rolled-up hour reads like a scrape of it."""


@dataclass
class ProbeHour:
    integration: str
    template: str
    hour: str
    """``YYYY-MM-DDTHH`` (UTC), the hour the probes were scheduled in."""
    outcome: str
    error_class: str
    """Empty when the probes had none."""
    probes: int = 0
    latency_count: int = 0
    latency_sum: float = 0.0
    latency_max: float | None = None
    latency_buckets: list[int] | None = None

    def add(self, latency_s: float | None) -> None:
        self.probes += 1
        if latency_s is None:
            return
        self.latency_count += 1
        self.latency_sum += latency_s
        self.latency_max = (
            latency_s if self.latency_max is None else max(self.latency_max, latency_s)
        )
        buckets = self.latency_buckets or [0] * (len(LATENCY_BOUNDS) + 1)
        buckets[next((i for i, b in enumerate(LATENCY_BOUNDS) if latency_s <= b), -1)] += 1
        self.latency_buckets = buckets


@dataclass
class CallHour:
    account: str
    vendor: str
    operation: str
    hour: str
    error_class: str
    calls: int = 0
    duration_sum: float = 0.0
    quota_used_max: int | None = None
    quota_limit: int | None = None

    def add(self, duration_s: float, quota_used: int | None, quota_limit: int | None) -> None:
        self.calls += 1
        self.duration_sum += duration_s
        if quota_used is not None and (
            self.quota_used_max is None or quota_used > self.quota_used_max
        ):
            self.quota_used_max, self.quota_limit = quota_used, quota_limit


class RollupStore:
    """The rollup tables, on the daemon's store connection (its one writer)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn: sqlite3.Connection = store.db.conn

    # -- folded months ----------------------------------------------------------------------

    def save_fold(self, fold: FoldedMonth, period_end: datetime, now: datetime) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO folded_months (contract, month, period_end, folded_at, fold) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (contract, month) DO UPDATE SET "
                "period_end = excluded.period_end, folded_at = excluded.folded_at, "
                "fold = excluded.fold",
                [
                    fold.contract,
                    fold.month,
                    to_db_time(period_end),
                    to_db_time(now),
                    json.dumps(fold_json(fold), separators=(",", ":")),
                ],
            )

    def folds(self, contract: str | None = None) -> dict[str, dict[str, FoldedMonth]]:
        """Folded months by contract and month."""
        sql, args = "SELECT fold FROM folded_months", []
        if contract is not None:
            sql, args = sql + " WHERE contract = ?", [contract]
        found: dict[str, dict[str, FoldedMonth]] = {}
        for (text,) in self.conn.execute(sql, args):
            fold = fold_from_json(json.loads(text))
            found.setdefault(fold.contract, {})[fold.month] = fold
        return found

    def folded_keys(self) -> set[tuple[str, str]]:
        return {(c, m) for c, m in self.conn.execute("SELECT contract, month FROM folded_months")}

    # -- hourly rollups and raw deletion ----------------------------------------------------

    def fold_raw_before(self, cutoff: datetime, until_hour_after: datetime) -> tuple[int, int]:
        """Roll up and delete the concluded probes and the calls older than ``cutoff`` that
        fall before ``until_hour_after`` too (a chunk), in one transaction; returns how many
        (probes, calls) were removed. Unfinished probes stay: a restart resumes them."""
        end = to_db_time(min(cutoff, until_hour_after))
        probe_rows = self.conn.execute(
            "SELECT integration, template, scheduled_at, outcome, error_class, latency_s "
            "FROM probes WHERE scheduled_at < ? AND finished_at IS NOT NULL",
            [end],
        ).fetchall()
        call_rows = self.conn.execute(
            "SELECT account, vendor, operation, at, error_class, duration_s, quota_used, "
            "quota_limit FROM api_calls WHERE at < ?",
            [end],
        ).fetchall()
        with self.conn:
            self._upsert_probe_hours(_probe_hours(probe_rows))
            self._upsert_call_hours(_call_hours(call_rows))
            self.conn.execute("DELETE FROM api_calls WHERE at < ?", [end])
            self.conn.execute(
                "DELETE FROM probes WHERE scheduled_at < ? AND finished_at IS NOT NULL", [end]
            )
        return len(probe_rows), len(call_rows)

    def oldest_raw(self) -> datetime | None:
        """The earliest concluded probe or call still stored."""
        row = self.conn.execute(
            "SELECT min(t) FROM (SELECT min(scheduled_at) AS t FROM probes "
            "WHERE finished_at IS NOT NULL UNION ALL SELECT min(at) FROM api_calls)"
        ).fetchone()
        return None if row[0] is None else from_db_time(row[0])

    def expire_before(self, cutoff: datetime) -> int:
        """Drop rollups and folded months that ended before ``cutoff``; returns rows removed."""
        hour = to_db_time(cutoff)[:13]
        with self.conn:
            removed = self.conn.execute("DELETE FROM probe_hours WHERE hour < ?", [hour]).rowcount
            removed += self.conn.execute("DELETE FROM call_hours WHERE hour < ?", [hour]).rowcount
            removed += self.conn.execute(
                "DELETE FROM folded_months WHERE period_end <= ?", [to_db_time(cutoff)]
            ).rowcount
        return removed

    def probe_hours(self, since: str = "", until: str = "~") -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT * FROM probe_hours WHERE hour >= ? AND hour < ? "
            "ORDER BY hour, integration, template, outcome, error_class",
            [since, until],
        )
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor]
        for row in rows:
            row["latency_buckets"] = json.loads(row["latency_buckets"])
        return rows

    def call_hours(self, since: str = "", until: str = "~") -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT * FROM call_hours WHERE hour >= ? AND hour < ? "
            "ORDER BY hour, account, operation, error_class",
            [since, until],
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def _upsert_probe_hours(self, hours: Iterable[ProbeHour]) -> None:
        for h in hours:
            known = self.conn.execute(
                "SELECT latency_buckets FROM probe_hours WHERE integration = ? AND template = ? "
                "AND hour = ? AND outcome = ? AND error_class = ?",
                [h.integration, h.template, h.hour, h.outcome, h.error_class],
            ).fetchone()
            buckets = h.latency_buckets or [0] * (len(LATENCY_BOUNDS) + 1)
            if known is not None:  # a probe concluded late into an hour already rolled up
                buckets = [a + b for a, b in zip(buckets, json.loads(known[0]), strict=True)]
            self.conn.execute(
                "INSERT INTO probe_hours VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (integration, template, hour, outcome, error_class) DO UPDATE SET "
                "probes = probes + excluded.probes, "
                "latency_count = latency_count + excluded.latency_count, "
                "latency_sum = latency_sum + excluded.latency_sum, "
                "latency_max = max(coalesce(latency_max, excluded.latency_max), "
                "coalesce(excluded.latency_max, latency_max)), "
                "latency_buckets = excluded.latency_buckets",
                [
                    h.integration,
                    h.template,
                    h.hour,
                    h.outcome,
                    h.error_class,
                    h.probes,
                    h.latency_count,
                    h.latency_sum,
                    h.latency_max,
                    json.dumps(buckets, separators=(",", ":")),
                ],
            )

    def _upsert_call_hours(self, hours: Iterable[CallHour]) -> None:
        self.conn.executemany(
            "INSERT INTO call_hours VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account, operation, hour, error_class) DO UPDATE SET "
            "calls = calls + excluded.calls, duration_sum = duration_sum + excluded.duration_sum, "
            f"quota_limit = CASE WHEN {_FULLER} THEN excluded.quota_limit ELSE quota_limit END, "
            f"quota_used_max = CASE WHEN {_FULLER} THEN excluded.quota_used_max "
            "ELSE quota_used_max END",
            [
                (
                    h.account,
                    h.vendor,
                    h.operation,
                    h.hour,
                    h.error_class,
                    h.calls,
                    h.duration_sum,
                    h.quota_used_max,
                    h.quota_limit,
                )
                for h in hours
            ],
        )


_FULLER = (
    "excluded.quota_used_max IS NOT NULL AND "
    "(quota_used_max IS NULL OR excluded.quota_used_max > quota_used_max)"
)
"""The incoming hour read a fuller quota than the stored one (SET sees the old row)."""


def _probe_hours(rows: Sequence[tuple[Any, ...]]) -> list[ProbeHour]:
    hours: dict[tuple[str, str, str, str, str], ProbeHour] = {}
    for integration, template, scheduled_at, outcome, error_class, latency_s in rows:
        key = (integration, template, scheduled_at[:13], outcome, error_class or "")
        hour = hours.get(key)
        if hour is None:
            hour = hours[key] = ProbeHour(*key)
        hour.add(latency_s)
    return list(hours.values())


def _call_hours(rows: Sequence[tuple[Any, ...]]) -> list[CallHour]:
    hours: dict[tuple[str, str, str, str, str], CallHour] = {}
    for account, vendor, operation, at, error_class, duration_s, used, limit in rows:
        key = (account, vendor, operation, at[:13], error_class or "")
        hour = hours.get(key)
        if hour is None:
            hour = hours[key] = CallHour(*key)
        hour.add(duration_s, used, limit)
    return list(hours.values())
