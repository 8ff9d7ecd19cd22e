"""Clocks: the virtual clock wakes sleepers in order without waiting; the real one is real."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from syncwatch.clock import DEFAULT_VIRTUAL_START, Clock, RealClock, VirtualClock


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
