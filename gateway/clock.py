"""Where the shell gets its time from; the engine never asks.

`SystemClock` is the wall clock (UTC) for the live service, and it drives
every deadline: events are stamped with it, stored with it, replayed with it
after a restart, and the routine's local times come from it through zoneinfo.
One time axis, so a rebuild after a restart decides exactly what ran live.

The wall clock can be stepped (a bad RTC corrected, NTP after a long outage),
so the sleeper never trusts one long sleep: it naps at most `nap_s` and looks
at the wall clock again. A step forward fires what fell due at once (the timer
loop marks those steps late); a step back makes a pending deadline wait for
its wall-clock instant, never fire early or twice. Both are logged.

`SimClock` is set by hand, so tests and replays run a whole night instantly
and deterministically. `ScaledClock` is for the soak test only: simulated time
running `speed` times faster than real time, from an origin shared by every
process of the run (the gateway is restarted mid-run and must agree).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

log = logging.getLogger("tecmon.clock")

NAP_S = 1.0
"""Longest sleep before the wall clock is read again: a step of the clock is seen within it."""
OVERDUE = timedelta(seconds=60)
"""The timer loop fires a deadline it finds later than this past its instant as late."""
STEP_WARNING_S = 5.0
"""A disagreement between wall and monotonic time this large is logged as a clock step."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        """Return at `when`, or earlier if `wake` is set (or the clock may have stepped)."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SystemClock:
    """The wall clock; `wall` and `nap_s` are injectable so tests can step it."""

    overdue_after = OVERDUE

    def __init__(self, wall: Callable[[], datetime] = _utc_now, nap_s: float = NAP_S) -> None:
        self._wall = wall
        self.nap_s = nap_s

    def now(self) -> datetime:
        return self._wall()

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        """Nap towards `when`; returns when it is reached, `wake` is set, or after one nap.

        The caller (the timer loop) looks at its deadlines again after every
        return, so returning early is always safe and a step is noticed in `nap_s`.
        """
        before, started = self._wall(), time.monotonic()
        delay = (when - before).total_seconds()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=min(delay, self.nap_s))
        stepped = (self._wall() - before).total_seconds() - (time.monotonic() - started)
        if abs(stepped) >= STEP_WARNING_S:
            log.warning("the wall clock stepped %+.0f s; deadlines follow the wall clock", stepped)


class ScaledClock:
    """Test only (the soak): simulated time = origin + (real time - anchor) * speed.

    `anchor` is a Unix time, so every process given the same three numbers
    reads the same simulated instant, across restarts of the gateway.
    """

    def __init__(self, origin: datetime, anchor: float, speed: float,
                 real: Callable[[], float] = time.time) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.origin, self.anchor, self.speed, self._real = origin, anchor, speed, real
        self.overdue_after = OVERDUE * speed  # the same real-time grace as the wall clock

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=(self._real() - self.anchor) * self.speed)

    def real_time_of(self, when: datetime) -> float:
        """The Unix time at which this clock reads `when`."""
        return self.anchor + (when - self.origin).total_seconds() / self.speed

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        delay = (when - self.now()).total_seconds() / self.speed
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=min(delay, NAP_S))


class SimClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self.set(self._now + delta)

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError("a SimClock never goes backwards")
        self._now = when
        self._moved.set()

    async def sleep_until(self, when: datetime, wake: asyncio.Event) -> None:
        while self._now < when and not wake.is_set():
            self._moved.clear()
            waiter = asyncio.ensure_future(self._moved.wait())
            woken = asyncio.ensure_future(wake.wait())
            await asyncio.wait({waiter, woken}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            woken.cancel()
