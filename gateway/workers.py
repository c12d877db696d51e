"""`tecmon serve --workers N`: N worker processes own the homes; the parent supervises and serves the API.

The single-box form of the partitioned design ("Beyond one machine"): worker
k owns the homes with `partition_of(home, N) == k` (`gateway.worker`), with
its own MQTT session on exactly those homes' topics, its own deadline heap,
notifier and store writer. The parent:
- starts the workers and restarts one that dies (after 0.5 s, doubling up to
  30 s while it keeps dying within a minute of starting); a restarted worker
  recovers its homes from the shared store as any start does, and its
  persistent MQTT session hands it what was published meanwhile;
- reads the home files (each worker reads them once, at start) and hands
  every change to the owner, as it does edits made through the API;
- serves the API and pages for every home: each home's plan from its own
  copy of the configurations, its state as the owning worker last reported
  it (asked for, changes only, before a request when the copy is older than
  `MIRROR_MAX_AGE_S`), the record from the shared store, each worker's
  lifecycle lines for the live pages, and every worker's metrics summed;
- hands commands (ack, resolve, company, a home's configuration) to the owner
  (`WorkerCommands`, a `gateway.worker_commands.CommandRouter`). A route answers at
  once from the engine applied to the parent's copy of the state; the owner
  applies the same input for real (records it, notifies) and its state then
  replaces the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.decisions import Decision
from alerts.engine import step
from alerts.events import EngineInput
from alerts.homeconfig import HomeConfig
from alerts.state import HomeState
from gateway.homes import watch_homes
from gateway.partitions import partition_of
from gateway.runtime import Runtime
from gateway.service import Service, _ApiServer, install_stop_signals
from gateway.settings import Settings
from gateway.worker import frame, read_frame, worker_main
from gateway.worker_commands import Command, Outcome

log = logging.getLogger("tecmon.workers")

MIRROR_MAX_AGE_S = 0.2
RESTART_MIN_S, RESTART_MAX_S, STABLE_AFTER_S = 0.5, 30.0, 60.0
COMMAND_WAIT_S = 120.0
"""A command for a worker being restarted waits for it (its recovery included), then is applied."""


def default_workers(settings: Settings) -> int:
    """One per core with PostgreSQL; one with SQLite, whose single writer N workers would queue on,
    and one as an instance of a cluster (`ingest: nats`), whose unit of sharing is the partition."""
    if settings.ingest == "nats" or not settings.database_url.startswith("postgresql"):
        return 1
    return max(1, len(os.sched_getaffinity(0)))  # the cores this process may use, not the host's


@dataclass
class WorkerHandle:
    index: int
    process: multiprocessing.process.BaseProcess
    writer: asyncio.StreamWriter
    started: float = field(default_factory=time.monotonic)
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    connected: bool = False
    ready: bool = False


class Supervisor:
    """Starts N workers, keeps them running, calls them and hears what they push."""

    def __init__(self, settings: Settings, count: int,
                 on_push: Callable[[int, str, Any], None]) -> None:
        self.settings, self.count, self.on_push = settings, count, on_push
        self.handles: dict[int, WorkerHandle] = {}
        self.restarts = 0
        self.stopping = False
        self._ids = itertools.count()
        self._delays = {k: RESTART_MIN_S for k in range(count)}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for index in range(self.count):
            await self._start(index)

    async def _start(self, index: int) -> None:
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("spawn")
        process = context.Process(target=worker_main, name=f"tecmon-worker-{index}",
                                  args=(self.settings, index, self.count, theirs))
        process.start()
        theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        handle = WorkerHandle(index, process, writer)
        self.handles[index] = handle
        log.info("worker %d of %d running as pid %s", index, self.count, process.pid)
        self._spawn(self._listen(handle, reader))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self, handle: WorkerHandle, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await read_frame(reader)
                if message[0] == "reply":
                    future = handle.pending.pop(message[1], None)
                    if future is not None and not future.done():
                        if isinstance(message[2], Exception):
                            future.set_exception(message[2])
                        else:
                            future.set_result(message[2])
                else:
                    self.on_push(handle.index, message[1], message[2])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        for future in handle.pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"worker {handle.index} has gone"))
        await self._ended(handle)

    async def _ended(self, handle: WorkerHandle) -> None:
        await asyncio.get_running_loop().run_in_executor(None, handle.process.join)
        handle.writer.close()
        self.on_push(handle.index, "connected", False)
        if self.stopping:
            return
        index = handle.index
        if time.monotonic() - handle.started > STABLE_AFTER_S:
            self._delays[index] = RESTART_MIN_S
        delay = self._delays[index]
        self._delays[index] = min(delay * 2, RESTART_MAX_S)
        log.error("worker %d (pid %s) ended with exit code %s; restarting it in %.1fs: its homes are "
                  "rebuilt from the store and its MQTT session's queue", index, handle.process.pid,
                  handle.process.exitcode, delay)
        self.restarts += 1
        await asyncio.sleep(delay)
        if not self.stopping:
            await self._start(index)

    async def call(self, index: int, op: str, payload: object = None, timeout_s: float = 10.0,
                   wait_ready_s: float = 0.0) -> Any:
        """One call to worker `index`; with `wait_ready_s`, a worker being restarted is waited for."""
        handle = await self._ready(index, wait_ready_s)
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        handle.pending[call_id] = future
        handle.writer.write(frame(("call", call_id, op, payload)))
        try:
            return await asyncio.wait_for(future, timeout_s)
        finally:
            handle.pending.pop(call_id, None)

    async def _ready(self, index: int, wait_s: float) -> WorkerHandle:
        deadline = time.monotonic() + wait_s
        while True:
            handle = self.handles[index]
            if handle.ready and handle.process.is_alive() and not handle.writer.is_closing():
                return handle
            if time.monotonic() >= deadline or self.stopping:
                raise ConnectionError(f"worker {index} is not running")
            await asyncio.sleep(0.05)

    async def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to every worker (each stops as `tecmon serve` does), SIGKILL after the timeout."""
        self.stopping = True
        loop = asyncio.get_running_loop()
        for handle in self.handles.values():
            if handle.process.is_alive():
                handle.process.terminate()
        for handle in self.handles.values():
            await loop.run_in_executor(None, handle.process.join, timeout_s)
            if handle.process.is_alive():
                log.error("worker %d did not stop within %.0fs: killed", handle.index, timeout_s)
                handle.process.kill()
                await loop.run_in_executor(None, handle.process.join)
        for task in list(self._tasks):
            task.cancel()


