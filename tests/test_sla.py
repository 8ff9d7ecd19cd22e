"""SLA arithmetic (DESIGN §7, issue #4): hand-checked tables written from the spec, not the code.

Every expected number is worked out by hand in a comment beside it. Conventions used throughout:
the contract covers vendor ``hubspot`` and integration ``hs-sf``; October 2026 in UTC starts on a
Thursday and has 31 x 1,440 = 44,640 minutes (8,928 five-minute intervals); tiers are
<99.9 → 10 %, <99.0 → 25 %, <95.0 → 50 %, cap 50 %, monthly fee 3,600.00 USD. Events sit 30 s
into their interval so each belongs to exactly one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncwatch.config.contracts import Contract
from syncwatch.sla import CallEvent, ProbeEvent, SlaResult, evaluate, month_period

Event = ProbeEvent | CallEvent

TIERS = [
    {"below": "99.9", "credit": "10"},
    {"below": "99.0", "credit": "25"},
    {"below": "95.0", "credit": "50"},
]
OCT_MINUTES = 44_640
OCT_INTERVALS = OCT_MINUTES // 5  # 8,928


def contract(**changes: Any) -> Contract:
    """The base contract of the module docstring with top-level keys replaced."""
    data: dict[str, Any] = {
        "name": "hubspot-enterprise",
        "vendor": "hubspot",
        "integrations": ["hs-sf"],
        "timezone": "UTC",
        "objective_percent": "99.9",
        "interval_minutes": 5,
        "credits": TIERS,
        "credit_cap_percent": "50",
        "monthly_fee": "3600.00",
        "currency": "USD",
    }
    data.update(changes)
    return Contract.model_validate(data)


def utc(text: str) -> datetime:
    """An aware instant from ISO text (``Z`` or an offset), normalised to UTC."""
    return datetime.fromisoformat(text).astimezone(UTC)


OCT = utc("2026-10-01T00:00:00Z")
T0 = OCT + timedelta(seconds=60)  # inside interval 0 of October


def ok_call(at: datetime, vendor: str = "hubspot") -> CallEvent:
    return CallEvent(vendor=vendor, at=at, ok=True, status=200)


def failed_call(
    at: datetime,
    error_class: str = "vendor_5xx",
    vendor: str = "hubspot",
    integration: str | None = None,
) -> CallEvent:
    status = 503 if error_class == "vendor_5xx" else None
    return CallEvent(
        vendor=vendor,
        at=at,
        ok=False,
        error_class=error_class,
        status=status,
        integration=integration,
    )


def probe(
    at: datetime,
    outcome: str = "ok",
    error_class: str | None = None,
    latency_s: float | None = None,
    integration: str = "hs-sf",
) -> ProbeEvent:
    return ProbeEvent(
        integration=integration,
        started_at=at,
        outcome=outcome,
        error_class=error_class,
        latency_s=latency_s,
    )


# One character per interval: u up (ok call), f down (vendor_5xx call), d down (lost probe),
# s skipped probe (no evidence), m monitor-attributed call (no evidence), . nothing.
MARKS: dict[str, Callable[[datetime], list[Event]]] = {
    "u": lambda at: [ok_call(at)],
    "f": lambda at: [failed_call(at)],
    "d": lambda at: [probe(at, "lost", "sync_lost")],
    "s": lambda at: [probe(at, "skipped", "quota_guard")],
    "m": lambda at: [failed_call(at, "monitor")],
    ".": lambda at: [],
}


def timeline(marks: str, start: datetime = OCT, step: int = 5) -> list[Event]:
    """Events for consecutive intervals of ``step`` minutes from ``start``, 30 s into each."""
    events: list[Event] = []
    for i, mark in enumerate(marks):
        events += MARKS[mark](start + timedelta(minutes=i * step, seconds=30))
    return events


def one_off(start: str, end: str) -> dict[str, str]:
    return {"start": start, "end": end}


def check_uptime(result: SlaResult, uptime: Fraction | None) -> None:
    """The exact fraction, and the float percentage derived from it."""
    assert result.uptime == uptime
    if uptime is None:
        assert result.uptime_percent is None
    else:
        assert isinstance(result.uptime, Fraction)
        assert result.uptime_percent == pytest.approx(float(uptime * 100), rel=1e-12)


# --- 1. Periods ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "month", "start", "end", "minutes"),
    [
        # 28 days: 28 x 1,440 = 40,320.
        ("UTC", "2026-02", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", 40_320),
        # Leap February: 29 x 1,440 = 41,760.
        ("UTC", "2024-02", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z", 41_760),
        # 30 days: 30 x 1,440 = 43,200.
        ("UTC", "2026-04", "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z", 43_200),
        # 31 days: 31 x 1,440 = 44,640.
        ("UTC", "2026-10", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", 44_640),
        # Year rollover: December ends at 2027-01-01.
        ("UTC", "2026-12", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", 44_640),
        # New York, DST ends Sun 1 Nov 02:00 EDT: starts 00:00 EDT (04:00Z), ends 00:00 EST on
        # 1 Dec (05:00Z); 30 days + 1 h = 43,200 + 60 = 43,260.
        ("America/New_York", "2026-11", "2026-11-01T04:00:00Z", "2026-12-01T05:00:00Z", 43_260),
        # New York, DST starts Sun 8 Mar: 00:00 EST (05:00Z) to 00:00 EDT on 1 Apr (04:00Z);
        # 31 days - 1 h = 44,640 - 60 = 44,580.
        ("America/New_York", "2026-03", "2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z", 44_580),
        # No DST change in October in New York: EDT throughout, 44,640.
        ("America/New_York", "2026-10", "2026-10-01T04:00:00Z", "2026-11-01T04:00:00Z", 44_640),
        # Berlin, DST ends Sun 25 Oct: 00:00 CEST (22:00Z the day before) to 00:00 CET (23:00Z);
        # 44,640 + 60 = 44,700.
        ("Europe/Berlin", "2026-10", "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z", 44_700),
        # Half-hour offset, no DST: +05:30 → starts 18:30Z the day before; 44,640.
        ("Asia/Kolkata", "2026-10", "2026-09-30T18:30:00Z", "2026-10-31T18:30:00Z", 44_640),
    ],
)
def test_month_period(timezone: str, month: str, start: str, end: str, minutes: int) -> None:
    """A month runs from local midnight on the 1st to local midnight on the next 1st, in UTC."""
    terms = contract(timezone=timezone)
    period = month_period(terms, month)
    assert (period.start, period.end, period.minutes) == (utc(start), utc(end), minutes)
    assert period.start.utcoffset() == timedelta(0)
    assert period.end.utcoffset() == timedelta(0)
    result = evaluate(terms, month, [])
    assert (result.period_start, result.period_end) == (utc(start), utc(end))
    assert result.period_minutes == minutes
    assert (result.month, result.timezone) == (month, timezone)


@pytest.mark.parametrize(
    ("timezone", "month", "minutes"),
    [
        ("UTC", "2026-02", 40_320),
        ("UTC", "2026-04", 43_200),
        ("UTC", "2026-10", 44_640),
        ("America/New_York", "2026-11", 43_260),
        ("America/New_York", "2026-03", 44_580),
    ],
)
def test_all_up_month_counts_every_minute(timezone: str, month: str, minutes: int) -> None:
    """With unknown counted as up and one ok call, every minute of the period is eligible and up."""
    start = month_period(contract(timezone=timezone), month).start
    result = evaluate(contract(timezone=timezone, unknown="up"), month, timeline("u", start))
    assert (result.period_minutes, result.excluded_minutes) == (minutes, 0)
    # One 5-minute interval has evidence; the rest is unknown: U = minutes - 5.
    assert result.unknown_minutes == minutes - 5
    assert (result.eligible_minutes, result.downtime_minutes) == (minutes, 0)
    check_uptime(result, Fraction(1))
    assert result.met is True
    assert result.credit_percent == 0


# --- 2. Interval status ----------------------------------------------------------------------

VENDOR_CLASSES = ["vendor_5xx", "timeout", "connection", "malformed", "sync_lost"]
CUSTOMER_CLASSES = ["rate_limited", "quota_exhausted", "auth", "validation", "duplicate"]
MONITOR_CLASSES = ["monitor", "quota_guard"]

STATUS_CASES: list[tuple[str, dict[str, Any], list[Event], str]] = [
    ("nothing", {}, [], "unknown"),
    ("ok-call", {}, [ok_call(T0)], "up"),
    *[(f"call-{c}", {}, [failed_call(T0, c)], "down") for c in VENDOR_CLASSES],
    # Customer-attributed: not valid, not an error (valid 0 < min_calls), but it is evidence.
    *[(f"call-{c}", {}, [failed_call(T0, c)], "up") for c in CUSTOMER_CLASSES],
    # Monitor-attributed: neither valid nor evidence.
    *[(f"call-{c}", {}, [failed_call(T0, c)], "unknown") for c in MONITOR_CLASSES],
    # 1 / (1 + 9) = 0.10, not > 0.10 (a float 0.1 compared with Decimal 0.10 would say down).
    ("rate-exactly-0.10", {}, [failed_call(T0)] + [ok_call(T0)] * 9, "up"),
    # 1 / (1 + 8) = 0.111 > 0.10.
    ("rate-0.111", {}, [failed_call(T0)] + [ok_call(T0)] * 8, "down"),
    # Customer calls are not valid: 2 / (2 + 16) = 0.111 > 0.10 (2 / 21 = 0.095 if they were).
    (
        "customer-not-valid",
        {},
        [failed_call(T0)] * 2 + [ok_call(T0)] * 16 + [failed_call(T0, "rate_limited")] * 3,
        "down",
    ),
    # Customer calls are not errors: 1 / (1 + 9) = 0.10 (6 / 15 = 0.4 if they were).
    (
        "customer-not-error",
        {},
        [failed_call(T0)] + [ok_call(T0)] * 9 + [failed_call(T0, "auth")] * 5,
        "up",
    ),
    # Monitor calls are not valid: 1 / 1 = 1.0 (1 / 10 = 0.10 → up if they were).
    ("monitor-not-valid", {}, [failed_call(T0)] + [failed_call(T0, "monitor")] * 9, "down"),
    # error_rate_above 0.2: 2 / 10 = 0.2 exactly is not above (float 0.2 > Decimal 0.2 is true).
    (
        "rate-exactly-0.2",
        {"error_rate_above": "0.2"},
        [failed_call(T0)] * 2 + [ok_call(T0)] * 8,
        "up",
    ),
    ("rate-0.5-at-0.5", {"error_rate_above": "0.5"}, [failed_call(T0), ok_call(T0)], "up"),
    (
        "rate-0.67-over-0.5",
        {"error_rate_above": "0.5"},
        [failed_call(T0)] * 2 + [ok_call(T0)],
        "down",
    ),
    # error_rate_above 0: any vendor failure, 1 / 100 = 0.01 > 0.
    ("rate-above-zero", {"error_rate_above": "0"}, [failed_call(T0)] + [ok_call(T0)] * 99, "down"),
    ("rate-zero-no-fail", {"error_rate_above": "0"}, [ok_call(T0)] * 100, "up"),
    # min_calls 3: valid 2 < 3 → rule (a) does not apply; the calls are still evidence → up.
    ("min-calls-2-of-3", {"min_calls": 3}, [failed_call(T0)] * 2, "up"),
    ("min-calls-3-of-3", {"min_calls": 3}, [failed_call(T0)] * 3, "down"),
    # valid = 2 + 1 = 3 ≥ 3, 2 / 3 > 0.10.
    ("min-calls-with-ok", {"min_calls": 3}, [failed_call(T0)] * 2 + [ok_call(T0)], "down"),
    # Customer calls do not count towards min_calls: valid 2 < 3.
    (
        "min-calls-customer",
        {"min_calls": 3},
        [failed_call(T0)] * 2 + [failed_call(T0, "rate_limited")] * 5,
        "up",
    ),
    # Coverage: calls to another vendor and probes of another integration do not count.
    ("other-vendor-fail", {}, [failed_call(T0, vendor="salesforce")], "unknown"),
    ("other-vendor-ok", {}, [ok_call(T0, vendor="salesforce")], "unknown"),
    ("other-integration-lost", {}, [probe(T0, "lost", "sync_lost", integration="x")], "unknown"),
    ("other-integration-ok", {}, [probe(T0, integration="x")], "unknown"),
    # A call is covered by its vendor, whatever integration it was made for.
    ("call-any-integration", {}, [failed_call(T0, integration="other-sync")], "down"),
    # Probes: only lost ones with a vendor class mark down; every non-skipped outcome is evidence.
    ("probe-ok", {}, [probe(T0, latency_s=80.0)], "up"),
    ("probe-slow", {}, [probe(T0, "slow", latency_s=900.0)], "up"),
    ("probe-rejected-5xx", {}, [probe(T0, "rejected", "vendor_5xx")], "up"),
    ("probe-mismatch", {}, [probe(T0, "mismatch", latency_s=80.0)], "up"),
    ("probe-misrouted", {}, [probe(T0, "misrouted", latency_s=80.0)], "up"),
    ("probe-lost", {}, [probe(T0, "lost", "sync_lost")], "down"),
    ("probe-lost-no-class", {}, [probe(T0, "lost")], "down"),
    ("probe-lost-timeout", {}, [probe(T0, "lost", "timeout")], "down"),
    ("probe-lost-customer", {}, [probe(T0, "lost", "rate_limited")], "up"),
    ("probe-lost-monitor", {}, [probe(T0, "lost", "monitor")], "up"),
    ("probe-lost-rule-off", {"lost_probe": False}, [probe(T0, "lost", "sync_lost")], "up"),
    ("probe-skipped", {}, [probe(T0, "skipped", "quota_guard")], "unknown"),
    ("probe-skipped-monitor", {}, [probe(T0, "skipped", "monitor")], "unknown"),
    # Latency rule: strictly above latency_above_s.
    ("latency-at", {"latency_above_s": 600}, [probe(T0, latency_s=600.0)], "up"),
    ("latency-above", {"latency_above_s": 600}, [probe(T0, latency_s=600.5)], "down"),
    ("latency-slow", {"latency_above_s": 600}, [probe(T0, "slow", latency_s=900.0)], "down"),
    ("latency-rule-off", {}, [probe(T0, "slow", latency_s=10_000.0)], "up"),
    (
        "latency-other-integ",
        {"latency_above_s": 600},
        [probe(T0, latency_s=900.0, integration="x")],
        "unknown",
    ),
    # Mixtures: any rule marks down; no-evidence events stay unknown.
    ("ok-call-lost-probe", {}, [ok_call(T0), probe(T0, "lost", "sync_lost")], "down"),
    (
        "skipped-and-monitor",
        {},
        [probe(T0, "skipped", "quota_guard"), failed_call(T0, "monitor")],
        "unknown",
    ),
    (
        "skipped-and-customer",
        {},
        [probe(T0, "skipped", "quota_guard"), failed_call(T0, "auth")],
        "up",
    ),
]


@pytest.mark.parametrize(
    ("downtime", "events", "status"),
    [pytest.param(d, e, s, id=name) for name, d, e, s in STATUS_CASES],
)
def test_interval_status(downtime: dict[str, Any], events: list[Event], status: str) -> None:
    """One interval's status follows rules (a)-(c), the evidence rule and coverage (§7.4)."""
    # Only interval 0 has events; with unknown: exclude, up → eligible 5 and D 0, down →
    # eligible 5 and D 5, unknown → nothing eligible and uptime None.
    result = evaluate(contract(downtime=downtime), "2026-10", events)
    if status == "unknown":
        assert result.uptime is None
        assert result.eligible_minutes == 0
        assert result.unknown_minutes == OCT_MINUTES
    else:
        assert result.eligible_minutes == 5
        assert result.unknown_minutes == OCT_MINUTES - 5
        assert result.downtime_minutes == (5 if status == "down" else 0)
        check_uptime(result, Fraction(0 if status == "down" else 1))


@pytest.mark.parametrize(
    ("interval", "at", "downtime", "incident_start"),
    [
        # An event exactly on a boundary belongs to the interval it opens: 00:05 → [00:05, 00:10).
        (5, "2026-10-01T00:05:00Z", 5, "2026-10-01T00:05:00Z"),
        (5, "2026-10-01T00:04:59Z", 5, "2026-10-01T00:00:00Z"),
        # 7-minute intervals: 44,640 = 7 x 6,377 + 1, so the last interval is [23:59, 24:00).
        (7, "2026-10-31T23:59:30Z", 1, "2026-10-31T23:59:00Z"),
        # The one before it: minute 44,632 = 7 x 6,376 → [23:52, 23:59), 7 minutes.
        (7, "2026-10-31T23:52:10Z", 7, "2026-10-31T23:52:00Z"),
        # 50-minute intervals: 44,640 = 50 x 892 + 40 → last interval [23:20, 24:00), 40 minutes.
        (50, "2026-10-31T23:30:00Z", 40, "2026-10-31T23:20:00Z"),
        # 60-minute intervals laid from 00:00Z: 13:45 → [13:00, 14:00).
        (60, "2026-10-15T13:45:00Z", 60, "2026-10-15T13:00:00Z"),
    ],
)
def test_events_fall_in_the_interval_that_contains_them(
    interval: int, at: str, downtime: int, incident_start: str
) -> None:
    """Intervals are laid from the period start, the last one may be short, and a boundary
    event opens the next interval."""
    result = evaluate(contract(interval_minutes=interval), "2026-10", [failed_call(utc(at))])
    assert (result.downtime_minutes, result.eligible_minutes) == (downtime, downtime)
    check_uptime(result, Fraction(0))
    assert [i.start for i in result.incidents] == [utc(incident_start)]
    assert [i.minutes for i in result.incidents] == [downtime]


