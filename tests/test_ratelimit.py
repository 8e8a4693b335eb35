"""The per-second rate limit: a strict sliding window, on a simulated clock (the hourly quota is in test_ledger)."""

from __future__ import annotations

import asyncio

import pytest

from newsletter.ratelimit import RateLimiter


class Clock:
    """Simulated time: sleeping advances it at once."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def times(limiter: RateLimiter, clock: Clock, count: int) -> list[float]:
    async def go() -> list[float]:
        stamps = []
        for _ in range(count):
            await limiter.acquire()
            stamps.append(round(clock.now - 1000.0, 6))
        return stamps

    return asyncio.run(go())


def test_per_second_allows_a_burst_then_waits_for_the_oldest_to_leave_the_window():
    clock = Clock()
    limiter = RateLimiter(per_second=3, clock=clock, sleep=clock.sleep)
    assert times(limiter, clock, 7) == [0, 0, 0, 1, 1, 1, 2]


@pytest.mark.parametrize(("rate", "expected"), [(0.5, [0, 2, 4, 6]), (2.5, [0, 0, 0.8, 0.8])])
def test_fractional_rates_per_second(rate, expected):
    clock = Clock()
    limiter = RateLimiter(per_second=rate, clock=clock, sleep=clock.sleep)
    assert times(limiter, clock, 4) == expected


def test_no_limits_never_wait():
    clock = Clock()
    assert times(RateLimiter(clock=clock, sleep=clock.sleep), clock, 1000)[-1] == 0


def test_concurrent_callers_go_in_turn():
    clock = Clock()
    limiter = RateLimiter(per_second=1, clock=clock, sleep=clock.sleep)
    stamps: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        stamps.append(clock.now - 1000.0)

    async def go() -> None:
        await asyncio.gather(*(one() for _ in range(4)))

    asyncio.run(go())
    assert sorted(stamps) == [0, 1, 2, 3]


@pytest.mark.parametrize("options", [{"per_second": 0}, {"per_second": -1}])
def test_nonsense_limits_are_refused(options):
    with pytest.raises(ValueError, match="rate per second must be positive"):
        RateLimiter(**options)
