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
from collections.abc import Generator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from types import TracebackType
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

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """``async with``: TimeoutError if the block is still running after ``seconds`` of this
        clock's time (the block is cancelled, as by ``asyncio.timeout``)."""
        ...

    def alarm(self, seconds: float) -> asyncio.Future[None]:
        """A future this clock completes after ``seconds``; cancel it to withdraw."""
        ...


class RealClock:
    """The wall clock and the event loop's own sleep."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(max(0.0, seconds))

    def alarm(self, seconds: float) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        ring = loop.call_later(max(0.0, seconds), _complete, future)
        future.add_done_callback(lambda _future: ring.cancel())  # done early: no timer left
        return future


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
        self._now = (0.0, self._start)
        """``now()`` at the last elapsed time asked for: most readings come at an instant
        already read (a simulated day asks about 100,000 times)."""
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        elapsed, moment = self._now
        if elapsed != self._elapsed:
            moment = self._start + timedelta(seconds=self._elapsed)
            self._now = (self._elapsed, moment)
        return moment

    def monotonic(self) -> float:
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), future))
        await future

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return _VirtualTimeout(self, seconds)

    def alarm(self, seconds: float) -> asyncio.Future[None]:
        """A future this clock completes after ``seconds``, for a waiter that is not a task of
        its own (cancel it to withdraw)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), future))
        return future

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


WAKE_SLACK_S = 0.001
"""Added to a wait for a moment, so the waiter wakes just after it: float rounding must never
wake a loop a hair early, to find nothing due and wait again."""


class Wakeup:
    """A flag that work raises and one idle loop waits on, for at most a time of a clock.

    ``asyncio.Event`` under ``clock.timeout`` would do, but the idle loops' waits mostly run
    out, and running out cost a cancellation and two exceptions each time. Here the clock's
    alarm is the very future waited on, and raising the flag completes it early.
    """

    def __init__(self) -> None:
        self._raised = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._raised = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def clear(self) -> None:
        self._raised = False

    def is_set(self) -> bool:
        return self._raised

    async def wait(self, clock: Clock, seconds: float) -> None:
        """Until the flag is raised or ``seconds`` of ``clock`` pass, whichever comes first.
        One waiter at a time: a second would take the first one's place."""
        if self._raised:
            return
        waiter = self._waiter = clock.alarm(seconds)
        try:
            await waiter  # cancelling the waiting task cancels the alarm with it
        finally:
            self._waiter = None


def _complete(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _VirtualTimeout:
    """``asyncio.timeout`` on a virtual clock: the block runs in the caller's task, which is
    cancelled when the clock passes the deadline, and TimeoutError is raised in its place.

    No task of its own: a vendor call under a timeout costs no extra task or loop turn."""

    def __init__(self, clock: VirtualClock, seconds: float) -> None:
        self._clock = clock
        self._seconds = seconds
        self._task: asyncio.Task[object] | None = None
        self._alarm: asyncio.Future[None] | None = None
        self._expired = False

    async def __aenter__(self) -> None:
        self._task = asyncio.current_task()
        if self._task is None:
            raise RuntimeError("a timeout must be used inside a task")
        self._alarm = self._clock.alarm(max(0.0, self._seconds))
        self._alarm.add_done_callback(self._expire)

    def _expire(self, alarm: asyncio.Future[None]) -> None:
        # Scheduled when the alarm rings; the block may have ended since (``_task`` is None).
        if not alarm.cancelled() and self._task is not None:
            self._expired = True
            self._task.cancel()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        assert self._alarm is not None and task is not None
        # Withdrawn first, so cancelling the alarm schedules no callback (a loop turn a call).
        self._alarm.remove_done_callback(self._expire)
        self._alarm.cancel()
        if self._expired and task.uncancel() == 0 and kind is asyncio.CancelledError:
            raise TimeoutError from error


async def settle(max_rounds: int = 10_000) -> None:
    """Yield to the event loop until nothing is ready to run (in-process work only).

    Woken tasks may wake others; one ``sleep(0)`` would leave those behind. CPython keeps the
    ready queue in ``loop._ready``; where it is absent, a fixed number of rounds is used.
    """
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    for _ in range(max_rounds if ready is not None else 100):
        await _ONE_TURN
        if ready is not None and not ready:
            break


class _Turn:
    """``await`` it for one turn of the event loop, as ``asyncio.sleep(0)`` gives (a bare
    yield the task reschedules), without building a coroutine for it: the virtual clock
    takes a dozen turns a probe."""

    def __await__(self) -> Generator[None, None, None]:
        yield


_ONE_TURN = _Turn()
