"""Storage and report figures from a simulated month, with retention vs keeping everything raw.

One integration (config/demo.yaml's HubSpot → Salesforce pair, its one-minute template and its
contract) runs from October 1st (New York) for ``days`` (default 7) on the virtual clock against
the in-process sandbox. Those days are repeated until October is full, and October is replayed
into the 12 months before it (ids made unique, times shifted), which gives a 13-month database:
a report's cost depends on how many events it reads, not on what they say. Two copies:

- **all raw**: nothing removed (the baseline);
- **retention**: what the daemon's retention leaves the day after October ends, with the
  default ``raw_days`` 45: folds and hourly rollups for what is older, raw events after.

Figures: bytes per probe (probes, their calls, indexes); the 13-month database's size, measured
for one integration and projected to 100 (sizes scale with probes); ``report credits`` and
``sla evaluate`` for October, and every month's report in turn; retention's first run.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from syncwatch.clock import VirtualClock
from syncwatch.config import Config
from syncwatch.demo import demo_config
from syncwatch.evidence import evidence_lines, read_evidence
from syncwatch.reports import build_claims
from syncwatch.retention import Retention
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import Scenario
from syncwatch.simulation import SANDBOX_ORIGIN, Simulation
from syncwatch.sla import evaluate, month_period
from syncwatch.sla.periods import previous_month
from syncwatch.store import Store, from_db_time, to_db_time

REPO = Path(__file__).resolve().parent.parent
MONTH = "2026-10"
START = datetime(2026, 10, 1, 4, 0, tzinfo=UTC)
"""October 1st, 00:00 in New York: the demo contract's month."""
MONTHS = 13
PROJECTED = 100
"""Integrations the sizes are projected to (the issue's target: 1 GB for 100 x 13 months)."""


@dataclass
class StorageFigures:
    days: float
    probes: int
    calls: int
    bytes_per_probe: float
    raw_13: int
    """Bytes of the 13-month database with everything raw."""
    retained_13: int
    """Bytes of the same after retention."""
    retention_s: float
    month_raw: tuple[float, float]
    """(report credits, sla evaluate) seconds for October from raw events."""
    month_folded: tuple[float, float]
    """The same once October is folded."""
    year_raw: float
    """Every one of the 13 months' ``report credits`` in turn, all raw."""
    year_retained: float

    def rows(self) -> list[str]:
        mb = 1e6
        ratio = self.raw_13 / self.retained_13
        return [
            f"| storage: bytes per probe, raw (probe row, its {self.calls / self.probes:.1f} "
            f"calls, indexes; {self.probes:,} probes simulated over {self.days:g} days) | "
            f"{self.bytes_per_probe:,.0f} | - | - |",
            f"| storage: 13 months of 1 integration at 1/min, measured; projected to "
            f"{PROJECTED} | {self.retained_13 / mb:,.1f} MB; "
            f"{PROJECTED * self.retained_13 / 1e9:,.2f} GB (retention: raw_days 45, then folds "
            f"and hourly rollups) | {self.raw_13 / mb:,.1f} MB; "
            f"{PROJECTED * self.raw_13 / 1e9:,.2f} GB all raw | "
            f"{ratio:.1f}x smaller |",
            f"| report credits, one month (October, from its fold vs its raw events) | "
            f"{self.month_folded[0]:.3f} s | {self.month_raw[0]:.3f} s | "
            f"{_times(self.month_raw[0], self.month_folded[0])} |",
            f"| sla evaluate on the exported evidence, one month | {self.month_folded[1]:.3f} s | "
            f"{self.month_raw[1]:.3f} s | {_times(self.month_raw[1], self.month_folded[1])} |",
            f"| report credits for each of {MONTHS} months in turn (13-month database) | "
            f"{self.year_retained:.2f} s | {self.year_raw:.2f} s all raw | "
            f"{_times(self.year_raw, self.year_retained)} |",
            f"| retention's first run on the 13-month database (folds and deletes the raw "
            f"events older than 45 days) | {self.retention_s:.1f} s | - | - |",
        ]


