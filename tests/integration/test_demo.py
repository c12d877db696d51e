"""`make demo` shows an alert end to end: broker, gateway, simulator, phones, API."""

from __future__ import annotations

import io

import pytest

from gateway.demo import run_live_demo

pytestmark = pytest.mark.integration


async def test_the_demo_night_raises_escalates_acknowledges_and_resolves() -> None:
    out = io.StringIO()
    assert await run_live_demo(out, exit_when_done=True, speed=10) == 0
    text = out.getvalue()
    steps = [line.split()[1] for line in text.splitlines() if line[:2].isdigit() and ":" in line[:8]]
    assert steps == ["RAISED", "NOTIFIED", "ESCALATED", "ACKNOWLEDGED", "RESOLVED"], text
    assert "📱 Sam's phone: Julie: out of bed too long" in text
    assert "📱 Night responder's phone: Julie: out of bed too long (not yet acknowledged)" in text
    assert text.count("Julie: all clear") == 2
    assert "Stopped cleanly." in text
    assert "sign in as sam" in text and "sign in as ana" in text
    assert "(signed in as night) -> 200" in text
