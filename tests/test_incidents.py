"""The incident state machine: confirmation, recovery, causes, times (DESIGN §8).

Sequences are written as strings, one character per observation a minute apart: ``.`` good,
``5`` vendor_5xx, ``t`` timeout, ``l`` sync_lost, ``s`` slow (latency). Expected results were
worked out by hand from the rules in the module docstring.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncwatch.errors import ATTRIBUTION
from syncwatch.incidents import (
    CAUSE_ATTRIBUTION,
    CAUSES,
    PROBES,
    QUOTA,
    Incident,
    Observation,
    Policy,
    Step,
    Track,
    dominant,
    incident_key,
    observe,
    probe_observation,
    quota_observation,
    runbook_url,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SYMBOLS = {".": None, "5": "vendor_5xx", "t": "timeout", "l": "sync_lost", "s": "latency"}


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def runbook(cause: str) -> str:
    return f"https://wiki.example/rb/{cause}"


DEFAULT = Policy()


def play(sequence: str, policy: Policy = DEFAULT) -> tuple[Track, list[Step]]:
    """Feed ``sequence`` to a fresh track; every step is returned."""
    track, steps = Track("hs-sf", PROBES), []
    for minute, symbol in enumerate(sequence):
        step = observe(
            track, Observation("hs-sf", PROBES, at(minute), SYMBOLS[symbol]), policy, runbook
        )
        steps.append(step)
        track = step.track
    return track, steps


def opened(steps: list[Step]) -> list[Incident]:
    return [step.incident for step in steps if step.opened and step.incident]


def resolved(steps: list[Step]) -> list[Incident]:
    return [step.incident for step in steps if step.resolved and step.incident]


@pytest.mark.parametrize(
    ("sequence", "confirm", "recover", "opens_at", "resolves_at"),
    [
        ("5", 2, 2, [], []),  # one blip: no page
        ("5.5.5.", 2, 2, [], []),  # alternating never confirms
        ("55", 2, 2, [1], []),  # the second bad one confirms
        ("55.", 2, 2, [1], []),  # one good one does not resolve
        ("55..", 2, 2, [1], [3]),  # the second good one does
        ("55.5..", 2, 2, [1], [5]),  # a bad one interrupts recovery: it starts again
        ("5", 1, 1, [0], []),  # confirm 1 pages at once
        ("5.", 1, 1, [0], [1]),
        ("555", 3, 1, [2], []),
        ("55..55..", 2, 2, [1, 5], [3, 7]),  # two separate incidents
        ("....55", 2, 2, [5], []),  # goods before count for nothing
        ("5555555..", 2, 3, [1], []),  # recover 3 needs three
        ("5555555...", 2, 3, [1], [9]),
    ],
)
def test_open_and_resolve_minutes(
    sequence: str, confirm: int, recover: int, opens_at: list[int], resolves_at: list[int]
) -> None:
    """Incidents open at the confirming observation and resolve at the recovering one."""
    _, steps = play(sequence, Policy(confirm, recover))
    assert [incident.opened_at for incident in opened(steps)] == [at(m) for m in opens_at]
    assert [incident.resolved_at for incident in resolved(steps)] == [at(m) for m in resolves_at]


def test_times_and_duration_of_one_incident() -> None:
    """started/opened and recovered/resolved: the breach lasts from the first bad observation
    to the first good one of the recovery that held."""
    _, steps = play("..55.5...")
    (incident,) = resolved(steps)
    assert incident.started_at == at(2)
    assert incident.opened_at == at(3)
    assert incident.recovered_at == at(6)  # minute 4 was good, but minute 5 broke that streak
    assert incident.resolved_at == at(7)
    assert incident.duration == timedelta(minutes=4)
    assert incident.bad == 3  # two confirming, one while open
    assert incident.good == 3  # minute 4, 6, 7
    assert not incident.is_open


def test_the_open_incident_is_reported_with_every_step_while_open() -> None:
    """Evidence counts grow while open; the caller saves each version."""
    _, steps = play("555")
    assert [step.opened for step in steps] == [False, True, False]
    assert steps[0].incident is None  # not confirmed yet: nothing to save but the track
    assert steps[2].incident is not None and steps[2].incident.bad == 3
    assert steps[2].incident.is_open


@pytest.mark.parametrize(
    ("sequence", "cause"),
    [
        ("55", "vendor_5xx"),
        ("5t", "timeout"),  # a tie goes to the latest
        ("t5", "vendor_5xx"),
        ("55t", "vendor_5xx"),  # confirm 3: 5xx dominates
        ("t55", "vendor_5xx"),
        ("5tt", "timeout"),
        ("ss", "latency"),
    ],
)
def test_cause_is_the_dominant_one_of_the_confirming_streak(sequence: str, cause: str) -> None:
    """The cause is the most frequent; ties go to the latest observation's."""
    _, steps = play(sequence, Policy(confirm=len(sequence), recover=2))
    (incident,) = opened(steps)
    assert incident.cause == cause
    assert incident.runbook_url == runbook(cause)
    assert incident.attribution == CAUSE_ATTRIBUTION[cause]


