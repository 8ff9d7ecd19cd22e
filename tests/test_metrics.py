"""Metrics: DESIGN §9 names exist at start, label sets are zero-initialised and bounded."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from metrics_support import run_promtool
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from syncwatch import __version__
from syncwatch.config import Config, config_from_data
from syncwatch.errors import ATTRIBUTION, ERROR_CLASSES
from syncwatch.events import ApiCall, QuotaFigure
from syncwatch.metrics import (
    CONTENT_TYPE,
    MAX_OPERATIONS_PER_VENDOR,
    OTHER,
    OUTCOMES,
    SYNC_LATENCY_BUCKETS,
    Metrics,
)

REPO = Path(__file__).resolve().parent.parent
INTEGRATIONS = ("hubspot-to-salesforce", "hubspot-to-salesforce-eu")
TEMPLATES = ("demo-request", "content-download")
AT = datetime(2026, 10, 5, 9, 30, tzinfo=UTC)
DESIGN_FAMILIES = {
    "syncwatch_probes": "counter",
    "syncwatch_probe_failures": "counter",
    "syncwatch_sync_latency_seconds": "histogram",
    "syncwatch_probes_in_flight": "gauge",
    "syncwatch_api_requests": "counter",
    "syncwatch_api_request_duration_seconds": "histogram",
    "syncwatch_api_quota_used": "gauge",
    "syncwatch_api_quota_limit": "gauge",
    "syncwatch_uptime_ratio": "gauge",
    "syncwatch_service_credit_ratio": "gauge",
    "syncwatch_incidents_open": "gauge",
    "syncwatch_last_probe_timestamp_seconds": "gauge",
    "syncwatch_build_info": "gauge",
}
BOUNDED_LABELS = {
    "integration", "template", "outcome", "error_class", "attribution", "vendor", "account",
    "operation", "result", "window", "contract", "cause", "version", "le", "target",
}  # fmt: skip


def two_by_two() -> Config:
    """The demo config with a second integration: 2 integrations x 2 templates."""
    raw: dict[str, Any] = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    second = copy.deepcopy(raw["integrations"][0])
    second["name"] = INTEGRATIONS[1]
    second["templates"][0]["latency_objective"] = "7m"
    raw["integrations"].append(second)
    return config_from_data(raw, REPO / "config" / "two-by-two.yaml")


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(two_by_two(), CollectorRegistry())


def samples(metrics: Metrics) -> list[Sample]:
    """Every sample of one scrape, parsed back from the exposition text."""
    text = metrics.render()[0].decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    """The value of the one sample with exactly ``labels``, or None when it is absent."""
    found = [s.value for s in samples(metrics) if s.name == name and s.labels == labels]
    assert len(found) <= 1
    return found[0] if found else None


def api_call(**overrides: Any) -> ApiCall:
    fields: dict[str, Any] = {
        "at": AT,
        "vendor": "salesforce",
        "account": "salesforce-demo",
        "operation": "query",
        "status": 200,
        "duration_s": 0.2,
        "integration": INTEGRATIONS[0],
        "probe_id": "k3v9q2",
    }
    return ApiCall(**{**fields, **overrides})


def test_every_design_family_is_exposed_after_construction(metrics: Metrics) -> None:
    """All DESIGN §9 names (plus probe_failures) are in the first scrape with their types."""
    text = metrics.render()[0].decode()
    types = {family.name: family.type for family in text_string_to_metric_families(text)}
    for name, kind in DESIGN_FAMILIES.items():
        assert types.get(name) == kind, name


def test_probe_series_are_zero_initialised_for_every_integration_and_template(
    metrics: Metrics,
) -> None:
    """Each integration x template has every outcome and error class at 0 before any probe."""
    for integration in INTEGRATIONS:
        assert value(metrics, "syncwatch_probes_in_flight", integration=integration) == 0
        for template in TEMPLATES:
            probe = {"integration": integration, "template": template}
            for outcome in OUTCOMES:
                assert value(metrics, "syncwatch_probes_total", **probe, outcome=outcome) == 0
            for error_class in ERROR_CLASSES:
                labels = {**probe, "error_class": error_class}
                labels["attribution"] = ATTRIBUTION[error_class]
                assert value(metrics, "syncwatch_probe_failures_total", **labels) == 0
            assert value(metrics, "syncwatch_sync_latency_seconds_count", **probe) == 0


def test_values_that_do_not_exist_yet_are_absent_not_zero(metrics: Metrics) -> None:
    """Quota, last-probe time, incidents and SLA ratios have no series until there is a figure."""
    names = {s.name for s in samples(metrics)}
    assert not names & {
        "syncwatch_api_quota_used",
        "syncwatch_api_quota_limit",
        "syncwatch_last_probe_timestamp_seconds",
        "syncwatch_incidents_open",
        "syncwatch_uptime_ratio",
        "syncwatch_service_credit_ratio",
    }


def test_latency_buckets_include_every_configured_objective(metrics: Metrics) -> None:
    """A bucket sits at each latency_objective (7m here) besides the standard lead-sync ones."""
    probe = {"integration": INTEGRATIONS[1], "template": "demo-request"}
    edges = {
        float(s.labels["le"])
        for s in samples(metrics)
        if s.name == "syncwatch_sync_latency_seconds_bucket"
        and {k: s.labels[k] for k in probe} == probe
    }
    assert edges == {float(b) for b in SYNC_LATENCY_BUCKETS} | {420.0, math.inf}


def test_probe_finished_counts_outcome_failure_latency_and_time(metrics: Metrics) -> None:
    """A finished probe moves its outcome, its error class with owner, latency and last time."""
    probe = {"integration": INTEGRATIONS[0], "template": "demo-request"}
    metrics.probe_finished(**probe, outcome="ok", error_class=None, latency_s=42.0, finished_at=AT)
    metrics.probe_finished(
        **probe, outcome="lost", error_class="sync_lost", latency_s=None, finished_at=AT
    )
    assert value(metrics, "syncwatch_probes_total", **probe, outcome="ok") == 1
    assert value(metrics, "syncwatch_probes_total", **probe, outcome="lost") == 1
    failure = {**probe, "error_class": "sync_lost", "attribution": "vendor"}
    assert value(metrics, "syncwatch_probe_failures_total", **failure) == 1
    assert value(metrics, "syncwatch_sync_latency_seconds_count", **probe) == 1
    assert value(metrics, "syncwatch_sync_latency_seconds_sum", **probe) == 42.0
    assert value(metrics, "syncwatch_sync_latency_seconds_bucket", **probe, le="45.0") == 1
    assert value(metrics, "syncwatch_sync_latency_seconds_bucket", **probe, le="30.0") == 0
    last = value(metrics, "syncwatch_last_probe_timestamp_seconds", integration=INTEGRATIONS[0])
    assert last == AT.timestamp()


def test_unknown_integration_and_outcome_never_raise(metrics: Metrics) -> None:
    """An integration missing from the config gets series; an unknown outcome counts as other."""
    probe = {"integration": "not-configured", "template": "demo-request"}
    metrics.probe_finished(
        **probe, outcome="weird", error_class="nonsense", latency_s=-3.0, finished_at=AT
    )
    metrics.set_in_flight("not-configured", 2)
    assert value(metrics, "syncwatch_probes_total", **probe, outcome=OTHER) == 1
    failure = {**probe, "error_class": OTHER, "attribution": OTHER}
    assert value(metrics, "syncwatch_probe_failures_total", **failure) == 1
    assert value(metrics, "syncwatch_sync_latency_seconds_sum", **probe) == 0.0
    assert value(metrics, "syncwatch_probes_in_flight", integration="not-configured") == 2


def test_call_recorded_counts_result_duration_and_zero_inits_the_operation(
    metrics: Metrics,
) -> None:
    """A call counts under ok or its error class, and its operation gets every result at 0."""
    metrics.call_recorded(api_call())
    metrics.call_recorded(api_call(status=503, error_class="vendor_5xx", duration_s=1.5))
    request = {"vendor": "salesforce", "account": "salesforce-demo", "operation": "query"}
    assert value(metrics, "syncwatch_api_requests_total", **request, result="ok") == 1
    assert value(metrics, "syncwatch_api_requests_total", **request, result="vendor_5xx") == 1
    for error_class in set(ERROR_CLASSES) - {"vendor_5xx"}:
        assert value(metrics, "syncwatch_api_requests_total", **request, result=error_class) == 0
    duration = {"vendor": "salesforce", "operation": "query"}
    assert value(metrics, "syncwatch_api_request_duration_seconds_count", **duration) == 2
    assert value(metrics, "syncwatch_api_request_duration_seconds_sum", **duration) == 1.7


def test_call_recorded_zero_inits_a_known_operation_for_a_new_account(metrics: Metrics) -> None:
    """An operation seen on one account is zero-initialised again for the next account."""
    metrics.call_recorded(api_call())
    metrics.call_recorded(api_call(account="salesforce-eu"))
    request = {"vendor": "salesforce", "account": "salesforce-eu", "operation": "query"}
    assert value(metrics, "syncwatch_api_requests_total", **request, result="auth") == 0


def test_quota_gauges_follow_calls_and_other_windows(metrics: Metrics) -> None:
    """The daily figure on a call, its other windows and quota_observed all set the gauges."""
    daily = {"quota_used": 1200, "quota_limit": 15000, "quota_window": "daily"}
    ten_s = QuotaFigure(window="10s", used=3, limit=100)
    metrics.call_recorded(api_call(**daily), (ten_s,))
    metrics.quota_observed("hubspot-demo", "daily", 250_000, 500_000)
    account = "salesforce-demo"
    assert value(metrics, "syncwatch_api_quota_used", account=account, window="daily") == 1200
    assert value(metrics, "syncwatch_api_quota_limit", account=account, window="daily") == 15000
    assert value(metrics, "syncwatch_api_quota_used", account=account, window="10s") == 3
    assert value(metrics, "syncwatch_api_quota_limit", account=account, window="10s") == 100
    hubspot = {"account": "hubspot-demo", "window": "daily"}
    assert value(metrics, "syncwatch_api_quota_used", **hubspot) == 250_000


def test_labels_come_only_from_bounded_sets(metrics: Metrics) -> None:
    """Probe ids and emails never become label values; label names are a fixed set."""
    email = "syncwatch+k3v9q2@probe.syncwatch.example"
    metrics.call_recorded(api_call(operation=f"find {email}", error_class="validation"))
    metrics.probe_finished(
        INTEGRATIONS[0], "demo-request", "ok", None, latency_s=10, finished_at=AT
    )
    for sample in samples(metrics):
        assert set(sample.labels) <= BOUNDED_LABELS, sample
        for label_value in sample.labels.values():
            assert "k3v9q2" not in label_value and "@" not in label_value, sample
    request = {"vendor": "salesforce", "account": "salesforce-demo", "operation": OTHER}
    assert value(metrics, "syncwatch_api_requests_total", **request, result="validation") == 1


def test_operations_per_vendor_are_capped(metrics: Metrics) -> None:
    """Past MAX_OPERATIONS_PER_VENDOR distinct operations, further ones count as other."""
    for n in range(MAX_OPERATIONS_PER_VENDOR + 5):
        metrics.call_recorded(api_call(operation=f"op{n}"))
    operations = {
        s.labels["operation"] for s in samples(metrics) if s.name == "syncwatch_api_requests_total"
    }
    assert len(operations) == MAX_OPERATIONS_PER_VENDOR + 1
    request = {"vendor": "salesforce", "account": "salesforce-demo", "operation": OTHER}
    assert value(metrics, "syncwatch_api_requests_total", **request, result="ok") == 5


def test_build_info_carries_the_version(metrics: Metrics) -> None:
    """build_info is 1 with the running version as its label."""
    assert value(metrics, "syncwatch_build_info", version=__version__) == 1


def test_event_loop_lag_is_a_histogram_of_non_negative_seconds(metrics: Metrics) -> None:
    """Each lag sample lands in its bucket; a negative one counts as 0, a NaN not at all."""
    for seconds in (0.0004, 0.03, -0.001, math.nan):
        metrics.loop_lag_observed(seconds)
    assert value(metrics, "syncwatch_event_loop_lag_seconds_count") == 3
    assert value(metrics, "syncwatch_event_loop_lag_seconds_bucket", le="0.001") == 2
    assert value(metrics, "syncwatch_event_loop_lag_seconds_bucket", le="0.05") == 3
    assert value(metrics, "syncwatch_event_loop_lag_seconds_sum") == pytest.approx(0.0304)


def test_contract_figures_appear_when_set_and_vanish_when_unknown(metrics: Metrics) -> None:
    """The collector shows cached ratios, and drops a series set to None or NaN."""
    metrics.set_contract_figures("hubspot-demo", 0.9987, 0.10)
    metrics.set_contract_figures("marketo-prod", 1.0, None)
    assert value(metrics, "syncwatch_uptime_ratio", contract="hubspot-demo") == 0.9987
    assert value(metrics, "syncwatch_service_credit_ratio", contract="hubspot-demo") == 0.10
    assert value(metrics, "syncwatch_uptime_ratio", contract="marketo-prod") == 1.0
    assert value(metrics, "syncwatch_service_credit_ratio", contract="marketo-prod") is None
    metrics.set_contract_figures("hubspot-demo", None, math.nan)
    assert value(metrics, "syncwatch_uptime_ratio", contract="hubspot-demo") is None
    assert value(metrics, "syncwatch_service_credit_ratio", contract="hubspot-demo") is None


def test_metrics_stay_on_the_injected_registry() -> None:
    """Two Metrics on two registries neither collide nor touch the global registry."""
    first, second = (
        Metrics(two_by_two(), CollectorRegistry()),
        Metrics(two_by_two(), CollectorRegistry()),
    )
    first.set_in_flight(INTEGRATIONS[0], 3)
    assert value(second, "syncwatch_probes_in_flight", integration=INTEGRATIONS[0]) == 0
    assert b"syncwatch_" not in generate_latest()


def test_render_returns_the_text_format_and_its_content_type(metrics: Metrics) -> None:
    """render() gives the registry's exposition and the 0.0.4 text content type."""
    body, content_type = metrics.render()
    assert content_type == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert body == generate_latest(metrics.registry)


