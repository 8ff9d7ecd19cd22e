"""Retention: a simulated month, folded and deleted, gives exactly the claims it gave raw."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemon_support import build_config, demo_raw, make_rig
from structlog.testing import capture_logs
from typer.testing import CliRunner

from syncwatch.cli import app
from syncwatch.clock import VirtualClock
from syncwatch.config import Config, config_from_data
from syncwatch.errors import ConfigError, StoreError
from syncwatch.evidence import read_evidence
from syncwatch.reports import build_claims, render_json
from syncwatch.retention import Retention, local_months, raw_cutoff
from syncwatch.rollup_store import RollupStore
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import Scenario
from syncwatch.simulation import Simulation
from syncwatch.sla import evaluate
from syncwatch.sla.folded import FoldTermsChanged
from syncwatch.store import Store

START = datetime(2026, 9, 29, 20, 0, tzinfo=UTC)
"""September's last day and October's first two in New York (UTC-4): two contract months, the
first missed (for consecutive misses), both folded whole. A month needs no full span of
events to fold: it folds whatever evidence it has, as a claim over it would read."""
DAYS = 3
FAULTS = [  # relative to START; each one leaves its mark on a contract month
    {"kind": "outage", "vendor": "hubspot", "after": "4h", "for": "3h", "status": 503},
    {"kind": "outage", "vendor": "hubspot", "after": "32h", "for": "2h", "status": 503},
    {"kind": "sync_pause", "after": "38h", "for": "4h"},
    {"kind": "slow", "vendor": "hubspot", "after": "48h", "for": "1h", "delay": "20s"},
    {"kind": "rate_limit", "vendor": "hubspot", "after": "54h", "for": "30m"},
]
runner = CliRunner()


@dataclass
class Month:
    config_path: Path
    config: Config
    database: Path
    raw_claims: dict[str, str]
    """render_json of each month's claims before retention."""
    raw_export: Path
    raw_probes: int
    raw_calls: int


def _edit(raw: dict[str, Any]) -> None:
    """The demo's HubSpot pair, probing every 10 minutes."""
    integration = raw["integrations"][0]
    integration["templates"] = [
        {"template": "demo-request", "every": "10m", "latency_objective": "5m"}
    ]
    integration["timeout"] = "1h"
    raw["notifications"] = []


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Month]:
    tmp = tmp_path_factory.mktemp("retention")
    raw = demo_raw(tmp)
    _edit(raw)
    config_path = tmp / "syncwatch.yaml"
    config_path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = build_config(raw, tmp)
    clock = VirtualClock(START)
    sandbox = create_app(Scenario.model_validate({"seed": 3, "faults": FAULTS}), clock, 3)
    sim = Simulation(config, Store.open(config.database), clock, sandbox, seed=3)
    asyncio.run(sim.run(DAYS * 86400, drain_s=3600, step_s=3600))
    store = sim.store
    claims = {m: render_json(build_claims(config, store, m)) for m in ("2026-09", "2026-10")}
    raw_probes = store.db.execute("SELECT count(*) FROM probes").fetchone()[0]
    raw_calls = store.db.execute("SELECT count(*) FROM api_calls").fetchone()[0]
    store.close()
    export = tmp / "raw-events.jsonl"
    _cli(
        "export",
        "events",
        "--config",
        str(config_path),
        "--month",
        "2026-10",
        "--output",
        str(export),
    )
    yield Month(config_path, config, config.database, claims, export, raw_probes, raw_calls)


def _cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


HALFWAY = datetime(2026, 10, 1, 16, 0, tzinfo=UTC) + timedelta(days=45)
"""Retention at this moment folds September and October's first half-day: a month split
between its fold and its raw events."""
LATER = datetime(2026, 12, 20, tzinfo=UTC)
"""Seven weeks after October: everything folded."""


def _claims(config: Config, database: Path) -> dict[str, str]:
    store = Store.open(database)
    try:
        return {m: render_json(build_claims(config, store, m)) for m in ("2026-09", "2026-10")}
    finally:
        store.close()