def _times(baseline: float, ours: float) -> str:
    return f"{baseline / ours:.1f}x faster" if ours else "n/a"


def one_integration(workdir: Path) -> Config:
    """The demo's HubSpot pair with its one-minute template, and its contract only."""
    raw: dict[str, Any] = yaml.safe_load((REPO / "config" / "demo.yaml").read_text("utf-8"))
    pair = raw["integrations"][0]
    pair["templates"] = pair["templates"][:1]
    names = {pair["source"]["account"], pair["destination"]["account"]}
    raw.update(
        integrations=[pair],
        accounts=[a for a in raw["accounts"] if a["name"] in names],
        contracts=[c for c in raw["contracts"] if c["integrations"] == [pair["name"]]],
        notifications=[],
        probe_templates=str(REPO / "probes"),
    )
    path = workdir / "one-integration.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return demo_config(path, SANDBOX_ORIGIN, workdir / "month.db")


async def simulate_month(config: Config, days: float, seed: int = 1) -> None:
    clock = VirtualClock(START)
    sandbox = create_app(Scenario(seed=seed), clock, seed)
    sim = Simulation(config, Store.open(config.database), clock, sandbox, seed)
    await sim.run(days * 86400, drain_s=3600, step_s=3600)
    sim.store.close()


def used_bytes(path: Path) -> int:
    """Pages in use after a checkpoint: the size a VACUUM would leave."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, free, size = (
            db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_count", "freelist_count", "page_size")
        )
        return int((pages - free) * size)
    finally:
        db.close()


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def export(config: Config, path: Path, month: str = MONTH) -> Path:
    """What ``syncwatch export events`` writes for ``month``."""
    store = Store.open(config.database)
    try:
        with path.open("w", encoding="utf-8") as handle:
            handle.writelines(evidence_lines(store, config.contracts, month))
    finally:
        store.close()
    return path


def claims(config: Config, month: str = MONTH) -> None:
    store = Store.open(config.database)
    try:
        build_claims(config, store, month)
    finally:
        store.close()


def month_times(config: Config, evidence: Path, repeat: int = 3) -> tuple[float, float]:
    """(report credits, sla evaluate) seconds for October, best of ``repeat``."""
    contract = config.contracts[0]

    def sla() -> None:
        read = read_evidence(evidence)
        evaluate(contract, MONTH, read.events, folds=read.folds.get(contract.name, {}))

    return best_of(repeat, lambda: claims(config)), best_of(repeat, sla)


def year_time(config: Config) -> float:
    months = [MONTH]
    while len(months) < MONTHS:
        months.insert(0, previous_month(months[0]))
    started = time.perf_counter()
    for month in months:
        claims(config, month)
    return time.perf_counter() - started


async def apply_retention(config: Config, now: datetime) -> float:
    """Retention as the daemon runs it at ``now``; returns its seconds."""
    store = Store.open(config.database)
    try:
        started = time.perf_counter()
        await Retention(config, store).run(now)
        return time.perf_counter() - started
    finally:
        store.close()


def fill_the_month(config: Config, days: float) -> None:
    """Repeat the first ``days`` simulated of October until the month is full."""
    period = month_period(config.contracts[0], MONTH)
    span = timedelta(days=days)
    copies: list[tuple[timedelta, datetime, str]] = []
    at = period.start + span
    while at < period.end:
        copies.append((-(at - period.start), period.end, f"-d{len(copies) + 1}"))
        at += span
    _replay(config, copies)


def replay_into_earlier_months(config: Config, months: int) -> None:
    """Copy October's probes and calls into each of the ``months`` months before it."""
    contract = config.contracts[0]
    target = month_period(contract, MONTH)
    copies, month = [], MONTH
    for back in range(1, months + 1):
        month = previous_month(month)
        period = month_period(contract, month)
        copies.append((target.start - period.start, period.end, f"-m{back}"))
    _replay(config, copies)