class WorkerCommands:
    """A `CommandRouter` to the owning worker process, over the supervisor's channel."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    async def send(self, command: Command) -> Outcome:
        owner = partition_of(command.home, self.supervisor.count)
        outcome: Outcome = await self.supervisor.call(owner, "command", command, wait_ready_s=COMMAND_WAIT_S)
        return outcome


class RuntimeView(Runtime):
    """Every home's plan; its state as its worker last reported it. Runs no timer and sends nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.forward: Callable[[Command], None] | None = None  # set once the workers run

    def set_home(self, cfg: HomeConfig, start: bool = True) -> None:
        super().set_home(cfg, start=False)
        if self.forward is not None:  # as kept here: with the settings' service contacts, if it needed them
            self.forward(Command(cfg.home, config_json=self.homes[cfg.home].config_json))

    def remove_home(self, home: str) -> None:
        super().remove_home(home)
        if self.forward is not None:
            self.forward(Command(home, remove=True))

    def apply(self, home: str, inp: EngineInput) -> list[Decision]:
        """The engine's answer on this copy of the state, at once; the owner applies it for real."""
        current = self.homes.get(home)
        if current is None:
            raise KeyError(home)
        current.state, decisions = step(current.state, inp, self.clock.now())
        if self.forward is not None:
            self.forward(Command(home, input=inp))
        return decisions

    def _step(self, home: str, inp: EngineInput, now: datetime) -> list[Decision]:
        current = self.homes[home]
        current.state, decisions = step(current.state, inp, now)
        return decisions

    def reschedule(self, home: str) -> None:
        """No timers here: each worker fires its own homes' deadlines."""

    def receive(self, states: dict[str, HomeState]) -> None:
        for home, state in states.items():
            current = self.homes.get(home)
            if current is not None:
                state.plan = current.plan
                current.state = state


