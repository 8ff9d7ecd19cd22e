"""The store: schema versioning, forward migrations, refusal of foreign files, round trips."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlite_utils
from hypothesis import given
from hypothesis import strategies as st

from syncwatch import store as store_module
from syncwatch.errors import StoreError, StoreVersionError
from syncwatch.events import QuotaFigure, QuotaReading
from syncwatch.store import APPLICATION_ID, SCHEMA_VERSION, ApiCall, Store, from_db_time, to_db_time

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def probe_row(probe_id: str = "p1", **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "probe_id": probe_id,
        "integration": "hs-sf",
        "template": "demo-request",
        "email": f"syncwatch+{probe_id}@probe.example.com",
        "state": "scheduled",
        "scheduled_at": T0,
    }
    row.update(overrides)
    return row


def test_new_database_is_marked_and_versioned(tmp_path: Path) -> None:
    """A new file gets syncwatch's application id, the current schema version and WAL."""
    store = Store.open(tmp_path / "s.db")
    assert store.schema_version == SCHEMA_VERSION
    assert store.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert {"probes", "api_calls", "quota_latest"} <= set(store.db.table_names())


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    """Opening an up-to-date database runs no migration and loses nothing."""
    path = tmp_path / "s.db"
    Store.open(path).insert_probe(probe_row())
    again = Store.open(path)
    assert again.get_probe("p1") is not None
    assert again.schema_version == SCHEMA_VERSION


def test_migrations_run_forward_from_an_older_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at the current version is brought one further by a new migration, once."""
    path = tmp_path / "s.db"
    Store.open(path).close()
    ran: list[int] = []
    current = store_module.SCHEMA_VERSION

    def next_version(db: sqlite_utils.Database) -> None:
        ran.append(current + 1)
        db.execute("ALTER TABLE probes ADD COLUMN extra TEXT")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, next_version])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", current + 1)
    store = Store.open(path)
    assert ran == [current + 1]
    assert store.schema_version == current + 1
    assert "extra" in store.probe_columns()
    Store.open(path)
    assert ran == [current + 1]


def test_a_version_1_database_gains_the_time_indexes(tmp_path: Path) -> None:
    """Migration 2 adds the indexes evidence exports read by time, to an existing file."""
    path = tmp_path / "v1.db"
    db = sqlite_utils.Database(path)
    store_module.MIGRATIONS[0](db)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")
    db.close()
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION >= 2
    assert {"api_calls_by_time", "probes_by_time"} <= {
        row[0] for row in store.db.execute("SELECT name FROM sqlite_master WHERE type='index'")
    }


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    """A file written by a newer build names both versions instead of guessing."""
    path = tmp_path / "s.db"
    Store.open(path).db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(StoreVersionError, match=rf"newer syncwatch \(schema {SCHEMA_VERSION + 5}"):
        Store.open(path)


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    """Another application's database is not migrated into ours."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreVersionError, match="not a syncwatch database"):
        Store.open(path)
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"invoices"}


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    """Garbage bytes give a clear error, not a traceback from deep inside sqlite3."""
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database at all, just text" * 100)
    with pytest.raises(
        StoreVersionError, match=r"garbage\.db: damaged, or not a syncwatch database"
    ):
        Store.open(path)


def test_an_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    """A path in a missing directory names the path."""
    with pytest.raises(StoreError, match="cannot open"):
        Store.open(tmp_path / "missing" / "dir" / "s.db")


def test_probe_lifecycle_round_trip() -> None:
    """Each transition is persisted; unfinished probes are what a restart resumes."""
    store = Store.open(":memory:")
    store.insert_probe(probe_row("p1"))
    store.insert_probe(probe_row("p2", scheduled_at=T0 + timedelta(minutes=1)))
    store.update_probe("p1", state="in_flight", accepted_at=T0 + timedelta(seconds=2))
    store.update_probe(
        "p2",
        state="cleaned",
        outcome="ok",
        latency_s=61.5,
        latency_method="created_date",
        finished_at=T0 + timedelta(minutes=3),
    )
    p1 = store.get_probe("p1")
    assert p1 is not None
    assert p1["state"] == "in_flight"
    assert from_db_time(p1["accepted_at"]) == T0 + timedelta(seconds=2)
    assert [row["probe_id"] for row in store.unfinished_probes()] == ["p1"]


