"""The scale and scrape benchmark's harness, in miniature (the figures themselves: bench/)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bench import exposition
from bench.__main__ import _numbers
from bench.procs import cpu_seconds, peak_rss_bytes
from bench.scale import DAEMON, NAIVE, Outcome, Plan, ScaleRun, ScrapeRun, measure, rows
from bench.scale_config import SECRETS, scale_scenario, tenants, write_files
from syncwatch.config import load_config, unresolved_secrets
from syncwatch.sandbox.scenario import Scenario


def test_the_generated_config_loads_with_integrations_spread_over_account_pairs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """250 integrations at 100 per account: three HubSpot + Salesforce pairs, each valid, each
    HubSpot account with its own token file and no secret left unresolved."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    path, scenario = write_files(tmp_path, 250, "http://127.0.0.1:1", "127.0.0.1:2")
    config = load_config(path)
    assert unresolved_secrets(config) == []
    assert Scenario.model_validate(yaml.safe_load(scenario.read_text())).hubspot.daily_limit
    assert len(config.integrations) == 250
    assert [a.name for a in config.accounts][:2] == ["hubspot-000", "salesforce-000"]
    assert len(config.accounts) == 2 * tenants(250) == 6
    last = config.integrations[-1]
    assert (last.source.account, last.destination.account) == ("hubspot-002", "salesforce-002")
    assert {run.every for i in config.integrations for run in i.templates} == {60.0}


def test_the_scenario_allows_every_tenant_its_own_daily_allowance() -> None:
    """The sandbox's shared counters are sized for the tenants, the connector made faster."""
    scenario = Scenario.model_validate(scale_scenario(250))
    assert scenario.hubspot.daily_limit == scenario.salesforce.daily_limit == 3_000_000
    assert scenario.sync.latency.median < Scenario().sync.latency.median


def test_families_are_picked_from_an_exposition_and_quantiles_follow_promql() -> None:
    """Buckets read back from generate_latest; histogram_quantile interpolates in the bucket."""
    registry = CollectorRegistry()
    lag = Histogram("lag_seconds", "", buckets=(0.01, 0.1, 1.0), registry=registry)
    for seconds in (0.005, 0.05, 0.05, 0.5):
        lag.observe(seconds)
    text = generate_latest(registry).decode()
    found = exposition.pick(text, ["lag_seconds_bucket", "lag_seconds_count"])
    assert exposition.total(found["lag_seconds_count"]) == 4
    cumulative = exposition.buckets(found["lag_seconds_bucket"])
    assert cumulative == [(0.01, 1), (0.1, 3), (1.0, 4), (float("inf"), 4)]
    assert exposition.quantile(0.5, cumulative) == pytest.approx(0.01 + 0.09 * 0.5)
    assert exposition.quantile(0.99, cumulative) == pytest.approx(0.1 + 0.9 * 0.96)
    assert exposition.bucket_counts([0.005, 0.05, 0.05, 0.5], (0.01, 0.1, 1.0)) == cumulative
    earlier = [(0.01, 1.0), (0.1, 1.0), (1.0, 1.0), (float("inf"), 1.0)]
    assert exposition.difference(cumulative, earlier)[-1] == (float("inf"), 3)
    assert exposition.quantile(0.99, [(0.1, 0.0), (float("inf"), 0.0)]) is None


def test_proc_readings_of_this_process() -> None:
    """CPU seconds and peak RSS come from /proc for any pid."""
    assert cpu_seconds(os.getpid()) > 0
    assert peak_rss_bytes(os.getpid()) > 10 * 2**20


def test_a_tiny_scale_run_of_the_daemon_and_the_baseline_returns_sane_numbers(
    tmp_path: Path,
) -> None:
    """Three integrations for a few seconds, both kinds side by side: real processes,
    numbers of the right kind (no speed asserted), and the scrape figure from the daemon."""
    plan = Plan(ns=[3], seconds=4.5, scrape_n=3, scrapes=3)
    with ThreadPoolExecutor(2) as pool:
        ours = pool.submit(measure, DAEMON, 3, plan, tmp_path / "ours", 3)
        naive = pool.submit(measure, NAIVE, 3, plan, tmp_path / "naive")
        (daemon_run, scrape), (naive_run, _) = ours.result(), naive.result()
    for run in (daemon_run, naive_run):
        assert run.window_s == pytest.approx(plan.window_s, abs=1.5)
        assert run.cpu_s >= 0 and run.sandbox_cpu_s >= 0
        assert run.peak_rss > 10 * 2**20
        assert run.lag_samples >= 1 and run.lag_p99_s is not None
        assert 0 <= run.concluded <= run.probes + run.n
    assert daemon_run.in_flight is not None and daemon_run.scrape_s is not None
    assert scrape is not None and len(scrape.metrics_s) == len(scrape.healthz_s) == 3
    assert scrape.samples > 100 and scrape.body_bytes > 0


def test_the_table_has_a_row_per_n_a_row_per_stop_and_the_scrape_row() -> None:
    """Cells carry CPU per probe, share of a core, RSS, lag, counts; the ratio compares CPU."""
    plan = Plan(ns=[100, 1000], seconds=90)

    def run(kind: str, n: int, cpu_s: float, probes: int) -> ScaleRun:
        return ScaleRun(kind, n, 1.0, 60.0, cpu_s, 1.2, probes, probes, 0, 0.004, 120, 100 * 2**20)

    outcome = Outcome(
        runs=[
            run(DAEMON, 100, 0.6, 100),
            run(NAIVE, 100, 1.8, 100),
            run(DAEMON, 1000, 6.0, 1000),
            run(NAIVE, 1000, 30.0, 700),
        ],
        scrape=ScrapeRun(1000, [0.2] * 10, [0.01] * 10, 5_000_000, 60_000, 1000),
        stopped={NAIVE: "naive launched 70% and concluded 70% of the probes due at 1,000"},
    )
    table = rows(outcome, plan)
    assert len(table) == 4
    assert table[0].startswith("| scale: 100 integrations at 1/min, 60 s window")
    assert "6.0 ms (1%), 100 MB, 4 ms, 100 / 100 of 100, sandbox 2%" in table[0]
    assert table[0].endswith("| 3.0x less CPU per probe |")
    assert "42.9 ms (50%)" in table[1] and "7.1x less CPU per probe" in table[1]
    assert "naive stops" in table[2]
    assert "200.0 / 200.0 ms" in table[3] and "(rendering) 190 ms" in table[3]


def test_scale_lists_parse_with_none_meaning_skip() -> None:
    """--scale 100,1_000 and --scale none."""
    assert _numbers("100,1_000,10000") == [100, 1000, 10000]
    assert _numbers("none") == _numbers("") == []
