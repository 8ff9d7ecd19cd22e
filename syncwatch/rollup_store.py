"""What is kept of events past raw retention: folded contract months and hourly rollups.

Schema v4 (``store_schema._v4_retention``). A contract month's fold (``sla.folded``) is spread
over three tables: its totals and terms (``fold_months``), one row per interval
(``fold_intervals``), and the covered probes' latencies, packed 8 bytes each
(``fold_latencies``). Hourly rollups count
probes per integration and template, by outcome and class, with the latency histogram of the
``syncwatch_sync_latency_seconds`` buckets, and calls per account and operation, by class. Every
row is merged with ``INSERT ... ON CONFLICT DO UPDATE`` (DESIGN §14.5), so folding a month an
hour at a time adds up to folding it at once.
"""

from __future__ import annotations

import json
import sqlite3
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncwatch.metrics import SYNC_LATENCY_BUCKETS
from syncwatch.sla.folded import FoldedMonth, check_terms
from syncwatch.sla.intervals import Bucket
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

    def add_fold(self, piece: FoldedMonth, period_end: datetime) -> None:
        """Add ``piece`` to its month's fold (inside the caller's transaction)."""
        known = self.conn.execute(
            "SELECT terms FROM fold_months WHERE contract = ? AND month = ?",
            [piece.contract, piece.month],
        ).fetchone()
        if known is not None:
            check_terms(piece.contract, piece.month, json.loads(known[0]), piece.terms)
        used, limit = piece.peak_quota or (None, None)
        self.conn.execute(
            "INSERT INTO fold_months VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (contract, month) DO UPDATE SET calls = calls + excluded.calls, "
            "calls_ok = calls_ok + excluded.calls_ok, "
            "calls_vendor_failed = calls_vendor_failed + excluded.calls_vendor_failed, "
            f"quota_limit = CASE WHEN {_FULLER_FOLD} THEN excluded.quota_limit "
            "ELSE quota_limit END, "
            f"quota_used = CASE WHEN {_FULLER_FOLD} THEN excluded.quota_used ELSE quota_used END",
            [
                piece.contract,
                piece.month,
                to_db_time(period_end),
                json.dumps(piece.terms, sort_keys=True),
                piece.calls,
                piece.calls_ok,
                piece.calls_vendor_failed,
                used,
                limit,
            ],
        )
        self._add_intervals(piece)
        if piece.latencies:
            self.conn.execute(
                "INSERT INTO fold_latencies SELECT ?, ?, coalesce(max(seq), 0) + 1, ? "
                "FROM fold_latencies WHERE contract = ? AND month = ?",
                [
                    piece.contract,
                    piece.month,
                    array("d", piece.latencies).tobytes(),
                    piece.contract,
                    piece.month,
                ],
            )

    def _add_intervals(self, piece: FoldedMonth) -> None:
        if not piece.buckets:
            return
        indexes = sorted(piece.buckets)
        known = dict(
            self.conn.execute(
                "SELECT idx, classes FROM fold_intervals WHERE contract = ? AND month = ? "
                "AND idx BETWEEN ? AND ?",
                [piece.contract, piece.month, indexes[0], indexes[-1]],
            ).fetchall()
        )
        rows = []
        for index in indexes:
            bucket = piece.buckets[index]
            classes = Counter(bucket.classes)
            if index in known:
                classes.update(json.loads(known[index]))
            rows.append(
                (
                    piece.contract,
                    piece.month,
                    index,
                    bucket.ok,
                    bucket.vendor_failures,
                    int(bucket.evidence),
                    int(bucket.probe_down),
                    json.dumps(dict(sorted(classes.items())), separators=(",", ":")),
                )
            )
        self.conn.executemany(
            "INSERT INTO fold_intervals VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (contract, month, idx) DO UPDATE SET ok = ok + excluded.ok, "
            "vendor_failures = vendor_failures + excluded.vendor_failures, "
            "evidence = max(evidence, excluded.evidence), "
            "probe_down = max(probe_down, excluded.probe_down), classes = excluded.classes",
            rows,
        )

    def folds(self, contract: str, months: Iterable[str] | None = None) -> dict[str, FoldedMonth]:
        """A contract's folded months (all, or those of ``months``), by month."""
        wanted = None if months is None else set(months)
        found: dict[str, FoldedMonth] = {}
        for row in self.conn.execute(
            "SELECT month, terms, calls, calls_ok, calls_vendor_failed, quota_used, quota_limit "
            "FROM fold_months WHERE contract = ? ORDER BY month",
            [contract],
        ):
            month, terms, calls, ok, failed, used, limit = row
            if wanted is not None and month not in wanted:
                continue
            found[month] = FoldedMonth(
                contract=contract,
                month=month,
                terms=json.loads(terms),
                buckets=self._buckets(contract, month),
                latencies=self._latencies(contract, month),
                calls=calls,
                calls_ok=ok,
                calls_vendor_failed=failed,
                peak_quota=None if used is None else (used, limit),
            )
        return found

    def _buckets(self, contract: str, month: str) -> dict[int, Bucket]:
        rows = self.conn.execute(
            "SELECT idx, ok, vendor_failures, evidence, probe_down, classes FROM fold_intervals "
            "WHERE contract = ? AND month = ?",
            [contract, month],
        )
        return {
            idx: Bucket(ok, failed, bool(evidence), bool(down), Counter(json.loads(classes)))
            for idx, ok, failed, evidence, down, classes in rows
        }

    def _latencies(self, contract: str, month: str) -> tuple[float, ...]:
        values = array("d")
        for (blob,) in self.conn.execute(
            "SELECT latencies FROM fold_latencies WHERE contract = ? AND month = ? ORDER BY seq",
            [contract, month],
        ):
            values.frombytes(blob)
        return tuple(values)

    def folded_months(self) -> set[tuple[str, str]]:
        return {(c, m) for c, m in self.conn.execute("SELECT contract, month FROM fold_months")}

    # -- hourly rollups and raw deletion ----------------------------------------------------

    def raw_before(self, end: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The concluded probes and the calls before ``end``: what the next fold takes."""
        bound = to_db_time(end)
        probes = self._rows(f"SELECT * FROM probes WHERE scheduled_at < ? AND {_CONCLUDED}", bound)
        calls = self._rows("SELECT * FROM api_calls WHERE at < ?", bound)
        return probes, calls

    def roll_up_and_delete(
        self, end: datetime, probes: Sequence[Mapping[str, Any]], calls: Sequence[Mapping[str, Any]]
    ) -> None:
        """Add ``raw_before(end)``'s rows to the hourly rollups and delete them (inside the
        caller's transaction, with the folds of the same rows)."""
        bound = to_db_time(end)
        self._upsert_probe_hours(_probe_hours(probes))
        self._upsert_call_hours(_call_hours(calls))
        self.conn.execute("DELETE FROM api_calls WHERE at < ?", [bound])
        self.conn.execute(f"DELETE FROM probes WHERE scheduled_at < ? AND {_CONCLUDED}", [bound])

    def _rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, args)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def oldest_raw(self) -> datetime | None:
        """The earliest concluded probe or call still stored."""
        row = self.conn.execute(
            f"SELECT min(t) FROM (SELECT min(scheduled_at) AS t FROM probes WHERE {_CONCLUDED} "
            "UNION ALL SELECT min(at) FROM api_calls)"
        ).fetchone()
        return None if row[0] is None else from_db_time(row[0])

    def expire_before(self, cutoff: datetime) -> int:
        """Drop rollups and folded months that ended before ``cutoff``; returns rows removed."""
        hour = to_db_time(cutoff)[:13]
        with self.store.atomic():
            removed = self.conn.execute("DELETE FROM probe_hours WHERE hour < ?", [hour]).rowcount
            removed += self.conn.execute("DELETE FROM call_hours WHERE hour < ?", [hour]).rowcount
            ended = "(SELECT contract, month FROM fold_months WHERE period_end <= ?)"
            for table in ("fold_intervals", "fold_latencies"):
                self.conn.execute(
                    f"DELETE FROM {table} WHERE (contract, month) IN {ended}", [to_db_time(cutoff)]
                )
            removed += self.conn.execute(
                "DELETE FROM fold_months WHERE period_end <= ?", [to_db_time(cutoff)]
            ).rowcount
        return removed

    def probe_hours(self, since: str = "", until: str = "~") -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT * FROM probe_hours WHERE hour >= ? AND hour < ? "
            "ORDER BY hour, integration, template, outcome, error_class",
            since,
            until,
        )
        for row in rows:
            row["latency_buckets"] = json.loads(row["latency_buckets"])
        return rows

    def call_hours(self, since: str = "", until: str = "~") -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM call_hours WHERE hour >= ? AND hour < ? "
            "ORDER BY hour, account, operation, error_class",
            since,
            until,
        )

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


