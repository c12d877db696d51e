"""When the first contact's phone service is down, slow or failing: bounded retries, the next contact at once.

The whole chain as `tecmon serve` runs it, without MQTT: a help-button press goes
through `Runtime.ingest`, the engine raises and calls Sam, the `Dispatcher` sends
through the real `Notifier` and apprise to a local HTTP endpoint that is down,
never answers within the timeout, or answers 500. Sam's channel is tried
`retries + 1` times; then the engine is told nobody was reached and calls the
Night responder straight away, not after `ack_within`. The alert's record (the
step and attempt rows the store is given) shows every failed attempt for Sam,
each with its error. The Night responder (the sink `phone` of tests/conftest.py)
answers 200, and is told, as the record says, that Sam could not be reached.

The same, for many homes at once, with plugin calls that never return: no
hung service holds up another home's alert (see the section further down).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import apprise
import apprise.decorators
import pytest

from alerts.homeconfig import parse_home_config
from alerts.notify import Notifier
from gateway.clock import SystemClock
from gateway.dispatch import Dispatcher
from gateway.metrics import Metrics
from gateway.mqtt import Inbound
from gateway.runtime import Runtime
from gateway.settings import NotifySettings
from gateway.store.base import AttemptRow, StepRow
from tests.conftest import Phone, eventually, free_port

pytestmark = pytest.mark.integration
RETRIES = 2
TIMEOUT_S = 1.0
ACK_WITHIN = timedelta(minutes=10)
WAIT_S = 30.0  # generous: only catches "waited for ever"; nothing here asserts on timing


@dataclass
class Endpoint:
    """Sam's phone service: answers `status`, or holds every request until released."""

    port: int
    status: int = 500
    hang: bool = False
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def serve(endpoint: Endpoint) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            endpoint.requests.append(self.path)
            if endpoint.hang:
                endpoint.release.wait(WAIT_S)
                return
            self.send_response(endpoint.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads `requests`."""

    server = ThreadingHTTPServer(("127.0.0.1", endpoint.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Record:
    """The rows the dispatcher hands to the store: the alert's steps and notification attempts."""

    steps: list[StepRow] = field(default_factory=list)
    attempts: list[AttemptRow] = field(default_factory=list)

    def add_step(self, row: StepRow) -> bool:
        self.steps.append(row)
        return True

    def add_attempt(self, row: AttemptRow) -> bool:
        self.attempts.append(row)
        return True

    def step(self, name: str) -> StepRow | None:
        return next((s for s in self.steps if s.step == name), None)


def home(sam_url: str, night_url: str) -> dict[str, Any]:
    return {
        "home": "julie", "timezone": "Europe/London", "person": {"name": "Julie"},
        "devices": [{"id": "ok-button", "profile": "aqara-wxkg11lm", "kind": "button"}],
        "routine": {"night": {"from": "00:00", "to": "23:59"}},
        "contacts": [{"name": "Sam", "notify": [sam_url]}, {"name": "Night responder", "notify": [night_url]}],
        "escalation": {"ack_within": "10m", "repeat_every": "5m"},
    }


@dataclass
class Chain:
    runtime: Runtime
    dispatcher: Dispatcher
    record: Record
    metrics: Metrics


@contextlib.asynccontextmanager
async def chain(sam_url: str, phone: Phone) -> AsyncIterator[Chain]:
    """Runtime, dispatcher and notifier as the service wires them, with the dispatcher running."""
    clock, metrics, record = SystemClock(), Metrics(), Record()
    runtime = Runtime(clock, metrics)
    runtime.set_home(parse_home_config(home(sam_url, phone.url("Night")), "test"))
    settings = NotifySettings(timeout_s=TIMEOUT_S, retries=RETRIES, retry_backoff_s=0.05, workers=4)
    notifier = Notifier(settings, clock=clock.now, metrics=metrics)
    dispatcher = Dispatcher(runtime, notifier, metrics, clock, deque(maxlen=100))
    dispatcher.recorder = record
    task = asyncio.create_task(dispatcher.run())
    try:
        yield Chain(runtime, dispatcher, record, metrics)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await dispatcher.drain(timeout=WAIT_S)
        notifier.close()


def press(runtime: Runtime) -> None:
    clock = runtime.clock
    runtime.ingest(Inbound("zigbee2mqtt/julie/ok-button", b'{"action": "single"}', clock.now(), 1))


@pytest.fixture(params=["down", "slow", "500"])
def sam(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, Endpoint | None]]:
    """(fault, Sam's URL, his endpoint if one is listening)."""
    fault = request.param
    if fault == "down":
        yield fault, f"json://127.0.0.1:{free_port()}/Sam", None  # nothing listens there
        return
    endpoint = Endpoint(free_port(), status=500, hang=fault == "slow")
    server = serve(endpoint)
    try:
        yield fault, f"json://127.0.0.1:{endpoint.port}/Sam", endpoint
    finally:
        endpoint.release.set()
        server.shutdown()
        server.server_close()


