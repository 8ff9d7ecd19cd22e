"""The daemon's side of incidents: observations from probes and quota, persisted, counted."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from daemon_support import build_config, demo_raw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from syncwatch.config import Config
from syncwatch.events import QuotaReading
from syncwatch.incident_log import IncidentLog, own_runbook_base
from syncwatch.incident_store import RESOLVE, TRIGGER
from syncwatch.incidents import probe_observation, quota_observation
from syncwatch.metrics import Metrics
from syncwatch.store import Store

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WINDOWS = {"hubspot-demo": "daily", "salesforce-demo": "api-usage"}


def with_targets(raw: dict[str, Any]) -> None:
    raw["notifications"] = [
        {"name": "hook", "kind": "webhook", "url": {"env": "SW_TEST_HOOK"}},
        {"name": "pd", "kind": "pagerduty", "routing_key": {"env": "SW_TEST_PD"}},
    ]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    raw = demo_raw(tmp_path)
    with_targets(raw)
    return build_config(raw, tmp_path)


def new_log(config: Config, registry: CollectorRegistry | None = None) -> IncidentLog:
    metrics = Metrics(config, registry or CollectorRegistry(), WINDOWS)
    log = IncidentLog(config, Store.open(config.database), metrics, WINDOWS)
    log.resume()
    return log


def finish(log: IncidentLog, config: Config, outcomes: list[tuple[str, str | None]]) -> None:
    integration = config.integrations[0]
    for minute, (outcome, error_class) in enumerate(outcomes):
        log.probe_finished(integration, outcome, error_class, T0 + timedelta(minutes=minute))


def open_gauge(registry: CollectorRegistry, cause: str) -> float | None:
    return registry.get_sample_value(
        "syncwatch_incidents_open", {"integration": "hubspot-to-salesforce", "cause": cause}
    )


def test_failing_probes_open_an_incident_with_notifications_for_every_target(
    config: Config,
) -> None:
    """Two rejected probes: one incident, one trigger per target, the gauge at 1."""
    registry = CollectorRegistry()
    log = new_log(config, registry)
    with capture_logs() as logs:
        finish(log, config, [("rejected", "vendor_5xx"), ("rejected", "vendor_5xx")])
    (incident,) = log.incidents.open_incidents()
    assert (incident.cause, incident.attribution) == ("vendor_5xx", "vendor")
    assert incident.runbook_url == "http://127.0.0.1:9851/runbooks/vendor_5xx"
    queued = log.incidents.outbox(incident.key)
    assert sorted((m.target, m.event) for m in queued) == [("hook", TRIGGER), ("pd", TRIGGER)]
    assert open_gauge(registry, "vendor_5xx") == 1.0
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["incident opened"]


def test_recovery_resolves_and_queues_resolves(config: Config) -> None:
    """Two ok probes after: resolved, a resolve per target, the gauge back to 0."""
    registry = CollectorRegistry()
    log = new_log(config, registry)
    finish(log, config, [("lost", "sync_lost")] * 2 + [("ok", None)] * 2)
    assert log.incidents.open_incidents() == []
    (incident,) = log.incidents.recent_incidents(5)
    assert incident.cause == "sync_lost" and incident.resolved_at == T0 + timedelta(minutes=3)
    events = sorted(m.event for m in log.incidents.outbox(incident.key))
    assert events == [RESOLVE, RESOLVE, TRIGGER, TRIGGER]
    assert open_gauge(registry, "sync_lost") == 0.0


def test_a_restarted_log_neither_reopens_nor_forgets(config: Config) -> None:
    """Mid-incident restart: the open incident is resumed (gauge included), a further bad
    probe adds evidence without a second trigger, and recovery resolves the same incident."""
    first = new_log(config)
    finish(first, config, [("rejected", "auth")] * 2)
    registry = CollectorRegistry()
    second = new_log(config, registry)
    assert open_gauge(registry, "auth") == 1.0
    finish(second, config, [("rejected", "auth"), ("ok", None), ("ok", None)])
    (incident,) = second.incidents.recent_incidents(5)
    assert incident.bad == 3 and incident.resolved_at is not None
    assert sorted(m.event for m in second.incidents.outbox()) == [RESOLVE] * 2 + [TRIGGER] * 2


def test_a_store_that_cannot_be_written_drops_the_observation(config: Config) -> None:
    """No half-recorded incident: the in-memory track stays as the database has it."""
    log = new_log(config)
    finish(log, config, [("rejected", "auth")])
    log.store.db.execute("PRAGMA query_only = ON")
    with capture_logs() as logs:
        finish(log, config, [("rejected", "auth")])
    assert "cannot record an incident observation" in [e["event"] for e in logs]
    assert log.tracks[("hubspot-to-salesforce", "probes")].bad_streak == 1
    log.store.db.execute("PRAGMA query_only = OFF")
    finish(log, config, [("rejected", "auth")])
    assert len(log.incidents.open_incidents()) == 1


def save_quota(log: IncidentLog, used: int, limit: int, at: datetime) -> None:
    log.store.save_quota(
        QuotaReading("salesforce-demo", "api-usage", "salesforce", used, limit, at)
    )


def test_low_quota_opens_a_quota_low_incident(config: Config) -> None:
    """The demo's Salesforce account warns under 1,000 remaining (twice its reserve)."""
    log = new_log(config)
    save_quota(log, 14_500, 15_000, T0)
    finish(log, config, [("ok", None), ("ok", None)])
    (incident,) = log.incidents.open_incidents()
    assert (incident.track, incident.cause, incident.attribution) == (
        "quota",
        "quota_low",
        "customer",
    )
    assert incident.runbook_url.endswith("/runbooks/quota_low")