def test_updating_an_unknown_probe_or_column_fails_loudly() -> None:
    """A typo in a column or a lost probe id is an error, never a silent no-op."""
    store = Store.open(":memory:")
    store.insert_probe(probe_row("p1"))
    with pytest.raises(StoreError, match="no probe 'nope'"):
        store.update_probe("nope", state="in_flight")
    with pytest.raises(StoreError, match="statee"):
        store.update_probe("p1", statee="in_flight")


def test_a_write_the_disk_refuses_is_a_store_error_and_the_call_still_counts(
    tmp_path: Path,
) -> None:
    """Disk full or read-only: one StoreError naming the file, nothing half-written, and the
    quota guard still counts the call that was made (it cost the vendor's quota all the same)."""
    store = Store.open(tmp_path / "syncwatch.db")
    store.db.execute("PRAGMA query_only = ON")
    call = ApiCall(T0, "hubspot", "hs-prod", "forms.submit", 200, 0.3)
    with pytest.raises(StoreError, match=r"syncwatch\.db: cannot write: .*readonly"):
        store.record_call(call)
    assert store.calls_since("hs-prod", T0 - timedelta(hours=1)) == 1
    with pytest.raises(StoreError, match="cannot write"):
        store.insert_probe(
            {"probe_id": "p", "integration": "i", "template": "t", "email": "e",
             "state": "scheduled", "scheduled_at": T0}
        )  # fmt: skip
    store.db.execute("PRAGMA query_only = OFF")
    assert store.get_probe("p") is None and list(store.calls()) == []
    store.close()


def test_a_throwaway_store_commits_a_batch_once_at_its_end(tmp_path: Path) -> None:
    """A simulation's writes are one transaction per batch: the daemon reads its own writes at
    once, another reader sees them when the batch ends, and a write error is a StoreError."""
    path = tmp_path / "sim.db"
    store = Store.open(path, throwaway=True)
    other = sqlite3.connect(path)
    with store.batch():
        store.insert_probe(probe_row("p1"))
        store.update_probe("p1", state="in_flight")
        store.record_call(ApiCall(T0, "hubspot", "hs", "forms.submit", 200, 0.3))
        assert store.get_probe("p1")["state"] == "in_flight"  # type: ignore[index]
        assert other.execute("SELECT count(*) FROM probes").fetchone() == (0,)
    assert other.execute("SELECT count(*) FROM probes").fetchone() == (1,)
    assert other.execute("SELECT count(*) FROM api_calls").fetchone() == (1,)
    with store.batch():
        store.db.execute("PRAGMA query_only = ON")
        with pytest.raises(StoreError, match=r"sim\.db: cannot write: .*readonly"):
            store.insert_probe(probe_row("p2"))
        store.db.execute("PRAGMA query_only = OFF")
    assert store.get_probe("p2") is None
    other.close()
    store.close()


def test_a_batch_writes_each_quota_window_once_with_its_newest_figure(tmp_path: Path) -> None:
    """Inside a batch the quota figures are kept in memory and written as the batch ends: the
    table then holds what a store writing at every call holds, and a late (older) figure
    still loses to the newer one, as the upsert decides it."""
    figures = [(2, 12), (0, 10), (1, 11), (3, 9)]  # (seconds after T0, used): out of order

    def record(store: Store) -> None:
        for seconds, used in figures:
            at = T0 + timedelta(seconds=seconds)
            call = ApiCall(at, "hubspot", "hs", "crm.search", 200, 0.1, quota_used=used)
            call = replace(call, quota_limit=500_000, quota_window="daily")
            store.record_call(call, (QuotaFigure("secondly", used, 100),))

    plain = Store.open(tmp_path / "plain.db", throwaway=True)
    record(plain)
    batched = Store.open(tmp_path / "batched.db", throwaway=True)
    other = sqlite3.connect(tmp_path / "batched.db")
    statements: list[str] = []
    batched.conn.set_trace_callback(statements.append)
    with batched.batch():
        record(batched)
        with batched.conn:  # a commit inside the batch (whoever makes one)
            pass
        assert other.execute("SELECT count(*) FROM quota_latest").fetchone() == (0,)
        assert batched.quota_reading("hs", "secondly").used == 9  # type: ignore[union-attr]
        assert not [s for s in statements if "quota_latest" in s]
    assert len([s for s in statements if "quota_latest" in s]) == 2  # one per window
    rows = "SELECT account, window, vendor, used, quota_limit, observed_at FROM quota_latest"
    assert sorted(other.execute(rows)) == sorted(plain.conn.execute(rows))
    assert [(r.window, r.used) for r in batched.latest_quota()] == [
        ("daily", 9),
        ("secondly", 9),
    ]
    other.close()
    plain.close()
    batched.close()


