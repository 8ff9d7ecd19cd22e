"""Incidents from a stream of observations: a pure state machine (DESIGN §8).

One blip must not page anyone, and one good probe in the middle of an outage must not resolve
it. So an incident opens only after ``confirm`` consecutive bad observations and resolves only
after ``recover`` consecutive good ones; in between, every observation is evidence.

Observations come in *tracks*, each an independent stream for one integration:

- ``probes``: every finished probe. ``ok`` is good; any other outcome is bad, its cause the
  probe's error class, or ``latency`` (slow), ``mismatch`` or ``misrouted``.
- ``quota``: the accounts' remaining daily quota, looked at as each probe finishes; bad
  (``quota_low``) when an account of the integration is under its warning level.

A track holds at most one open incident. Its cause is the dominant cause of the bad streak that
confirmed it (ties go to the latest), and stays fixed while it is open: it chose the runbook,
the page and the ``incidents_open{cause}`` series, and a label that changed mid-incident would
split one incident into two series. The mix of causes seen while open is kept as evidence.

Times: ``started_at`` is the first bad observation, ``opened_at`` the one that confirmed it;
``recovered_at`` the first good observation of the streak that resolved it, ``resolved_at`` the
one that confirmed recovery. The incident's duration (and MTTR) is ``recovered_at -
started_at``: what the breach lasted, not how long confirmation took.

No I/O and no clock: the caller (``incident_log.py``) persists each ``Step`` and sends the
notifications it implies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from syncwatch.errors import ATTRIBUTION, ERROR_CLASSES

PROBES = "probes"
QUOTA = "quota"
TRACKS = (PROBES, QUOTA)

OUTCOME_CAUSES = {"slow": "latency", "mismatch": "mismatch", "misrouted": "misrouted"}
"""Outcomes that are their own cause; other failed outcomes carry an error class."""

CAUSES: tuple[str, ...] = (*ERROR_CLASSES, "latency", "mismatch", "misrouted", "quota_low")
"""Every cause an incident can have; each has ``runbooks/<cause>.md``."""

CAUSE_ATTRIBUTION: dict[str, str] = {
    **ATTRIBUTION,
    "latency": "vendor",  # the vendor's connector took longer than the objective
    "mismatch": "customer",  # field mappings and workflows are the customer's configuration
    "misrouted": "customer",  # assignment rules too
    "quota_low": "customer",  # the customer's own usage ate the allowance
}


@dataclass(frozen=True)
class Policy:
    """How many bad observations open an incident, and how many good ones resolve it."""

    confirm: int = 2
    recover: int = 2


@dataclass(frozen=True)
class Observation:
    """One look at a track: ``cause`` None is good, otherwise bad for that cause."""

    integration: str
    track: str
    at: datetime
    cause: str | None


@dataclass(frozen=True)
class Incident:
    key: str
    """Stable across restarts, and the notifications' dedup key."""
    integration: str
    track: str
    cause: str
    attribution: str
    runbook_url: str
    started_at: datetime
    opened_at: datetime
    recovered_at: datetime | None = None
    resolved_at: datetime | None = None
    bad: int = 0
    """Bad observations: the confirming streak and every bad one while open."""
    good: int = 0
    """Good observations while open (a partial recovery the next bad one interrupted)."""
    causes: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def duration(self) -> timedelta | None:
        """How long the breach lasted; None while it is open."""
        return None if self.recovered_at is None else self.recovered_at - self.started_at


@dataclass(frozen=True)
class Track:
    """One stream's memory between observations: streaks, and the open incident if any."""

    integration: str
    track: str
    bad_streak: int = 0
    good_streak: int = 0
    """Consecutive good observations while an incident is open (0 otherwise)."""
    streak_started_at: datetime | None = None
    pending: Mapping[str, int] = field(default_factory=dict)
    """Causes of the bad streak that has not opened an incident yet."""
    open: Incident | None = None

    @property
    def is_clean(self) -> bool:
        """No incident open and no bad streak: a good observation leaves it as it is (the
        streak fields are only ever set during a bad streak or while an incident is open)."""
        return self.open is None and self.bad_streak == 0


@dataclass(frozen=True)
class Step:
    """What one observation changed. ``incident`` is the open or just-resolved incident as it
    now stands (None when none is involved); ``opened``/``resolved`` say which transition."""

    track: Track
    incident: Incident | None = None
    opened: bool = False
    resolved: bool = False


