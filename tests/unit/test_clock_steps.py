"""The wall clock stepping an hour forward or back while the timer loop runs.

Deadlines follow the wall clock (see `gateway.clock`): a step back makes a
pending deadline wait for its wall-clock instant, never fire early or twice;
a step forward fires what it passed over at once, each step stamped at its
own instant and marked late, each contact called once. The real
`SystemClock` runs here with an injected wall clock the test steps, and a
tiny nap, so the loop notices within milliseconds; every wait is on a
condition (the loop having read the clock again), never a timed assertion.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from alerts.decisions import AlertRaised, SendAlert
from alerts.homeconfig import parse_home_config
from gateway.clock import ScaledClock, SystemClock
from gateway.metrics import Metrics
from gateway.mqtt import Inbound
from gateway.runtime import Dispatch, Runtime

T0 = datetime(2026, 1, 12, 1, 0, tzinfo=UTC)
HOUR, MIN = timedelta(hours=1), timedelta(minutes=1)
LEFT = T0 + 2 * MIN
DEADLINE = LEFT + 10 * MIN  # out of bed for 10 minutes
BED = "zigbee2mqtt/ann/bed"


class SteppedWall:
    """A wall clock that stands still until the test sets it, forwards or back; counts reads."""

    def __init__(self, at: datetime) -> None:
        self.at, self.reads = at, 0

    def __call__(self) -> datetime:
        self.reads += 1
        return self.at


@dataclass
class Loop:
    runtime: Runtime
    wall: SteppedWall
    seen: list[Dispatch]

    async def set(self, at: datetime) -> None:
        """Move the wall clock and wait until the loop has looked at it a few times."""
        self.wall.at = at
        await self.settle()

    async def settle(self) -> None:
        target, limit = self.wall.reads + 6, time.monotonic() + 30
        while self.wall.reads < target and self.runtime.heap.peek() is not None:  # else it is idle
            assert time.monotonic() < limit, "the timer loop stopped reading the clock"
            await asyncio.sleep(0.001)
        while not self.runtime.outbox.empty():
            self.seen.append(self.runtime.outbox.get_nowait())

    def ingest(self, occupied: bool) -> None:
        payload = b'{"occupancy": true}' if occupied else b'{"occupancy": false}'
        self.runtime.ingest(Inbound(BED, payload, self.wall.at, 1))

    def steps(self) -> list[tuple[str, str | None, datetime, bool, bool]]:
        """(step, contact, at, late, called) of every decision so far."""
        out = []
        for item in self.seen:
            contact = item.decision.contact.name if isinstance(item.decision, SendAlert) else None
            out.append((item.decision.step, contact, item.decision.at, item.late, item.call))
        return out

    def calls(self) -> list[tuple[str | None, datetime]]:
        return [(contact, at) for step, contact, at, _, called in self.steps() if contact and called]


def home() -> dict[str, object]:
    return {
        "home": "ann", "timezone": "Europe/London", "person": {"name": "Ann"},
        "devices": [{"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed"}],
        "routine": {"night": {"from": "22:00", "to": "07:30"}, "out_of_bed": {"alert_after": "10m"}},
        "contacts": [{"name": "Sam", "notify": ["json://127.0.0.1:9/"]},
                     {"name": "Night", "notify": ["json://127.0.0.1:9/"]}],
        "escalation": {"ack_within": "5m", "repeat_every": "5m"},
    }


@pytest.fixture
async def loop() -> AsyncIterator[Loop]:
    """Ann out of bed since LEFT, the wall clock at LEFT + 4 min, the timer loop running."""
    wall = SteppedWall(T0)
    runtime = Runtime(SystemClock(wall, nap_s=0.002), Metrics())
    runtime.set_home(parse_home_config(home(), "test"))
    task = asyncio.create_task(runtime.run_timers())
    state = Loop(runtime, wall, [])
    await state.set(T0 + MIN)
    state.ingest(True)
    await state.set(LEFT)
    state.ingest(False)
    await state.set(LEFT + 4 * MIN)
    assert runtime.heap.peek() == DEADLINE
    yield state
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_step_back_an_hour_waits_for_the_wall_clock_deadline_and_fires_once(loop: Loop) -> None:
    await loop.set(LEFT + 4 * MIN - HOUR)
    await loop.set(DEADLINE - HOUR)  # the instant the deadline had been, an hour of monotonic time ago
    await loop.set(DEADLINE - timedelta(seconds=1))
    assert loop.steps() == [], "fired before its wall-clock instant"
    await loop.set(DEADLINE)
    assert loop.steps() == [("raised", None, DEADLINE, False, True), ("notified", "Sam", DEADLINE, False, True)]
    await loop.set(DEADLINE - HOUR)  # and back again: nothing fires twice
    await loop.set(DEADLINE + 4 * MIN)
    assert len(loop.steps()) == 2
    await loop.set(DEADLINE + 5 * MIN)
    assert loop.calls() == [("Sam", DEADLINE), ("Night", DEADLINE + 5 * MIN)]


async def test_a_step_forward_an_hour_fires_what_it_passed_once_marked_late(loop: Loop) -> None:
    await loop.set(LEFT + 4 * MIN + HOUR)  # 54 minutes after the deadline
    steps = loop.steps()
    assert steps[0] == ("raised", None, DEADLINE, True, False)
    assert all(late for *_, late, _ in steps), "every step of the gap is marked late"
    assert [s[2] for s in steps] == sorted(s[2] for s in steps), "each stamped at its own instant"
    repeats = [at for step, contact, at, *_ in steps if contact == "Night"]
    assert repeats == [DEADLINE + k * 5 * MIN for k in range(1, 11)], "the engine decided every repeat"
    assert loop.calls() == [("Sam", DEADLINE), ("Night", DEADLINE + 50 * MIN)], "each contact called once"
    await loop.set(DEADLINE + 55 * MIN - timedelta(seconds=1))
    assert len(loop.steps()) == len(steps)
    await loop.set(DEADLINE + 55 * MIN)  # the next repeat, on time again
    assert loop.steps()[len(steps):] == [("escalated", "Night", DEADLINE + 55 * MIN, False, True)]


async def test_forward_then_back_an_hour_fires_nothing_twice(loop: Loop) -> None:
    await loop.set(LEFT + 4 * MIN + HOUR)
    fired = len(loop.steps())
    await loop.set(LEFT + 4 * MIN)  # the clock corrected back to where it was
    await loop.set(DEADLINE + 10 * MIN)  # instants already fired while the clock was ahead
    assert len(loop.steps()) == fired
    await loop.set(DEADLINE + 55 * MIN)
    assert loop.steps()[fired:] == [("escalated", "Night", DEADLINE + 55 * MIN, False, True)]


@pytest.mark.parametrize(("found_at", "late"), [
    (DEADLINE, False),
    (DEADLINE + timedelta(seconds=59), False),  # a busy loop, not a step
    (DEADLINE + 2 * MIN, True),
])
async def test_a_deadline_is_late_only_when_found_well_past(loop: Loop, found_at: datetime, late: bool) -> None:
    await loop.set(found_at)
    raised = [item for item in loop.seen if isinstance(item.decision, AlertRaised)]
    assert [(item.decision.at, item.late) for item in raised] == [(DEADLINE, late)]
    assert loop.calls() == [("Sam", DEADLINE)]


async def test_the_soak_clock_runs_fast_from_a_shared_origin() -> None:
    real = [1000.0]
    clock = ScaledClock(T0, anchor=1000.0, speed=60, real=lambda: real[0])
    real[0] += 2.5
    assert clock.now() == T0 + timedelta(seconds=150)
    assert clock.real_time_of(T0 + HOUR) == 1000.0 + 60
    assert clock.overdue_after == timedelta(hours=1)
    wake = asyncio.Event()
    await clock.sleep_until(clock.now() - MIN, wake)  # already due: returns at once
    wake.set()
    await clock.sleep_until(clock.now() + HOUR, wake)  # woken