def _probe_hours(rows: Sequence[Mapping[str, Any]]) -> list[ProbeHour]:
    hours: dict[tuple[str, str, str, str, str], ProbeHour] = {}
    for row in rows:
        key = (
            row["integration"],
            row["template"],
            row["scheduled_at"][:13],
            row["outcome"],
            row["error_class"] or "",
        )
        hour = hours.get(key)
        if hour is None:
            hour = hours[key] = ProbeHour(*key)
        hour.add(row["latency_s"])
    return list(hours.values())


def _call_hours(rows: Sequence[Mapping[str, Any]]) -> list[CallHour]:
    hours: dict[tuple[str, str, str, str, str], CallHour] = {}
    for row in rows:
        key = (
            row["account"],
            row["vendor"],
            row["operation"],
            row["at"][:13],
            row["error_class"] or "",
        )
        hour = hours.get(key)
        if hour is None:
            hour = hours[key] = CallHour(*key)
        hour.add(row["duration_s"], row["quota_used"], row["quota_limit"])
    return list(hours.values())


_CONCLUDED = "finished_at IS NOT NULL AND outcome IS NOT NULL"
"""Probes that can no longer change: folded and deleted together, never one without the other."""
_FULLER_FOLD = (
    "excluded.quota_used IS NOT NULL AND (quota_used IS NULL OR "
    "excluded.quota_used * quota_limit > quota_used * excluded.quota_limit)"
)
"""The incoming piece read a fuller quota (used/limit, compared exactly by cross-multiplying)."""
