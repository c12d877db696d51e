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


EXPECTED_ERROR = {"down": "connection", "slow": "timed out", "500": "500"}


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
            assert attempt.error and EXPECTED_ERROR[fault] in attempt.error.lower(), attempt.error
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
