"""Vendor time as the HTTP layer sees it: a documented request rate, kept by a throttle on the
injected clock, and the vendor's clock offset, read from ``Date`` headers.

Both run on every call of every account (``http.AccountHttp``), and both must work on a
virtual clock as on the real one, so neither reads the wall clock or the loop's.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from asyncio_throttle.throttler import Throttler

from syncwatch.clock import Clock


@dataclass(frozen=True)
class Rate:
    """A vendor's documented request rate: ``calls`` per ``per_s`` seconds."""

    calls: int
    per_s: float


class ClockThrottler(Throttler):
    """asyncio-throttle's sliding window, timed by the injected clock.

    The library reads ``time.monotonic`` and polls with ``asyncio.sleep``; under a virtual clock
    that would never release (or would wait in real time). Same window, same accounting; only
    the time source and the wait (until the oldest call leaves the window) differ.
    """

    def __init__(self, rate: Rate, clock: Clock) -> None:
        super().__init__(rate_limit=rate.calls, period=rate.per_s)
        self._clock = clock

    def flush(self) -> None:
        now = self._clock.monotonic()
        while self._task_logs and now - self._task_logs[0] >= self.period:
            self._task_logs.popleft()

    async def acquire(self) -> None:
        while True:
            self.flush()
            if len(self._task_logs) < self.rate_limit:
                break
            wait = self._task_logs[0] + self.period - self._clock.monotonic()
            await self._clock.sleep(max(wait, 0.001))
        self._task_logs.append(self._clock.monotonic())


@dataclass
class ClockOffset:
    """The vendor's clock minus ours, narrowed from ``Date`` headers like NTP narrows its bounds.

    A ``Date`` header has one-second resolution: the server read its clock somewhere between
    our send and receive times, and truncated it. Each response therefore bounds the offset to
    ``(H - received, H + 1 - sent)``; intersecting many such bounds pins it far tighter than
    one second. An empty intersection means a clock stepped: start again from that response.
    """

    low: float | None = None
    high: float | None = None
    samples: int = 0

    def observe(self, date_header: str | None, sent: datetime, received: datetime) -> None:
        if not date_header:
            return
        try:
            server = _http_date(date_header)
        except (TypeError, ValueError):
            return
        if server.tzinfo is None:
            return
        low = (server - received).total_seconds()
        high = (server + _ONE_SECOND - sent).total_seconds()
        if self.low is None or self.high is None or max(low, self.low) > min(high, self.high):
            self.low, self.high = low, high
        else:
            self.low, self.high = max(low, self.low), min(high, self.high)
        self.samples += 1

    @property
    def seconds(self) -> float | None:
        """Best estimate (the middle of the bounds), or None before any ``Date`` header."""
        if self.low is None or self.high is None:
            return None
        return (self.low + self.high) / 2


@functools.lru_cache(maxsize=64)
def _http_date(value: str) -> datetime:
    """A ``Date`` header read once: every response has one, and the calls of every account in
    the same second carry the same text.

    The form RFC 9110 §5.6.7 says senders must use (``Sun, 06 Nov 1994 08:49:37 GMT``) is read
    by position, its date part once a day (``_fixdate_day``), since each call mostly lands in a
    second of its own; anything else (the obsolete forms a recipient must still accept, a
    wrong one) by the email parser, which ``parsedate_to_datetime`` is."""
    if len(value) == 29 and value[16] == " " and value.endswith(" GMT"):
        day = _fixdate_day(value[:16])
        if day is not None and _TIME_OF_DAY.fullmatch(value, 17, 25):
            hour, minute, second = int(value[17:19]), int(value[20:22]), int(value[23:25])
            return day + timedelta(0, hour * 3600 + minute * 60 + second)
    return parsedate_to_datetime(value)


@functools.lru_cache(maxsize=8)
def _fixdate_day(value: str) -> datetime | None:
    """Midnight UTC of an IMF-fixdate's date part (``Sun, 06 Nov 1994``), or None where the
    email parser must decide: not that form, a year it reads as two digits, no such day."""
    month = _MONTHS.get(value[8:11])
    fields = (value[12:16], value[5:7])
    if value[3:5] != ", " or value[7] + value[11] != "  " or not month:
        return None
    if not all(field.isascii() and field.isdigit() for field in fields):
        return None
    year, day = map(int, fields)
    if year < 100:  # the email parser reads a smaller one as a two-digit year
        return None
    try:
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None  # out of range: the email parser decides


_TIME_OF_DAY = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")
"""``08:49:37``, ASCII digits in range: a leap second or a wrong one goes to the email parser."""
_ONE_SECOND = timedelta(seconds=1)
"""A ``Date`` header's resolution."""


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
