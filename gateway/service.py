"""`tecmon serve`: MQTT ingest, the runtime, notifications, the API, and a clean stop.

Each part runs as its own task; the safety path (message -> engine ->
outbox) never waits for the notifier, the API or storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from alerts.homeconfig import ConfigError, HomeConfig
from alerts.notify import Notifier
from gateway.api import create_app
from gateway.clock import Clock, SystemClock
from gateway.dispatch import Dispatcher
from gateway.homes import HomeWatcher, watch_homes
from gateway.metrics import Metrics
from gateway.mqtt import MqttSource
from gateway.runtime import Runtime
from gateway.settings import Settings

log = logging.getLogger("tecmon.service")


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class Service:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    on_line: Callable[[dict[str, Any]], None] | None = None
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        self.runtime = Runtime(
            self.clock, self.metrics, self.settings.mqtt.prefix, self.settings.service_contacts
        )
        self.history: deque[dict[str, Any]] = deque(maxlen=5000)
        self.mqtt_state = {"connected": False}
        self.notifier = Notifier(self.settings.notify, clock=self.clock.now, metrics=self.metrics)
        self.dispatcher = Dispatcher(
            self.runtime, self.notifier, self.metrics, self.clock, self.history, self.on_line
        )
        self.watcher = HomeWatcher(list(self.settings.homes))
        self.app = create_app(self.runtime, self.metrics, self.history, self.mqtt_state)
        self.api_server: _ApiServer | None = None
        self.events_ingested = 0

    def apply_homes(self, changed: list[HomeConfig], removed: list[str], errors: list[ConfigError]) -> None:
        for cfg in changed:
            known = cfg.home in self.runtime.homes
            self.runtime.set_home(cfg)
            log.info("home %s %s", cfg.home, "reloaded" if known else "loaded")
        for home in removed:
            self.runtime.remove_home(home)
            log.info("home %s removed (its file is gone)", home)
        for error in errors:
            self.metrics.config_errors.inc()
            log.error(
                "home file %s refused, keeping the last good version: %s",
                error.source,
                "; ".join(error.problems),
            )

    def _on_connection(self, up: bool) -> None:
        self.mqtt_state["connected"] = up
        self.metrics.mqtt_connected.set(1 if up else 0)

    async def _ingest(self) -> None:
        source = MqttSource(self.settings.mqtt, self.clock, self._on_connection)
        async for message in source.messages():
            self.events_ingested += self.runtime.ingest(message)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then stop every part and let sends in flight finish."""
        self.apply_homes(*self.watcher.scan())
        await self.notifier.warm_up()
        if not self.runtime.homes:
            log.warning("no homes loaded from %s", ", ".join(map(str, self.settings.homes)))
        api = self.settings.api
        self.api_server = _ApiServer(
            uvicorn.Config(self.app, host=api.host, port=api.port, log_level="warning", lifespan="off")
        )
        tasks = [
            asyncio.create_task(self._ingest(), name="mqtt-ingest"),
            asyncio.create_task(self.runtime.run_timers(), name="timers"),
            asyncio.create_task(self.dispatcher.run(), name="dispatch"),
            asyncio.create_task(
                watch_homes(self.watcher, self.apply_homes, self.settings.config_poll_s), name="home-files"
            ),
            asyncio.create_task(self.api_server.serve(), name="api"),
        ]
        await stop.wait()
        self.api_server.should_exit = True
        for task in tasks[:-1]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.dispatcher.drain(timeout=self.settings.notify.timeout_s)
        self.notifier.close()


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    install_stop_signals(stop)
    service = Service(settings)
    log.info(
        "tecmon serving: API http://%s:%s/  metrics http://%s:%s/metrics",
        settings.api.host,
        settings.api.port,
        settings.api.host,
        settings.api.port,
    )
    await service.run(stop)