def test_intervals_start_at_local_midnight() -> None:
    """In New York's November the first interval starts at 04:00Z (local midnight, EDT)."""
    terms = contract(timezone="America/New_York", interval_minutes=7)
    # 04:06:59Z is minute 6 of the period → interval [04:00, 04:07); 7 minutes.
    result = evaluate(terms, "2026-11", [failed_call(utc("2026-11-01T04:06:59Z"))])
    assert result.downtime_minutes == 7
    assert [i.start for i in result.incidents] == [utc("2026-11-01T04:00:00Z")]


@pytest.mark.parametrize(
    ("timezone", "at"),
    [
        ("UTC", "2026-09-30T23:59:59Z"),  # one second before the period
        ("UTC", "2026-11-01T00:00:00Z"),  # the period end is exclusive
        ("America/New_York", "2026-10-01T03:59:00Z"),  # 23:59 EDT on 30 September
        ("America/New_York", "2026-11-01T04:00:00Z"),  # 00:00 EDT on 1 November
    ],
)
def test_events_outside_the_period_are_ignored(timezone: str, at: str) -> None:
    """Events before the start or at/after the end of the period do not count."""
    result = evaluate(contract(timezone=timezone), "2026-10", [failed_call(utc(at))])
    check_uptime(result, None)
    assert (result.downtime_minutes, result.eligible_minutes, result.incidents) == (0, 0, [])


def test_events_may_come_in_any_order_from_an_iterator() -> None:
    """Event order does not matter and a one-shot iterator is accepted."""
    events = timeline("uuuuffuuuu")
    forward = evaluate(contract(), "2026-10", events)
    backward = evaluate(contract(), "2026-10", iter(events[::-1]))
    assert forward.uptime == backward.uptime == Fraction(40, 50)  # (50 - 10) / 50
    spans = [[(i.start, i.end, i.minutes) for i in r.incidents] for r in (forward, backward)]
    assert spans[0] == spans[1] == [(OCT + timedelta(minutes=20), OCT + timedelta(minutes=30), 10)]


# --- 3. Uptime, tiers, boundaries --------------------------------------------------------------


@pytest.mark.parametrize(
    ("down", "uptime", "credit", "amount", "met"),
    [
        # D = 5 x down; uptime = (44,640 - D) / 44,640.
        (0, Fraction(1), "0", "0.00", True),
        (8, Fraction(44_600, 44_640), "0", "0.00", True),  # D 40: 99.9104 %
        (9, Fraction(44_595, 44_640), "10", "360.00", False),  # D 45: 99.8992 %
        (89, Fraction(44_195, 44_640), "10", "360.00", False),  # D 445: 99.0031 %
        (90, Fraction(44_190, 44_640), "25", "900.00", False),  # D 450: 98.9919 %
        (446, Fraction(42_410, 44_640), "25", "900.00", False),  # D 2,230: 95.0045 %
        (447, Fraction(42_405, 44_640), "50", "1800.00", False),  # D 2,235: 94.9933 %
        (OCT_INTERVALS, Fraction(0), "50", "1800.00", False),  # all down: 0 %
    ],
)
def test_full_month_tiers(down: int, uptime: Fraction, credit: str, amount: str, met: bool) -> None:
    """A fully observed 31-day month: uptime over 44,640 minutes picks the tier (§7.6-7.7)."""
    events = timeline("f" * down + "u" * (OCT_INTERVALS - down))
    result = evaluate(contract(), "2026-10", events)
    assert (result.period_minutes, result.excluded_minutes, result.unknown_minutes) == (
        OCT_MINUTES,
        0,
        0,
    )
    assert (result.eligible_minutes, result.downtime_minutes) == (OCT_MINUTES, 5 * down)
    check_uptime(result, uptime)
    assert result.met is met
    assert result.credit_percent == Decimal(credit)
    assert result.credit_amount == Decimal(amount)
    assert result.currency == "USD"
    assert result.objective_percent == Decimal("99.9")


@pytest.mark.parametrize(
    ("down", "credit", "met"),
    [
        # 1,000 five-minute intervals with evidence (the rest unknown, excluded): eligible
        # 5,000, D = 5 x down, uptime = (1,000 - down) / 1,000.
        (1, "0", True),  # 4,995 / 5,000 = 99.9 % exactly: not below 99.9 → no credit, met
        (2, "10", False),  # 99.8 %
        (10, "10", False),  # 99.0 % exactly: not below 99.0 → still 10
        (11, "25", False),  # 98.9 %
        (50, "25", False),  # 95.0 % exactly: not below 95.0 → still 25
        (51, "50", False),  # 94.9 %
    ],
)
def test_exact_tier_boundaries(down: int, credit: str, met: bool) -> None:
    """Uptime exactly at a tier's `below` earns that tier nothing (compared exactly)."""
    events = timeline("d" * down + "u" * (1000 - down))
    result = evaluate(contract(), "2026-10", events)
    assert (result.eligible_minutes, result.downtime_minutes) == (5000, 5 * down)
    check_uptime(result, Fraction(1000 - down, 1000))
    assert result.met is met
    assert result.credit_percent == Decimal(credit)


@pytest.mark.parametrize(
    ("down", "uptime", "credit", "met"),
    [
        (8, Fraction(39_960, 40_000), "0", True),  # 40 / 40,000 = 0.1 % → 99.9 % exactly
        (9, Fraction(39_955, 40_000), "10", False),  # 45 / 40,000 → 99.8875 %
    ],
)
def test_exactly_99_9_over_a_full_month_with_maintenance(
    down: int, uptime: Fraction, credit: str, met: bool
) -> None:
    """Maintenance of 4,640 minutes leaves 40,000 eligible, so 40 down minutes is 99.9 %."""
    # 1 Oct 00:00Z to 4 Oct 05:20Z = 3 x 1,440 + 320 = 4,640 minutes (928 intervals).
    terms = contract(maintenance=[one_off("2026-10-01T00:00:00Z", "2026-10-04T05:20:00Z")])
    # Events in every interval, down ones inside maintenance too (they must not count).
    marks = "f" * 928 + "f" * down + "u" * (OCT_INTERVALS - 928 - down)
    result = evaluate(terms, "2026-10", timeline(marks))
    assert (result.excluded_minutes, result.unknown_minutes) == (4_640, 0)
    assert (result.eligible_minutes, result.downtime_minutes) == (40_000, 5 * down)
    check_uptime(result, uptime)
    assert result.met is met
    assert result.credit_percent == Decimal(credit)


