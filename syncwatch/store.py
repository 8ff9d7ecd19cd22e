"""The SQLite store: probes, API calls and the latest quota per account.

One file, WAL, foreign keys on, and one writer (the daemon's event loop owns the connection; other
processes may read). The schema carries a version in ``PRAGMA user_version`` and syncwatch's
``PRAGMA application_id``, so a foreign file or one written by a newer build is refused with a
clear message instead of being "migrated" into garbage. Migrations only go forward.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from syncwatch.errors import StoreError, StoreVersionError
from syncwatch.events import ApiCall, QuotaFigure, QuotaReading
from syncwatch.store_schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ApiCall",
    "QuotaReading",
    "Store",
    "from_db_time",
    "to_db_time",
]


def to_db_time(moment: datetime) -> str:
    """UTC, fixed width, so text order is time order in indexes and range queries."""
    global _last_db_time
    last_moment, last_text = _last_db_time
    if moment is last_moment:  # the same object: a probe's writes mostly stamp one "now"
        return last_text
    if moment.tzinfo is UTC:  # the clocks' own: isoformat's "+00:00" written as "Z"
        text = moment.isoformat(timespec="microseconds")[:-6] + "Z"
    elif moment.tzinfo is None:
        raise ValueError("store times must be timezone-aware")
    else:  # isoformat, not strftime: faster, and it pads years before 1000 as the width needs
        text = moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
        text += "Z"
    _last_db_time = (moment, text)  # one tuple, swapped whole: safe from any thread
    return text


_last_db_time: tuple[datetime | None, str] = (None, "")
"""The last time ``to_db_time`` wrote, and its text (datetimes are immutable)."""


def from_db_time(text: str) -> datetime:
    """The inverse of ``to_db_time``. ``fromisoformat`` is an order of magnitude faster than
    ``strptime`` (reports and the month-to-date read parse every event's time), and the shape
    check keeps it as strict: only what ``to_db_time`` writes is read."""
    if len(text) != 27 or text[10] != "T" or text[19] != "." or text[26] != "Z":
        raise ValueError(f"not a store time: {text!r}")
    return datetime.fromisoformat(text)


class Store:
    """Typed access to the database; the only module that writes SQL."""

    def __init__(self, db: sqlite_utils.Database, path: str) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        """The plain connection the write path uses (sqlite-utils' ``atomic`` and ``execute``
        wrap each statement in savepoints and checks that a single insert does not need)."""
        self.path = path
        self.throwaway = False
        """Opened ``throwaway``: a simulation's, which may batch its commits (``batch``)."""
        self._column_cache: dict[str, frozenset[str]] = {}
        self._sql: dict[tuple[str, tuple[str, ...]], str] = {}
        self._probe_select: tuple[str, ...] | None = None
        self._quota: dict[tuple[str, str], QuotaReading] = {}
        self._quota_unsaved: dict[tuple[str, str], QuotaReading] | None = None
        """Inside ``batch``: each window's newest figure, written once as the batch ends."""
        self._recent: dict[str, dict[int, int]] = {}
        """Calls per account per minute (minutes since the epoch), the last RECENT_CALLS."""
        self._recent_total: dict[str, int] = {}
        self._recent_oldest: dict[str, int] = {}
        """Per account: every call in ``_recent``, and a minute no kept one is older than."""
        self._recent_before: dict[str, tuple[int, int]] = {}
        """Per account: the calls kept from before a minute, and that minute (``calls_since``)."""

    @classmethod
    def open(cls, path: Path | str, *, throwaway: bool = False) -> Store:
        """Open (creating if absent) and migrate the database at ``path``; ``:memory:`` works.

        ``throwaway`` (a simulation's database) never waits for the disk: no fsync even at WAL
        checkpoints. What is written, and when it is committed, is the same; only an OS crash
        could lose or corrupt the file, which a rerun of the simulation recreates."""
        name = str(path)
        try:
            db = sqlite_utils.Database(sqlite3.connect(name, timeout=10.0))
        except sqlite3.Error as exc:
            raise StoreError(f"{name}: cannot open the database: {exc}") from exc
        try:
            db.execute("PRAGMA foreign_keys = ON")
            store = cls(db, name)
            store.throwaway = throwaway
            store._check_ownership()  # before WAL: another application's file is left untouched
            if name != ":memory:":
                db.enable_wal()
                # With WAL, NORMAL syncs at checkpoints, not on every commit: a crash of the
                # process (SIGKILL included) loses nothing committed; only an OS crash or power
                # loss may lose the last transactions. Per-commit fsyncs would cost a disk flush
                # per probe transition and per API call.
                db.execute(f"PRAGMA synchronous = {'OFF' if throwaway else 'NORMAL'}")
            store._migrate()
            store._load_quota()
            store._load_recent()
        except StoreError:
            db.close()
            raise
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreVersionError(
                f"{name}: damaged, or not a syncwatch database ({exc})"
            ) from exc
        return store

    def close(self) -> None:
        self.db.close()

    @property
    def schema_version(self) -> int:
        return int(self._pragma("user_version"))

    def _pragma(self, name: str) -> Any:
        return self.db.execute(f"PRAGMA {name}").fetchone()[0]

    def _check_ownership(self) -> None:
        """Refuse a file that is another application's, or a newer syncwatch's, unchanged."""
        version, app_id = self.schema_version, int(self._pragma("application_id"))
        if app_id != APPLICATION_ID and (version or app_id or self.db.table_names()):
            raise StoreVersionError(
                f"{self.path}: not a syncwatch database (it holds other tables); "
                "point `database:` at a new file"
            )
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"{self.path}: written by a newer syncwatch (schema {version}; this build "
                f"knows up to {SCHEMA_VERSION}); upgrade syncwatch or use another file"
            )

    def _migrate(self) -> None:
        for target in range(self.schema_version, SCHEMA_VERSION):
            with self.db.atomic():
                MIGRATIONS[target](self.db)
                self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self.db.execute(f"PRAGMA user_version = {target + 1}")

    # -- writing --------------------------------------------------------------------------
    #
    # Every write method commits before it returns: a probe is on disk before its inject call
    # is sent, each lifecycle transition is on disk before the next step acts on it, and an API
    # call's row and the quota figures it reported are committed together. With WAL and
    # synchronous=NORMAL a commit is a write to the log, no fsync: a killed process loses
    # nothing a write method returned from (an OS crash may lose the last few).

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Commit what the block writes, or roll it back; inside a transaction someone else
        opened (``db.atomic()``, ``batch``), join it and leave the commit to its owner."""
        try:
            if self.conn.in_transaction:
                yield self.conn
            else:
                with self.conn:  # sqlite3: commit on success, roll back on an exception
                    yield self.conn
        except sqlite3.IntegrityError:
            raise  # a caller's mistake, which it names (record_call)
        except sqlite3.Error as exc:  # disk full, read-only, damaged: translated here, once
            raise self._cannot_write(exc) from exc

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """A block that holds or fails whole: its own transaction, committed at its end; or,
        inside a transaction already open (a simulation's ``batch``), a savepoint, so it
        neither commits the owner's writes early nor leaves half of itself behind. For
        multi-statement housekeeping (retention); errors are sqlite3's, for its caller."""
        if not self.conn.in_transaction:
            with self.conn:
                yield self.conn
            return
        self.conn.execute("SAVEPOINT atomic")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK TO atomic")
            self.conn.execute("RELEASE atomic")
            raise
        self.conn.execute("RELEASE atomic")

    def _cannot_write(self, exc: sqlite3.Error) -> StoreError:
        """A failed write as the store reports it (disk full, read-only, damaged)."""
        return StoreError(f"{self.path}: cannot write: {exc}")

    def _execute(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        """One statement, as ``_transaction`` runs a block (joined or committed, errors
        translated), without a generator's setup: the probe lifecycle writes five times a
        probe."""
        try:
            if self.conn.in_transaction:
                return self.conn.execute(sql, params)
            with self.conn:
                return self.conn.execute(sql, params)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise self._cannot_write(exc) from exc

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Commit everything the block writes once, at its end, not at each write's return.

        Only a ``throwaway`` database batches: committing every write is what lets a killed
        ``syncwatch run`` lose nothing, and a simulation that dies is run again, never resumed.
        The rows, their order and what the daemon reads back are the same; a simulation commits
        every few virtual minutes instead of about eight times a probe. ``quota_latest`` keeps
        only each window's newest figure, so the batch writes that one as it ends rather than
        overwriting the row at every call (the guard reads the figures from memory)."""
        if not self.throwaway:
            raise StoreError(f"{self.path}: only a throwaway database batches its commits")
        if self.conn.in_transaction:
            yield
            return
        try:
            self.conn.execute("BEGIN")
            self._quota_unsaved = {}
            try:
                yield
            finally:
                unsaved, self._quota_unsaved = self._quota_unsaved or {}, None
                # Even when something committed early inside the batch: the figures are
                # still to write, and a write opens the transaction again.
                for reading in unsaved.values():
                    self._save_quota(reading)
                if self.conn.in_transaction:
                    self.conn.commit()
        except sqlite3.Error as exc:
            raise self._cannot_write(exc) from exc

    # -- probes ---------------------------------------------------------------------------

    def insert_probe(self, probe: Mapping[str, Any]) -> None:
        """Persist a new probe before anything is sent, so a crash can never forget it."""
        self._execute(*self._insert_sql("probes", probe))

    def _insert_sql(self, table: str, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """An insert of one row, by plain SQL for the plain connection: sqlite-utils' ``insert``
        re-reads the schema on every call, which was most of the store's cost per probe
        (bench/RESULTS.md)."""
        row = _encode(values)
        names = tuple(row)
        sql = self._sql.get((table, names))
        if sql is None:
            unknown = set(row) - self._columns(table)
            if unknown:
                raise StoreError(f"{table} has no column(s) {sorted(unknown)}")
            columns = ", ".join(f"[{column}]" for column in names)
            marks = ", ".join("?" for _ in names)
            sql = self._sql[table, names] = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        return sql, list(row.values())

    def _load_quota(self) -> None:
        rows = self.db.query("SELECT * FROM quota_latest")
        self._quota = {(row["account"], row["window"]): _reading(row) for row in rows}

    def _columns(self, table: str) -> frozenset[str]:
        """A table's columns, read once per open store (the schema changes only by migration)."""
        if table not in self._column_cache:
            self._column_cache[table] = frozenset(self.db.table(table).columns_dict)
        return self._column_cache[table]

    def update_probe(self, probe_id: str, **changes: Any) -> None:
        """Record one lifecycle transition; every transition is committed at once."""
        names = tuple(changes)
        sql = self._sql.get(("probes=", names))
        if sql is None:
            unknown = set(changes) - self._columns("probes")
            if unknown or not changes:
                raise StoreError(f"cannot update probe columns {sorted(unknown) or '(none)'}")
            assignments = ", ".join(f"[{column}] = ?" for column in names)
            sql = f"UPDATE probes SET {assignments} WHERE probe_id = ?"
            self._sql["probes=", names] = sql
        cursor = self._execute(sql, [*_encode(changes).values(), probe_id])
        if cursor.rowcount != 1:
            raise StoreError(f"no probe {probe_id!r} to update")

    def probe_columns(self) -> set[str]:
        return set(self._columns("probes"))

    def get_probe(self, probe_id: str) -> dict[str, Any] | None:
        cursor = self.conn.execute("SELECT * FROM probes WHERE probe_id = ?", (probe_id,))
        row = cursor.fetchone()
        return None if row is None else dict(zip(self._probe_names(cursor), row, strict=True))

    def _probe_names(self, cursor: sqlite3.Cursor) -> tuple[str, ...]:
        """The column names of a ``SELECT * FROM probes``, read once (the clean-up reads every
        concluded probe's row)."""
        if self._probe_select is None:
            self._probe_select = tuple(column[0] for column in cursor.description)
        return self._probe_select

    def unfinished_probes(self) -> list[dict[str, Any]]:
        """Probes without a terminal outcome: what a restarted daemon must resume."""
        return list(
            self.db.query("SELECT * FROM probes WHERE finished_at IS NULL ORDER BY scheduled_at")
        )

    # -- API calls and quota --------------------------------------------------------------

    def record_call(self, call: ApiCall, other_windows: tuple[QuotaFigure, ...] = ()) -> None:
        """One call, and every quota window its response reported, in one transaction."""
        readings = [
            QuotaReading(
                call.account, figure.window, call.vendor, figure.used, figure.limit, call.at
            )
            for figure in other_windows
        ]
        if call.quota_used is not None and call.quota_limit is not None:
            window = call.quota_window or "daily"
            used, limit = call.quota_used, call.quota_limit
            readings.insert(
                0, QuotaReading(call.account, window, call.vendor, used, limit, call.at)
            )
        # The call was made whether or not it can be written: the guard must count it.
        self._count_recent(call)
        # Field by field, not ``asdict``: it deep-copies every value, once per call.
        row = [getattr(call, name) for name in _CALL_FIELDS]
        row[0] = to_db_time(call.at)
        try:
            if not readings or self._quota_unsaved is not None:  # one statement: the call's
                self._execute(_CALL_INSERT, row)
            else:
                with self._transaction() as conn:
                    conn.execute(_CALL_INSERT, row)
                    for reading in readings:
                        self._save_quota(reading)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"cannot record {call.operation} call: {exc}") from exc
        self._remember_quota(readings)

    def save_quota(self, reading: QuotaReading) -> None:
        with self._transaction():
            self._save_quota(reading)
        self._remember_quota([reading])

    def _remember_quota(self, readings: list[QuotaReading]) -> None:
        """Mirror committed figures in memory, newest wins as in SQL: the guard asks before
        every probe, and this process is the only writer."""
        for reading in readings:
            key = (reading.account, reading.window)
            known = self._quota.get(key)
            if known is None or reading.observed_at >= known.observed_at:
                self._quota[key] = reading
                if self._quota_unsaved is not None:
                    self._quota_unsaved[key] = reading

    def _save_quota(self, reading: QuotaReading) -> None:
        """Keep the newest figure: a reading older than the one stored changes nothing."""
        self.conn.execute(
            "INSERT INTO quota_latest (account, window, vendor, used, quota_limit, observed_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, window) DO UPDATE SET "
            "vendor = excluded.vendor, used = excluded.used, quota_limit = excluded.quota_limit, "
            "observed_at = excluded.observed_at WHERE excluded.observed_at >= observed_at",
            [
                reading.account,
                reading.window,
                reading.vendor,
                reading.used,
                reading.limit,
                to_db_time(reading.observed_at),
            ],
        )

    def latest_quota(self) -> list[QuotaReading]:
        return [self._quota[key] for key in sorted(self._quota)]

    def quota_reading(self, account: str, window: str) -> QuotaReading | None:
        """The latest figure of one account's window (the guard asks before every probe)."""
        return self._quota.get((account, window))

    def calls(self, account: str | None = None) -> Iterator[dict[str, Any]]:
        if account is None:
            return self.db.query("SELECT * FROM api_calls ORDER BY id")
        return self.db.query("SELECT * FROM api_calls WHERE account = ? ORDER BY id", [account])

    def concluded_probes_between(
        self, since: datetime, until: datetime
    ) -> Iterator[dict[str, Any]]:
        """Probes with an outcome, scheduled in [since, until), oldest first (the evidence)."""
        return self.db.query(
            "SELECT integration, template, scheduled_at, outcome, error_class, latency_s "
            "FROM probes WHERE scheduled_at >= ? AND scheduled_at < ? AND outcome IS NOT NULL "
            "ORDER BY scheduled_at, probe_id",
            [to_db_time(since), to_db_time(until)],
        )

    def concluded_probes_by_id(self, probe_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The probes of ``probe_ids`` that have an outcome, with the columns
        ``concluded_probes_between`` gives (the daemon's month to date reads each probe once,
        as it concludes, instead of the last hours of probes at every refresh)."""
        rows: list[dict[str, Any]] = []
        for first in range(0, len(probe_ids), _IDS_PER_QUERY):
            chunk = list(probe_ids[first : first + _IDS_PER_QUERY])
            marks = ", ".join("?" for _ in chunk)
            rows.extend(
                self.db.query(
                    "SELECT integration, template, scheduled_at, outcome, error_class, latency_s "
                    f"FROM probes WHERE probe_id IN ({marks}) AND outcome IS NOT NULL",
                    chunk,
                )
            )
        return rows

    def concluded_probes_since(self, since: datetime) -> list[dict[str, Any]]:
        """Probes with an outcome scheduled since ``since``, oldest first, with their times
        (the status page's day)."""
        return list(
            self.db.query(
                f"SELECT {_STATUS_COLUMNS} FROM probes WHERE scheduled_at >= ? "
                "AND outcome IS NOT NULL ORDER BY scheduled_at, probe_id",
                [to_db_time(since)],
            )
        )

    def last_concluded_probe(self, integration: str) -> dict[str, Any] | None:
        """The integration's latest probe with an outcome, however old."""
        rows = list(
            self.db.query(
                f"SELECT {_STATUS_COLUMNS} FROM probes WHERE integration = ? "
                "AND outcome IS NOT NULL ORDER BY scheduled_at DESC, probe_id DESC LIMIT 1",
                [integration],
            )
        )
        return rows[0] if rows else None

    def calls_between(self, since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
        """Every API call made in [since, until), oldest first."""
        return self.db.query(
            "SELECT * FROM api_calls WHERE at >= ? AND at < ? ORDER BY at, id",
            [to_db_time(since), to_db_time(until)],
        )

    def quota_figures_between(
        self, since: datetime, until: datetime
    ) -> list[tuple[datetime, str, int, int]]:
        """``(at, account, used, limit)`` of every call in [since, until) that read a quota."""
        rows = self.db.execute(
            "SELECT at, account, quota_used, quota_limit FROM api_calls "
            "WHERE at >= ? AND at < ? AND quota_used IS NOT NULL AND quota_limit > 0",
            [to_db_time(since), to_db_time(until)],
        ).fetchall()
        return [(from_db_time(at), str(account), int(u), int(lim)) for at, account, u, lim in rows]

    def calls_per_day(self, since: datetime) -> list[tuple[str, str, int]]:
        """``(account, UTC day, calls)`` since ``since``: what the monitor itself spent."""
        rows = self.db.execute(
            "SELECT account, substr(at, 1, 10) AS day, count(*) FROM api_calls "
            "WHERE at >= ? GROUP BY account, day ORDER BY account, day",
            [to_db_time(since)],
        ).fetchall()
        return [(str(account), str(day), int(count)) for account, day, count in rows]

    def calls_since(self, account: str, since: datetime) -> int:
        """Our own calls to an account from the start of ``since``'s minute on, from memory.

        The quota guard asks this before every probe for the trailing day; counting rows in
        SQL each time grew with the day's calls. Whole minutes count, so the figure can only
        err high (the guard's safe side). Windows older than ``RECENT_CALLS`` are not kept."""
        first = _minute(since)
        minutes = self._recent.get(account)
        if not minutes:
            return 0
        # The kept total less the calls before ``first``. The guard's ``since`` only moves
        # forward, so the count before it is carried from the last question and extended by
        # the minutes passed since, not summed afresh over the hour or two kept beyond the day.
        oldest = self._recent_oldest[account]
        until, before = self._recent_before.get(account, (oldest, 0))
        if first < until:
            until, before = oldest, 0
        before += sum(minutes.get(m, 0) for m in range(max(until, oldest), first))
        self._recent_before[account] = (max(until, first), before)
        return self._recent_total[account] - before

    def _count_recent(self, call: ApiCall) -> None:
        account, minute = call.account, _minute(call.at)
        minutes = self._recent.setdefault(account, {})
        minutes[minute] = minutes.get(minute, 0) + 1
        self._recent_total[account] = self._recent_total.get(account, 0) + 1
        self._recent_oldest[account] = min(self._recent_oldest.get(account, minute), minute)
        until, before = self._recent_before.get(account, (minute, 0))
        if minute < until:  # recorded late, into minutes already counted as before
            self._recent_before[account] = (until, before + 1)
        if minute - self._recent_oldest[account] > RECENT_CALLS_MINUTES + 60:  # hourly at most
            oldest = minute - RECENT_CALLS_MINUTES
            for old in [m for m in minutes if m < oldest]:
                self._recent_total[account] -= minutes.pop(old)
            self._recent_oldest[account] = max(self._recent_oldest[account], oldest)
            self._recent_before.pop(account, None)  # counted again at the next question

    def _load_recent(self) -> None:
        """The last ``RECENT_CALLS`` of calls per account and minute, once at open (counted
        back from the newest call stored: the store reads no clock)."""
        newest = self.db.execute("SELECT max(at) FROM api_calls").fetchone()[0]
        self._recent, self._recent_before = {}, {}
        if newest is None:
            return
        since = from_db_time(newest) - RECENT_CALLS
        rows = self.db.execute(
            "SELECT account, substr(at, 1, 16), count(*) FROM api_calls WHERE at >= ? "
            "GROUP BY account, substr(at, 1, 16)",
            [to_db_time(since)],
        ).fetchall()
        for account, minute_text, count in rows:
            minute = _minute(datetime.strptime(minute_text, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC))
            self._recent.setdefault(account, {})[minute] = int(count)
        self._recent_total = {a: sum(minutes.values()) for a, minutes in self._recent.items()}
        self._recent_oldest = {a: min(minutes) for a, minutes in self._recent.items()}

    def count_calls(self, account: str, since: datetime, until: datetime) -> int:
        """Our own calls to an account in a window: what the monitor itself cost."""
        row = self.db.execute(
            "SELECT count(*) FROM api_calls WHERE account = ? AND at >= ? AND at < ?",
            [account, to_db_time(since), to_db_time(until)],
        ).fetchone()
        return int(row[0])


_CALL_FIELDS = tuple(f.name for f in fields(ApiCall))
assert _CALL_FIELDS[0] == "at"  # the one datetime: written as store time text
_CALL_INSERT = (
    f"INSERT INTO api_calls ({', '.join(f'[{name}]' for name in _CALL_FIELDS)}) "
    f"VALUES ({', '.join('?' for _ in _CALL_FIELDS)})"
)
_IDS_PER_QUERY = 500
"""Bound parameters per ``IN (...)``: well under SQLite's limit, old builds' 999 included."""

RECENT_CALLS = timedelta(hours=25)
"""How far back ``calls_since`` can count: the guard's trailing day, and an hour to spare."""
RECENT_CALLS_MINUTES = int(RECENT_CALLS.total_seconds() // 60)


def _minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


_STATUS_COLUMNS = (
    "probe_id, integration, template, outcome, error_class, scheduled_at, verified_at, "
    "finished_at, latency_s"
)


def _reading(row: dict[str, Any]) -> QuotaReading:
    return QuotaReading(
        row["account"],
        row["window"],
        row["vendor"],
        row["used"],
        row["quota_limit"],
        from_db_time(row["observed_at"]),
    )


def _encode(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: to_db_time(value) if isinstance(value, datetime) else value
        for key, value in values.items()
    }
