"""The real apprise path against a local HTTP sink: what arrives, retries, timeouts, no leaked secrets.

apprise's `json://127.0.0.1:PORT/` posts `{"title", "message", "type", ...}`; the sink
records each request and answers as the test asks (200, 500, or never).
Time bounds are deliberately generous: they only catch "waited for ever".
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from alerts.decisions import AlertInfo, AlertKind, SendAlert
from alerts.homeconfig import load_home_config
from alerts.messages import alert_message
from alerts.notify import Notifier
from alerts.plan import ContactPlan, plan_from_config
from gateway.settings import NotifySettings

HANG_S = 60.0  # a service that never answers: far longer than any timeout under test

DATA = Path(__file__).resolve().parents[2] / "simulator" / "data"
PLAN = plan_from_config(load_home_config(DATA / "julie.home.yaml"))
AT = datetime(2026, 1, 12, 2, 59, tzinfo=UTC)
REASON = ("Julie has been out of bed for 45 minutes (since 02:14); "
          "Julie's routine says to call after 45 minutes.")
INFO = AlertInfo("julie-12-oak-road:20260112T025900Z:out_of_bed_too_long", PLAN.home, AlertKind.OUT_OF_BED_TOO_LONG)
MESSAGE = alert_message(SendAlert(INFO, AT, ContactPlan("Night responder", ()), False, REASON), PLAN)


@dataclass
class Sink:
    """What the local server received, and how it answers next."""

    port: int
    status: int = 200
    hang: bool = False
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/") -> str:
        return f"json://127.0.0.1:{self.port}{path}"


def _handler(sink_ref: list[Sink]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            sink = sink_ref[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            sink.requests.append((self.path, json.loads(body or b"{}")))
            if sink.hang:
                sink.release.wait(HANG_S)
                return
            self.send_response(sink.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads `requests` instead."""

    return Handler


@pytest.fixture
def sink() -> Iterator[Sink]:
    ref: list[Sink] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    server.daemon_threads = True
    ref.append(Sink(port=server.server_address[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ref[0]
    finally:
        ref[0].release.set()
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _notifier(**options: float) -> Notifier:
    settings = {"timeout_s": 5.0, "retries": 2, "retry_backoff_s": 0.05, "workers": 4, **options}
    return Notifier(NotifySettings.model_validate(settings))


async def test_the_sink_receives_the_title_and_message_as_json(sink: Sink) -> None:
    async with _notifier() as notifier:
        result = await notifier.deliver(MESSAGE, ContactPlan("Night responder", (sink.url(),)))
    assert result.delivered
    assert [(a.attempt, a.ok) for a in result.attempts] == [(1, True)]
    assert result.attempts[0].target == f"json://127.0.0.1:{sink.port}/…"
    [(path, payload)] = sink.requests
    assert path == "/"
    assert payload["title"] == "Julie: out of bed too long"
    assert payload["message"] == MESSAGE.body
    assert REASON in payload["message"] and "At 02:59:" in payload["message"]
    assert payload["type"] == "warning"


async def test_a_500_is_retried_then_reported_undelivered(sink: Sink) -> None:
    sink.status = 500
    async with _notifier(retries=2) as notifier:
        result = await notifier.deliver(MESSAGE, ContactPlan("Night responder", (sink.url(),)))
    assert not result.delivered
    assert len(sink.requests) == 3
    assert [a.attempt for a in result.attempts] == [1, 2, 3]
    assert all("500" in (a.error or "") for a in result.attempts)
    assert result.failure() is not None


async def test_a_sink_that_never_answers_times_out_on_every_attempt(sink: Sink) -> None:
    sink.hang = True
    timeout_s, retries = 1.0, 1
    started = time.monotonic()
    async with _notifier(timeout_s=timeout_s, retries=retries) as notifier:
        result = await notifier.deliver(MESSAGE, ContactPlan("Night responder", (sink.url(),)))
    elapsed = time.monotonic() - started
    assert not result.delivered
    assert len(result.attempts) == retries + 1
    assert elapsed < HANG_S / 2  # gave up long before the service would have answered
    assert all(not a.ok and a.error for a in result.attempts)


async def test_a_read_timeout_the_user_set_lower_is_honoured(sink: Sink) -> None:
    sink.hang = True
    started = time.monotonic()
    async with _notifier(timeout_s=20.0, retries=0) as notifier:
        result = await notifier.deliver(MESSAGE, ContactPlan("Night responder", (sink.url("/?rto=0.5"),)))
    assert not result.delivered
    [attempt] = result.attempts
    assert "timed out after 20" not in (attempt.error or "")  # apprise gave up by itself, not our 20 s guard
    assert time.monotonic() - started < HANG_S / 2


async def test_an_unreachable_port_fails_quickly() -> None:
    timeout_s = 10.0
    async with _notifier(timeout_s=timeout_s, retries=1) as notifier:
        result = await notifier.deliver(MESSAGE, ContactPlan("Nobody home", (f"json://127.0.0.1:{_closed_port()}/",)))
    assert not result.delivered
    assert len(result.attempts) == 2
    assert all("connection error" in (a.error or "").lower() for a in result.attempts)


SECRETS = ("carer-user", "Hunter2Secret", "private-hook-path", "QueryToken77", "julie-secret-topic", "NotAScheme99")


async def test_no_log_line_or_result_contains_a_secret_part_of_a_url(
    sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # stricter than the INFO the service runs at
    sink.status = 500
    port = sink.port
    urls = (
        f"json://carer-user:Hunter2Secret@127.0.0.1:{port}/private-hook-path?token=QueryToken77",
        f"ntfy://127.0.0.1:{port}/julie-secret-topic",
        "nosuchscheme://NotAScheme99/x",
    )
    async with _notifier(retries=1) as notifier:
        result = await notifier.deliver(MESSAGE, ContactPlan("Sam", urls))
    assert not result.delivered
    assert len(sink.requests) == 4  # the secrets did reach the server: only logs are scrubbed
    apprise_lines = [r for r in caplog.records if r.name == "apprise" and r.levelno >= logging.WARNING]
    assert apprise_lines, "apprise should have logged the failures"
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records) + repr(result)
    for secret in SECRETS:
        assert secret not in text
