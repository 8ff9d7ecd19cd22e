"""The probes in flight, as the poll loop plans around them: each one's next look, and the
tick that one batched query per destination serves (DESIGN §4, "Ticks adapt").

The rules for a single probe (first look, cadence) are ``lifecycle.next_look``; here they meet:
``coalesced_tick`` decides when a destination is asked next, and ``Tick`` keeps that answer up
to date launch by launch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from syncwatch.config import Integration, TemplateRun
from syncwatch.lifecycle import Latency, next_look


@dataclass
class InFlight:
    """A probe the destination has not (fully) shown us yet."""

    probe_id: str
    email: str
    integration: Integration
    run: TemplateRun
    accepted_at: datetime
    uncertain: bool = False
    """Resumed from ``injecting``: we cannot prove the source accepted it."""
    last_look: datetime | None = None
    detected_at: datetime | None = None
    latency: Latency | None = None
    """Measured once, at first sight; kept while the owner check waits."""
    first_after_s: float = 0.0

    def due(self) -> datetime:
        return next_look(
            self.accepted_at, self.first_after_s, self.last_look, self.integration.poll.every
        )

    @property
    def awaiting_first_look(self) -> bool:
        first = self.accepted_at + timedelta(seconds=self.first_after_s)
        return self.last_look is None or self.last_look < first


@dataclass
class Tick:
    """``coalesced_tick``'s inputs for one destination, kept so that a launch updates them in
    O(1); dropped (and rebuilt on the next ask) when a poll or a conclusion changes them."""

    earliest: datetime
    first: datetime | None
    """The earliest due first look, if any probe awaits one."""
    every_s: float

    @classmethod
    def of(cls, probes: Iterable[InFlight]) -> Tick:
        it = iter(probes)
        one = next(it)
        tick = cls(
            one.due(), one.due() if one.awaiting_first_look else None, one.integration.poll.every
        )
        for probe in it:
            tick.add(probe)
        return tick

    def add(self, probe: InFlight) -> None:
        due = probe.due()
        self.earliest = min(self.earliest, due)
        if probe.awaiting_first_look:
            self.first = due if self.first is None else min(self.first, due)
        self.every_s = min(self.every_s, probe.integration.poll.every)

    def when(self) -> datetime:
        """What ``coalesced_tick`` gives for the same probes."""
        if self.first is None or self.first == self.earliest:
            return self.earliest
        patience = timedelta(seconds=self.every_s)
        return self.first if self.first <= self.earliest + patience else self.earliest


def coalesced_tick(probes: list[InFlight]) -> datetime:
    """The next tick for these probes: the earliest due look, except that looks in the steady
    cadence wait up to one more cadence for a first look that is due anyway.

    A tick queries every probe in flight, so the next probe's first look serves the stragglers
    too: one query instead of two, for at most ``every`` later detection, which costs no
    accuracy (latency comes from the destination's creation time). Measured on the 10-minute
    demo: 1.31 queries per probe without it, 1.07 with it (``python -m bench``).
    """
    earliest = min(probe.due() for probe in probes)
    firsts = [probe.due() for probe in probes if probe.awaiting_first_look]
    if not firsts or min(firsts) == earliest:
        return earliest
    patience = timedelta(seconds=min(p.integration.poll.every for p in probes))
    return min(firsts) if min(firsts) <= earliest + patience else earliest
