"""A month of probing keeps memory, descriptors and tasks flat (issue #8, part 7).

One simulated month (30 days of virtual time) of the demo's HubSpot → Salesforce pair, both
templates every 30 minutes (2,880 probes), against the in-process sandbox: the real daemon, its
store, its month-to-date contract figures, its clean-up and sweeps. After day 2 (caches,
windows and queues warmed up) and after day 30 the daemon is measured:

- **memory**: what the daemon keeps, as the retained size of its object graph (every object it
  can reach, ``sys.getsizeof`` each, counted once), stopping at what is not its own state: the
  emulated vendors (their records are the sandbox's), the event loop and its tasks, the clock,
  the SQLite connection (its page cache is C memory, bounded by ``cache_size``), modules,
  classes, functions and code. The graph is split into parts, each counted where first reached:
  the store's in-memory state, the month-to-date figures, the run's tally, the process-wide
  redactor, and everything else (engine, adapters and their HTTP clients, metrics, incident
  tracks, notifier, retention, health).
- **descriptors**: ``/proc/self/fd``; **tasks**: ``asyncio.all_tasks()``, sampled daily.

The bounds, and why: between day 2 and day 30 nothing should be kept per probe. What may change
is the content of fixed windows already full by day 2 — the 25-hour own-call counts, the last
50 latencies per integration (first-look planning), clock-offset samples, the latest quota
figure and token per account, prometheus series fixed by the config — so each part may move by
reallocation slack only: ``FLAT`` (16 KiB). Days 2-30 hold 2,688 probes, so any per-probe
retention of even one pointer (8 bytes) exceeds it. The month-to-date figures legitimately grow
with the month (a bucket and an interval per 5 minutes) and must be dropped when it ends: day 30
is 3 days into November, day 2 was 6 days into October, so they must be smaller at day 30. The
descriptor count may not grow at all; tasks by at most ``TASK_SLACK`` (a launch or a poll in
progress at the sampling instant).

Why not tracemalloc for the in-suite check: tracing every allocation for 28 virtual days costs
3x the run with one frame per trace, 11x with five (measured), and one frame cannot tell the
daemon's allocations from the emulator's. tracemalloc statistics by traceback (40 frames, days
2-6, the emulator filtered out) are how the holders below were found; this test pins them.

Three parts grew, each caught by its own test here: the run's ``Tally`` kept every latency, the
redactor every token ever issued, and the store's own-call counts minutes far past 25 hours
under sparse traffic.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sqlite3
import sys
import threading
import types
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import structlog
from daemon_support import Rig, make_rig
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock
from syncwatch.daemon import Daemon
from syncwatch.redact import REDACTOR
from syncwatch.sandbox.scenario import Scenario
from syncwatch.sandbox.transport import InProcessTransport

DAY = 86400.0
FIRST, LAST = 2, 30
OCTOBER_LAST = 26
"""The run's day that is October's last: the month to date is at its largest."""
FLAT = 16 * 1024
TASK_SLACK = 2
OPAQUE = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.CodeType,
    types.FrameType,
    types.CoroutineType,
    types.GeneratorType,
    asyncio.Future,  # tasks too
    asyncio.AbstractEventLoop,
    VirtualClock,
    InProcessTransport,
    Starlette,
    sqlite3.Connection,
    threading.Thread,
    logging.Logger,
)
"""Where the walk stops: not the daemon's own state, or shared by the whole process."""


def retained(roots: Iterable[object], seen: set[int]) -> int:
    """Bytes of every object reachable from ``roots`` not in ``seen`` (which it extends)."""
    stack, total = list(roots), 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, OPAQUE):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def daemon_parts(daemon: Daemon) -> dict[str, int]:
    """The daemon's retained size by part, each object counted in the first part reaching it."""
    gc.collect()
    seen: set[int] = set()
    parts = {"config": retained([daemon.config], seen)}
    parts["store"] = retained([daemon.store], seen)
    parts["month_to_date"] = retained([daemon.month_to_date], seen)
    parts["tally"] = retained([daemon.tally], seen)
    parts["redactor"] = retained([REDACTOR], seen)
    parts["everything else"] = retained([daemon], seen)
    return parts


