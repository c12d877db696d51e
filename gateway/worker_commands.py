"""Commands: changes to a home's live state that only the runtime owning the home applies.

An acknowledgement, a carer's resolution, company mode, and a home's new or
removed configuration must reach the one engine that runs the home: in this
process (`tecmon serve`, one worker), in a worker process of
`tecmon serve --workers N` (`gateway.workers`), or in the gateway instance that
holds the home's partition (NATS). Whoever receives the command (the API)
hands it to a `CommandRouter` and gets back what the owner's engine decided;
`LocalCommands` is the in-process router, and `apply_command` is what every
owner runs on receipt, so all of them apply a command the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from alerts.decisions import Decision
from alerts.events import EngineInput
from alerts.homeconfig import HomeConfig
from alerts.state import HomeState
from gateway.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Command:
    """One change for one home: an engine input, a new configuration, or the home's removal."""

    home: str
    input: EngineInput | None = None  # Acknowledge, ResolveAlert, SetCompany
    config_json: str | None = None  # the home's configuration (HomeConfig JSON), to load or apply
    remove: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the owner did: the engine's decisions, and the home's state afterwards (None: no home)."""

    decisions: tuple[Decision, ...] = ()
    state: HomeState | None = None
    added: bool = False  # the configuration made a home new to this owner


class CommandRouter(Protocol):
    """Gets a command to the home's owner; raises KeyError when no owner runs that home."""

    async def send(self, command: Command) -> Outcome: ...


def apply_command(runtime: Runtime, command: Command) -> Outcome:
    """Apply a command to the runtime that owns the home (an input is recorded by `Runtime.apply`)."""
    home = command.home
    if command.remove:
        runtime.remove_home(home)
        return Outcome()
    if command.config_json is not None:
        added = home not in runtime.homes
        runtime.set_home(HomeConfig.model_validate_json(command.config_json))
        current = runtime.homes.get(home)
        return Outcome(state=current.state if current else None, added=added and current is not None)
    if command.input is None:
        raise ValueError("a command carries an input, a configuration or a removal")
    decisions = runtime.apply(home, command.input)
    return Outcome(tuple(decisions), runtime.homes[home].state)


class LocalCommands:
    """The owner is this process's own runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def send(self, command: Command) -> Outcome:
        return apply_command(self.runtime, command)