@pytest.fixture(scope="module")
def folded(month: Month) -> dict[str, Any]:
    """Retention run twice: halfway through October's raw events, then past all of them."""
    store = Store.open(month.database)
    try:
        halfway = asyncio.run(Retention(month.config, store).run(HALFWAY))
    finally:
        store.close()
    claims_halfway = _claims(month.config, month.database)
    store = Store.open(month.database)
    try:
        report = asyncio.run(Retention(month.config, store).run(LATER))
        left = store.db.execute("SELECT count(*), min(scheduled_at) FROM probes").fetchone()
        calls_left = store.db.execute("SELECT count(*) FROM api_calls").fetchone()[0]
        rollups = RollupStore(store)
        probe_hours, call_hours = rollups.probe_hours(), rollups.call_hours()
        again = asyncio.run(Retention(month.config, store).run(LATER))
    finally:
        store.close()
    return {
        "halfway": halfway,
        "claims_halfway": claims_halfway,
        "report": report,
        "again": again,
        "probes_left": left[0],
        "oldest_left": left[1],
        "calls_left": calls_left,
        "probe_hours": probe_hours,
        "call_hours": call_hours,
    }


def test_the_simulated_month_has_downtime_to_claim(month: Month) -> None:
    """Guard for the comparison below: a month without outages would prove little."""
    october = json.loads(month.raw_claims["2026-10"])
    hubspot = next(row for row in october if row["contract"] == "hubspot-demo")
    assert hubspot["downtime_minutes"] >= 120
    assert hubspot["incidents"] and hubspot["credit_percent"] > 0
    assert hubspot["latency"]["probes"] > 150
    september = json.loads(month.raw_claims["2026-09"])
    assert next(r for r in september if r["contract"] == "hubspot-demo")["met"] is False


def test_retention_folds_and_deletes_the_raw_events_older_than_raw_days(
    month: Month, folded: dict[str, Any]
) -> None:
    halfway, report = folded["halfway"], folded["report"]
    assert halfway.cutoff == datetime(2026, 10, 1, 16, 0, tzinfo=UTC)  # 45 days before
    assert halfway.folded == {("hubspot-demo", "2026-09"), ("hubspot-demo", "2026-10")}
    assert 0 < halfway.probes_removed < month.raw_probes
    assert report.folded == {("hubspot-demo", "2026-10")}
    assert folded["oldest_left"] is None  # every probe and call was before the cutoff
    removed = halfway.probes_removed + report.probes_removed
    assert removed + folded["probes_left"] == month.raw_probes
    calls_removed = halfway.calls_removed + report.calls_removed
    assert calls_removed + folded["calls_left"] == month.raw_calls


def test_hourly_rollups_count_every_deleted_probe_and_call(folded: dict[str, Any]) -> None:
    halfway, report = folded["halfway"], folded["report"]
    probes = halfway.probes_removed + report.probes_removed
    assert sum(row["probes"] for row in folded["probe_hours"]) == probes
    calls = halfway.calls_removed + report.calls_removed
    assert sum(row["calls"] for row in folded["call_hours"]) == calls
    with_latency = [row for row in folded["probe_hours"] if row["latency_count"]]
    assert all(sum(row["latency_buckets"]) == row["latency_count"] for row in with_latency)
    outcomes = {row["outcome"] for row in folded["probe_hours"]}
    assert "ok" in outcomes and len(outcomes) > 1  # the outages left failed probes too
    assert any(row["error_class"] == "vendor_5xx" for row in folded["call_hours"])


def test_a_second_run_changes_nothing(folded: dict[str, Any]) -> None:
    again = folded["again"]
    assert (again.folded, again.probes_removed, again.calls_removed) == (set(), 0, 0)


@pytest.mark.parametrize("label", ["2026-09", "2026-10"])
def test_claims_over_folded_months_equal_the_claims_over_raw_events(
    month: Month, folded: dict[str, Any], label: str
) -> None:
    """Half folded (October split between fold and raw) and wholly folded: the same JSON."""
    assert folded["claims_halfway"][label] == month.raw_claims[label]
    assert _claims(month.config, month.database)[label] == month.raw_claims[label]