@dataclass
class Month:
    """What the month left: the daemon's parts at day 2 and 30, daily descriptors and tasks."""

    rig: Rig
    parts: dict[int, dict[str, int]] = field(default_factory=dict)
    descriptors: dict[int, int] = field(default_factory=dict)
    tasks: dict[int, int] = field(default_factory=dict)

    def growth(self, part: str) -> int:
        return self.parts[LAST][part] - self.parts[FIRST][part]


def sparse(raw: dict[str, Any]) -> None:
    for run in raw["integrations"][0]["templates"]:
        run["every"] = "30m"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def month(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Month]:
    """Thirty days of the sparse demo pair, measured after day 2 and day 30."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    tmp_path: Path = tmp_path_factory.mktemp("month")
    quick = Scenario.model_validate(
        {"seed": 5, "sync": {"latency": {"median": "20s", "p95": "40s"}}}
    )
    rig = make_rig(tmp_path, quick, sparse)
    daemon = rig.daemon()
    found = Month(rig)

    def look(elapsed: float) -> None:
        day, rest = divmod(elapsed, DAY)
        if rest or day < FIRST:
            return
        found.descriptors[int(day)] = len(os.listdir("/proc/self/fd"))
        found.tasks[int(day)] = len(asyncio.all_tasks())
        if day in (FIRST, OCTOBER_LAST, LAST):
            found.parts[int(day)] = daemon_parts(daemon)

    try:
        await rig.run_for(LAST * DAY, daemon=daemon, during=look, step_s=3600)
        yield found
    finally:
        structlog.reset_defaults()


def test_the_month_probed_every_half_hour_and_all_went_well(month: Month) -> None:
    """The run is the month the other tests speak of: 2,880 probes, all ``ok``."""
    rows = list(month.rig.store.db.query("SELECT outcome, count(*) AS n FROM probes GROUP BY 1"))
    assert {row["outcome"]: row["n"] for row in rows} == {"ok": 2 * 48 * LAST}


def test_open_descriptors_do_not_grow(month: Month) -> None:
    """Guarantee: no file, socket or pipe is left open per probe or per day."""
    assert max(month.descriptors.values()) <= month.descriptors[FIRST]


def test_tasks_do_not_grow(month: Month) -> None:
    """Guarantee: no task is left behind per probe, poll or flush: the count at any day's end
    is the loops' own, give or take one launch or poll in progress."""
    assert max(month.tasks.values()) <= month.tasks[FIRST] + TASK_SLACK


def test_the_daemon_keeps_nothing_per_probe(month: Month) -> None:
    """Guarantee: the engine, adapters, HTTP clients, metrics, incident tracks, notifier and the
    rest of the daemon hold as much after 30 days as after 2 (within ``FLAT``)."""
    assert abs(month.growth("everything else")) <= FLAT
    assert month.growth("config") == 0


def test_month_to_date_figures_hold_only_the_current_month(month: Month) -> None:
    """Guarantee: the month-to-date state grows with the month and is dropped when it ends:
    3 days into November it is a fraction of what it was on October's last day."""
    october = month.parts[OCTOBER_LAST]["month_to_date"]
    assert month.parts[FIRST]["month_to_date"] < october
    assert month.parts[LAST]["month_to_date"] < october / 2


def test_the_run_tally_keeps_counts_not_every_latency(month: Month) -> None:
    """Guarantee: the run's tally (outcomes and calls by name) does not grow per probe."""
    assert abs(month.growth("tally")) <= FLAT


def test_the_redactor_does_not_keep_every_token_ever_issued(month: Month) -> None:
    """Guarantee: renewing a token every two hours for a month does not grow the redactor."""
    assert abs(month.growth("redactor")) <= FLAT


def test_the_own_call_counts_keep_25_hours(month: Month) -> None:
    """Guarantee: the store's in-memory state (the 25-hour own-call counts, the latest quota
    figures, prepared SQL) holds as much after 30 days as after 2."""
    assert abs(month.growth("store")) <= FLAT
