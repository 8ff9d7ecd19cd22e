"""The storage and report benchmark's harness on a few virtual hours (figures in bench/)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.storage import MONTHS, measure, one_integration


async def test_one_integration_is_the_demo_pair_with_its_contract(tmp_path: Path) -> None:
    config = one_integration(tmp_path)
    assert [i.name for i in config.integrations] == ["hubspot-to-salesforce"]
    assert [t.every for t in config.integrations[0].templates] == [60.0]
    assert [c.name for c in config.contracts] == ["hubspot-demo"]
    assert {a.vendor for a in config.accounts} == {"hubspot", "salesforce"}


async def test_measure_reports_retention_smaller_than_raw_and_the_month_replayed(
    tmp_path: Path,
) -> None:
    figures = await measure(0.25, tmp_path, fill=False)
    assert 300 <= figures.probes <= 400  # six hours at one a minute, drained
    assert 200 < figures.bytes_per_probe < 5000
    assert 0 < figures.retained_13 < figures.raw_13
    with sqlite3.connect(tmp_path / "month.db") as db:  # the all-raw 13-month copy
        probes = db.execute("SELECT count(*) FROM probes").fetchone()[0]
    assert probes == MONTHS * figures.probes
    with sqlite3.connect(tmp_path / "retained.db") as db:
        folded = db.execute("SELECT count(*) FROM fold_months").fetchone()[0]
        left = db.execute("SELECT min(scheduled_at) FROM probes").fetchone()[0]
    assert folded == 12  # October 2025 to (half of) September 2026: raw_days back from Nov 1st
    assert left >= "2026-09-17"
    rows = figures.rows()
    assert len(rows) == 6 and all(row.startswith("| ") and row.endswith(" |") for row in rows)
