"""Rebuilding every home's state after a restart, without missed or repeated alerts.

The last `window` of stored events and carer inputs is replayed through the
engine at simulated speed, in the order they were applied live, which brings
each home back to exactly the state it had. The engine re-decides every
lifecycle step of that period; the ones already in the record were carried
out before the restart and are not repeated. What remains fell due while the
service was down (or was decided just before a crash, unrecorded): those
steps are recorded and marked late, and the alerts still open are called at
once, once per contact.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.decisions import Decision, SendAlert, SendSummary
from alerts.engine import step
from alerts.events import EngineInput, Tick
from gateway.late import calls_worth_making
from gateway.runtime import Dispatch, Runtime
from gateway.store.base import InputRow, Store

StepKey = tuple[str, str, str | None]


@dataclass
class RecoveryReport:
    homes: int = 0
    events: int = 0
    inputs: int = 0
    already_done: int = 0
    late: int = 0
    seconds: float = 0.0
    pending: list[Dispatch] = field(default_factory=list)


def _key(decision: Decision) -> StepKey:
    if isinstance(decision, SendSummary):
        return (decision.id, decision.step, decision.contact.name)
    contact = decision.contact.name if isinstance(decision, SendAlert) else getattr(decision, "by", None)
    return (decision.alert.id, decision.step, contact)


class _Rebuild:
    def __init__(self, runtime: Runtime, done: Counter[StepKey], report: RecoveryReport) -> None:
        self.runtime, self.done, self.report = runtime, done, report

    def apply(self, home: str, inp: EngineInput, now: datetime) -> None:
        runtime = self.runtime.homes.get(home)
        if runtime is None:
            return  # a home no longer configured
        runtime.state, decisions = step(runtime.state, inp, now)
        for decision in decisions:
            key = _key(decision)
            if self.done[key] > 0:
                self.done[key] -= 1
                self.report.already_done += 1
            else:
                self.report.pending.append(Dispatch(home, decision, runtime.plan, late=True))


async def recover(runtime: Runtime, store: Store, now: datetime, window: timedelta) -> RecoveryReport:
    """Replay `window` of history into `runtime`; returns the late steps still to carry out."""
    began = time.perf_counter()
    since = now - window
    report = RecoveryReport(homes=len(runtime.homes))
    done = Counter((row.alert, row.step, row.contact) for row in await store.steps_since(since - window))
    rebuild = _Rebuild(runtime, done, report)
    inputs: Sequence[InputRow] = await store.inputs_since(since)
    report.inputs = len(inputs)
    waiting = 0
    async for chunk in store.stream_events_since(since):
        for row in chunk:
            while waiting < len(inputs) and inputs[waiting].at <= row.received_at:
                rebuild.apply(inputs[waiting].home, inputs[waiting].to_input(), inputs[waiting].at)
                waiting += 1
            rebuild.apply(row.home, row.to_event(), row.received_at)
        report.events += len(chunk)
    for rest in inputs[waiting:]:
        rebuild.apply(rest.home, rest.to_input(), rest.at)
    for home in runtime.homes:
        rebuild.apply(home, Tick(), now)
        runtime.reschedule(home)
    still_open = (a["alert"] for a in runtime.open_alerts())
    report.pending = calls_worth_making(report.pending, still_open)
    report.late = len(report.pending)
    report.seconds = time.perf_counter() - began
    return report