# A slow service is given up at the attempt's deadline, by tecmon ("timed out after 1s") or by
# apprise's own socket timeout set to the same budget ("connection error"), whichever comes first.
EXPECTED_ERROR = {"down": ("connection",), "slow": ("timed out", "connection error"), "500": ("500",)}


async def test_sam_unreachable_is_retried_a_bounded_number_of_times_then_the_next_contact_is_called_at_once(
    sam: tuple[str, str, Endpoint | None], phone: Phone
) -> None:
    fault, url, endpoint = sam
    async with chain(url, phone) as c:
        press(c.runtime)
        await eventually(lambda: phone.for_("Night"), WAIT_S, "the Night responder was never called")
        raised, escalated = c.record.step("raised"), c.record.step("escalated")
        assert raised is not None and escalated is not None
        assert escalated.contact == "Night responder"
        assert escalated.at < raised.at + ACK_WITHIN, "called because Sam failed, not after ack_within"
        await eventually(lambda: any(r.contact == "Night responder" for r in c.dispatcher.deliveries),
                         WAIT_S, "the Night responder's delivery was never recorded")
        sam_attempts = [a for a in c.record.attempts if a.contact == "Sam"]
        assert [a.attempt for a in sam_attempts] == list(range(1, RETRIES + 2)), "bounded retries"
        assert not any(a.ok for a in sam_attempts)
        for attempt in sam_attempts:
            assert attempt.error and any(e in attempt.error.lower() for e in EXPECTED_ERROR[fault]), attempt.error
            assert attempt.target.startswith("json://127.0.0.1:") and "Sam" not in attempt.target
        if endpoint is not None:
            assert len(endpoint.requests) == RETRIES + 1, "no hidden retries inside apprise"
        night = [a for a in c.record.attempts if a.contact == "Night responder"]
        assert [(a.attempt, a.ok) for a in night] == [(1, True)]
        unreached = [r for r in c.dispatcher.deliveries if r.contact == "Sam"]
        assert len(unreached) == 1 and not unreached[0].delivered
        assert c.metrics.registry.get_sample_value("tecmon_deliveries_failed_total") == 1.0


async def test_the_next_contact_and_the_record_say_sam_could_not_be_reached(phone: Phone) -> None:
    async with chain(f"json://127.0.0.1:{free_port()}/Sam", phone) as c:
        press(c.runtime)
        await eventually(lambda: phone.for_("Night"), WAIT_S, "the Night responder was never called")
        told = phone.for_("Night")[0]["message"].lower()
        escalated = c.record.step("escalated")
        assert escalated is not None
        assert "could not reach sam" in told
        assert "could not reach sam" in escalated.reason.lower()


# --- many homes at once: hung services must not hold up anyone else's alert ---------------------
#
# A plugin that never returns (registered with apprise as `stuck://`, so the real apprise sender
# calls it), an HTTP service that takes the connection and never answers, one that answers 500
# and one that is down, for many homes together; device notices from a dozen homes to service
# contacts whose plugin never returns hold every shared sender for ever. Every other contact is a
# path on the phone, and every home's alert must still reach it.

STORM = {"stuck": 4, "hang": 6, "500": 1, "down": 1}  # homes whose first contact fails that way
NOTICE_HOMES = 16  # each notice tried twice: 32 senders stuck for ever, past the shared lane's limit
STUCK_LIMIT = 24  # per lane: the notices use it up; person-safety sends stay within it
STORM_TIMEOUT_S = 0.5
never = threading.Event()


@apprise.decorators.notify(on="stuck")  # type: ignore[untyped-decorator]
def _never_returns(body: str, title: str, notify_type: str, *args: Any, **kwargs: Any) -> bool:
    never.wait(WAIT_S * 4)
    return True


