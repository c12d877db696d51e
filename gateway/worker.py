"""One worker of `tecmon serve --workers N`: a share of the homes, run as `tecmon serve` runs all.

Worker k of N owns the homes with `partition_of(home, N) == k`. It is a
`Service` of its own: its MQTT session (client id `<client_id>-w<k>of<N>`,
persistent, so messages for its homes wait in the broker while it restarts),
subscribed to exactly its homes' topics; its deadline heap, dispatcher and
notifier; its store writer; start-up recovery of its homes from the shared
store. It reads the home files once, at start; the parent watches them
after that and sends each change to the owner. It serves no API: the
parent does, and talks to it over a socket pair (`Link`): the parent asks
for the states changed since it last asked and sends commands
(`gateway.worker_commands`); the worker tells the parent each lifecycle line, its
MQTT connection and when it has recovered.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ctypes
import ctypes.util
import logging
import pickle
import signal
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from alerts.decisions import Decision
from alerts.events import EngineInput
from alerts.homeconfig import HomeConfig
from alerts.state import HomeState
from gateway.mqtt import MqttSource
from gateway.partitions import partition_of
from gateway.runtime import Runtime
from gateway.service import Service, exit_if_failed, install_stop_signals
from gateway.settings import MqttSettings, Settings
from gateway.worker_commands import Command, Outcome, apply_command

log = logging.getLogger("tecmon.worker")
PR_SET_PDEATHSIG = 1
FILES_WATCHED_BY_PARENT_S = 365 * 86400.0


# -- the channel: length-prefixed pickles between a parent and the children it started ----


def frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(4, "big") + data


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next message; IncompleteReadError when the other side has gone."""
    size = int.from_bytes(await reader.readexactly(4), "big")
    return pickle.loads(await reader.readexactly(size))  # from our own child or parent only


def portable(state: HomeState) -> HomeState:
    """A state to send without its plan (the parent has the plan; it is most of the bytes)."""
    shallow = copy.copy(state)
    cast(Any, shallow).plan = None
    return shallow


# -- the worker's share of the homes ----------------------------------------------------------


class PartitionRuntime(Runtime):
    """A runtime that loads only its partition's homes and notes which homes changed."""

    def __init__(self, *args: Any, index: int, count: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.index, self.count = index, count
        self.dirty: set[str] = set()

    def owns(self, home: str) -> bool:
        return partition_of(home, self.count) == self.index

    def set_home(self, cfg: HomeConfig, start: bool = True) -> None:
        if self.owns(cfg.home):
            super().set_home(cfg, start)
            self.dirty.add(cfg.home)

    def remove_home(self, home: str) -> None:
        super().remove_home(home)
        self.dirty.add(home)

    def _step(self, home: str, inp: EngineInput, now: datetime) -> list[Decision]:
        self.dirty.add(home)
        return super()._step(home, inp, now)


def worker_mqtt(settings: MqttSettings, index: int, count: int) -> MqttSettings:
    """A session of its own per worker; the same id after a restart, so its queue is waiting."""
    return settings.model_copy(update={"client_id": f"{settings.client_id}-w{index}of{count}"})


@dataclass
class WorkerService(Service):
    index: int = 0
    count: int = 1
    link: Link | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.serve_api = False
        # The home files are read here once, at start; after that the parent watches them and
        # sends each change to its owner, so N workers do not all poll every file.
        self.settings = self.settings.model_copy(update={"config_poll_s": FILES_WATCHED_BY_PARENT_S})
        super().__post_init__()

    def _new_runtime(self) -> Runtime:
        s = self.settings
        return PartitionRuntime(self.clock, self.metrics, s.mqtt.prefix, s.service_contacts,
                                index=self.index, count=self.count)

    def _new_mqtt(self) -> MqttSource:
        mqtt = worker_mqtt(self.settings.mqtt, self.index, self.count)
        return MqttSource(mqtt, self.clock, self._on_connection, homes=lambda: list(self.runtime.homes))

    def _keep_config(self, cfg: HomeConfig, why: str) -> None:
        """The parent keeps every home's configuration history; a worker would only repeat it."""

    def _on_connection(self, up: bool) -> None:
        super()._on_connection(up)
        if self.link is not None:
            self.link.push("connected", up)


class Link:
    """The worker's end of the channel: answers the parent's calls, tells it what happened."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.service: WorkerService | None = None
        self._dead_letters_seen: object = None

    def push(self, kind: str, payload: object) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame(("push", kind, payload)))

    def on_line(self, line: dict[str, Any]) -> None:
        self.push("line", line)

    async def serve(self, reader: asyncio.StreamReader, stop: asyncio.Event) -> None:
        """Until the parent goes away (then this worker stops too: it is nobody's any more)."""
        try:
            while True:
                _, call_id, op, payload = await read_frame(reader)
                try:
                    result: object = await self._answer(op, payload)
                except Exception as exc:  # the parent gets the error; the worker carries on
                    result = exc
                self.writer.write(frame(("reply", call_id, result)))
        except (asyncio.IncompleteReadError, ConnectionError):
            log.error("the parent process has gone: stopping")
            stop.set()

    async def _answer(self, op: str, payload: Any) -> object:
        service = self.service
        assert service is not None
        if op == "pull":
            return self.pull(service)
        if op == "command":
            return await self.command(service, payload)
        raise ValueError(f"unknown call {op!r}")

    def pull(self, service: WorkerService) -> dict[str, Any]:
        runtime = cast(PartitionRuntime, service.runtime)
        changed, runtime.dirty = runtime.dirty, set()
        states = {h: portable(runtime.homes[h].state) for h in changed if h in runtime.homes}
        newest = runtime.dead_letters[-1] if runtime.dead_letters else None
        letters = None
        if newest is not self._dead_letters_seen:
            letters, self._dead_letters_seen = list(runtime.dead_letters), newest
        return {"states": states, "gone": [h for h in changed if h not in runtime.homes],
                "dead_letters": letters, "metrics": service.metrics.render(),
                "connected": service.mqtt.connected}

    async def command(self, service: WorkerService, command: Command) -> Outcome:
        outcome = apply_command(service.runtime, command)
        if outcome.added:
            await service.mqtt.follow_homes([command.home], [])
        elif command.remove:
            await service.mqtt.follow_homes([], [command.home])
        state = portable(outcome.state) if outcome.state is not None else None
        return Outcome(outcome.decisions, state, outcome.added)


async def run_worker(settings: Settings, index: int, count: int, sock: socket.socket) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    stop = asyncio.Event()
    install_stop_signals(stop)
    link = Link(writer)
    service = WorkerService(settings, on_line=link.on_line, settle_gc=True, index=index, count=count,
                            link=link)
    link.service = service
    running = asyncio.create_task(service.run(stop), name="service")
    serving = asyncio.create_task(link.serve(reader, stop), name="parent-link")
    while not service.api.ready["recovered"] and not running.done():
        await asyncio.sleep(0.05)
    link.push("ready", len(service.runtime.homes))
    await running
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    writer.close()
    exit_if_failed(service)


def _die_with_parent() -> None:
    """A parent killed outright takes its workers with it: no orphan keeps a session or a home."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def worker_main(settings: Settings, index: int, count: int, sock: socket.socket) -> None:
    """The worker process's entry point (started by `gateway.workers.Supervisor`)."""
    _die_with_parent()
    logging.basicConfig(level=settings.log_level,
                        format=f"%(asctime)s %(levelname)s worker {index}: %(name)s: %(message)s")
    asyncio.run(run_worker(settings, index, count, sock))
