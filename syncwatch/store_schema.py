"""The store's schema, version by version: each migration takes a database one version forward.

``syncwatch.store`` applies them in order inside a transaction and stamps ``PRAGMA user_version``
and ``PRAGMA application_id``; a version once released is never edited, only followed by another.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

#: "SYNW" — marks a file as a syncwatch database (``PRAGMA application_id``).
APPLICATION_ID = 0x53594E57


def _v1_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE probes (
            probe_id TEXT PRIMARY KEY,
            integration TEXT NOT NULL,
            template TEXT NOT NULL,
            email TEXT NOT NULL,
            state TEXT NOT NULL,
            outcome TEXT,
            error_class TEXT,
            scheduled_at TEXT NOT NULL,
            injecting_at TEXT,
            accepted_at TEXT,
            detected_at TEXT,
            verified_at TEXT,
            cleaned_at TEXT,
            finished_at TEXT,
            destination_created_at TEXT,
            latency_s REAL,
            latency_method TEXT,
            source_ref TEXT,
            destination_ref TEXT,
            detail TEXT
        );
        CREATE INDEX probes_by_integration_time ON probes (integration, scheduled_at);
        CREATE INDEX probes_unfinished ON probes (state) WHERE finished_at IS NULL;

        CREATE TABLE api_calls (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            vendor TEXT NOT NULL,
            account TEXT NOT NULL,
            operation TEXT NOT NULL,
            status INTEGER,
            duration_s REAL NOT NULL,
            error_class TEXT,
            integration TEXT,
            probe_id TEXT REFERENCES probes (probe_id) ON DELETE SET NULL,
            quota_used INTEGER,
            quota_limit INTEGER,
            quota_window TEXT
        );
        CREATE INDEX api_calls_by_account_time ON api_calls (account, at);
        CREATE INDEX api_calls_by_probe ON api_calls (probe_id);

        CREATE TABLE quota_latest (
            account TEXT NOT NULL,
            window TEXT NOT NULL,
            vendor TEXT NOT NULL,
            used INTEGER NOT NULL,
            quota_limit INTEGER NOT NULL,
            observed_at TEXT NOT NULL,
            PRIMARY KEY (account, window)
        );
        """
    )


def _v2_time_indexes(db: sqlite_utils.Database) -> None:
    """Evidence exports and monthly reports read every probe and call of a time range."""
    db.executescript(
        """
        CREATE INDEX api_calls_by_time ON api_calls (at);
        CREATE INDEX probes_by_time ON probes (scheduled_at);
        """
    )


def _v3_incidents(db: sqlite_utils.Database) -> None:
    """Incidents, the state of each incident track, and the notification outbox (issue #5).

    A track's state and the incident and notifications one observation produces are written in
    one transaction (``incident_store.py``), so a crash can neither open an incident twice nor
    open one whose notifications were never queued."""
    db.executescript(
        """
        CREATE TABLE incidents (
            key TEXT PRIMARY KEY,
            integration TEXT NOT NULL,
            track TEXT NOT NULL,
            cause TEXT NOT NULL,
            attribution TEXT NOT NULL,
            runbook_url TEXT NOT NULL,
            started_at TEXT NOT NULL,
            opened_at TEXT NOT NULL,
            recovered_at TEXT,
            resolved_at TEXT,
            bad INTEGER NOT NULL,
            good INTEGER NOT NULL,
            causes TEXT NOT NULL
        );
        CREATE INDEX incidents_unresolved ON incidents (integration) WHERE resolved_at IS NULL;
        CREATE INDEX incidents_by_start ON incidents (started_at);

        CREATE TABLE incident_tracks (
            integration TEXT NOT NULL,
            track TEXT NOT NULL,
            state TEXT NOT NULL,
            PRIMARY KEY (integration, track)
        );

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            target TEXT NOT NULL,
            incident TEXT NOT NULL REFERENCES incidents (key),
            event TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            delivered_at TEXT,
            last_error TEXT
        );
        CREATE INDEX outbox_undelivered ON outbox (target, id) WHERE delivered_at IS NULL;
        """
    )


def _v4_retention(db: sqlite_utils.Database) -> None:
    """What retention keeps of raw events past ``raw_days`` (issue #7; ``rollup_store.py``):
    each contract month's fold (totals, one row per interval, latencies packed 8 bytes each)
    and hourly rollups of probes and calls."""
    db.executescript(
        """
        CREATE TABLE fold_months (
            contract TEXT NOT NULL,
            month TEXT NOT NULL,
            period_end TEXT NOT NULL,
            terms TEXT NOT NULL,
            calls INTEGER NOT NULL,
            calls_ok INTEGER NOT NULL,
            calls_vendor_failed INTEGER NOT NULL,
            quota_used INTEGER,
            quota_limit INTEGER,
            PRIMARY KEY (contract, month)
        ) WITHOUT ROWID;
        CREATE TABLE fold_intervals (
            contract TEXT NOT NULL,
            month TEXT NOT NULL,
            idx INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            vendor_failures INTEGER NOT NULL,
            evidence INTEGER NOT NULL,
            probe_down INTEGER NOT NULL,
            classes TEXT NOT NULL,
            PRIMARY KEY (contract, month, idx)
        ) WITHOUT ROWID;
        CREATE TABLE fold_latencies (
            contract TEXT NOT NULL,
            month TEXT NOT NULL,
            seq INTEGER NOT NULL,
            latencies BLOB NOT NULL,
            PRIMARY KEY (contract, month, seq)
        ) WITHOUT ROWID;
        CREATE TABLE probe_hours (
            integration TEXT NOT NULL,
            template TEXT NOT NULL,
            hour TEXT NOT NULL,
            outcome TEXT NOT NULL,
            error_class TEXT NOT NULL,
            probes INTEGER NOT NULL,
            latency_count INTEGER NOT NULL,
            latency_sum REAL NOT NULL,
            latency_max REAL,
            latency_buckets TEXT NOT NULL,
            PRIMARY KEY (integration, template, hour, outcome, error_class)
        ) WITHOUT ROWID;
        CREATE INDEX probe_hours_by_hour ON probe_hours (hour);
        CREATE TABLE call_hours (
            account TEXT NOT NULL,
            vendor TEXT NOT NULL,
            operation TEXT NOT NULL,
            hour TEXT NOT NULL,
            error_class TEXT NOT NULL,
            calls INTEGER NOT NULL,
            duration_sum REAL NOT NULL,
            quota_used_max INTEGER,
            quota_limit INTEGER,
            PRIMARY KEY (account, operation, hour, error_class)
        ) WITHOUT ROWID;
        CREATE INDEX call_hours_by_hour ON call_hours (hour);
        """
    )


#: MIGRATIONS[n] takes a database from schema version n to n + 1.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1_initial,
    _v2_time_indexes,
    _v3_incidents,
    _v4_retention,
]
SCHEMA_VERSION = len(MIGRATIONS)
