"""Contract months in UTC, and which of their minutes are excluded (DESIGN §7.1-7.3)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import holidays

from syncwatch.config.contracts import Contract, OneOffWindow, WeeklyWindow

MINUTE = timedelta(minutes=1)
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Period:
    """A contract month in UTC: local midnight on the 1st to local midnight a month later."""

    start: datetime
    end: datetime

    @property
    def minutes(self) -> int:
        return int((self.end - self.start) / MINUTE)


def parse_month(month: str) -> tuple[int, int]:
    """``2026-10`` → (2026, 10); ValueError with the reason otherwise."""
    match = _MONTH.fullmatch(month)
    if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1970:
        raise ValueError(f"{month!r} is not a month; write YYYY-MM, e.g. 2026-10")
    return int(match[1]), int(match[2])


def month_period(contract: Contract, month: str) -> Period:
    year, number = parse_month(month)
    following = (year + number // 12, number % 12 + 1)
    zone = contract.zone
    start = datetime(year, number, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(*following, 1, tzinfo=zone).astimezone(UTC)
    return Period(start, end)


def previous_month(month: str) -> str:
    year, number = parse_month(month)
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


# -- exclusions ---------------------------------------------------------------------------------


def excluded_mask(contract: Contract, period: Period) -> bytearray:
    """One byte per minute of the period: 1 where the minute is excluded (DESIGN §7.3)."""
    mask = bytearray(period.minutes)
    if contract.calendar is not None:
        mask = bytearray(b"\x01") * period.minutes
        days = set(contract.calendar.days)
        closed = _holidays(contract, period)
        for day in _local_days(contract, period):
            if WEEKDAYS[day.weekday()] in days and day not in closed:
                start, end = _local_span(
                    contract, day, contract.calendar.start, contract.calendar.end
                )
                mark(mask, period, start, end, 0)
    for window in contract.maintenance:
        if isinstance(window, OneOffWindow):
            mark(mask, period, window.start, window.end, 1)
        else:
            _mark_weekly(mask, contract, period, window)
    return mask


def _mark_weekly(mask: bytearray, contract: Contract, period: Period, window: WeeklyWindow) -> None:
    for day in _local_days(contract, period):
        if WEEKDAYS[day.weekday()] == window.weekly:
            start, end = _local_span(contract, day, window.start, window.end)
            mark(mask, period, start, end, 1)


def _holidays(contract: Contract, period: Period) -> set[date]:
    calendar_ = contract.calendar
    if calendar_ is None or calendar_.holidays is None:
        return set()
    years = range(period.start.year - 1, period.end.year + 1)
    found = holidays.country_holidays(
        calendar_.holidays.country, subdiv=calendar_.holidays.subdivision, years=years
    )
    return set(found)


def _local_days(contract: Contract, period: Period) -> Iterable[date]:
    first = period.start.astimezone(contract.zone).date()
    last = (period.end.astimezone(contract.zone) - MINUTE).date()
    for offset in range((last - first).days + 1):
        yield first + timedelta(days=offset)


def _local_span(contract: Contract, day: date, start: time, end: time) -> tuple[datetime, datetime]:
    """A same-day local window in UTC; an end of 00:00 is the end of the day."""
    zone = contract.zone
    begins = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
    end_day = day + timedelta(days=1) if end == time(0) else day
    return begins, datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)


def mark(mask: bytearray, period: Period, start: datetime, end: datetime, value: int) -> None:
    """Set every minute whose start lies in [start, end)."""
    first = max(0, math.ceil((start - period.start) / MINUTE))
    last = min(len(mask), math.ceil((end - period.start) / MINUTE))
    if last > first:
        mask[first:last] = bytes([value]) * (last - first)
