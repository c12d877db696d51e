"""Threads for blocking sends that a hung notification service cannot use up.

apprise's `notify()` blocks, and a thread cannot be killed: a plugin that never
returns (or an endpoint that takes the connection and never answers, past
apprise's socket timeouts) keeps its thread for ever. A plain thread pool then
runs out of threads, and every later alert, for every home, waits behind the
stuck ones. So this pool:

- runs each job under a hard deadline from the moment a thread takes it; past
  it the caller gets `Abandoned` at once and goes on (the next contact is
  called), the job is left to its thread, and that thread is replaced by a new
  one, up to `stuck_limit` stuck threads per lane, so capacity comes back;
- keeps two lanes: `shared` threads take any job, the most urgent first;
  `alert` threads take only person-safety jobs (priority `URGENT`), so
  notices and summaries stuck on a dead service can never take them all;
- bounds the wait for a free thread (`NotStarted`), so nothing waits for ever.

Threads are daemons: a send stuck for ever does not hold up the process's exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

log = logging.getLogger("tecmon.notify")

T = TypeVar("T")
F = TypeVar("F")
Lane = Literal["shared", "alert"]
URGENT, NORMAL, LOW = 0, 1, 2
"""Job priorities: person-safety alerts, all-clears of them, notices and summaries."""


class Abandoned(Exception):
    """The job ran past its deadline; its thread was left to it (and replaced)."""


class NotStarted(Exception):
    """No thread was free to start the job within the wait allowed; it was withdrawn."""


@dataclass(eq=False)
class _Job(Generic[T]):
    fn: Callable[[], T]
    priority: int
    on_start: Callable[[], None]
    future: Future[T] = field(default_factory=Future)
    state: Literal["queued", "running", "done", "withdrawn"] = "queued"
    worker: _Worker | None = None


@dataclass(eq=False)
class _Worker:
    lane: Lane
    abandoned: bool = False


@dataclass
class _LaneCount:
    target: int
    live: int = 0  # threads taking jobs
    stuck: int = 0  # threads still running an abandoned job


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[F], None], arg: F) -> None:
    """From a pool thread; a loop already closed has nobody left waiting."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, arg)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class SendPool:
    """A bounded set of daemon threads with a priority queue, two lanes and per-job deadlines."""

    def __init__(
        self,
        workers: int,
        alert_workers: int,
        stuck_limit: int,
        *,
        name: str = "tecmon-notify",
        on_abandoned: Callable[[Lane], None] | None = None,
    ) -> None:
        self._lock = threading.Condition()
        self._queue: list[tuple[int, int, _Job[object]]] = []
        self._seq = itertools.count()
        self._lanes: dict[Lane, _LaneCount] = {
            "shared": _LaneCount(workers), "alert": _LaneCount(alert_workers),
        }
        self._stuck_limit, self._name, self._on_abandoned = stuck_limit, name, on_abandoned
        self._closed = False
        self._names = itertools.count(1)
        with self._lock:
            for lane, count in self._lanes.items():
                for _ in range(count.target):
                    self._start_worker(lane)

    # -- the event-loop side -----------------------------------------------------------

    async def run(self, fn: Callable[[], T], priority: int, deadline_s: float, wait_s: float) -> T:
        """`fn()` on a pool thread: its result, or `NotStarted` / `Abandoned` (never waits longer)."""
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        job: _Job[T] = _Job(fn, priority, lambda: _call_soon(loop, _settle, started))
        self._put(job)
        done = asyncio.wrap_future(job.future)
        try:
            either: set[asyncio.Future[Any]] = {started, done}
            await asyncio.wait(either, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
            if not started.done() and not done.done() and self._withdraw(job):
                raise NotStarted(f"no free sender within {wait_s:g}s")
            await asyncio.wait({done}, timeout=deadline_s)
        except asyncio.CancelledError:  # the caller is stopping: a running job ends on its own
            self._withdraw(job)
            raise
        if done.cancelled():
            raise NotStarted("the notifier is closing")
        if not done.done():
            self._abandon(job)
            raise Abandoned(f"timed out after {deadline_s:g}s")
        return done.result()

    def _put(self, job: _Job[Any]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the send pool is closed")
            entry: tuple[int, int, _Job[object]] = (job.priority, next(self._seq), job)
            heapq.heappush(self._queue, entry)
            self._lock.notify_all()

    def _withdraw(self, job: _Job[T]) -> bool:
        """Take a job that has not started off the queue (it is skipped when reached)."""
        with self._lock:
            if job.state != "queued":
                return False
            job.state = "withdrawn"
            job.future.cancel()
            return True

    def _abandon(self, job: _Job[T]) -> None:
        """Give up on a running job: its thread stops counting, and a new one takes its place."""
        with self._lock:
            worker = job.worker
            if job.state != "running" or worker is None or worker.abandoned:
                return
            worker.abandoned = True
            count = self._lanes[worker.lane]
            count.live -= 1
            count.stuck += 1
            stuck, replaced = count.stuck, count.stuck <= self._stuck_limit and not self._closed
            if replaced:
                self._start_worker(worker.lane)
        if self._on_abandoned is not None:
            self._on_abandoned(worker.lane)
        log.warning("a %s sender is stuck (%d in that lane); %s", worker.lane, stuck,
                    "a new one took its place" if replaced else "too many stuck: working on with fewer")

    # -- the thread side ---------------------------------------------------------------

    def _start_worker(self, lane: Lane) -> None:
        """Called with the lock held."""
        worker = _Worker(lane)
        self._lanes[lane].live += 1
        name = f"{self._name}-{lane}-{next(self._names)}"
        threading.Thread(target=self._work, args=(worker,), name=name, daemon=True).start()

    def _take(self, worker: _Worker) -> _Job[object] | None:
        """The next job this worker may run (alert lane: urgent only), or None once closed."""
        with self._lock:
            while True:
                while self._queue and self._queue[0][2].state == "withdrawn":
                    heapq.heappop(self._queue)
                if self._closed:
                    return None
                if self._queue and (worker.lane == "shared" or self._queue[0][0] == URGENT):
                    job = heapq.heappop(self._queue)[2]
                    job.state, job.worker = "running", worker
                    return job
                self._lock.wait()

    def _work(self, worker: _Worker) -> None:
        while (job := self._take(worker)) is not None:
            if job.future.set_running_or_notify_cancel():
                job.on_start()
                try:
                    job.future.set_result(job.fn())
                except BaseException as exc:  # the caller sees it as the job's outcome
                    job.future.set_exception(exc)
            if not self._finished(worker, job):
                return

    def _finished(self, worker: _Worker, job: _Job[object]) -> bool:
        """Whether this thread goes on taking jobs: a replaced one ends, unless its lane is short."""
        with self._lock:
            job.state = "done"
            if not worker.abandoned:
                return True
            count = self._lanes[worker.lane]
            count.stuck -= 1
            if count.live < count.target and not self._closed:
                worker.abandoned = False
                count.live += 1
                return True
            return False

    # -- state -------------------------------------------------------------------------

    def stuck(self, lane: Lane | None = None) -> int:
        """Threads still running a job that was given up on."""
        with self._lock:
            return sum(c.stuck for name, c in self._lanes.items() if lane in (None, name))

    def live(self, lane: Lane | None = None) -> int:
        """Threads taking jobs now."""
        with self._lock:
            return sum(c.live for name, c in self._lanes.items() if lane in (None, name))

    def queued(self) -> int:
        with self._lock:
            return sum(1 for *_, job in self._queue if job.state == "queued")

    def close(self) -> None:
        """Stop taking work: queued jobs are cancelled, running ones end on their own."""
        with self._lock:
            self._closed = True
            for *_, job in self._queue:
                if job.state == "queued":
                    job.state = "withdrawn"
                    job.future.cancel()
            self._queue.clear()
            self._lock.notify_all()