def storm_home(name: str, first_url: str, second_url: str, service_url: str) -> dict[str, Any]:
    cfg = home(first_url, second_url)
    cfg["home"], cfg["person"] = name, {"name": name}
    cfg["devices"].append({"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed", "heartbeat": "0m"})
    cfg["routine"]["device_offline_after"] = "0m"
    cfg["service_contacts"] = [{"name": f"Engineer {name}", "notify": [service_url]}]
    return cfg


@pytest.fixture
def hung_service() -> Iterator[Endpoint]:
    endpoint = Endpoint(free_port(), hang=True)
    server = serve(endpoint)
    yield endpoint
    endpoint.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def failing_service() -> Iterator[Endpoint]:
    endpoint = Endpoint(free_port(), status=500)
    server = serve(endpoint)
    yield endpoint
    server.shutdown()
    server.server_close()


def first_contacts(hang_port: int, fail_port: int) -> dict[str, str]:
    """Each storm home's first contact, by the way it fails."""
    down = free_port()
    urls = {"stuck": "stuck://{h}/sam", "hang": f"json://127.0.0.1:{hang_port}/{{h}}",
            "500": f"json://127.0.0.1:{fail_port}/{{h}}", "down": f"json://127.0.0.1:{down}/{{h}}"}
    return {f"{fault}-{i}": urls[fault].format(h=f"{fault}-{i}") for fault, n in STORM.items() for i in range(n)}


async def test_hung_services_for_many_homes_never_hold_up_another_homes_alert(
    phone: Phone, hung_service: Endpoint, failing_service: Endpoint
) -> None:
    clock, metrics, record = SystemClock(), Metrics(), Record()
    runtime = Runtime(clock, metrics)
    firsts = first_contacts(hung_service.port, failing_service.port)
    for name, url in {**firsts, "julie": phone.url("julie-Sam")}.items():
        cfg = storm_home(name, url, phone.url(f"{name}-Night"), "json://127.0.0.1:9/")
        runtime.set_home(parse_home_config(cfg, "test"))
    for i in range(NOTICE_HOMES):  # each with its own service contact: no batching, every one sent
        cfg = storm_home(f"dev-{i}", phone.url("x"), phone.url("y"), f"stuck://eng/{i}")
        runtime.set_home(parse_home_config(cfg, "test"))
    settings = NotifySettings(timeout_s=STORM_TIMEOUT_S, retries=1, retry_backoff_s=0.05, workers=4,
                              alert_workers=4, stuck_limit=STUCK_LIMIT)
    notifier = Notifier(settings, clock=clock.now, metrics=metrics)
    dispatcher = Dispatcher(runtime, notifier, metrics, clock, deque(maxlen=1000))
    dispatcher.recorder = record
    task = asyncio.create_task(dispatcher.run())
    try:
        for i in range(NOTICE_HOMES):
            runtime.ingest(Inbound(f"zigbee2mqtt/dev-{i}/bed/availability", b"offline", clock.now(), 1))
        runtime.fire_due()
        await eventually(lambda: notifier.pool.live("shared") == 0, WAIT_S,
                         "the notices never took the shared lane")
        for name in [*firsts, "julie"]:
            runtime.ingest(Inbound(f"zigbee2mqtt/{name}/ok-button", b'{"action": "single"}', clock.now(), 1))
        await eventually(lambda: phone.for_("julie-Sam"), WAIT_S, "julie's alert waited for the hung services")
        await eventually(lambda: all(phone.for_(f"{n}-Night") for n in firsts), WAIT_S,
                         f"not called: {[n for n in firsts if not phone.for_(f'{n}-Night')]}")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        notifier.close()
        never.set()
    assert not phone.for_("julie-Night"), "julie's first contact was reached: nobody else was called"
    for name in firsts:
        sam = [a for a in record.attempts if a.alert.startswith(f"{name}:") and a.contact == "Sam"]
        assert [a.ok for a in sam] == [False, False], (name, sam)
    stuck = [a for a in record.attempts if a.target == "stuck://…" and a.contact == "Sam"]
    assert stuck and all(a.error == f"timed out after {STORM_TIMEOUT_S:g}s" for a in stuck)
    notices = [a for a in record.attempts if a.contact.startswith("Engineer")]
    assert notices and not any(a.ok for a in notices)  # the rest still wait for a sender (queue_wait_s)
    abandoned = metrics.registry.get_sample_value("tecmon_notify_abandoned_total", {"lane": "shared"})
    assert abandoned is not None and abandoned >= STUCK_LIMIT + settings.workers
    assert hung_service.requests and failing_service.requests
