"""Issue #5's promise end to end: a HubSpot outage in the sandbox becomes exactly one incident,
one trigger and one resolve per notification target with the runbook link in each, and the
incident on /status; a restart mid-incident neither duplicates nor loses any of it.

The real daemon runs against the in-process sandbox on a virtual clock; the sandbox's own
receivers (generic webhook, Slack, PagerDuty Events v2) are the notification endpoints.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from daemon_support import SANDBOX, Rig, make_rig
from prometheus_client import CollectorRegistry

from syncwatch.incident_store import IncidentStore
from syncwatch.incidents import Incident
from syncwatch.metrics import Metrics
from syncwatch.runbooks import Runbooks, default_directory
from syncwatch.sandbox.scenario import Scenario
from syncwatch.status import StatusBoard
from syncwatch.web import Health, create_web_app

OUTAGE_START_S, OUTAGE_S = 30 * 60, 15 * 60
RUNBOOK = "http://127.0.0.1:9851/runbooks/vendor_5xx"
ROUTING_KEY = "e2e0routing0key0000000000000000a"  # PagerDuty keys are 32 characters


def scenario(*extra_faults: dict[str, Any]) -> Scenario:
    """A quick connector (nothing slow, nothing lost) and a 15-minute HubSpot outage."""
    return Scenario.model_validate(
        {
            "seed": 5,
            "sync": {"latency": {"median": "20s", "p95": "40s"}},
            "faults": [
                {"kind": "outage", "vendor": "hubspot", "after": OUTAGE_START_S, "for": OUTAGE_S},
                *extra_faults,
            ],
        }
    )


def with_targets(tmp_path: Path) -> Any:
    secrets = {
        "hook-url": f"{SANDBOX}/webhook/e2e",
        "slack-url": f"{SANDBOX}/slack/services/T0001/B0001/e2e",
        "pd-key": ROUTING_KEY,
    }
    for name, value in secrets.items():
        (tmp_path / name).write_text(value, encoding="utf-8")

    def edit(raw: dict[str, Any]) -> None:
        raw["notifications"] = [
            {"name": "hook", "kind": "webhook", "url": {"file": str(tmp_path / "hook-url")}},
            {
                "name": "slack",
                "kind": "slack",
                "webhook_url": {"file": str(tmp_path / "slack-url")},
            },
            {
                "name": "oncall",
                "kind": "pagerduty",
                "routing_key": {"file": str(tmp_path / "pd-key")},
                "events_url": f"{SANDBOX}/pagerduty/v2/enqueue",
            },
        ]
        raw["incidents"] = {"confirm": 2, "recover": 2}

    return edit


async def received(rig: Rig, kind: str) -> list[dict[str, Any]]:
    """What the sandbox's receiver of ``kind`` accepted, in arrival order."""
    async with httpx.AsyncClient(transport=rig.transport(), base_url=SANDBOX) as client:
        notes = (await client.get("/_sandbox/notifications")).json()["notifications"]
    return [n["body"] for n in notes if n["kind"] == kind and 200 <= n["status"] < 300]


def incidents(rig: Rig) -> list[Incident]:
    return IncidentStore(rig.store).recent_incidents(50)


def assert_one_trigger_and_one_resolve(notes: dict[str, list[dict[str, Any]]]) -> None:
    """Per target: trigger then resolve, the runbook link in each, nothing else."""
    hook, slack, pagerduty = notes["webhook"], notes["slack"], notes["pagerduty"]
    assert [n["event"] for n in hook] == ["incident.opened", "incident.resolved"]
    assert all(n["runbook_url"] == RUNBOOK for n in hook)
    assert [n["event_action"] for n in pagerduty] == ["trigger", "resolve"]
    assert len({n["dedup_key"] for n in pagerduty}) == 1
    assert pagerduty[0]["links"][0]["href"] == RUNBOOK
    assert len(slack) == 2
    assert all(RUNBOOK in str(n) for n in slack)


async def all_notes(rig: Rig) -> dict[str, list[dict[str, Any]]]:
    return {kind: await received(rig, kind) for kind in ("webhook", "slack", "pagerduty")}


async def status_page(rig: Rig) -> str:
    """/status as the daemon serves it, from the store the daemons wrote."""
    metrics = Metrics(rig.config, CollectorRegistry())
    board = StatusBoard(rig.config, rig.store, rig.clock, metrics.contracts)
    app = create_web_app(
        metrics, Health(rig.clock, 90.0), status=board, runbooks=Runbooks(default_directory())
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sw") as client:
        response = await client.get("/status")
    assert response.status_code == 200
    return response.text


async def test_an_outage_is_one_incident_with_one_trigger_and_one_resolve(
    tmp_path: Path,
) -> None:
    """Opened after two rejected probes inside the outage, resolved after two good ones
    after it, notified once each way to every target, with the runbook link."""
    rig = make_rig(tmp_path, scenario(), edit=with_targets(tmp_path))
    start = rig.clock.now()
    await rig.run_for(2 * 3600, drain_s=600)
    (incident,) = incidents(rig)
    outage_start = start + timedelta(seconds=OUTAGE_START_S)
    outage_end = outage_start + timedelta(seconds=OUTAGE_S)
    assert (incident.cause, incident.attribution, incident.track) == (
        "vendor_5xx",
        "vendor",
        "probes",
    )
    assert outage_start <= incident.started_at < incident.opened_at < outage_end
    assert incident.recovered_at is not None and incident.resolved_at is not None
    assert outage_end <= incident.recovered_at <= incident.resolved_at  # one poll may find both
    assert incident.resolved_at - outage_end < timedelta(minutes=5)
    assert incident.runbook_url == RUNBOOK
    assert_one_trigger_and_one_resolve(await all_notes(rig))
    assert IncidentStore(rig.store).outbox_pending() == {}


async def test_a_restart_mid_incident_with_a_receiver_down_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    """The daemon stops while the incident is open and its webhook receiver is down (the
    trigger undelivered); the next daemon resumes the same incident, delivers the trigger once
    the receiver is back, then the resolve: one of each, no second incident. /status shows
    the incident while it is open."""
    receiver_down = {"kind": "outage", "vendor": "webhook", "after": "25m", "for": "35m"}
    rig = make_rig(tmp_path, scenario(receiver_down), edit=with_targets(tmp_path))
    await rig.run_for(40 * 60)
    (open_incident,) = IncidentStore(rig.store).open_incidents()
    assert IncidentStore(rig.store).outbox_pending() == {"hook": 1}
    page = await status_page(rig)
    assert open_incident.key in page and RUNBOOK in page
    await rig.run_for(80 * 60, drain_s=600)
    (incident,) = incidents(rig)
    assert incident.key == open_incident.key and incident.resolved_at is not None
    notes = await all_notes(rig)
    assert_one_trigger_and_one_resolve(notes)
    assert IncidentStore(rig.store).outbox_pending() == {}
    attempts = {
        m.event: m.attempts
        for m in IncidentStore(rig.store).outbox(incident.key)
        if m.target == "hook"
    }
    assert attempts["trigger"] > 1  # it did fail while the receiver was down