def test_cause_stays_fixed_while_open_and_the_mix_is_evidence() -> None:
    """Later causes are counted, but do not relabel the incident (its page and series)."""
    track, _ = play("55tttt")
    assert track.open is not None
    assert track.open.cause == "vendor_5xx"
    assert dict(track.open.causes) == {"vendor_5xx": 2, "timeout": 4}


def test_a_good_observation_clears_a_pending_streak_and_its_causes() -> None:
    """The causes of a streak that never confirmed do not leak into the next incident."""
    _, steps = play("t.55")
    (incident,) = opened(steps)
    assert dict(incident.causes) == {"vendor_5xx": 2}
    assert incident.started_at == at(2)


def test_a_new_incident_after_resolution_has_a_new_key() -> None:
    """Keys are stable per incident and differ between incidents of one track."""
    _, steps = play("55..55")
    first, second = opened(steps)
    assert first.key == "hs-sf/probes/20261102T090000Z"
    assert second.key == incident_key("hs-sf", PROBES, at(4))
    assert first.key != second.key


def test_resolution_leaves_a_clean_track() -> None:
    """After resolving, the track remembers no incident and no bad streak."""
    track, _ = play("55..")
    assert track.open is None and track.bad_streak == 0 and not track.pending


def test_tracks_are_independent() -> None:
    """A quota track's observations never touch the probes track."""
    probes = Track("hs-sf", PROBES)
    quota = Track("hs-sf", QUOTA)
    step = observe(quota, Observation("hs-sf", QUOTA, at(0), "quota_low"), Policy(1, 1), runbook)
    assert step.opened and step.incident is not None
    assert step.incident.key.startswith("hs-sf/quota/")
    assert probes.open is None


@pytest.mark.parametrize(
    ("outcome", "error_class", "cause"),
    [
        ("ok", None, None),
        ("slow", None, "latency"),
        ("mismatch", None, "mismatch"),
        ("misrouted", None, "misrouted"),
        ("lost", "sync_lost", "sync_lost"),
        ("lost", None, "sync_lost"),  # a lost probe without a class is sync_lost (DESIGN §7)
        ("rejected", "vendor_5xx", "vendor_5xx"),
        ("rejected", "validation", "validation"),
        ("skipped", "quota_guard", "quota_guard"),
        ("skipped", "monitor", "monitor"),
    ],
)
def test_probe_outcomes_as_observations(
    outcome: str, error_class: str | None, cause: str | None
) -> None:
    """ok is good; every other outcome is bad, with its own cause or its error class."""
    observation = probe_observation("hs-sf", outcome, error_class, at(0))
    assert observation == Observation("hs-sf", PROBES, at(0), cause)


@pytest.mark.parametrize(
    ("levels", "cause"),
    [
        ([(5000, 1000)], None),
        ([(999, 1000)], "quota_low"),
        ([(1000, 1000)], None),  # at the level is not under it
        ([(5000, 1000), (10, 100)], "quota_low"),  # either account low
    ],
)
def test_quota_observations(levels: list[tuple[int, int]], cause: str | None) -> None:
    """Low when any account's remaining daily calls are under its warning level."""
    observation = quota_observation("hs-sf", levels, at(0))
    assert observation == Observation("hs-sf", QUOTA, at(0), cause)


def test_no_quota_figures_no_observation() -> None:
    """Nothing known about the quota: no observation, so no streak moves either way."""
    assert quota_observation("hs-sf", [], at(0)) is None


def test_every_cause_has_an_attribution() -> None:
    """Error classes keep DESIGN §6's attribution; the others are named."""
    assert set(CAUSE_ATTRIBUTION) == set(CAUSES)
    for error_class, who in ATTRIBUTION.items():
        assert CAUSE_ATTRIBUTION[error_class] == who
    assert CAUSE_ATTRIBUTION["latency"] == "vendor"
    assert CAUSE_ATTRIBUTION["quota_low"] == "customer"


def test_dominant_tie_without_the_latest_is_alphabetical() -> None:
    """Deterministic whatever the dict order."""
    assert dominant({"timeout": 2, "auth": 2, "malformed": 1}, latest="malformed") == "auth"


def test_runbook_url_is_concatenated_as_written() -> None:
    """DESIGN §8: runbook_base_url + cause, no slash added or removed."""
    assert runbook_url("auth", "https://wiki.example/rb/") == "https://wiki.example/rb/auth"
    assert runbook_url("auth", "https://wiki.example/rb/sw-") == "https://wiki.example/rb/sw-auth"


@settings(max_examples=300, deadline=None)
@given(
    sequence=st.text(alphabet=".5tls", max_size=12),
    confirm=st.integers(1, 3),
    recover=st.integers(1, 3),
)
def test_a_clean_track_is_one_a_good_observation_leaves_as_it_is(
    sequence: str, confirm: int, recover: int
) -> None:
    """``Track.is_clean`` lets the incident log skip a healthy track's good observations (most
    probes) without judging them: after any history, it holds exactly when a good observation
    would change nothing and involve no incident."""
    policy = Policy(confirm=confirm, recover=recover)
    track, _ = play(sequence, policy)
    step = observe(track, Observation("hs-sf", PROBES, at(len(sequence)), None), policy, runbook)
    unchanged = step.track == track and step.incident is None
    assert track.is_clean == unchanged