@pytest.mark.parametrize(
    ("observed", "down", "met", "misses"),
    [
        (1000, 1, False, 1),  # 4,995 / 5,000 = 99.9 % < 99.95 %: missed, yet no tier below 99.9
        (2000, 1, True, 0),  # 9,995 / 10,000 = 99.95 % exactly: met
        (2000, 2, False, 1),  # 9,990 / 10,000 = 99.9 %: missed
    ],
)
def test_objective_and_tiers_are_independent(
    observed: int, down: int, met: bool, misses: int
) -> None:
    """Against a 99.95 % objective, met is exact and a miss at 99.9 % earns no credit."""
    terms = contract(objective_percent="99.95")
    events = timeline("d" * down + "u" * (observed - down))
    result = evaluate(terms, "2026-10", events)
    assert result.objective_percent == Decimal("99.95")
    check_uptime(result, Fraction(observed - down, observed))
    assert result.met is met
    assert result.credit_percent == 0
    assert result.credit_amount == 0
    assert result.consecutive_misses == misses


# --- 4. Cap, rounding, minimum amount ----------------------------------------------------------

MICROSOFT_TIERS = [
    {"below": "99.9", "credit": "25"},
    {"below": "99", "credit": "50"},
    {"below": "95", "credit": "100"},
]


@pytest.mark.parametrize(
    ("cap", "credit", "amount"),
    [
        ("100", "100", "3600.00"),  # 90 % → <95 tier, 100 %
        ("50", "50", "1800.00"),  # capped at 50 %
        ("30", "30", "1080.00"),  # capped at 30 %: 3,600 x 0.30
        ("0", "0", "0.00"),  # cap 0: no credit at all
    ],
)
def test_credit_cap(cap: str, credit: str, amount: str) -> None:
    """The tier's credit is capped by credit_cap_percent before the amount is computed."""
    events = timeline("d" * 100 + "u" * 900)  # 900 / 1,000 = 90 %
    terms = contract(credits=MICROSOFT_TIERS, credit_cap_percent=cap)
    result = evaluate(terms, "2026-10", events)
    check_uptime(result, Fraction(9, 10))
    assert result.credit_percent == Decimal(credit)
    assert result.credit_amount == Decimal(amount)


@pytest.mark.parametrize(
    ("fee", "credits", "down", "amount"),
    [
        ("3600.00", TIERS, 2, "360.00"),  # 10 % of 3,600
        # Half-up, not half-even: 3.325 → 3.33 (half-even would give 3.32).
        ("33.25", TIERS, 2, "3.33"),
        # 25 % (98.9 %) of 10.10 = 2.525 → 2.53 (half-even 2.52).
        ("10.10", TIERS, 11, "2.53"),
        # 10 % of 0.05 = 0.005 → 0.01 (half-even 0.00).
        ("0.05", TIERS, 2, "0.01"),
        # 12.5 % of 99.99 = 12.49875 → 12.50.
        ("99.99", [{"below": "99.9", "credit": "12.5"}], 2, "12.50"),
        # 10 % of 1,234.56 = 123.456 → 123.46.
        ("1234.56", TIERS, 2, "123.46"),
        # 50 % of 0.01 = 0.005 → 0.01.
        ("0.01", TIERS, 51, "0.01"),
    ],
)
def test_credit_amount_rounds_half_up_to_cents(
    fee: str, credits: list[dict[str, str]], down: int, amount: str
) -> None:
    """Amount = fee x credit / 100 in Decimal, rounded half-up to two places."""
    events = timeline("d" * down + "u" * (1000 - down))
    terms = contract(monthly_fee=fee, credits=credits)
    result = evaluate(terms, "2026-10", events)
    assert isinstance(result.credit_amount, Decimal)
    assert result.credit_amount == Decimal(amount)
    assert result.credit_amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("fee", "minimum", "credit", "amount"),
    [
        ("5.00", "1.00", "0", "0.00"),  # 10 % = 0.50 < 1.00 → nothing
        ("10.00", "1.00", "10", "1.00"),  # 1.00 is not under 1.00
        ("9.99", "1.00", "10", "1.00"),  # 0.999 rounds to 1.00, which is not under 1.00
        ("9.90", "1.00", "0", "0.00"),  # 0.99 < 1.00
        ("3600.00", "0", "10", "360.00"),  # the default minimum of 0 never bites
    ],
)
def test_minimum_credit_amount(fee: str, minimum: str, credit: str, amount: str) -> None:
    """An amount under min_credit_amount makes both credit and amount zero (AWS: $1)."""
    events = timeline("dd" + "u" * 998)  # 99.8 % → 10 %
    terms = contract(monthly_fee=fee, min_credit_amount=minimum)
    result = evaluate(terms, "2026-10", events)
    assert result.credit_percent == Decimal(credit)
    assert result.credit_amount == Decimal(amount)
    assert result.met is False  # the miss stands even when no credit is paid


# --- 5. Unknown policy, empty months ------------------------------------------------------------

# 4,000 up intervals (20,000 min), 5 down (25 min), then 4,923 unknown intervals (24,615 min)
# of which 20 hold only skipped probes or monitor calls (not evidence): 4,000 + 5 + 4,923 = 8,928.
UNKNOWN_MARKS = "u" * 4000 + "f" * 5 + "sm" * 10 + "." * (OCT_INTERVALS - 4025)


@pytest.mark.parametrize(
    ("policy", "eligible", "downtime", "uptime", "credit", "amount", "met"),
    [
        # exclude: eligible = 44,640 - 24,615 = 20,025; 20,000 / 20,025 = 99.8752 % → 10 %.
        ("exclude", 20_025, 25, Fraction(20_000, 20_025), "10", "360.00", False),
        # up: eligible 44,640; 44,615 / 44,640 = 99.9440 % → no credit, met.
        ("up", 44_640, 25, Fraction(44_615, 44_640), "0", "0.00", True),
        # down: D = 25 + 24,615 = 24,640; 20,000 / 44,640 = 44.80 % → 50 % (cap 50) → 1,800.
        ("down", 44_640, 24_640, Fraction(20_000, 44_640), "50", "1800.00", False),
    ],
)
def test_unknown_policy(
    policy: str,
    eligible: int,
    downtime: int,
    uptime: Fraction,
    credit: str,
    amount: str,
    met: bool,
) -> None:
    """unknown: exclude drops U from eligible, up counts it as up, down adds it to D (§7.6)."""
    result = evaluate(contract(unknown=policy), "2026-10", timeline(UNKNOWN_MARKS))
    assert (result.excluded_minutes, result.unknown_minutes) == (0, 24_615)
    assert (result.eligible_minutes, result.downtime_minutes) == (eligible, downtime)
    check_uptime(result, uptime)
    assert result.met is met
    assert result.credit_percent == Decimal(credit)
    assert result.credit_amount == Decimal(amount)


@pytest.mark.parametrize("policy", ["exclude", "up", "down"])
@pytest.mark.parametrize(
    "events",
    [
        pytest.param([], id="no-events"),
        pytest.param(timeline("smsm"), id="only-skipped-and-monitor"),
        pytest.param([failed_call(T0, vendor="salesforce")], id="only-uncovered"),
    ],
)
def test_empty_month(policy: str, events: list[Event]) -> None:
    """A month with no up or down interval has null uptime and met and no credit, any policy."""
    terms = contract(unknown=policy, termination_after=1)
    result = evaluate(terms, "2026-10", events)
    check_uptime(result, None)
    assert result.met is None
    assert result.credit_percent == 0
    assert result.credit_amount == 0
    assert (result.consecutive_misses, result.termination_right) == (0, False)
    assert (result.period_minutes, result.excluded_minutes) == (OCT_MINUTES, 0)
    assert result.unknown_minutes == OCT_MINUTES
    assert result.incidents == []
    assert result.mttr_minutes is None
    if policy == "exclude":
        assert result.eligible_minutes == 0