def test_only_a_throwaway_store_batches(tmp_path: Path) -> None:
    """The daemon's own database commits every write: a batch there would let a kill lose
    probes already sent."""
    store = Store.open(tmp_path / "syncwatch.db")
    with pytest.raises(StoreError, match="only a throwaway database"), store.batch():
        pass
    store.close()


def test_calls_keep_the_latest_quota_per_account_and_window() -> None:
    """Each call with quota figures updates that account's latest reading; counts are per window."""
    store = Store.open(":memory:")
    for i, used in enumerate([10, 11, 12]):
        store.record_call(
            ApiCall(
                at=T0 + timedelta(seconds=i),
                vendor="salesforce",
                account="sf-prod",
                operation="query",
                status=200,
                duration_s=0.2,
                quota_used=used,
                quota_limit=15000,
                quota_window="api-usage",
            )
        )
    store.record_call(
        ApiCall(T0, "hubspot", "hs-prod", "forms.submit", 503, 1.0, error_class="vendor_5xx")
    )
    (reading,) = store.latest_quota()
    assert (reading.account, reading.window, reading.used, reading.remaining) == (
        "sf-prod",
        "api-usage",
        12,
        14988,
    )
    assert reading.observed_at == T0 + timedelta(seconds=2)
    assert store.count_calls("sf-prod", T0, T0 + timedelta(seconds=2)) == 2
    assert [c["error_class"] for c in store.calls("hs-prod")] == ["vendor_5xx"]


def test_a_call_may_reference_a_probe_and_foreign_keys_are_enforced() -> None:
    """Calls point at their probe; a call for a probe that does not exist is refused."""
    store = Store.open(":memory:")
    store.insert_probe(probe_row("p1"))
    store.record_call(ApiCall(T0, "hubspot", "hs", "forms.submit", 200, 0.1, probe_id="p1"))
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        store.record_call(ApiCall(T0, "hubspot", "hs", "forms.submit", 200, 0.1, probe_id="zz"))


@pytest.mark.parametrize(
    "moment",
    [T0, T0 + timedelta(microseconds=1), datetime(2026, 3, 8, 7, 0, tzinfo=UTC)],
)
def test_times_round_trip_and_sort_as_text(moment: datetime) -> None:
    """Stored times are fixed-width UTC text, so text order is time order."""
    assert from_db_time(to_db_time(moment)) == moment
    assert to_db_time(moment) < to_db_time(moment + timedelta(microseconds=1))


