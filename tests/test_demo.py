"""The demo's own parts: the config re-pointed at the sandbox, and its report's lines."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncwatch.daemon import Tally
from syncwatch.demo import DemoReport, _count_incidents, demo_config
from syncwatch.incident_store import TRIGGER, IncidentStore, incident_json
from syncwatch.incidents import PROBES, Observation, Policy, Track, observe
from syncwatch.sandbox_config import DEMO_SECRETS
from syncwatch.store import Store

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_notification_targets_point_at_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PagerDuty's events_url is re-pointed like a vendor host; unset URL secrets become the
    sandbox's receivers, and the routing key one the sandbox's PagerDuty accepts."""
    for name in DEMO_SECRETS:
        monkeypatch.setenv(name, "")  # unset for demo_config; restored after the test
    config = demo_config(REPO / "config" / "demo.yaml", "http://127.0.0.1:4242", tmp_path / "d.db")
    webhook, slack, pagerduty = config.notifications
    assert str(pagerduty.events_url) == "http://127.0.0.1:4242/pagerduty/v2/enqueue"
    assert webhook.url.resolve() == "http://127.0.0.1:4242/webhook/demo"
    assert slack.webhook_url.resolve().startswith("http://127.0.0.1:4242/slack/")
    assert len(pagerduty.routing_key.resolve()) == 32


def test_the_report_counts_this_runs_incidents_and_notifications(tmp_path: Path) -> None:
    """Incidents opened since the run began, by cause; how many notifications went out."""
    incidents = IncidentStore(Store.open(tmp_path / "d.db"))
    track = Track("hs-sf", PROBES)
    for minute in range(2):
        seen = Observation("hs-sf", PROBES, T0 + timedelta(minutes=minute), "vendor_5xx")
        step = observe(track, seen, Policy(), lambda cause: f"http://x/runbooks/{cause}")
        messages = []
        if step.opened and step.incident:
            payload = {"event": TRIGGER, "incident": incident_json(step.incident)}
            messages = [("hook", TRIGGER, payload), ("pd", TRIGGER, payload)]
        incidents.apply(step, messages)
        track = step.track
    first = incidents.outbox()[0]
    incidents.outbox_delivered(first.id, T0 + timedelta(minutes=2))
    report = DemoReport(Tally(), probes=2, calls=4)
    _count_incidents(report, incidents, T0)
    assert report.incidents == Counter({"vendor_5xx": 1})
    assert (report.still_open, report.notified, report.notify_pending) == (1, 1, 1)
    assert "incidents: 1 vendor_5xx (1 still open); notifications: 1 delivered, 1 pending" in (
        report.lines()
    )
    later = DemoReport(Tally(), probes=0, calls=0)
    _count_incidents(later, incidents, T0 + timedelta(hours=1))
    assert "incidents: none" in later.lines()
