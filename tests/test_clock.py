"""Clocks: the virtual clock wakes sleepers in order without waiting; the real one is real."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from syncwatch.clock import DEFAULT_VIRTUAL_START, Clock, RealClock, VirtualClock, Wakeup


async def test_virtual_now_and_monotonic_move_only_on_advance() -> None:
    """Reading the clock never moves it; advance moves both readings by the same amount."""
    clock = VirtualClock()
    assert clock.now() == DEFAULT_VIRTUAL_START
    assert clock.now().tzinfo is UTC
    await clock.advance(90.5)
    assert clock.now() == DEFAULT_VIRTUAL_START + timedelta(seconds=90.5)
    assert clock.monotonic() == 90.5


async def test_sleepers_wake_in_deadline_order_at_their_own_time() -> None:
    """Each sleeper sees the clock at exactly its deadline, not at the end of the advance."""
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in [("c", 30), ("a", 10), ("b", 20)]]
    await clock.advance(25)
    assert woke == [("a", 10.0), ("b", 20.0)]
    await clock.advance(100)
    assert woke[-1] == ("c", 30.0)
    await asyncio.gather(*tasks)


async def test_a_periodic_task_runs_once_per_period_over_a_virtual_day() -> None:
    """A loop sleeping 60 s runs 1440 times in a virtual day, instantly."""
    clock = VirtualClock()
    ticks: list[float] = []

    async def every_minute() -> None:
        while True:
            ticks.append(clock.monotonic())
            await clock.sleep(60)

    task = asyncio.create_task(every_minute())
    await clock.advance(86_400)
    task.cancel()
    assert len(ticks) == 1441
    assert ticks[:3] == [0.0, 60.0, 120.0]


async def test_cancelled_sleepers_are_forgotten() -> None:
    """A cancelled wait neither wakes nor counts as a sleeper."""
    clock = VirtualClock()
    task = asyncio.create_task(clock.sleep(10))
    await asyncio.sleep(0)
    assert clock.sleepers == 1
    task.cancel()
    await asyncio.sleep(0)
    assert clock.sleepers == 0
    assert clock.next_deadline() is None
    await clock.advance(20)


async def test_the_clock_cannot_go_backwards() -> None:
    """Negative advances are a bug in the caller."""
    with pytest.raises(ValueError, match="backwards"):
        await VirtualClock().advance(-1)


def test_a_naive_start_is_refused() -> None:
    """Every time in syncwatch is aware UTC; a naive start would poison them all."""
    with pytest.raises(ValueError, match="aware"):
        VirtualClock(datetime(2026, 1, 1))  # noqa: DTZ001


async def test_real_clock_reads_aware_utc_and_satisfies_the_protocol() -> None:
    """The real clock is a Clock, reports aware UTC and its sleep(0) returns."""
    clock = RealClock()
    assert isinstance(clock, Clock)
    assert isinstance(VirtualClock(), Clock)
    assert clock.now().tzinfo is UTC
    before = clock.monotonic()
    await clock.sleep(0)
    assert clock.monotonic() >= before


async def test_a_virtual_timeout_cancels_the_block_at_its_deadline() -> None:
    """Like ``asyncio.timeout``: the block is cancelled when the clock passes the deadline and
    TimeoutError takes the place of the cancellation; the work never runs on."""
    clock = VirtualClock()
    reached: list[float] = []

    async def slow() -> None:
        async with clock.timeout(30):
            await clock.sleep(60)
            reached.append(clock.monotonic())

    task = asyncio.create_task(slow())
    await clock.advance(29)
    assert not task.done()
    await clock.advance(2)
    with pytest.raises(TimeoutError):
        await task
    await clock.advance(60)
    assert reached == []
    assert clock.monotonic() == 91


async def test_a_virtual_timeout_in_time_leaves_the_task_alone_afterwards() -> None:
    """A block that ends before its deadline is not cancelled later, even when its alarm rang
    in the same turn and its callback runs after the block has ended."""
    clock = VirtualClock()
    log: list[str] = []

    async def quick() -> None:
        done_first = clock.alarm(10)  # due with the timeout's alarm, and ahead of it
        async with clock.timeout(10):
            await done_first
        log.append("block done")
        await clock.sleep(50)
        log.append("slept on")

    task = asyncio.create_task(quick())
    await clock.advance(100)
    await task
    assert log == ["block done", "slept on"]
    assert clock.sleepers == 0


async def test_a_virtual_timeout_at_the_very_deadline_is_a_timeout() -> None:
    """Work due at the same instant as the deadline, but after it, is too late (as with
    ``asyncio.timeout``)."""
    clock = VirtualClock()

    async def exact() -> None:
        async with clock.timeout(10):
            await clock.sleep(10)

    task = asyncio.create_task(exact())
    await clock.advance(10)
    with pytest.raises(TimeoutError):
        await task


async def test_a_cancellation_from_outside_is_not_turned_into_a_timeout() -> None:
    """Only the timeout's own cancellation becomes TimeoutError; a shutdown stays a
    cancellation."""
    clock = VirtualClock()

    async def waiting() -> None:
        async with clock.timeout(30):
            await clock.sleep(60)

    task = asyncio.create_task(waiting())
    await clock.advance(5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.next_deadline() is None


@pytest.mark.parametrize("clock", [VirtualClock(), RealClock()], ids=["virtual", "real"])
async def test_a_wakeup_returns_when_raised_or_at_the_end_of_the_time(clock: Clock) -> None:
    """The daemon's idle wait: woken early by the flag, or at the end of the time; a raised
    flag is not waited on, and a cleared one is again."""
    wakeup = Wakeup()
    waiter = asyncio.create_task(wakeup.wait(clock, 3600))
    await asyncio.sleep(0)
    assert not waiter.done()
    wakeup.set()
    await asyncio.wait_for(waiter, 1)
    await asyncio.wait_for(wakeup.wait(clock, 3600), 1)  # still raised: no wait at all

    wakeup.clear()
    short = asyncio.create_task(wakeup.wait(clock, 0.01))
    if isinstance(clock, VirtualClock):
        await clock.advance(0.005)
        assert not short.done()
        await clock.advance(0.005)
    await asyncio.wait_for(short, 1)
    assert not wakeup.is_set()
    if isinstance(clock, VirtualClock):
        assert clock.next_deadline() is None  # the early-woken alarm is not left waiting


@pytest.mark.parametrize("clock", [VirtualClock(), RealClock()], ids=["virtual", "real"])
async def test_a_cancelled_wait_withdraws_its_alarm(clock: Clock) -> None:
    """A loop stopped while idle leaves no alarm behind, and a later flag reaches nobody."""
    wakeup = Wakeup()
    waiter = asyncio.create_task(wakeup.wait(clock, 3600))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    wakeup.set()  # nobody waits: nothing to complete
    if isinstance(clock, VirtualClock):
        assert clock.next_deadline() is None