# --- 6. Consecutive-minutes rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "minimum", "marks", "windows", "downtime", "eligible"),
    [
        # 1-minute intervals, Google-style 5 minutes; 100 observed minutes (unknown excluded).
        pytest.param(1, 5, "u" * 10 + "d" * 4 + "u" * 86, [], 0, 100, id="run-4-lt-5"),
        pytest.param(1, 5, "u" * 10 + "d" * 5 + "u" * 85, [], 5, 100, id="run-5-eq-5"),
        pytest.param(1, 5, "u" * 10 + "ddd" + "u" + "ddd" + "u" * 83, [], 0, 100, id="3-up-3"),
        # An unknown minute also breaks the run; it is excluded from eligible (99 minutes).
        pytest.param(1, 5, "u" * 10 + "ddd" + "." + "ddd" + "u" * 83, [], 0, 99, id="3-unk-3"),
        # Runs of 4 and 6: only the 6 counts.
        pytest.param(1, 5, "u" * 10 + "d" * 4 + "u" + "d" * 6 + "u" * 79, [], 6, 100, id="4-6"),
        # Minute 13 is in maintenance (its down event is ignored) and is transparent: the run is
        # 3 + 3 = 6 non-excluded minutes ≥ 5 → D 6; E 1, eligible 99.
        pytest.param(
            1,
            5,
            "u" * 10 + "d" * 7 + "u" * 83,
            [one_off("2026-10-01T00:13:00Z", "2026-10-01T00:14:00Z")],
            6,
            99,
            id="3-maint-3",
        ),
        # 5-minute intervals, 10-minute rule; 20 intervals = 100 observed minutes.
        pytest.param(5, 10, "u" * 10 + "f" + "u" * 9, [], 0, 100, id="5-lt-10"),
        pytest.param(5, 10, "u" * 10 + "ff" + "u" * 8, [], 10, 100, id="10-eq-10"),
        # 00:50-00:53 excluded: the run has 2 + 5 = 7 non-excluded minutes < 10 → up; E 3.
        pytest.param(
            5,
            10,
            "u" * 10 + "ff" + "u" * 8,
            [one_off("2026-10-01T00:50:00Z", "2026-10-01T00:53:00Z")],
            0,
            97,
            id="partly-excluded-7-lt-10",
        ),
        # [00:55, 01:00) fully excluded and transparent: 5 + 5 = 10 → D 10; E 5, eligible 95.
        pytest.param(
            5,
            10,
            "u" * 10 + "fff" + "u" * 7,
            [one_off("2026-10-01T00:55:00Z", "2026-10-01T01:00:00Z")],
            10,
            95,
            id="5-maint-5",
        ),
        pytest.param(5, 5, "u" * 10 + "f" + "u" * 9, [], 5, 100, id="single-5-eq-5"),
        pytest.param(1, None, "u" * 10 + "d" + "u" * 89, [], 1, 100, id="rule-off"),
    ],
)
def test_consecutive_minutes_rule(
    interval: int,
    minimum: int | None,
    marks: str,
    windows: list[dict[str, str]],
    downtime: int,
    eligible: int,
) -> None:
    """Runs of down intervals shorter than min_consecutive_minutes count as up (§7.5)."""
    terms = contract(
        interval_minutes=interval,
        downtime={"min_consecutive_minutes": minimum},
        maintenance=windows,
    )
    result = evaluate(terms, "2026-10", timeline(marks, step=interval))
    assert (result.downtime_minutes, result.eligible_minutes) == (downtime, eligible)
    check_uptime(result, Fraction(eligible - downtime, eligible))
    assert sum(i.minutes for i in result.incidents) == downtime


# --- 7. Exclusions: maintenance and business calendar ------------------------------------------


def test_maintenance_overlapping_a_down_interval() -> None:
    """Only the non-excluded minutes of a down interval are downtime."""
    # Window 10 Oct 02:03Z-04:00Z excludes 02:03…03:59 = 117 minutes. The down interval
    # [02:00, 02:05) keeps 02:00, 02:01, 02:02 → D 3. Down events inside the window (03:00)
    # count for nothing.
    terms = contract(maintenance=[one_off("2026-10-10T02:03:00Z", "2026-10-10T04:00:00Z")])
    down_at = {utc("2026-10-10T02:00:00Z"), utc("2026-10-10T03:00:00Z")}
    events: list[Event] = []
    for i in range(OCT_INTERVALS):
        start = OCT + timedelta(minutes=5 * i)
        events += timeline("f" if start in down_at else "u", start)
    result = evaluate(terms, "2026-10", events)
    assert (result.excluded_minutes, result.unknown_minutes) == (117, 0)
    # eligible = 44,640 - 117 = 44,523; uptime = 44,520 / 44,523.
    assert (result.eligible_minutes, result.downtime_minutes) == (44_523, 3)
    check_uptime(result, Fraction(44_520, 44_523))
    assert result.credit_percent == 0
    assert [i.minutes for i in result.incidents] == [3]
    assert result.incidents[0].start == utc("2026-10-10T02:00:00Z")


@pytest.mark.parametrize(
    ("timezone", "month", "windows", "excluded"),
    [
        # A one-off window straddling the period start counts only inside the month: 60.
        ("UTC", "2026-10", [one_off("2026-09-30T23:00:00Z", "2026-10-01T01:00:00Z")], 60),
        # …and one straddling the end: 23:30-24:00 = 30.
        ("UTC", "2026-10", [one_off("2026-10-31T23:30:00Z", "2026-11-01T02:00:00Z")], 30),
        # Overlapping one-off windows count once: 00:00-03:00 = 180, not 240.
        (
            "UTC",
            "2026-10",
            [
                one_off("2026-10-10T00:00:00Z", "2026-10-10T02:00:00Z"),
                one_off("2026-10-10T01:00:00Z", "2026-10-10T03:00:00Z"),
            ],
            180,
        ),
        # One-off windows are instants: 02:00-04:00 is 06:00Z; 60 minutes either way.
        ("UTC", "2026-10", [one_off("2026-10-10T02:00:00-04:00", "2026-10-10T03:00:00-04:00")], 60),
        # A minute is excluded when its start lies in the window: only 02:01 starts inside
        # [02:00:30, 02:01:30).
        ("UTC", "2026-10", [one_off("2026-10-10T02:00:30Z", "2026-10-10T02:01:30Z")], 1),
        # Whole Mondays (5, 12, 19, 26 Oct): 4 x 1,440 = 5,760; "24:00" is the end of the day.
        ("UTC", "2026-10", [{"weekly": "mon", "start": "00:00", "end": "24:00"}], 5_760),
        # Saturdays 3, 10, 17, 24, 31 Oct 00:00-01:00 = 300, plus a one-off 00:30-01:30 on
        # Saturday 10 Oct adding 01:00-01:30 = 30 → 330.
        (
            "UTC",
            "2026-10",
            [
                {"weekly": "sat", "start": "00:00", "end": "01:00"},
                one_off("2026-10-10T00:30:00Z", "2026-10-10T01:30:00Z"),
            ],
            330,
        ),
        # New York, Sundays 1, 8, 15, 22, 29 Nov, 02:00-03:00 local: on 1 Nov 02:00-03:00 EST
        # happens once (07:00Z-08:00Z) → 5 x 60 = 300.
        (
            "America/New_York",
            "2026-11",
            [{"weekly": "sun", "start": "02:00", "end": "03:00"}],
            300,
        ),
        # 01:00-02:00 local happens twice on 1 Nov (EDT 05:00Z-06:00Z, EST 06:00Z-07:00Z):
        # 120 + 4 x 60 = 360.
        (
            "America/New_York",
            "2026-11",
            [{"weekly": "sun", "start": "01:00", "end": "02:00"}],
            360,
        ),
        # March: Sundays 1, 8, 15, 22, 29; on 8 Mar local 02:00-03:00 does not exist (01:59 EST
        # is followed by 03:00 EDT) → 4 x 60 = 240.
        (
            "America/New_York",
            "2026-03",
            [{"weekly": "sun", "start": "02:00", "end": "03:00"}],
            240,
        ),
    ],
)
def test_maintenance_minutes(
    timezone: str, month: str, windows: list[dict[str, str]], excluded: int
) -> None:
    """One-off windows are UTC instants, weekly ones local times; overlaps count once."""
    result = evaluate(contract(timezone=timezone, maintenance=windows), month, [])
    assert result.excluded_minutes == excluded


WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
OFFICE = {"days": WEEKDAYS, "start": "08:00", "end": "18:00"}


@pytest.mark.parametrize(
    ("timezone", "month", "calendar", "windows", "excluded"),
    [
        # November 2026 in New York: weekdays 2-6, 9-13, 16-20, 23-27, 30 = 21; US holidays on
        # weekdays: Veterans Day (Wed 11) and Thanksgiving (Thu 26) → 19 days x 600 = 11,400
        # counted; E = 43,260 - 11,400 = 31,860.
        (
            "America/New_York",
            "2026-11",
            {**OFFICE, "holidays": {"country": "US"}},
            [],
            31_860,
        ),
        # Without holidays: 21 x 600 = 12,600; E = 43,260 - 12,600 = 30,660.
        ("America/New_York", "2026-11", OFFICE, [], 30_660),
        # California adds the Day After Thanksgiving (Fri 27): 18 x 600 = 10,800 → 32,460.
        (
            "America/New_York",
            "2026-11",
            {**OFFICE, "holidays": {"country": "US", "subdivision": "CA"}},
            [],
            32_460,
        ),
        # October 2026 UTC: weekdays 1-2, 5-9, 12-16, 19-23, 26-30 = 22 → 13,200 counted; a
        # weekly Monday 17:00-19:00 window removes 17:00-18:00 on 4 Mondays (240) → 12,960
        # counted; E = 44,640 - 12,960 = 31,680.
        (
            "UTC",
            "2026-10",
            OFFICE,
            [{"weekly": "mon", "start": "17:00", "end": "19:00"}],
            31_680,
        ),
        # Saturdays only, all day: 3, 10, 17, 24, 31 → 7,200 counted; E = 37,440.
        ("UTC", "2026-10", {"days": ["sat"], "start": "00:00", "end": "24:00"}, [], 37_440),
    ],
)
def test_business_calendar_minutes(
    timezone: str,
    month: str,
    calendar: dict[str, Any],
    windows: list[dict[str, str]],
    excluded: int,
) -> None:
    """With a calendar, only local business minutes on non-holidays count (§7.3)."""
    terms = contract(timezone=timezone, calendar=calendar, maintenance=windows)
    result = evaluate(terms, month, [])
    assert result.excluded_minutes == excluded


def test_business_calendar_with_thanksgiving() -> None:
    """Down events on Thanksgiving, a weekend or after hours are excluded; business ones count."""
    terms = contract(
        timezone="America/New_York",
        unknown="up",
        calendar={**OFFICE, "holidays": {"country": "US"}},
    )
    events = [
        # Wed 25 Nov 10:00-11:00 EST = 15:00Z-16:00Z: 12 down intervals, 60 minutes.
        *timeline("f" * 12, utc("2026-11-25T15:00:00Z")),
        # Thanksgiving, Thu 26 Nov 10:00 EST: a holiday, excluded.
        *timeline("f" * 12, utc("2026-11-26T15:00:00Z")),
        # Saturday 28 Nov: not a business day.
        *timeline("f" * 12, utc("2026-11-28T15:00:00Z")),
        # Wed 25 Nov 18:00 EST (end is exclusive) and 07:55 EST (before opening).
        *timeline("f", utc("2026-11-25T23:00:00Z")),
        *timeline("f", utc("2026-11-25T12:55:00Z")),
    ]
    result = evaluate(terms, "2026-11", events)
    # E = 31,860 (see the table above); eligible = 43,260 - 31,860 = 11,400 (unknown: up).
    assert (result.period_minutes, result.excluded_minutes) == (43_260, 31_860)
    assert (result.eligible_minutes, result.downtime_minutes) == (11_400, 60)
    assert result.unknown_minutes == 11_400 - 60
    # 11,340 / 11,400 = 99.4737 % → 10 % of 3,600 = 360.00.
    check_uptime(result, Fraction(11_340, 11_400))
    assert result.credit_percent == 10
    assert result.credit_amount == Decimal("360.00")
    assert [(i.start, i.end, i.minutes) for i in result.incidents] == [
        (utc("2026-11-25T15:00:00Z"), utc("2026-11-25T16:00:00Z"), 60)
    ]


def test_interval_partly_in_business_hours() -> None:
    """A down interval counts only its minutes inside business hours."""
    # Thu 1 Oct, hours 08:30-17:00 UTC, 60-minute intervals: [08:00, 09:00) keeps 30 minutes.
    terms = contract(
        interval_minutes=60, calendar={"days": WEEKDAYS, "start": "08:30", "end": "17:00"}
    )
    result = evaluate(terms, "2026-10", [failed_call(utc("2026-10-01T08:10:00Z"))])
    assert (result.downtime_minutes, result.eligible_minutes) == (30, 30)
    check_uptime(result, Fraction(0))


# --- 8. Consecutive misses, termination ---------------------------------------------------------


def month_events(pattern: dict[str, str]) -> list[Event]:
    """Per month: ``miss`` = one up and one down interval (50 %), ``met`` = one up interval."""
    events: list[Event] = []
    for month, kind in pattern.items():
        events += timeline("uf" if kind == "miss" else "u", utc(f"{month}-01T00:00:00Z"))
    return events


M, OK = "miss", "met"


@pytest.mark.parametrize(
    ("month", "pattern", "after", "misses", "right"),
    [
        ("2026-10", {"2026-08": M, "2026-09": M, "2026-10": M}, 3, 3, True),
        ("2026-09", {"2026-08": M, "2026-09": M, "2026-10": M}, 3, 2, False),
        ("2026-10", {"2026-08": OK, "2026-09": M, "2026-10": M}, 3, 2, False),
        ("2026-10", {"2026-08": M, "2026-09": OK, "2026-10": M}, 3, 1, False),
        # A month with null uptime (September, no events) ends the run.
        ("2026-10", {"2026-07": M, "2026-08": M, "2026-10": M}, 3, 1, False),
        # The evaluated month itself met (or null) → 0, whatever came before.
        ("2026-10", {"2026-08": M, "2026-09": M, "2026-10": OK}, 3, 0, False),
        ("2026-10", {"2026-08": M, "2026-09": M}, 3, 0, False),
        # Across a year boundary.
        ("2027-01", {"2026-11": M, "2026-12": M, "2027-01": M}, 3, 3, True),
        # A long run: March to October 2026 = 8 months.
        ("2026-10", {f"2026-{m:02d}": M for m in range(3, 11)}, 3, 8, True),
        ("2026-10", {"2026-08": M, "2026-09": M, "2026-10": M}, None, 3, False),
        ("2026-10", {"2026-10": M}, 1, 1, True),
    ],
)
def test_consecutive_misses_and_termination(
    month: str, pattern: dict[str, str], after: int | None, misses: int, right: bool
) -> None:
    """Missed months are counted back from the evaluated one; the right comes at the threshold."""
    terms = contract(termination_after=after)
    result = evaluate(terms, month, month_events(pattern))
    assert (result.consecutive_misses, result.termination_right) == (misses, right)