def test_report_credits_reads_the_folds(month: Month, folded: dict[str, Any]) -> None:
    config = str(month.config_path)
    output = _cli("report", "credits", "--config", config, "--month", "2026-10", "--format", "json")
    assert json.loads(output) == json.loads(month.raw_claims["2026-10"])


def test_sla_evaluate_on_the_folded_export_equals_it_on_the_raw_export(
    month: Month, folded: dict[str, Any], tmp_path: Path
) -> None:
    export = tmp_path / "folded-events.jsonl"
    config = str(month.config_path)
    _cli("export", "events", "--config", config, "--month", "2026-10", "--output", str(export))
    evidence = read_evidence(export)
    assert set(evidence.folds["hubspot-demo"]) == {"2026-09", "2026-10"}
    assert evidence.events == []  # all of it is past raw retention
    contract = tmp_path / "contract.yaml"
    contract.write_text(
        yaml.safe_dump(yaml.safe_load(month.config_path.read_text())["contracts"][0]),
        encoding="utf-8",
    )
    evaluate_args = ["sla", "evaluate", "--contract", str(contract), "--month", "2026-10"]
    results = [
        json.loads(_cli(*evaluate_args, "--events", str(path)))
        for path in (month.raw_export, export)
    ]
    assert results[0] == results[1]
    assert results[0]["consecutive_misses"] == 2  # September's outage, through its fold


def test_terms_applied_at_evaluation_may_change_after_folding(
    month: Month, folded: dict[str, Any]
) -> None:
    """Tiers, the error-rate threshold and the consecutive rule are applied to buckets, so
    the folded month answers new terms exactly as its raw events would have."""
    raw_events = read_evidence(month.raw_export).events
    store = Store.open(month.database)
    try:
        folds = RollupStore(store).folds("hubspot-demo")
    finally:
        store.close()
    original = month.config.contracts[0]
    rule = original.downtime.model_copy(update={"min_consecutive_minutes": 30})
    contract = original.model_copy(
        update={"unknown": "down", "credit_cap_percent": Decimal(25), "downtime": rule}
    )
    expected = evaluate(contract, "2026-10", raw_events).to_json()
    assert evaluate(contract, "2026-10", [], folds=folds).to_json() == expected


def test_a_fold_is_refused_under_other_bucketing_terms(
    month: Month, folded: dict[str, Any], tmp_path: Path
) -> None:
    raw = yaml.safe_load(month.config_path.read_text())
    raw["contracts"][0]["interval_minutes"] = 10
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = runner.invoke(
        app, ["report", "credits", "--config", str(changed), "--month", "2026-10"]
    )
    assert result.exit_code == 2
    assert "2026-09 is past raw retention" in result.output
    assert "interval_minutes changed" in result.output
    config = config_from_data(raw, changed)
    store = Store.open(month.database)
    try:
        with pytest.raises(FoldTermsChanged, match="interval_minutes"):
            build_claims(config, store, "2026-10")
    finally:
        store.close()


