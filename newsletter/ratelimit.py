"""A rate limit for one process's sending: at most so many messages a second, as relays demand.

The hourly quota is kept by the ledger instead (ledger.claim), so every sender and restart shares it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable


class Window:
    """At most `limit` events in any `period` seconds (a sliding log: strict, unlike a token bucket)."""

    def __init__(self, limit: int, period: float) -> None:
        if limit < 1 or period <= 0:
            raise ValueError(f"a rate limit needs a positive count and period, not {limit} per {period}s")
        self.limit = limit
        self.period = period
        self._times: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds until one more event is allowed (0: now)."""
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()
        return 0.0 if len(self._times) < self.limit else self._times[0] + self.period - now

    def record(self, now: float) -> None:
        self._times.append(now)


class RateLimiter:
    """Waits in `acquire()` until sending one more message keeps within the limit; callers go in turn."""

    def __init__(
        self,
        *,
        per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.window: Window | None = None
        if per_second is not None:
            if per_second <= 0:
                raise ValueError(f"rate per second must be positive, not {per_second}")
            burst = max(1, round(per_second))  # e.g. 2.5/s: 2 per 0.8 s; 0.5/s: 1 per 2 s
            self.window = Window(burst, burst / per_second)
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.window is None:
            return
        async with self._lock:
            while (delay := self.window.wait(self._clock())) > 0:
                await self._sleep(delay)
            self.window.record(self._clock())
