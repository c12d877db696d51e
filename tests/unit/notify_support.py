"""What the notification tests share: Julie's contact plan, two contacts, a summer night's instant, a message.

`SUMMER` is 01:14 UTC, 02:14 in London on summer time, so a message that says
"At 02:14" shows the home's local time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alerts.decisions import AlertInfo, AlertKind
from alerts.homeconfig import load_home_config
from alerts.messages import Message
from alerts.plan import ContactPlan, plan_from_config

DATA = Path(__file__).resolve().parents[2] / "simulator" / "data"
PLAN = plan_from_config(load_home_config(DATA / "julie.home.yaml"))
SAM = ContactPlan("Sam (daughter)", ("ntfy://tecmon-julie",))
RESPONDER = ContactPlan("Night responder", ("json://127.0.0.1:9000/",))
SUMMER = datetime(2026, 7, 12, 1, 14, tzinfo=UTC)  # 02:14 in London (BST)
MESSAGE = Message("julie:out_of_bed", "Julie: out of bed too long", "At 02:14: ...", "alert")


def _info(kind: AlertKind, device: str | None = None) -> AlertInfo:
    return AlertInfo(f"julie-12-oak-road:20260712T011400Z:{kind}", PLAN.home, kind, device)
