"""A store that stops taking writes mid-run (issue #8, part 4): a genuine SQLite "database or
disk is full" and a read-only database, on the daemon's own connection, under the in-process
sandbox on virtual time.

The disk is filled with ``PRAGMA max_page_count`` pinned at the file's current size, so SQLite
itself answers SQLITE_FULL once the free space in the last pages is used up; read-only is
``PRAGMA query_only``, which SQLite answers with SQLITE_READONLY. Nothing is monkeypatched: what
the daemon sees is what a full volume or a remounted one gives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from daemon_support import SANDBOX, Rig, make_rig
from structlog.testing import capture_logs
from test_incidents_end_to_end import with_targets

from syncwatch.daemon import Daemon
from syncwatch.sandbox.scenario import Scenario
from syncwatch.store import Store
from syncwatch.web import STORE_RECOVERY_S, create_web_app

UNLIMITED_PAGES = 1_073_741_823
STEP_S = 30.0


@pytest.fixture(autouse=True)
def default_logging() -> None:
    """structlog as shipped: a CLI test may have left it printing to a stream since closed."""
    structlog.reset_defaults()


def fill_the_disk(store: Store) -> None:
    """No page beyond the ones the file has now, and the free space in them taken up by a
    filler table: SQLite answers SQLITE_FULL to the next write that needs room."""
    store.conn.execute("CREATE TABLE IF NOT EXISTS disk_filler (junk BLOB)")
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages}")
    for size in (2048, 256, 16):
        with contextlib.suppress(sqlite3.OperationalError):
            while True:
                with store.conn:
                    store.conn.execute("INSERT INTO disk_filler VALUES (zeroblob(?))", [size])
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"), store.conn:
        store.conn.execute("INSERT INTO disk_filler VALUES (zeroblob(16))")


def free_the_disk(store: Store) -> None:
    store.conn.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}")


def make_read_only(store: Store) -> None:
    store.conn.execute("PRAGMA query_only = ON")


def make_writable(store: Store) -> None:
    store.conn.execute("PRAGMA query_only = OFF")


OUTAGES: dict[str, tuple[Callable[[Store], None], Callable[[Store], None], str]] = {
    "disk-full": (fill_the_disk, free_the_disk, "database or disk is full"),
    "read-only": (make_read_only, make_writable, "readonly database"),
}


async def run_with_outage(
    rig: Rig, daemon: Daemon, outage: str, *, start_s: float, end_s: float, total_s: float
) -> dict[float, httpx.Response]:
    """Run the daemon for ``total_s`` of virtual time with the store refusing writes from
    ``start_s`` to ``end_s``; /readyz as served, sampled after every step."""
    break_store, mend_store, _ = OUTAGES[outage]
    app = create_web_app(daemon.metrics, daemon.health)
    readyz: dict[float, httpx.Response] = {}
    stop = asyncio.Event()
    task = asyncio.ensure_future(daemon.run(stop, drain_s=900))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://daemon.test"
    ) as client:
        elapsed = 0.0
        while elapsed < total_s:
            if elapsed == start_s:
                break_store(rig.store)
            if elapsed == end_s:
                mend_store(rig.store)
            await rig.clock.advance(STEP_S)
            elapsed += STEP_S
            assert not task.done(), f"the daemon died after {elapsed:g}s: {task.exception()!r}"
            readyz[elapsed] = await client.get("/readyz")
    stop.set()
    while not task.done():
        await rig.clock.advance(1.0)
    task.result()
    return readyz


def unfinished(store: Store) -> list[dict[str, Any]]:
    return [row for row in store.unfinished_probes() if row["outcome"] is None]


@pytest.mark.parametrize("outage", list(OUTAGES))
async def test_a_store_refusing_writes_fails_readiness_logs_once_and_recovers(
    tmp_path: Path, outage: str
) -> None:
    """Guarantee: when the database cannot be written (a genuine SQLite "database or disk is
    full", or a read-only database) the daemon does not crash, ``/readyz`` answers 503 naming
    the store and SQLite's reason, exactly ONE error is logged for the whole outage (not one
    per probe or call), the probes in flight are kept in memory and concluded once writes work
    again, readiness recovers, and nothing synthetic is left at either vendor."""
    rig = make_rig(tmp_path)
    daemon = rig.daemon()
    reason = OUTAGES[outage][2]
    # A full disk still takes the writes that fit in the free space of the pages the tables
    # already have (minutes of probing, here): the outage is long enough to outlast that.
    start_s, end_s = 180.0, 1500.0
    with capture_logs() as logs:
        readyz = await run_with_outage(
            rig, daemon, outage, start_s=start_s, end_s=end_s, total_s=2100.0
        )

    # /readyz: ready before, 503 naming the store and SQLite's reason during, ready after.
    assert all(readyz[t].status_code == 200 for t in readyz if t <= start_s)
    failing = [t for t in readyz if readyz[t].status_code == 503]
    assert failing, "the store refused writes but /readyz never said so"
    if outage == "read-only":  # refused from the first write on
        assert min(failing) <= start_s + 2 * STEP_S, "noticed late"
    settled = end_s + STORE_RECOVERY_S + 2 * STEP_S
    assert failing == [t for t in readyz if min(failing) <= t <= max(failing)], "flapped"
    for t in failing:
        body = readyz[t].json()
        assert start_s < t <= settled, (t, body)
        assert body["status"] == "not ready"
        assert body["checks"] == {"config": True, "store": False, "scheduler": True}
        assert body["reasons"]["store"].startswith("store not writable: ")
        assert reason in body["reasons"]["store"]
    assert all(readyz[t].status_code == 200 for t in readyz if t > settled)
    assert daemon.health.ready()[0]

    # One clear error for the whole outage, and no traceback for an expected condition.
    errors = [event for event in logs if event["log_level"] in ("error", "critical", "exception")]
    assert len(errors) == 1, Counter(event["event"] for event in errors)
    assert reason in errors[0]["error"]
    assert not [event for event in logs if "exc_info" in event]
    assert [event["event"] for event in logs if event["event"] == "store writable again"] == [
        "store writable again"
    ]

    # Nothing forgotten: every probe that reached a vendor concluded and was cleaned on both
    # sides once space returned. A probe whose row was written but whose next write failed was
    # never sent; it stays `scheduled` until the next start concludes it `skipped` (resume).
    never_sent = [row for row in unfinished(rig.store) if row["state"] == "scheduled"]
    assert unfinished(rig.store) == never_sent
    sent_for = {call["probe_id"] for call in rig.store.calls()}
    assert not [row for row in never_sent if row["probe_id"] in sent_for]
    assert daemon.engine.in_flight_count() == 0
    state = await rig.sandbox_state()
    assert state["hubspot"]["synthetic"] == state["salesforce"]["synthetic"] == 0
    outcomes = Counter(row["outcome"] for row in rig.store.db.query("SELECT * FROM probes"))
    assert outcomes["ok"] >= 10


async def test_notifications_during_a_store_outage_are_neither_hammered_nor_repeated(
    tmp_path: Path,
) -> None:
    """Guarantee: while the outbox cannot be written, the notifier neither retries a failing
    receiver every second nor sends again a message it delivered but could not mark delivered
    (in-memory state is kept), and the outage is still ONE error in the log; once writes work
    the incident resolves and every target has exactly one trigger and one resolve."""
    scenario = Scenario.model_validate(
        {
            "seed": 5,
            "sync": {"latency": {"median": "20s", "p95": "40s"}},
            "faults": [
                {"kind": "outage", "vendor": "hubspot", "after": 0, "for": 900},
                # The webhook receiver is down when the incident opens and comes back while
                # the store is read-only: its delivery goes through but cannot be recorded.
                {"kind": "outage", "vendor": "webhook", "after": 0, "for": 1000},
            ],
        }
    )
    rig = make_rig(tmp_path, scenario, with_targets(tmp_path))
    daemon = rig.daemon()
    with capture_logs() as logs:
        await run_with_outage(rig, daemon, "read-only", start_s=600.0, end_s=1500.0, total_s=2700.0)

    inbox = await sandbox_notifications(rig)
    for kind in ("webhook", "slack", "pagerduty"):
        accepted = [n for n in inbox if n["kind"] == kind and n["status"] < 300]
        assert len(accepted) == 2, (kind, accepted)  # one trigger, one resolve: none twice
    webhook_attempts = [n for n in inbox if n["kind"] == "webhook"]
    assert len(webhook_attempts) <= 8, "a failing receiver was hammered"
    store_errors = [
        event
        for event in logs
        if event["log_level"] == "error" and event["event"] != "notification failed"
    ]
    assert len(store_errors) == 1, Counter(event["event"] for event in store_errors)
    assert "readonly database" in store_errors[0]["error"]
    assert not [event for event in logs if "exc_info" in event]
    assert daemon.health.ready()[0]
    assert not rig.store.db.execute(
        "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"
    ).fetchone()[0]


async def sandbox_notifications(rig: Rig) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(transport=rig.transport(), base_url=SANDBOX) as client:
        body: dict[str, Any] = (await client.get("/_sandbox/notifications")).json()
    notifications: list[dict[str, Any]] = body["notifications"]
    return notifications