# --- 9. Claim deadline ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terms", "month", "deadline"),
    [
        ({"claim_window_days": 30}, "2026-10", date(2026, 11, 30)),  # 31 Oct + 30 (§7.9)
        ({}, "2026-11", date(2026, 12, 30)),  # default 30: 30 Nov + 30
        ({"claim_window_days": 20}, "2026-02", date(2026, 3, 20)),  # 28 Feb + 20
        ({"claim_window_days": 10}, "2026-12", date(2027, 1, 10)),  # 31 Dec + 10
        ({"claim_window_days": 0}, "2026-11", date(2026, 11, 30)),  # the last day itself
        ({"claim_window_days": 60}, "2026-12", date(2027, 3, 1)),  # 31 Dec + 60 (Jan 31, Feb 28)
        ({"claim_deadline": "end_of_next_month"}, "2026-10", date(2026, 11, 30)),
        ({"claim_deadline": "end_of_next_month"}, "2026-01", date(2026, 2, 28)),
        ({"claim_deadline": "end_of_next_month"}, "2028-01", date(2028, 2, 29)),  # leap
        ({"claim_deadline": "end_of_next_month"}, "2026-12", date(2027, 1, 31)),
        ({"claim_deadline": "end_of_next_month"}, "2026-08", date(2026, 9, 30)),
        # Local days: November in New York ends on 30 Nov local, whatever UTC says.
        (
            {"claim_window_days": 30, "timezone": "America/New_York"},
            "2026-11",
            date(2026, 12, 30),
        ),
        (
            {"claim_deadline": "end_of_next_month", "timezone": "Pacific/Auckland"},
            "2026-11",
            date(2026, 12, 31),
        ),
    ],
)
def test_claim_deadline(terms: dict[str, Any], month: str, deadline: date) -> None:
    """The month's last local day plus claim_window_days, or the end of the next month."""
    result = evaluate(contract(**terms), month, [])
    assert result.claim_deadline == deadline
    assert isinstance(result.claim_deadline, date)
    assert not isinstance(result.claim_deadline, datetime)


# --- 10. Latency objective -----------------------------------------------------------------------


def latency_probes(latencies: list[float], start: datetime = OCT) -> list[Event]:
    return [
        probe(start + timedelta(minutes=i, seconds=30), latency_s=s)
        for i, s in enumerate(latencies)
    ]


@pytest.mark.parametrize(
    ("percentile", "threshold", "latencies", "observed", "met"),
    [
        # n 20, p95: rank ⌈0.95 x 20⌉ = 19 → the 19th smallest of 10, 20, …, 200 = 190.
        (95, 300, [10.0 * k for k in range(1, 21)], 190.0, True),
        (95, 190, [10.0 * k for k in range(1, 21)], 190.0, True),  # ≤ threshold is met
        (95, 189.9, [10.0 * k for k in range(1, 21)], 190.0, False),
        # n 10, p95: ⌈9.5⌉ = 10 → the largest.
        (95, 300, [float(k) for k in range(1, 11)], 10.0, True),
        # n 4, p50: ⌈2⌉ = 2 → 2 (no interpolation to 2.5); order of input does not matter.
        (50, 300, [4.0, 1.0, 3.0, 2.0], 2.0, True),
        # p100 → the largest; p1 of 3 → ⌈0.03⌉ = 1 → the smallest.
        (100, 300, [5.0, 400.0, 7.0], 400.0, False),
        (1, 300, [5.0, 400.0, 7.0], 5.0, True),
        # Exactness traps: 7 / 100 x 100 is 7.000000000000001 in floats (ceil 8); rank is 7.
        (7, 300, [float(k) for k in range(1, 101)], 7.0, True),
        # 99.9 / 100 x 1,000 is 999.0000000000001 in floats (ceil 1,000); rank is 999.
        (99.9, 2000, [float(k) for k in range(1, 1001)], 999.0, True),
    ],
)
def test_latency_nearest_rank(
    percentile: float, threshold: float, latencies: list[float], observed: float, met: bool
) -> None:
    """The ⌈p/100·n⌉-th smallest covered latency, met when at most threshold_s (§7.10)."""
    terms = contract(latency_objective={"percentile": percentile, "threshold_s": threshold})
    result = evaluate(terms, "2026-10", latency_probes(latencies))
    assert result.latency is not None
    assert result.latency.percentile == percentile
    assert result.latency.threshold_s == threshold
    assert result.latency.probes == len(latencies)
    assert result.latency.observed_s == observed
    assert result.latency.met is met


def test_latency_counts_only_covered_probes_in_the_month_with_a_latency() -> None:
    """Other integrations, other months and probes without latency_s are left out."""
    terms = contract(latency_objective={"percentile": 90, "threshold_s": 300})
    events = [
        *latency_probes([float(k) for k in range(1, 11)]),  # n 10, p90: ⌈9⌉ → 9
        probe(T0, latency_s=10_000.0, integration="other-sync"),
        probe(utc("2026-09-30T23:59:00Z"), latency_s=10_000.0),
        probe(utc("2026-11-01T00:00:00Z"), latency_s=10_000.0),
        probe(T0, "lost", "sync_lost"),
        probe(T0, "skipped", "quota_guard"),
        ok_call(T0),
    ]
    result = evaluate(terms, "2026-10", events)
    assert result.latency is not None
    assert (result.latency.probes, result.latency.observed_s, result.latency.met) == (
        10,
        9.0,
        True,
    )


def test_latency_without_probes_or_objective() -> None:
    """No probes with a latency → observed and met null; no objective → latency null."""
    terms = contract(latency_objective={"percentile": 95, "threshold_s": 300})
    result = evaluate(terms, "2026-10", [ok_call(T0)])
    assert result.latency is not None
    assert (result.latency.percentile, result.latency.threshold_s) == (95, 300)
    assert (result.latency.probes, result.latency.observed_s, result.latency.met) == (0, None, None)
    assert evaluate(contract(), "2026-10", latency_probes([1.0])).latency is None


# --- 11. Incidents and MTTR ----------------------------------------------------------------------


def incident_events() -> list[Event]:
    """Two outages on 1 Oct: 10:00-10:15 (three intervals) and 20:00-20:05 (one)."""
    ten, eight_pm = utc("2026-10-01T10:00:30Z"), utc("2026-10-01T20:00:30Z")
    step = timedelta(minutes=5)
    return [
        failed_call(ten),
        failed_call(ten, "vendor_5xx"),
        failed_call(ten + step, "timeout"),
        probe(ten + step, "lost"),  # no class: counts as sync_lost
        failed_call(ten + 2 * step, "timeout"),
        failed_call(ten + 2 * step, "timeout"),
        ok_call(ten + 3 * step),
        failed_call(eight_pm, "malformed"),
        ok_call(eight_pm + step),
    ]


def test_incidents_and_mttr() -> None:
    """Adjacent down intervals merge into incidents with a dominant class and counts."""
    result = evaluate(contract(), "2026-10", incident_events())
    summary = [
        (i.start, i.end, i.minutes, i.dominant_error_class, i.counts) for i in result.incidents
    ]
    assert summary == [
        # vendor_5xx 2, timeout 1 + 2 = 3, sync_lost 1 → timeout dominates.
        (
            utc("2026-10-01T10:00:00Z"),
            utc("2026-10-01T10:15:00Z"),
            15,
            "timeout",
            {"vendor_5xx": 2, "timeout": 3, "sync_lost": 1},
        ),
        (
            utc("2026-10-01T20:00:00Z"),
            utc("2026-10-01T20:05:00Z"),
            5,
            "malformed",
            {"malformed": 1},
        ),
    ]
    assert result.mttr_minutes == pytest.approx(10.0)  # (15 + 5) / 2


def test_mttr_ignores_an_incident_open_at_period_end() -> None:
    """An incident still running at the end of the period is listed but not in MTTR."""
    events = [*incident_events()[:7], failed_call(utc("2026-10-31T23:55:30Z"))]
    result = evaluate(contract(), "2026-10", events)
    assert [(i.start, i.end, i.minutes) for i in result.incidents] == [
        (utc("2026-10-01T10:00:00Z"), utc("2026-10-01T10:15:00Z"), 15),
        (utc("2026-10-31T23:55:00Z"), utc("2026-11-01T00:00:00Z"), 5),
    ]
    assert result.mttr_minutes == pytest.approx(15.0)
    only_open = evaluate(contract(), "2026-10", [failed_call(utc("2026-10-31T23:55:30Z"))])
    assert len(only_open.incidents) == 1
    assert only_open.mttr_minutes is None