@given(
    st.datetimes(  # hypothesis takes naive bounds and adds the zone itself
        min_value=datetime(1, 1, 2),  # noqa: DTZ001
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_a_time_is_written_alike_in_any_zone(moment: datetime, offset_minutes: int) -> None:
    """UTC times take a shorter way to their text; any other zone's reading of the instant
    gives the same text (the padded year included)."""
    zone = timezone(timedelta(minutes=offset_minutes))
    text = to_db_time(moment)
    assert to_db_time(moment.astimezone(zone)) == text
    assert len(text) == 27 and from_db_time(text) == moment


def test_naive_times_are_refused() -> None:
    """A naive datetime is a bug upstream; the store will not guess its zone."""
    with pytest.raises(ValueError, match="timezone-aware"):
        to_db_time(datetime(2026, 1, 1))  # noqa: DTZ001


def test_an_older_quota_reading_never_replaces_a_newer_one() -> None:
    """Readings arrive out of order (concurrent calls); the latest observation wins."""
    store = Store.open(":memory:")
    now = datetime(2026, 10, 5, 12, tzinfo=UTC)
    store.save_quota(QuotaReading("sf", "api-usage", "salesforce", 900, 1000, now))
    store.save_quota(
        QuotaReading("sf", "api-usage", "salesforce", 10, 1000, now - timedelta(hours=1))
    )
    (reading,) = store.latest_quota()
    assert (reading.used, reading.observed_at) == (900, now)
    store.save_quota(QuotaReading("sf", "api-usage", "salesforce", 950, 1000, now))
    assert store.latest_quota()[0].used == 950


def test_calls_since_counts_from_memory_and_survives_a_reopen(tmp_path: Path) -> None:
    """The guard's trailing-day count: per account, from the start of since's minute, kept in
    memory as calls are recorded and rebuilt from the file on open (the last 25 hours before the
    newest call)."""
    path = tmp_path / "s.db"
    store = Store.open(path)
    for minutes in (0, 10, 10.5, 26 * 60, 26 * 60 + 1):
        at = T0 + timedelta(minutes=minutes)
        store.record_call(ApiCall(at, "salesforce", "sf", "query", 200, 0.1))
    store.record_call(ApiCall(T0, "hubspot", "hs", "forms.submit", 200, 0.1))
    day_start = T0 + timedelta(minutes=26 * 60) - timedelta(days=1)
    assert store.calls_since("sf", day_start) == 2  # minutes 10 and 10.5 fell before it
    # Minutes over 25 hours before the newest call are pruned by age, as a reopen would.
    assert store.calls_since("sf", T0 + timedelta(minutes=10, seconds=40)) == 2
    assert store.calls_since("hs", T0) == 1
    assert store.calls_since("nobody", T0) == 0
    again = Store.open(path)
    assert again.calls_since("sf", day_start) == 2
    assert again.calls_since("sf", T0) == 2  # older than 25 h before the newest call: not kept
    for since in (T0, day_start):
        assert again.count_calls("sf", since, T0 + timedelta(days=2)) >= again.calls_since(
            "sf", since
        )


@pytest.mark.parametrize(
    "text", ["2026-10-05", "2026-10-05T09:00:00Z", "2026-10-05T09:00:00.000000+00:00", ""]
)
def test_only_store_times_are_read_as_times(text: str) -> None:
    """from_db_time reads exactly what to_db_time writes, nothing more lenient."""
    with pytest.raises(ValueError):
        from_db_time(text)


def test_calls_since_stays_exact_across_pruning_and_late_minutes(tmp_path: Path) -> None:
    """Three days of calls every 7 minutes, some recorded late (a minute earlier than one
    already asked about): the in-memory count, kept as a running total less the calls before
    ``since`` (carried from one question to the next), matches a count over the kept minutes
    at every point, through the hourly pruning: the guard's trailing day at every call, the
    same question again after a late call, and windows that jump back and forth every 50."""
    store = Store.open(tmp_path / "s.db")
    kept: dict[int, int] = {}

    def record(at: datetime) -> None:
        store.record_call(ApiCall(at, "salesforce", "sf", "query", 200, 0.1))
        minute = int(at.timestamp() // 60)
        kept[minute] = kept.get(minute, 0) + 1

    def check(since: datetime, step: int) -> None:
        first = int(since.timestamp() // 60)
        expected = sum(n for m, n in kept.items() if m >= first)
        assert store.calls_since("sf", since) == expected, (step, since)

    asked: datetime | None = None
    for step in range(3 * 24 * 60 // 7):
        at = T0 + timedelta(minutes=7 * step)
        record(at)
        if asked is not None and step % 11 == 0:
            record(asked - timedelta(minutes=3))  # late: before the minute last asked about
            check(asked, step)
        check(at - timedelta(days=1), step)  # the guard's question
        check(at, step)
        asked = at
        if step % 50 == 0:
            newest = max(kept)
            kept = {m: n for m, n in kept.items() if m >= newest - 25 * 60}
            for hours in (0, 1, 12, 24):
                check(at - timedelta(hours=hours), step)
