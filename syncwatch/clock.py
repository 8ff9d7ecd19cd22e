"""Time, injected: the only module that reads the wall clock.

Everything that needs "now" or needs to wait takes a ``Clock``. ``syncwatch run`` uses
``RealClock``; tests, the sandbox under test and ``syncwatch simulate`` use ``VirtualClock`` so a
month of probing passes in seconds and the same seed gives the same month.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

#: Where a virtual clock starts unless told otherwise: a fixed, ordinary Monday.
DEFAULT_VIRTUAL_START = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


@runtime_checkable
class Clock(Protocol):
    """What the rest of syncwatch may know about time."""

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards, for measuring durations."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class RealClock:
    """The wall clock and the event loop's own sleep."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that moves only when told to, waking sleepers in deadline order.

    ``advance`` moves time forward one sleeper deadline at a time and lets the woken tasks run
    before moving on, so a task that sleeps 30 s in a loop wakes at 30, 60, 90 … exactly as it
    would in real time, only without waiting.
    """

    def __init__(self, start: datetime = DEFAULT_VIRTUAL_START) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware start time")
        self._start = start.astimezone(UTC)
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock (cancelled waits not counted)."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def next_deadline(self) -> float | None:
        """Monotonic time of the earliest pending sleeper, if any."""
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running every task that wakes on the way."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        target = self._elapsed + seconds
        await settle()
        while (deadline := self.next_deadline()) is not None and deadline <= target:
            self._elapsed = max(self._elapsed, deadline)
            self._wake_due()
            await settle()
        self._elapsed = target
        await settle()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._elapsed:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)


async def settle(max_rounds: int = 10_000) -> None:
    """Yield to the event loop until nothing is ready to run (in-process work only).

    Woken tasks may wake others; one ``sleep(0)`` would leave those behind. CPython keeps the
    ready queue in ``loop._ready``; where it is absent, a fixed number of rounds is used.
    """
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    for _ in range(max_rounds if ready is not None else 100):
        await asyncio.sleep(0)
        if ready is not None and not ready:
            break