@dataclass
class ParentService(Service):
    """The API, the pages, the home files and the configuration history; the workers do the rest."""

    count: int = 2
    supervisor: Supervisor = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.supervisor = Supervisor(self.settings, self.count, self._on_push)
        self.commands = WorkerCommands(self.supervisor)
        self.worker_metrics: dict[int, bytes] = {}
        self.metrics.others = lambda: list(self.worker_metrics.values())
        self._pulled = -1.0
        self.app.middleware("http")(self._fresh_first)

    def _new_runtime(self) -> Runtime:
        s = self.settings
        return RuntimeView(self.clock, self.metrics, s.mqtt.prefix, s.service_contacts)

    def _on_push(self, index: int, kind: str, payload: Any) -> None:
        handles = self.supervisor.handles
        if kind == "line":
            self.history.append(payload)
            if self.dispatcher.on_line is not None:
                self.dispatcher.on_line(payload)
        elif kind == "connected" and index in handles:
            handles[index].connected = bool(payload)
        elif kind == "ready" and index in handles:
            handles[index].ready = True
            self._pulled = -1.0  # its rebuilt states: at the next request
        running = [handles.get(k) for k in range(self.count)]
        up = all(h is not None and h.connected for h in running)
        self._on_connection(up)
        self.api.ready["recovered"] = all(h is not None and h.ready for h in running)

    def _forward(self, command: Command) -> None:
        """From any thread (sync routes run on the thread pool): the owner applies it."""
        self._loop.call_soon_threadsafe(self._spawn_send, command)

    def _spawn_send(self, command: Command) -> None:
        self.supervisor._spawn(self._send(command))

    async def _send(self, command: Command) -> None:
        try:
            outcome = await self.commands.send(command)
        except Exception as exc:
            log.error("command for %s not applied by its worker: %s", command.home, exc)
            return
        if outcome.state is not None:
            assert isinstance(self.runtime, RuntimeView)
            self.runtime.receive({command.home: outcome.state})

    async def _fresh_first(self, request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        if time.monotonic() - self._pulled > MIRROR_MAX_AGE_S:
            await self.pull()
        return await call_next(request)

    async def pull(self) -> None:
        """Every worker's changed states, dead letters and metrics; a worker away keeps its last."""
        self._pulled = time.monotonic()
        view = self.runtime
        assert isinstance(view, RuntimeView)
        calls = [self.supervisor.call(k, "pull", timeout_s=5.0) for k in self.supervisor.handles]
        letters: list[Any] = []
        for index, answer in zip(list(self.supervisor.handles), await asyncio.gather(
                *calls, return_exceptions=True), strict=True):
            if isinstance(answer, BaseException):
                continue
            view.receive(answer["states"])
            self.worker_metrics[index] = answer["metrics"]
            if answer["dead_letters"] is not None:
                self._letters[index] = answer["dead_letters"]
        for index in sorted(self._letters):
            letters += self._letters[index]
        letters.sort(key=lambda r: r.received_at)
        view.dead_letters.clear()
        view.dead_letters.extend(letters)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._letters: dict[int, list[Any]] = {}
        with contextlib.suppress(Exception):
            await self.store.open()
        await self._load_from_store()  # nothing is forwarded yet: each worker loads its own at start
        self.apply_removed(*self.watcher.scan(lambda cfg: self.apply_home(cfg, starting=True)))
        log.info("%d homes loaded, shared by %d workers", len(self.runtime.homes), self.count)
        assert isinstance(self.runtime, RuntimeView)
        self.runtime.forward = self._forward
        await self.supervisor.start()
        api = self.settings.api
        self.api_server = _ApiServer(
            __import__("uvicorn").Config(self.app, host=api.host, port=api.port, log_level="warning",
                                         lifespan="off"))
        tasks = [
            asyncio.create_task(watch_homes(self.watcher, self.apply_home, self.apply_removed,
                                            self.settings.config_poll_s), name="home-files"),
            asyncio.create_task(self._keep_configs(), name="config-history"),
        ]
        api_task = asyncio.create_task(self.api_server.serve(), name="api")
        await stop.wait()
        self.supervisor.stopping = True  # a worker that stops on the same Ctrl-C is not restarted
        self.api_server.should_exit = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, api_task, return_exceptions=True)
        await self.supervisor.stop()
        await self.store.close()


async def serve_workers(settings: Settings, count: int) -> None:
    stop = asyncio.Event()
    install_stop_signals(stop)
    service = ParentService(settings, count=count)
    log.info("tecmon serving with %d workers: API http://%s:%s/", count, settings.api.host,
             settings.api.port)
    await service.run(stop)
