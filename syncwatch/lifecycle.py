"""The rules of one probe's life (DESIGN §4), as pure functions the probing engine applies.

Latency, verification, outcome and polling cadence are decided here from values alone: no I/O,
no clock reads. That keeps the numbers behind a credit claim table-testable, and keeps
``probing.py`` about orchestration only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from syncwatch.vendors.base import Record

# Probe states, in order (DESIGN §4). A probe whose outcome is set but finished_at is not is
# waiting for clean-up; finished_at marks the end of its life.
SCHEDULED, INJECTING, IN_FLIGHT, DETECTED, VERIFIED, CLEANED = (
    "scheduled",
    "injecting",
    "in_flight",
    "detected",
    "verified",
    "cleaned",
)
OUTCOMES = ("ok", "slow", "lost", "rejected", "mismatch", "misrouted", "skipped")

# Latency methods stored beside each value, so a reader knows how much to trust it.
CREATED_CORRECTED = "created_date"
"""Destination creation time, corrected by the estimated vendor clock offset."""
CREATED_UNCORRECTED = "created_date_uncorrected"
"""Destination creation time; no ``Date`` header yet, so the offset is taken as zero."""
DETECTION_BOUND = "detection_bound"
"""The creation time fell after our detection (clock error): the detection bound is used."""
APPROXIMATE = "approximate"
"""No creation time from the destination: detection time minus acceptance time."""


@dataclass(frozen=True)
class Latency:
    seconds: float
    method: str


def measure_latency(accepted_at: datetime, detected_at: datetime, record: Record) -> Latency:
    """Sync latency of one probe: destination creation - source acceptance, on one clock.

    The destination's timestamp is moved onto our clock by its estimated offset. A vendor that
    truncates to whole seconds (Salesforce ``CreatedDate``) created the record somewhere in that
    second; the middle of it halves the worst-case error. The result can never exceed what we
    saw ourselves (detection - acceptance) nor be negative.
    """
    bound = max((detected_at - accepted_at).total_seconds(), 0.0)
    if record.created_at is None:
        return Latency(bound, APPROXIMATE)
    offset = record.clock_offset_s
    method = CREATED_CORRECTED if offset is not None else CREATED_UNCORRECTED
    created = record.created_at + timedelta(
        seconds=record.created_resolution_s / 2 - (offset or 0.0)
    )
    seconds = (created - accepted_at).total_seconds()
    if seconds > bound:
        return Latency(bound, DETECTION_BOUND)
    return Latency(max(seconds, 0.0), method)


def field_differences(expected: Mapping[str, str], record: Record) -> list[str]:
    """The expected destination fields that arrived different, as ``Field: want 'a', got 'b'``.

    ``expected`` is already in the destination's field names (the template's ``expect`` block
    is written after the connector's mapping), so a difference is the connector's doing.
    Emails compare case-insensitively: CRMs may lower-case them.
    """
    fields = {name.lower(): value for name, value in record.fields.items()}
    problems = []
    for name, want in expected.items():
        got = fields.get(name.lower())
        have = "" if got is None else str(got)
        same = have.lower() == want.lower() if name.lower() == "email" else have == want
        if not same:
            problems.append(f"{name}: want {want!r}, got {have!r}")
    return problems


def owner_matches(expected_owner: str | None, record: Record) -> bool:
    """Whether the record's owner is the expected one, in each CRM's own id form.

    Salesforce ids come as 15 case-sensitive characters or 18 (the same 15 plus a checksum for
    case-insensitive tools), so two Salesforce ids compare on their first 15. Anything else
    (Dataverse GUIDs, HubSpot's numeric owner ids) compares whole and case-insensitively: a GUID
    is written in either case, and its first 15 characters are not an identity."""
    if expected_owner is None:
        return True
    if record.owner is None:
        return False
    expected, actual = expected_owner.strip(), record.owner.strip()
    if _SALESFORCE_ID.fullmatch(expected) and _SALESFORCE_ID.fullmatch(actual):
        return actual[:15] == expected[:15]
    return actual.casefold() == expected.casefold()


_SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def outcome_for(
    latency_s: float, objective_s: float, differences: Sequence[str], owner_ok: bool
) -> str:
    """A detected probe's outcome: fields first, then routing, then time."""
    if differences:
        return "mismatch"
    if not owner_ok:
        return "misrouted"
    return "ok" if latency_s <= objective_s else "slow"


def typical_latency(recent: Sequence[float], floor_s: float, ceiling_s: float) -> float:
    """When to take the first look: the 75th percentile of recent latencies (nearest rank).

    Looking where most probes have already arrived finds them in one query instead of several;
    latency itself comes from the destination's creation time, so a later first look costs no
    accuracy. Never before ``floor_s`` (the configured ``first_after``); with fewer than five
    observations the floor is all we know.
    """
    if len(recent) < 5:
        return floor_s
    ordered = sorted(recent)
    rank = math.ceil(0.75 * len(ordered))
    return max(min(ordered[rank - 1], ceiling_s), floor_s)


def next_look(
    accepted_at: datetime, first_after_s: float, last_look: datetime | None, every_s: float
) -> datetime:
    """When a probe is next due to be looked for: first look, then a steady cadence."""
    first = accepted_at + timedelta(seconds=first_after_s)
    if last_look is None:
        return first
    return max(first, last_look + timedelta(seconds=every_s))