def observe(
    track: Track, observation: Observation, policy: Policy, runbook: Callable[[str], str]
) -> Step:
    """Advance ``track`` by one observation; ``runbook`` maps a cause to its URL."""
    if observation.cause is None:
        return _good(track, observation.at, policy)
    return _bad(track, observation, policy, runbook)


def _bad(track: Track, seen: Observation, policy: Policy, runbook: Callable[[str], str]) -> Step:
    cause = seen.cause
    assert cause is not None
    if track.open is not None:
        evidence = _add(track.open.causes, cause)
        incident = replace(track.open, bad=track.open.bad + 1, causes=evidence)
        return Step(replace(track, good_streak=0, streak_started_at=None, open=incident), incident)
    started = track.streak_started_at if track.bad_streak else seen.at
    pending = _add(track.pending if track.bad_streak else {}, cause)
    streak = track.bad_streak + 1
    if streak < policy.confirm:
        waiting = replace(
            track, bad_streak=streak, good_streak=0, streak_started_at=started, pending=pending
        )
        return Step(waiting)
    chosen = dominant(pending, latest=cause)
    assert started is not None
    incident = Incident(
        key=incident_key(track.integration, track.track, started),
        integration=track.integration,
        track=track.track,
        cause=chosen,
        attribution=CAUSE_ATTRIBUTION.get(chosen, "vendor"),
        runbook_url=runbook(chosen),
        started_at=started,
        opened_at=seen.at,
        bad=streak,
        causes=pending,
    )
    return Step(Track(track.integration, track.track, open=incident), incident, opened=True)


def _good(track: Track, at: datetime, policy: Policy) -> Step:
    if track.open is None:
        # Nothing to recover from: a clean track, the same after every good observation, so
        # a healthy integration's track is not rewritten on every probe.
        return Step(Track(track.integration, track.track))
    recovering_since = track.streak_started_at if track.good_streak else at
    incident = replace(track.open, good=track.open.good + 1)
    streak = track.good_streak + 1
    if streak < policy.recover:
        waiting = replace(
            track, good_streak=streak, streak_started_at=recovering_since, open=incident
        )
        return Step(waiting, incident)
    resolved = replace(incident, recovered_at=recovering_since, resolved_at=at)
    return Step(Track(track.integration, track.track), resolved, resolved=True)


def dominant(causes: Mapping[str, int], latest: str) -> str:
    """The most frequent cause; a tie goes to ``latest`` if it is among the tied, else to the
    alphabetically first (deterministic)."""
    top = max(causes.values())
    tied = sorted(cause for cause, count in causes.items() if count == top)
    return latest if latest in tied else tied[0]


def incident_key(integration: str, track: str, started_at: datetime) -> str:
    """``<integration>/<track>/<UTC start>``: readable, and unique because a track's next
    incident needs a recovery first, so it cannot start in the same second."""
    return f"{integration}/{track}/{started_at.strftime('%Y%m%dT%H%M%SZ')}"


def probe_observation(
    integration: str, outcome: str, error_class: str | None, at: datetime
) -> Observation:
    """A finished probe as an observation of the ``probes`` track."""
    if outcome == "ok":
        return Observation(integration, PROBES, at, None)
    cause = OUTCOME_CAUSES.get(outcome) or error_class or "sync_lost"
    return Observation(integration, PROBES, at, cause)


def quota_observation(
    integration: str, levels: list[tuple[int, int]], at: datetime
) -> Observation | None:
    """The ``quota`` track from each account's (remaining, warning level); None if no account
    has a figure to judge by (nothing is known, so nothing is observed)."""
    if not levels:
        return None
    low = any(remaining < warning for remaining, warning in levels)
    return Observation(integration, QUOTA, at, "quota_low" if low else None)


def runbook_url(cause: str, base_url: str) -> str:
    """``base_url + cause``, concatenated as written (DESIGN §8): the operator's wiki, or the
    daemon's own ``http://HOST:PORT/runbooks/``."""
    return f"{base_url}{cause}"


def _add(counts: Mapping[str, int], cause: str) -> dict[str, int]:
    return {**counts, cause: counts.get(cause, 0) + 1}
