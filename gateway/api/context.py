"""What the routes work with: the running service's parts, handed over once at start."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from gateway.accounts import Accounts
from gateway.clock import Clock
from gateway.home_admin import HomeAdmin
from gateway.metrics import Metrics
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.store.base import Store

if TYPE_CHECKING:
    from gateway.commands import CommandRouter


@dataclass
class ApiContext:
    settings: Settings
    runtime: Runtime
    store: Store
    accounts: Accounts
    homes: HomeAdmin
    metrics: Metrics
    clock: Clock
    history: deque[dict[str, Any]]
    mqtt_state: dict[str, bool]
    ready: dict[str, bool] = field(default_factory=lambda: {"recovered": False})
    store_up: Callable[[], bool] = lambda: True  # whether the last write reached the database
    commands: CommandRouter | None = None  # set when another process may own the home (ingest: nats)


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx
