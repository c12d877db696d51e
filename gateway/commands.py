"""Commands reach the owner: an acknowledgement, resolution or company mode is applied where the home runs.

One small interface, `CommandRouter`, for every shape of the service: on
one box the runtime applies a command at once (`LocalCommands`); with
`ingest: nats` the instance that holds the home's partition does, reached
by NATS request/reply on `tecmon.cmd.<partition>` (`ClusterCommands`); a
local multi-process mode (`tecmon serve --workers N`) routes the same
`Command` to the worker that owns the partition. A command is answered only
once it has been applied and, in a cluster, stored under the owner's lease.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

from alerts import care
from alerts.events import Acknowledge, ResolveAlert, SetCompany
from alerts.homeconfig import HomeConfig
from alerts.lifecycle import home_of
from gateway.nats import NatsLink
from gateway.runtime import Runtime

COMMAND_ROOT = "tecmon.cmd"
Outcome = Literal["applied", "not_open", "unknown_home", "no_owner", "fenced"]
Input = Acknowledge | ResolveAlert | SetCompany


@dataclass(frozen=True, slots=True)
class Command:
    """What a person asked, addressed to a home; plain data so it can cross a process boundary."""

    home: str
    kind: Literal["ack", "resolve", "company", "config", "remove"]
    by: str
    alert: str = ""
    outcome: str = ""
    on: bool = False
    config: str = ""  # for `config`: the home's new configuration, as JSON

    @classmethod
    def of(cls, inp: Input, home: str | None = None) -> Command:
        if isinstance(inp, Acknowledge):
            return cls(home_of(inp.alert), "ack", inp.by, inp.alert)
        if isinstance(inp, ResolveAlert):
            return cls(home_of(inp.alert), "resolve", inp.by, inp.alert, inp.outcome)
        if home is None:
            raise ValueError("a company command needs its home")
        return cls(home, "company", inp.by, on=inp.on)

    def to_input(self) -> Input:
        if self.kind in ("config", "remove"):
            raise ValueError(f"a {self.kind} command is not an engine input")
        if self.kind == "ack":
            return Acknowledge(self.alert, self.by)
        if self.kind == "resolve":
            return ResolveAlert(self.alert, self.by, self.outcome)
        return SetCompany(self.on, self.by)


@dataclass(frozen=True, slots=True)
class Applied:
    """The owner's answer. `until` (company commands): when company mode ends by itself, ISO UTC,
    empty when it is off; it is the owner's state, so the asking instance answers with it."""

    outcome: Outcome
    steps: tuple[str, ...] = ()
    until: str = ""

    def encode(self) -> bytes:
        return json.dumps({"outcome": self.outcome, "steps": list(self.steps), "until": self.until}).encode()

    @classmethod
    def decode(cls, data: bytes) -> Applied:
        loaded = json.loads(data)
        return cls(loaded.get("outcome", "no_owner"), tuple(loaded.get("steps", ())), loaded.get("until", ""))


class CommandRouter(Protocol):
    async def apply(self, command: Command) -> Applied: ...


class LocalCommands:
    """The runtime in this process applies it (one box, or the owner in a cluster)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def apply(self, command: Command) -> Applied:
        if command.kind == "config":  # a new or changed home: its state, if any, is kept
            self.runtime.set_home(HomeConfig.model_validate_json(command.config))
            return Applied("applied")
        if command.kind == "remove":
            self.runtime.remove_home(command.home)
            return Applied("applied")
        if command.home not in self.runtime.homes:
            return Applied("unknown_home")
        if command.kind != "company" and self.runtime.find_alert_home(command.alert) is None:
            return Applied("not_open")
        decisions = self.runtime.apply(command.home, command.to_input())
        steps = tuple(d.step for d in decisions)
        if command.kind == "company":
            return Applied("applied", steps, company_until(self.runtime, command.home))
        return Applied("applied", steps)


class ClusterCommands:
    """Applied here when this instance owns the home, else by its owner over NATS."""

    def __init__(self, link: NatsLink, partition_of: Callable[[str], int], owns: Callable[[int], bool],
                 local: CommandRouter, stored: Callable[[int], Awaitable[bool]], timeout_s: float) -> None:
        self.link, self.partition_of, self.owns = link, partition_of, owns
        self.local, self.stored, self.timeout_s = local, stored, timeout_s
        self._serving: dict[int, Callable[[], Awaitable[None]]] = {}

    async def apply(self, command: Command) -> Applied:
        partition = self.partition_of(command.home)
        deadline = time.monotonic() + self.timeout_s
        while True:
            if self.owns(partition):
                return await self._apply_here(partition, command)
            reply = await self.link.request(subject(partition), json.dumps(asdict(command)).encode(),
                                            max(0.1, deadline - time.monotonic()))
            if reply.ok:
                return Applied.decode(reply.data)
            if time.monotonic() >= deadline:  # nobody owns it yet (a takeover under way)
                return Applied("no_owner")
            await asyncio.sleep(0.2)

    async def _apply_here(self, partition: int, command: Command) -> Applied:
        applied = await self.local.apply(command)
        if applied.outcome == "applied" and not await self.stored(partition):
            return Applied("fenced")  # lost the lease meanwhile: the new owner has not heard of it
        return applied

    async def serve(self, partition: int) -> None:
        """Answer the partition's commands (when this instance takes it)."""

        async def handle(data: bytes) -> bytes:
            command = Command(**json.loads(data))
            if not self.owns(partition):
                return Applied("fenced").encode()
            return (await self._apply_here(partition, command)).encode()

        self._serving[partition] = await self.link.serve(subject(partition), handle)

    async def stop(self, partition: int) -> None:
        stop = self._serving.pop(partition, None)
        if stop is not None:
            await stop()


def company_until(runtime: Runtime, home: str) -> str:
    """When the home's company mode ends by itself (ISO, UTC), or "" when it is off now."""
    state = runtime.homes[home].state
    if not care.company_on(state, runtime.clock.now()) or state.company_until is None:
        return ""
    return state.company_until.isoformat()


def subject(partition: int) -> str:
    return f"{COMMAND_ROOT}.{partition}"
