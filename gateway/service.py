"""`tecmon serve`: MQTT ingest, the runtime, notifications, the API, and a clean stop.

Each part runs as its own task; the safety path (message -> engine ->
outbox) never waits for the notifier, the API or storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import uvicorn

from alerts.homeconfig import ConfigError, HomeConfig
from alerts.notify import Notifier
from gateway.accounts import Accounts
from gateway.ack_links import AckLinks
from gateway.api import create_app
from gateway.api.context import ApiContext
from gateway.clock import Clock, ScaledClock, SystemClock
from gateway.dispatch import Dispatcher
from gateway.home_admin import HomeAdmin
from gateway.homes import HomeWatcher, watch_homes
from gateway.metrics import Metrics
from gateway.mqtt import Inbound, MqttSource
from gateway.recovery import RecoveryReport, recover
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.snapshots import SnapshotTaker, engine_version
from gateway.store import StoreUnavailable, open_store
from gateway.store.config_sources import ConfigToSave
from gateway.store.writer import BufferedWriter, run_retention
from gateway.web.pages import live

if TYPE_CHECKING:
    from gateway.cluster import ClusterMember

log = logging.getLogger("tecmon.service")

CONFIG_BATCH = 1000  # home configurations saved per transaction


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
    settle_gc: bool = False  # a whole process of its own (tecmon serve): tune the collector for it
    serve_api: bool = True  # False in a worker of `tecmon serve --workers N`: the parent serves it

    def __post_init__(self) -> None:
        self.runtime = self._new_runtime()
        self.history: deque[dict[str, Any]] = deque(maxlen=5000)
        self.mqtt_state = {"connected": False}
        self.notifier = Notifier(self.settings.notify, clock=self.clock.now, metrics=self.metrics)
        self.dispatcher = Dispatcher(
            self.runtime, self.notifier, self.metrics, self.clock, self.history, self.on_line
        )
        self.store = open_store(
            self.settings.database_url, event_retention_days=self.settings.event_retention_days
        )
        self.writer = BufferedWriter(
            self.store,
            self.metrics,
            capacity=self.settings.store_buffer,
            flush_every_s=self.settings.store_flush_s,
        )
        self.runtime.recorder = self.writer
        self.dispatcher.recorder = self.writer
        self.recovery: RecoveryReport | None = None
        self.snapshots = SnapshotTaker(self.runtime, self.store, self.clock, self.writer)
        self._configs_to_keep: asyncio.Queue[tuple[HomeConfig, str, datetime, str | None]] = asyncio.Queue()
        self._recorded_sources: dict[str, str] = {}  # at start: each home file's latest saved source
        self.watcher = HomeWatcher(list(self.settings.homes), bool(self.settings.service_contacts))
        self.accounts = Accounts(self.store, self.settings.auth, self.clock.now)
        self.dispatcher.link_for = AckLinks(
            self.accounts, self.settings.public_url, self.settings.auth.ack_link_minutes
        ).link
        self.home_admin = HomeAdmin(self.runtime, self.store, self.clock.now, self.watcher.file_of)
        self.api = ApiContext(
            settings=self.settings, runtime=self.runtime, store=self.store, accounts=self.accounts,
            homes=self.home_admin, metrics=self.metrics, clock=self.clock, history=self.history,
            mqtt_state=self.mqtt_state, store_up=lambda: self.writer.store_up,
        )
        self.app = create_app(self.api)
        self.dispatcher.on_line = live.feed(self.app, self.on_line)  # open pages hear each step
        self.api_server: _ApiServer | None = None
        self.events_ingested = 0
        self.mqtt = self._new_mqtt()
        self.runtime.on_urgent_topics = self.mqtt.set_urgent  # buttons and exits: the urgent session
        self.dispatcher.publish = self.mqtt.publish  # asking the person: blink their light
        self.failure: str | None = None  # why a part of the service ended before the stop
        self.cluster: ClusterMember | None = None
        if self.settings.ingest == "nats":  # one instance among several: see gateway/cluster.py
            from gateway.cluster import ClusterMember

            self.cluster = ClusterMember(self)

    def _new_runtime(self) -> Runtime:
        """Every home this process runs (a worker's share of them: `gateway.workers`)."""
        return Runtime(self.clock, self.metrics, self.settings.mqtt.prefix, self.settings.service_contacts)

    def _new_mqtt(self) -> MqttSource:
        return MqttSource(self.settings.mqtt, self.clock, self._on_connection)

    def apply_home(self, cfg: HomeConfig, starting: bool = False) -> None:
        if self.cluster is not None and not self.cluster.accept(cfg):
            return  # another instance runs it; kept for when this one takes its partition
        path = self.watcher.file_of(cfg.home)
        if path is not None and self.home_admin.refuses_file(cfg, path):
            self.metrics.config_errors.inc()
            return
        known = cfg.home in self.runtime.homes
        self.runtime.set_home(cfg, start=not starting)
        log.debug("home %s %s", cfg.home, "reloaded" if known else "loaded")
        if known:
            log.info("home %s reloaded: its new routine applies now", cfg.home)
        self._keep_config(cfg, "loaded at start" if starting else "home file changed")

    def apply_removed(self, removed: list[str], errors: list[ConfigError]) -> None:
        for home in removed:
            if home in self.home_admin.managed:
                continue  # its file had been refused: the database defines it
            self.runtime.remove_home(home)
            log.info("home %s removed (its file is gone)", home)
        for error in errors:
            self.metrics.config_errors.inc()
            log.error(
                "home file %s refused, keeping the last good version: %s",
                error.source,
                "; ".join(error.problems),
            )

    def _keep_config(self, cfg: HomeConfig, why: str) -> None:
        """Every version of a home's routine goes into the audit history (only when it changed).

        A file whose bytes are what the home's latest version was read from is
        not saved again (at start: compared with one query's answer, see `_load`).
        Queued, not saved here: at start 100,000 homes must not become 100,000
        concurrent tasks and transactions; one task saves them a batch at a time,
        once ingest has started (the configuration is written out there too).
        """
        source = self.watcher.source_of(cfg.home)
        if source is not None and self._recorded_sources.get(cfg.home) == source:
            return
        self._configs_to_keep.put_nowait((cfg, why, self.clock.now(), source))

    async def _keep_configs(self) -> None:
        queue = self._configs_to_keep
        while True:
            queued = [await queue.get()]
            while len(queued) < CONFIG_BATCH and not queue.empty():
                queued.append(queue.get_nowait())
            try:
                await self._save_configs([ConfigToSave(cfg.home, cfg.model_dump(mode="json", by_alias=True),
                                                       "home file", why, at, source)
                                          for cfg, why, at, source in queued])
            finally:
                for _ in queued:
                    queue.task_done()

    async def _save_configs(self, batch: list[ConfigToSave]) -> None:
        try:
            await self.store.save_home_configs(batch)
            return
        except StoreUnavailable as exc:  # the database may be away; the routines still apply
            log.warning("could not record the configuration of %d homes: %s", len(batch), exc)
            return
        except Exception:  # a version saved meanwhile by someone else: one home at a time
            log.debug("configuration batch refused; saving its %d homes one at a time", len(batch))
        for item in batch:
            try:
                await self.store.save_home_config(item.home, item.config, item.by, item.why, item.at)
            except Exception as exc:
                log.warning("could not record configuration of %s: %s", item.home, exc)

    async def _load(self) -> None:
        """The database's homes, then every home file, compared with the history in one query.

        In a process of its own the collector stays off from here until start-up is done
        (`_settle_garbage_collector`): switched back on in between, its first pass would walk
        every object loaded so far (1.7 s with 100,000 homes), only to find nothing to free.
        """
        if self.settle_gc:
            gc.disable()
        await self._load_from_store()
        try:
            self._recorded_sources = await self.store.config_sources()
        except StoreUnavailable:
            self._recorded_sources = {}
        self.apply_removed(*self.watcher.scan(lambda cfg: self.apply_home(cfg, starting=True)))
        self._recorded_sources = {}  # from now on a file is applied (and saved) only when it changed
        log.info("%d homes loaded", len(self.runtime.homes))

    async def _load_from_store(self) -> None:
        """The signing key and the database-managed homes; without a database, a key for this run."""
        try:
            await self.accounts.start()
            loaded = await self.home_admin.load()
        except StoreUnavailable as exc:
            log.error("database unavailable at start (%s): homes managed in it are not loaded; "
                      "sign-in tokens last only until a restart", exc)
            self.accounts.use_ephemeral_key()
            return
        if loaded:
            log.info("%d homes loaded from the database", loaded)

    async def _recover(self) -> None:
        """Rebuild state from the record; without a database, start fresh and say so."""
        if self.cluster is not None:
            return  # each partition is rebuilt when this instance takes it
        window = timedelta(hours=self.settings.recovery_window_h)
        try:
            if not self.store.is_open:
                raise StoreUnavailable("not reachable at start")
            engine = engine_version() if self.settings.snapshot_every_s > 0 else None
            self.recovery = await recover(self.runtime, self.store, self.clock.now(), window, engine)
        except StoreUnavailable as exc:
            log.error(
                "database unavailable at start (%s): starting without history; "
                "events are buffered until it returns",
                exc,
            )
            self.runtime.start_all()
            return
        report = self.recovery
        log.info(
            "rebuilt %d homes (%d from snapshots, %d snapshots ignored) from %d events and %d inputs "
            "in %.2fs; %d late steps",
            report.homes,
            report.from_snapshot,
            report.snapshots_ignored,
            report.events,
            report.inputs,
            report.seconds,
            report.late,
        )
        for item in report.pending:
            self.runtime.outbox.put_nowait(item)

    def _on_connection(self, up: bool) -> None:
        self.mqtt_state["connected"] = up
        self.metrics.mqtt_connected.set(1 if up else 0)

    async def _ingest(self) -> None:
        """Both MQTT sessions into the runtime: presses and exits first, bulk in bounded slices;
        or, as one instance among several, the partitions this one holds."""
        if self.cluster is not None:
            await self.cluster.run()
            return
        await self.mqtt.run(self._apply_message)

    def _apply_message(self, message: Inbound) -> None:
        self.events_ingested += self.runtime.ingest(message)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then stop every part and let sends in flight finish."""
        with contextlib.suppress(StoreUnavailable):  # without it alerts still go out; see _recover
            await self.store.open()
        await self._load()
        await self.notifier.warm_up()
        await self._recover()
        self.api.ready["recovered"] = True
        if self.settle_gc:
            _settle_garbage_collector()
        if not self.runtime.homes and self.cluster is None:  # a cluster member takes homes later
            log.warning("no homes loaded from %s", ", ".join(map(str, self.settings.homes)))
        api = self.settings.api
        self.api_server = _ApiServer(
            uvicorn.Config(self.app, host=api.host, port=api.port, log_level="warning", lifespan="off")
        )
        tasks = [
            asyncio.create_task(self._ingest(), name="ingest"),
            asyncio.create_task(self.runtime.run_timers(), name="timers"),
            asyncio.create_task(self.dispatcher.run(), name="dispatch"),
            asyncio.create_task(
                watch_homes(self.watcher, self.apply_home, self.apply_removed, self.settings.config_poll_s),
                name="home-files",
            ),
            asyncio.create_task(self.writer.run(), name="store-writer"),
            asyncio.create_task(self._keep_configs(), name="config-history"),
            asyncio.create_task(
                run_retention(
                    self.store,
                    events_days=self.settings.event_retention_days,
                    alerts_days=self.settings.alert_retention_days,
                    now=self.clock.now,
                ),
                name="retention",
            ),
        ]
        if self.settings.snapshot_every_s > 0:
            tasks.insert(0, asyncio.create_task(self.snapshots.run(self.settings.snapshot_every_s),
                                                name="snapshots"))
        if self.serve_api:
            tasks.append(asyncio.create_task(self.api_server.serve(), name="api"))
        for task in tasks:
            task.add_done_callback(lambda ended: self._part_ended(ended, stop))
        await stop.wait()
        self.api_server.should_exit = True
        for task in tasks:
            if task.get_name() != "api":
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.dispatcher.drain(timeout=self.settings.notify.timeout_s)
        self.notifier.close()
        if not await self.writer.flush(timeout_s=10.0):
            log.error("stopping with %d records not yet stored", self.writer.buffered)
        elif self.settings.snapshot_every_s > 0 and self.cluster is None:  # a member snapshots as it leaves
            await self._last_snapshots()
        await self.store.close()

    def _part_ended(self, task: asyncio.Task[Any], stop: asyncio.Event) -> None:
        """Every part runs until the stop: one that ends early leaves homes unwatched, so the
        service stops and says why (its supervisor restarts it) instead of running on without it."""
        if stop.is_set() or task.cancelled():
            return
        error = task.exception()
        self.failure = f"{task.get_name()} ended: {error!r}" if error else f"{task.get_name()} ended"
        log.critical("stopping: %s", self.failure, exc_info=error)
        stop.set()

    async def _last_snapshots(self) -> None:
        """At a clean stop every home's state is snapshotted: the next start replays almost nothing."""
        try:
            report = await self.snapshots.take()
        except StoreUnavailable as exc:
            log.warning("no snapshots at stop: %s", exc)
            return
        log.info("snapshots at stop: %d written, %d unchanged", report.written, report.confirmed)


def _settle_garbage_collector() -> None:
    """Homes, plans and rebuilt states live as long as the service: move them out of the
    collector's sight and collect less often, so full collections (0.2-0.35 s each with
    10,000 homes) stop stalling the event loop while messages stream in. No full collection
    first: a start leaves no garbage in cycles (one found none among 1.6 M objects with
    100,000 homes, and took 1.1 s to say so, while every home waited)."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    gc.enable()  # off since `Service._load`


def clock_for(settings: Settings) -> Clock:
    """The wall clock; the soak test's simulated clock only when `test_clock` is set."""
    test = settings.test_clock
    if test is None:
        return SystemClock()
    log.warning("TEST CLOCK: simulated time from %s at %.0fx; not for deployments", test.origin, test.speed)
    return ScaledClock(test.origin, test.anchor, test.speed)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    install_stop_signals(stop)
    service = Service(settings, clock=clock_for(settings), settle_gc=True)
    log.info(
        "tecmon serving: API http://%s:%s/  metrics http://%s:%s/metrics",
        settings.api.host,
        settings.api.port,
        settings.api.host,
        settings.api.port,
    )
    await service.run(stop)
    exit_if_failed(service)


def exit_if_failed(service: Service) -> None:
    """A service stopped by a failed part exits non-zero, so systemd or compose restarts it."""
    if service.failure is not None:
        raise SystemExit(f"tecmon stopped: {service.failure}")