def test_a_stale_quota_figure_is_not_judged(config: Config) -> None:
    """A figure older than an hour says nothing about now: no quota observation at all."""
    log = new_log(config)
    save_quota(log, 14_500, 15_000, T0 - timedelta(hours=2))
    finish(log, config, [("ok", None), ("ok", None)])
    assert log.incidents.open_incidents() == []
    assert ("hubspot-to-salesforce", "quota") not in log.tracks


def test_runbook_links_follow_runbook_base_url(tmp_path: Path) -> None:
    """Configured: the operator's wiki; a wildcard listen host: this host's name."""
    raw = demo_raw(tmp_path)
    raw["runbook_base_url"] = "https://wiki.example/runbooks/"
    assert own_runbook_base(build_config(raw, tmp_path)) == "https://wiki.example/runbooks/"
    raw = demo_raw(tmp_path)
    raw["listen"] = "0.0.0.0:9999"
    base = own_runbook_base(build_config(raw, tmp_path))
    assert base.startswith("http://") and base.endswith(":9999/runbooks/")
    assert "0.0.0.0" not in base


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("probe"), st.sampled_from(["ok", "ok", "lost", "slow", "rejected"])),
        st.tuples(st.just("quota"), st.sampled_from([14_500, 2_000, 14_990]), st.booleans()),
    ),
    max_size=14,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=_STEPS)
def test_skipping_healthy_observations_changes_no_track_and_no_incident(
    config: Config, steps: list[tuple[Any, ...]]
) -> None:
    """``probe_finished`` leaves out a good observation of a clean track (most probes); a log
    that observes every probe and every fresh quota figure, as DESIGN §8 describes, ends with
    the same tracks, the same incidents and the same notifications queued."""
    integration, account = config.integrations[0], config.account("salesforce-demo")
    assert account is not None
    with tempfile.TemporaryDirectory() as scratch:
        stores = [Store.open(Path(scratch) / f"{name}.db") for name in ("fast", "every")]
        fast, every = (
            IncidentLog(config, store, Metrics(config, CollectorRegistry(), WINDOWS), WINDOWS)
            for store in stores
        )
        reading: tuple[int, datetime] | None = None
        for minute, step in enumerate(steps):
            at = T0 + timedelta(minutes=minute)
            if step[0] == "quota":
                used, fresh = step[1], step[2]
                observed = at if fresh else at - timedelta(hours=2)
                if reading is None or observed >= reading[1]:  # the store keeps the newest
                    reading = (used, observed)
                for log in (fast, every):
                    log.store.save_quota(
                        QuotaReading(
                            "salesforce-demo", "api-usage", "salesforce", used, 15_000, observed
                        )
                    )
                continue
            outcome = step[1]
            error_class = None if outcome == "ok" else "sync_lost"
            fast.probe_finished(integration, outcome, error_class, at)
            every.observe(probe_observation(integration.name, outcome, error_class, at))
            if reading is not None and at - reading[1] <= timedelta(hours=1):
                levels = [(15_000 - reading[0], account.quota.warning_level)]
                quota = quota_observation(integration.name, levels, at)
                assert quota is not None
                every.observe(quota)
        assert fast.tracks == every.tracks
        assert fast.incidents.open_incidents() == every.incidents.open_incidents()
        queued = "SELECT target, event, incident FROM outbox ORDER BY id"
        assert stores[0].db.execute(queued).fetchall() == stores[1].db.execute(queued).fetchall()
        for store in stores:
            store.close()