ODD_INTEGRATION = 'odd "name" with \\ and\nnewline'
"""Not a name the config allows, but the text format escapes any label value, so must we."""


def busy(metrics: Metrics) -> None:
    """One of every event, on configured and unknown integrations, including an odd name."""
    for integration in (*INTEGRATIONS, ODD_INTEGRATION):
        for n, (outcome, error_class, latency) in enumerate(
            [("ok", None, 42.0), ("slow", None, 420.0), ("lost", "sync_lost", None)]
        ):
            metrics.probe_finished(
                integration, "demo-request", outcome, error_class, latency, AT.replace(second=n)
            )
        metrics.set_in_flight(integration, 2)
    metrics.set_overdue({(INTEGRATIONS[0], "demo-request"): 1, (ODD_INTEGRATION, "ünï"): 3})
    metrics.call_recorded(api_call(quota_used=1200, quota_limit=15000, quota_window="daily"))
    metrics.call_recorded(api_call(status=503, error_class="vendor_5xx", duration_s=31.0))
    metrics.loop_lag_observed(0.003)
    metrics.set_contract_figures("hubspot-demo", 0.9987, 0.10)


def test_render_after_events_is_what_prometheus_client_writes(metrics: Metrics) -> None:
    """The fast exposition equals the library's formatting of the same registry, parsed too."""
    busy(metrics)
    body, _content_type = metrics.render()
    reference = generate_latest(metrics.registry)
    assert body == reference
    assert [
        (family.name, family.type, family.documentation, family.samples)
        for family in text_string_to_metric_families(body.decode())
    ] == [
        (family.name, family.type, family.documentation, family.samples)
        for family in text_string_to_metric_families(reference.decode())
    ]
    assert value(metrics, "syncwatch_probes_in_flight", integration=ODD_INTEGRATION) == 2


