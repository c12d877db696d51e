"""The send pool: a job stuck for ever is given up on and its thread replaced; alerts keep threads.

Jobs here block on events the test releases at the end; nothing waits on a timing, only on
what happened (each deadline is short so the tests are quick, and generous waits catch hangs).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest

from alerts.send_pool import LOW, NORMAL, URGENT, Abandoned, NotStarted, SendPool

DEADLINE = 0.1
WAIT = 30.0  # a job that could start must start; only a stuck test ever waits this long


class Stuck:
    """Jobs that block until the test ends (as a plugin that never returns)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = 0
        self.lock = threading.Lock()

    def __call__(self) -> str:
        with self.lock:
            self.entered += 1
        self.release.wait(60)
        return "late"


@pytest.fixture
async def stuck() -> AsyncIterator[Stuck]:
    jobs = Stuck()
    yield jobs
    jobs.release.set()


def _pool(workers: int = 1, alert_workers: int = 1, stuck_limit: int = 4,
          on_abandoned: Callable[[str], None] | None = None, name: str = "test-pool") -> SendPool:
    return SendPool(workers, alert_workers, stuck_limit, name=name, on_abandoned=on_abandoned)  # type: ignore[arg-type]


async def test_a_job_stuck_for_ever_is_given_up_at_its_deadline_and_the_next_one_runs(stuck: Stuck) -> None:
    lanes: list[str] = []
    pool = _pool(workers=1, alert_workers=1, on_abandoned=lanes.append)
    try:
        with pytest.raises(Abandoned, match=r"timed out after 0\.1s"):
            await pool.run(stuck, LOW, DEADLINE, WAIT)
        assert lanes == ["shared"] and pool.stuck() == 1
        assert pool.live("shared") == 1, "a new thread took the stuck one's place"
        assert await pool.run(lambda: "ok", LOW, DEADLINE * 50, WAIT) == "ok"
    finally:
        pool.close()


async def test_person_safety_jobs_run_while_every_shared_thread_is_stuck(stuck: Stuck) -> None:
    pool = _pool(workers=2, alert_workers=1, stuck_limit=0)
    try:
        for outcome in await asyncio.gather(*(pool.run(stuck, LOW, DEADLINE, WAIT) for _ in range(2)),
                                            return_exceptions=True):
            assert isinstance(outcome, Abandoned)
        assert pool.live("shared") == 0, "no replacements past the limit: the shared lane is out"
        with pytest.raises(NotStarted):
            await pool.run(lambda: "notice", LOW, DEADLINE, 0.2)
        assert await pool.run(lambda: "alert", URGENT, WAIT, WAIT) == "alert"
        assert pool.queued() == 0, "the notice that could not start was withdrawn"
    finally:
        pool.close()


async def test_the_most_urgent_waiting_job_goes_first() -> None:
    began, gate, order = threading.Event(), threading.Event(), []
    pool = _pool(workers=1, alert_workers=0)
    try:
        blocker = asyncio.ensure_future(pool.run(lambda: began.set() or gate.wait(WAIT), LOW, WAIT, WAIT))
        while not began.is_set():
            await asyncio.sleep(0.01)
        waiting = [asyncio.ensure_future(pool.run(lambda p=p: order.append(p), p, WAIT, WAIT))  # type: ignore[misc]
                   for p in (LOW, NORMAL, LOW, URGENT)]
        while pool.queued() < 4:
            await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(blocker, *waiting)
        assert order == [URGENT, NORMAL, LOW, LOW]
    finally:
        pool.close()


async def test_stuck_threads_are_bounded_and_a_returning_one_ends_when_it_was_replaced(stuck: Stuck) -> None:
    pool = _pool(workers=1, alert_workers=1, stuck_limit=2, name="bounded")
    try:
        for _ in range(4):
            with pytest.raises(Abandoned):
                await pool.run(stuck, LOW, DEADLINE, WAIT)
            if pool.live("shared") == 0:
                break
        assert pool.stuck("shared") == 3 and pool.live("shared") == 0, "2 replaced, the third not"
        names = [t.name for t in threading.enumerate() if t.name.startswith("bounded-shared")]
        assert len(names) == 3, names
        stuck.release.set()
        while pool.stuck():
            await asyncio.sleep(0.01)
        assert pool.live("shared") == 1, "one came back to fill the lane, the others ended"
        assert await pool.run(lambda: "ok", LOW, WAIT, WAIT) == "ok"
    finally:
        pool.close()


async def test_an_exception_in_the_job_is_the_callers() -> None:
    pool = _pool()
    try:
        with pytest.raises(ZeroDivisionError):
            await pool.run(lambda: 1 // 0, NORMAL, WAIT, WAIT)
        assert pool.stuck() == 0
    finally:
        pool.close()


async def test_closing_cancels_what_waits_and_refuses_new_work() -> None:
    began, gate = threading.Event(), threading.Event()
    pool = _pool(workers=1, alert_workers=1)
    blocker = asyncio.ensure_future(pool.run(lambda: began.set() or gate.wait(WAIT), LOW, WAIT, WAIT))
    while not began.is_set():
        await asyncio.sleep(0.01)
    queued = asyncio.ensure_future(pool.run(lambda: "never", LOW, WAIT, WAIT))
    while pool.queued() < 1:
        await asyncio.sleep(0.01)
    pool.close()
    with pytest.raises(NotStarted):
        await queued
    with pytest.raises(RuntimeError):
        await pool.run(lambda: "x", LOW, WAIT, WAIT)
    gate.set()
    assert await blocker is True