def test_a_malformed_folded_month_line_names_its_file_and_line(
    month: Month, folded: dict[str, Any], tmp_path: Path
) -> None:
    export = tmp_path / "folded.jsonl"
    config = str(month.config_path)
    _cli("export", "events", "--config", config, "--month", "2026-10", "--output", str(export))
    line = json.loads(export.read_text(encoding="utf-8").splitlines()[0])
    del line["intervals"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind":"folded_month","contract":"x"}\n' + json.dumps(line) + "\n")
    with pytest.raises(ConfigError) as caught:
        read_evidence(bad)
    assert caught.value.problems == [
        f"{bad}:1: a folded month must be exactly what export writes (missing 'month')",
        f"{bad}:2: a folded month must be exactly what export writes (missing 'intervals')",
    ]


# -- the pure parts ----------------------------------------------------------------------------


def test_raw_cutoff_is_raw_days_back_on_the_hour() -> None:
    now = datetime(2026, 11, 5, 12, 30, tzinfo=UTC)
    assert raw_cutoff(now, 45) == datetime(2026, 9, 21, 12, 0, tzinfo=UTC)
    assert raw_cutoff(now.replace(minute=0), 32) == datetime(2026, 10, 4, 12, 0, tzinfo=UTC)


def test_local_months_span_first_to_last_in_the_contracts_zone(month: Month) -> None:
    new_york = month.config.contracts[0]
    first = datetime(2026, 8, 31, 23, 0, tzinfo=UTC)  # still August in New York
    last = datetime(2026, 11, 1, 3, 59, tzinfo=UTC)  # still October there
    assert local_months(new_york, first, last) == ["2026-08", "2026-09", "2026-10"]
    assert local_months(new_york, last, last + timedelta(minutes=1)) == ["2026-10", "2026-11"]


def test_unfinished_probes_are_never_deleted(tmp_path: Path) -> None:
    raw = demo_raw(tmp_path)
    config = build_config(raw, tmp_path)
    store = Store.open(config.database)
    old = datetime(2026, 1, 5, tzinfo=UTC)
    base = {"integration": "hubspot-to-salesforce", "template": "demo-request"}
    store.insert_probe(
        {**base, "probe_id": "p-open", "email": "a@x", "state": "polling", "scheduled_at": old}
    )
    done = {"probe_id": "p-done", "email": "b@x", "state": "done", "scheduled_at": old}
    store.insert_probe({**base, **done, "outcome": "ok", "finished_at": old, "latency_s": 12.5})
    report = asyncio.run(Retention(config, store).run(datetime(2026, 6, 1, tzinfo=UTC)))
    assert report.probes_removed == 1
    assert [row["probe_id"] for row in store.db.query("SELECT probe_id FROM probes")] == ["p-open"]
    (hour,) = RollupStore(store).probe_hours()
    summary = (hour["hour"], hour["outcome"], hour["probes"], hour["latency_max"])
    assert summary == ("2026-01-05T00", "ok", 1, 12.5)
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()


def test_rollups_and_folds_expire_after_rollup_days(tmp_path: Path) -> None:
    raw = demo_raw(tmp_path)
    raw["retention"] = {"raw_days": 32, "rollup_days": 40}
    config = build_config(raw, tmp_path)
    store = Store.open(config.database)
    base = {"integration": "hubspot-to-salesforce", "template": "demo-request", "state": "done"}
    for day in (2, 20):
        at = datetime(2026, 3, day, 12, tzinfo=UTC)
        done = {"outcome": "ok", "finished_at": at, "scheduled_at": at}
        store.insert_probe({**base, **done, "probe_id": f"p{day}", "email": f"{day}@x"})
    retention = Retention(config, store)
    rollups = RollupStore(store)
    first = asyncio.run(retention.run(datetime(2026, 4, 25, tzinfo=UTC)))
    # Both probes rolled up and folded into March; March 2nd's hour is already 40 days gone.
    assert (first.probes_removed, first.folded) == (2, {("hubspot-demo", "2026-03")})
    assert first.rollups_expired == 1
    assert [row["hour"] for row in rollups.probe_hours()] == ["2026-03-20T12"]
    second = asyncio.run(retention.run(datetime(2026, 5, 2, tzinfo=UTC)))
    assert second.rollups_expired == 1 and rollups.probe_hours() == []
    assert rollups.folded_months() == {("hubspot-demo", "2026-03")}  # March ended April 1st
    asyncio.run(retention.run(datetime(2026, 5, 15, tzinfo=UTC)))
    assert rollups.folded_months() == set()
    store.close()


def test_a_store_error_during_retention_is_a_store_error(tmp_path: Path) -> None:
    raw = demo_raw(tmp_path)
    config = build_config(raw, tmp_path)
    store = Store.open(config.database)
    at = datetime(2026, 1, 5, tzinfo=UTC)
    base = {"integration": "hubspot-to-salesforce", "template": "demo-request", "state": "done"}
    done = {"outcome": "ok", "finished_at": at, "scheduled_at": at}
    store.insert_probe({**base, **done, "probe_id": "p", "email": "p@x"})
    store.db.execute("DROP TABLE probe_hours")  # a damaged database
    with pytest.raises(StoreError, match="retention"):
        asyncio.run(Retention(config, store).run(datetime(2026, 6, 1, tzinfo=UTC)))
    assert store.db.execute("SELECT count(*) FROM probes").fetchone()[0] == 1  # nothing lost
    store.close()


def test_retention_in_a_simulation_batch_commits_nothing_early_and_fails_whole(
    tmp_path: Path,
) -> None:
    """A simulation commits once an hour (``Store.batch``): retention joins that transaction
    as a savepoint, so another reader sees its work only when the batch ends, and a retention
    that fails takes back its own part and nothing the batch wrote before it."""
    config = build_config(demo_raw(tmp_path), tmp_path)
    store = Store.open(config.database, throwaway=True)
    other = sqlite3.connect(config.database)
    base = {"integration": "hubspot-to-salesforce", "template": "demo-request", "state": "done"}

    def probe(name: str, at: datetime) -> dict[str, Any]:
        done = {"outcome": "ok", "finished_at": at, "scheduled_at": at}
        return {**base, **done, "probe_id": name, "email": f"{name}@x"}

    def count(table: str) -> int:
        return int(other.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    now = datetime(2026, 6, 1, tzinfo=UTC)
    with store.batch():
        store.insert_probe(probe("old", datetime(2026, 1, 5, tzinfo=UTC)))
        assert asyncio.run(Retention(config, store).run(now)).probes_removed == 1
        assert (count("probes"), count("probe_hours"), count("fold_months")) == (0, 0, 0)
    assert (count("probes"), count("probe_hours"), count("fold_months")) == (0, 1, 1)
    with store.batch():
        store.insert_probe(probe("older", datetime(2026, 1, 6, tzinfo=UTC)))
        folds = store.db.execute("SELECT * FROM fold_intervals").fetchall()
        store.db.execute("DROP TABLE probe_hours")  # damaged: the roll-up after the fold fails
        with pytest.raises(StoreError, match="retention"):
            asyncio.run(Retention(config, store).run(now))
        assert store.get_probe("older") is not None
        assert store.db.execute("SELECT * FROM fold_intervals").fetchall() == folds
    assert (count("probes"), count("fold_months")) == (1, 1)
    other.close()
    store.close()


# -- in the daemon ------------------------------------------------------------------------------


async def test_the_daemon_applies_retention_at_start_and_hourly(tmp_path: Path) -> None:
    """August's probe goes as the daemon starts (the virtual clock starts on October 5th, 09:00
    and ``raw_days`` is 32); one from September 3rd, 09:30 goes at the next hourly run."""

    def keep_32_days(raw: dict[str, Any]) -> None:
        raw["retention"] = {"raw_days": 32, "rollup_days": 60}

    rig = make_rig(tmp_path, edit=keep_32_days)
    base = {"integration": "hubspot-to-salesforce", "template": "demo-request", "state": "done"}

    def old_probe(probe_id: str, at: datetime) -> None:
        done = {"outcome": "ok", "finished_at": at, "scheduled_at": at}
        rig.store.insert_probe({**base, **done, "probe_id": probe_id, "email": f"{probe_id}@x"})

    def ids() -> set[str]:
        return {row["probe_id"] for row in rig.store.db.query("SELECT probe_id FROM probes")}

    old_probe("august", datetime(2026, 8, 10, 12, tzinfo=UTC))
    seen: list[set[str]] = []

    def during(elapsed: float) -> None:
        if elapsed == 60:
            seen.append(ids())
            old_probe("september", datetime(2026, 9, 3, 9, 30, tzinfo=UTC))

    with capture_logs() as logs:
        await rig.run_for(3660, during=during)
    assert "august" not in seen[0]
    assert "september" not in ids() and ids()
    assert ("hubspot-demo", "2026-08") in RollupStore(rig.store).folded_months()
    applied = [entry for entry in logs if entry["event"] == "retention applied"]
    assert [entry["probes_removed"] for entry in applied] == [1, 1]
    assert "hubspot-demo 2026-08" in applied[0]["folded"]