def test_incident_spans_a_fully_excluded_interval() -> None:
    """Down, maintenance, down is one incident whose minutes leave the maintenance out."""
    terms = contract(maintenance=[one_off("2026-10-01T10:05:00Z", "2026-10-01T10:10:00Z")])
    result = evaluate(terms, "2026-10", timeline("fff", utc("2026-10-01T10:00:00Z")))
    assert result.downtime_minutes == 10
    assert [(i.start, i.end, i.minutes) for i in result.incidents] == [
        (utc("2026-10-01T10:00:00Z"), utc("2026-10-01T10:15:00Z"), 10)
    ]


def test_short_runs_make_no_incident() -> None:
    """A run discounted by the consecutive-minutes rule is not an incident."""
    terms = contract(downtime={"min_consecutive_minutes": 10})
    result = evaluate(terms, "2026-10", timeline("ufu"))
    assert (result.downtime_minutes, result.incidents, result.mttr_minutes) == (0, [], None)


# --- 12. JSON -------------------------------------------------------------------------------------

JSON_KEYS = {
    "contract",
    "month",
    "timezone",
    "period_start",
    "period_end",
    "period_minutes",
    "excluded_minutes",
    "unknown_minutes",
    "eligible_minutes",
    "downtime_minutes",
    "uptime_percent",
    "objective_percent",
    "met",
    "credit_percent",
    "credit_amount",
    "currency",
    "consecutive_misses",
    "termination_right",
    "claim_deadline",
    "latency",
    "incidents",
}


def test_to_json() -> None:
    """The result object carries DESIGN §7's keys with float uptime and string money."""
    terms = contract(latency_objective={"percentile": 95, "threshold_s": 300})
    events = timeline("f" * 9 + "u" * (OCT_INTERVALS - 9))  # 44,595 / 44,640 → 10 %
    data = evaluate(terms, "2026-10", events).to_json()
    assert set(data) >= JSON_KEYS
    json.dumps(data)  # serialisable as it stands
    assert data["contract"] == "hubspot-enterprise"
    assert (data["month"], data["timezone"], data["currency"]) == ("2026-10", "UTC", "USD")
    assert datetime.fromisoformat(data["period_start"]) == OCT
    assert datetime.fromisoformat(data["period_end"]) == utc("2026-11-01T00:00:00Z")
    assert data["period_minutes"] == OCT_MINUTES
    assert (data["eligible_minutes"], data["downtime_minutes"]) == (OCT_MINUTES, 45)
    assert isinstance(data["uptime_percent"], float)
    assert data["uptime_percent"] == pytest.approx(99.89919354838710, rel=1e-12)
    assert data["credit_amount"] == "360.00"
    assert Decimal(str(data["credit_percent"])) == 10
    assert Decimal(str(data["objective_percent"])) == Decimal("99.9")
    assert (data["met"], data["consecutive_misses"], data["termination_right"]) == (
        False,
        1,
        False,
    )
    assert data["claim_deadline"] == "2026-11-30"
    assert isinstance(data["latency"], dict)
    assert {"percentile", "threshold_s", "observed_s", "probes", "met"} <= set(data["latency"])
    assert len(data["incidents"]) == 1


def test_to_json_of_an_empty_month() -> None:
    """Null uptime and met appear as JSON nulls and the amount as "0.00"."""
    data = evaluate(contract(), "2026-10", []).to_json()
    json.dumps(data)
    assert (data["uptime_percent"], data["met"]) == (None, None)
    assert Decimal(data["credit_amount"]) == 0
    assert data["incidents"] == []


# --- 13. Properties ------------------------------------------------------------------------------

FEB = utc("2026-02-01T00:00:00Z")
FEB_HOURS = 28 * 24  # 672 one-hour intervals
KINDS: dict[str, Callable[[datetime], Event]] = {
    "ok": ok_call,
    "fail": failed_call,
    "timeout": lambda at: failed_call(at, "timeout"),
    "customer": lambda at: failed_call(at, "rate_limited"),
    "monitor": lambda at: failed_call(at, "monitor"),
    "probe": lambda at: probe(at, latency_s=60.0),
    "lost": lambda at: probe(at, "lost", "sync_lost"),
    "skipped": lambda at: probe(at, "skipped", "quota_guard"),
    "other": lambda at: failed_call(at, vendor="salesforce"),
}
activity = st.lists(
    st.tuples(st.integers(0, FEB_HOURS - 1), st.sampled_from(sorted(KINDS))), max_size=40
)
downs = st.lists(
    st.tuples(st.integers(0, FEB_HOURS - 1), st.sampled_from(["fail", "lost"])),
    min_size=1,
    max_size=10,
)
policies = st.sampled_from(["exclude", "up", "down"])
minimums = st.sampled_from([None, 60, 120, 180])
# Monotonicity needs the consecutive rule only with unknown: up (under exclude or down, a down
# event in an unknown interval can form a short run that counts as up and so raise uptime) and
# min_calls 1 (with more, one vendor failure in an unknown interval is evidence of up).
monotone_rules = st.one_of(st.tuples(policies, st.just(None)), st.tuples(st.just("up"), minimums))
windows = st.lists(
    st.tuples(st.integers(0, 28 * 1440 - 1), st.integers(1, 600)), min_size=1, max_size=3
)
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def feb_contract(policy: str, minimum: int | None, maintenance: Any = ()) -> Contract:
    return contract(
        interval_minutes=60,
        unknown=policy,
        downtime={"min_consecutive_minutes": minimum},
        maintenance=list(maintenance),
    )


def feb_events(items: list[tuple[int, str]]) -> list[Event]:
    """One event per item, 10 minutes into its hour of February 2026."""
    return [KINDS[kind](FEB + timedelta(hours=hour, minutes=10)) for hour, kind in items]


@FAST
@given(items=activity, policy=policies, minimum=minimums)
def test_property_uptime_is_a_fraction_in_range(
    items: list[tuple[int, str]], policy: str, minimum: int | None
) -> None:
    """Uptime is null or an exact fraction in [0, 1] that follows §7.6's counting."""
    result = evaluate(feb_contract(policy, minimum), "2026-02", feb_events(items))
    assert result.period_minutes == 40_320
    assert 0 <= result.downtime_minutes <= result.eligible_minutes <= 40_320
    unknown = result.unknown_minutes if policy == "exclude" else 0
    assert result.eligible_minutes == 40_320 - result.excluded_minutes - unknown
    if result.uptime is None:
        assert (result.met, result.credit_percent) == (None, 0)
        return
    assert 0 <= result.uptime <= 1
    expected = Fraction(result.eligible_minutes - result.downtime_minutes, result.eligible_minutes)
    assert result.uptime == expected
    assert result.met is (result.uptime >= Fraction(999, 1000))
    assert result.credit_percent in {0, 10, 25, 50}


@FAST
@given(items=activity, extra=downs, rules=monotone_rules)
def test_property_more_downtime_never_raises_uptime(
    items: list[tuple[int, str]], extra: list[tuple[int, str]], rules: tuple[str, int | None]
) -> None:
    """Adding vendor failures or lost probes never raises uptime nor lowers downtime."""
    terms = feb_contract(*rules)
    before = evaluate(terms, "2026-02", feb_events(items))
    after = evaluate(terms, "2026-02", feb_events(items + extra))
    assert after.uptime is not None  # vendor failures and lost probes are evidence
    assert after.downtime_minutes >= before.downtime_minutes
    if before.uptime is not None:
        assert after.uptime <= before.uptime
        assert after.credit_percent >= before.credit_percent


@FAST
@given(items=activity, policy=policies, spans=windows)
def test_property_exclusions_never_add_downtime(
    items: list[tuple[int, str]], policy: str, spans: list[tuple[int, int]]
) -> None:
    """Adding maintenance windows never adds downtime minutes (without the consecutive rule)."""
    maintenance = [
        {
            "start": (FEB + timedelta(minutes=start)).isoformat(),
            "end": (FEB + timedelta(minutes=start + length)).isoformat(),
        }
        for start, length in spans
    ]
    events = feb_events(items)
    before = evaluate(feb_contract(policy, None), "2026-02", events)
    after = evaluate(feb_contract(policy, None, maintenance), "2026-02", events)
    assert after.excluded_minutes >= before.excluded_minutes
    assert after.downtime_minutes <= before.downtime_minutes
