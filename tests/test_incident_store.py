"""Incidents, tracks and the outbox in SQLite: round trips, atomicity, restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncwatch.incident_store import RESOLVE, TRIGGER, IncidentStore, incident_json
from syncwatch.incidents import PROBES, Observation, Policy, Step, Track, observe
from syncwatch.store import Store

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def step_through(incidents: IncidentStore, causes: list[str | None]) -> list[Step]:
    """Observe ``causes`` a minute apart on one track, saving each step (trigger/resolve to
    target ``hook``)."""
    track = next(iter(incidents.tracks()), Track("hs-sf", PROBES))
    steps = []
    for minute, cause in enumerate(causes):
        seen = Observation("hs-sf", PROBES, T0 + timedelta(minutes=minute), cause)
        step = observe(track, seen, Policy(), lambda c: f"http://sw:9851/runbooks/{c}")
        messages = []
        if step.incident is not None and (step.opened or step.resolved):
            event = TRIGGER if step.opened else RESOLVE
            messages = [("hook", event, {"event": event, "incident": incident_json(step.incident)})]
        incidents.apply(step, messages)
        steps.append(step)
        track = step.track
    return steps


@pytest.fixture
def incidents(tmp_path: Path) -> IncidentStore:
    return IncidentStore(Store.open(tmp_path / "sw.db"))


def test_an_incident_round_trips(incidents: IncidentStore) -> None:
    """What is saved is what is read back, field for field."""
    steps = step_through(incidents, ["vendor_5xx", "timeout", None, None])
    saved = steps[-1].incident
    assert saved is not None and saved.resolved_at is not None
    assert incidents.incident(saved.key) == saved
    assert incidents.open_incidents() == []


def test_a_restart_resumes_the_track_with_its_open_incident(tmp_path: Path) -> None:
    """A new store on the same file sees the open incident and the streaks: the next good
    observations resolve it, and nothing opens twice."""
    first = IncidentStore(Store.open(tmp_path / "sw.db"))
    step_through(first, ["vendor_5xx", "vendor_5xx", None])
    again = IncidentStore(Store.open(tmp_path / "sw.db"))
    (track,) = again.tracks()
    assert track.open is not None and track.good_streak == 1
    assert [incident.key for incident in again.open_incidents()] == [track.open.key]
    steps = step_through(again, [None])
    assert steps[0].resolved
    assert [m.event for m in again.outbox()] == [TRIGGER, RESOLVE]


def test_notifications_are_queued_with_their_incident(incidents: IncidentStore) -> None:
    """One trigger when it opens and one resolve when it resolves; none for evidence updates."""
    steps = step_through(incidents, ["auth", "auth", "auth", None, None])
    key = steps[1].incident.key if steps[1].incident else ""
    messages = incidents.outbox(key)
    assert [(m.target, m.event) for m in messages] == [("hook", TRIGGER), ("hook", RESOLVE)]
    assert messages[0].payload["incident"]["cause"] == "auth"
    assert messages[1].payload["incident"]["status"] == "resolved"
    assert messages[0].next_attempt_at == T0 + timedelta(minutes=1)  # due at once
    assert incidents.outbox_pending() == {"hook": 2}


def test_a_failed_apply_changes_nothing(incidents: IncidentStore) -> None:
    """Track, incident and notifications are one transaction: a message to write that cannot
    be serialised rolls the incident back too."""
    track = Track("hs-sf", PROBES, bad_streak=1, streak_started_at=T0, pending={"auth": 1})
    step = observe(track, Observation("hs-sf", PROBES, T0, "auth"), Policy(), str)
    assert step.opened
    with pytest.raises(TypeError):
        incidents.apply(step, [("hook", TRIGGER, {"unserialisable": object()})])
    assert incidents.open_incidents() == []
    assert incidents.tracks() == []
    assert incidents.outbox() == []


def test_outbox_heads_are_per_target_and_in_order(incidents: IncidentStore) -> None:
    """Each target's oldest undelivered message comes first; delivering it moves the head."""
    step_through(incidents, ["auth", "auth", None, None])
    (head,) = incidents.outbox_heads(["hook"])
    assert head.event == TRIGGER
    assert incidents.outbox_heads(["elsewhere"]) == []
    incidents.outbox_failed(head.id, "HTTP 503", T0 + timedelta(minutes=5))
    (again,) = incidents.outbox_heads(["hook"])
    assert (again.id, again.attempts, again.last_error) == (head.id, 1, "HTTP 503")
    incidents.outbox_delivered(head.id, T0 + timedelta(minutes=5))
    (second,) = incidents.outbox_heads(["hook"])
    assert second.event == RESOLVE
    assert incidents.outbox_pending() == {"hook": 1}


def test_incidents_between_takes_overlaps_and_open_ones(incidents: IncidentStore) -> None:
    """A breach straddling the window's start counts; one that ended before it does not."""
    steps = step_through(incidents, ["auth", "auth", None, None, "auth", "auth"])
    first = steps[3].incident
    second = steps[5].incident
    assert first is not None and second is not None and second.is_open
    window = incidents.incidents_between(T0 + timedelta(minutes=1), T0 + timedelta(hours=1))
    assert [i.key for i in window] == [first.key, second.key]
    later = incidents.incidents_between(T0 + timedelta(minutes=3), T0 + timedelta(hours=1))
    assert [i.key for i in later] == [second.key]
    assert [i.key for i in incidents.recent_incidents(1)] == [second.key]