def test_promtool_accepts_escaped_label_values(metrics: Metrics) -> None:
    """Prometheus's own parser reads the escaped odd label values without complaint."""
    busy(metrics)
    result = run_promtool("check", "metrics", stdin=metrics.render()[0].decode())
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_a_scrape_shows_what_changed_since_the_previous_one(metrics: Metrics) -> None:
    """Series rendered once and updated afterwards show their new values at the next scrape."""
    probe = {"integration": INTEGRATIONS[0], "template": "demo-request"}
    metrics.set_overdue({(INTEGRATIONS[0], "demo-request"): 2})
    metrics.render()
    later = AT.replace(hour=10)
    metrics.probe_finished(**probe, outcome="ok", error_class=None, latency_s=12.0, finished_at=AT)
    metrics.probe_finished(
        **probe, outcome="ok", error_class=None, latency_s=9.0, finished_at=later
    )
    metrics.set_in_flight(INTEGRATIONS[0], 5)
    metrics.set_overdue({})
    metrics.call_recorded(api_call())
    assert value(metrics, "syncwatch_probes_total", **probe, outcome="ok") == 2
    assert value(metrics, "syncwatch_sync_latency_seconds_bucket", **probe, le="10.0") == 1
    assert value(metrics, "syncwatch_sync_latency_seconds_bucket", **probe, le="15.0") == 2
    assert value(metrics, "syncwatch_sync_latency_seconds_sum", **probe) == 21.0
    last = value(metrics, "syncwatch_last_probe_timestamp_seconds", integration=INTEGRATIONS[0])
    assert last == later.timestamp()
    assert value(metrics, "syncwatch_probes_in_flight", integration=INTEGRATIONS[0]) == 5
    assert value(metrics, "syncwatch_probes_overdue", **probe) == 0
    request = {"vendor": "salesforce", "account": "salesforce-demo", "operation": "query"}
    assert value(metrics, "syncwatch_api_requests_total", **request, result="ok") == 1
    metrics.probe_finished(**probe, outcome="ok", error_class=None, latency_s=None, finished_at=AT)
    assert value(metrics, "syncwatch_probes_total", **probe, outcome="ok") == 3
    assert metrics.render()[0] == generate_latest(metrics.registry)