def _replay(config: Config, copies: list[tuple[timedelta, datetime, str]]) -> None:
    """Every probe and call again for each (shift back, end, probe id suffix): moved ``shift``
    earlier (later when negative), those at or past ``end`` dropped."""
    store = Store.open(config.database)
    db = store.db.conn
    tables = {name: _table(db, name) for name in ("probes", "api_calls")}
    with db:
        for shift, end, suffix in copies:
            for name, (columns, rows) in tables.items():
                moved = _shifted(name, columns, rows, shift, end)
                if name == "probes":
                    for row in moved:
                        row[columns.index("probe_id")] += suffix
                marks = ", ".join("?" for _ in columns)
                db.executemany(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})", moved)
    store.close()


def _table(db: sqlite3.Connection, name: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    columns = [row[1] for row in db.execute(f"PRAGMA table_info({name})")]
    return columns, db.execute(f"SELECT * FROM {name}").fetchall()


def _shifted(
    table: str,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    shift: timedelta,
    end: datetime,
) -> list[list[Any]]:
    """Rows moved ``shift`` earlier, those falling past ``end`` (a shorter month) dropped;
    calls lose their row id and probe link (the copied probes have new ids)."""
    times = [i for i, name in enumerate(columns) if name.endswith("_at") or name == "at"]
    moment = columns.index("scheduled_at" if table == "probes" else "at")
    copies = []
    for row in rows:
        values = list(row)
        for i in times:
            if values[i] is not None:
                values[i] = to_db_time(from_db_time(values[i]) - shift)
        if from_db_time(values[moment]) >= end:
            continue
        if table == "api_calls":
            values[columns.index("id")] = None
            values[columns.index("probe_id")] = None
        copies.append(values)
    return copies


async def measure(days: float, workdir: Path, *, fill: bool = True) -> StorageFigures:
    """Every figure; ``fill=False`` keeps only the simulated days (the harness's own test)."""
    config = one_integration(workdir)
    empty_store = workdir / "empty.db"
    Store.open(empty_store).close()
    empty = used_bytes(empty_store)
    await simulate_month(config, days)
    with sqlite3.connect(config.database) as db:
        probes = db.execute("SELECT count(*) FROM probes").fetchone()[0]
        calls = db.execute("SELECT count(*) FROM api_calls").fetchone()[0]
    per_probe = (used_bytes(Path(config.database)) - empty) / probes
    if fill:
        fill_the_month(config, days)
    october_end = month_period(config.contracts[0], MONTH).end
    month_raw = month_times(config, export(config, workdir / "raw.jsonl"))
    # The month alone, folded (raw_days after it ended) and read back.
    folded = _copy(config, workdir / "month-folded.db")
    await apply_retention(folded, october_end + timedelta(days=folded.retention.raw_days + 1))
    month_folded = month_times(folded, export(folded, workdir / "folded.jsonl"))
    # Thirteen months: all raw, and as retention leaves them the day after October ends.
    replay_into_earlier_months(config, MONTHS - 1)
    raw_13 = used_bytes(Path(config.database))
    year_raw = year_time(config)
    retained = _copy(config, workdir / "retained.db")
    retention_s = await apply_retention(retained, october_end + timedelta(days=1))
    return StorageFigures(
        days=days,
        probes=probes,
        calls=calls,
        bytes_per_probe=per_probe,
        raw_13=raw_13 - empty,
        retained_13=used_bytes(Path(retained.database)) - empty,
        retention_s=retention_s,
        month_raw=month_raw,
        month_folded=month_folded,
        year_raw=year_raw,
        year_retained=year_time(retained),
    )


def _copy(config: Config, path: Path) -> Config:
    with sqlite3.connect(config.database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(config.database, path)
    return config.model_copy(update={"database": path})
