"""A home's engine state as plain JSON data, and back. Pure.

A restart restores each home from its latest snapshot and replays only what
came after it, instead of replaying a whole day of events. The snapshot holds
everything `step` reads from a `HomeState` except the plan (compiled again
from the configuration) and the rules cache (rebuilt from the plan on the
next step), so an engine continuing from a restored snapshot decides exactly
as one that never stopped.

`LAYOUT` fingerprints the field names of every state dataclass: a field added
or renamed changes it, and a snapshot of another layout is never read as this
one (the shell also versions snapshots by the engine's code and the routine).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from datetime import datetime, time
from typing import Any

from alerts.decisions import AlertInfo, AlertKind
from alerts.plan import ContactPlan, HomePlan
from alerts.state import BedSpan, DeviceState, ExitWatch, HomeState, OpenAlert, SensorWatch

__all__ = ["FORMAT", "LAYOUT", "SnapshotError", "dumps", "from_data", "loads", "to_data"]

FORMAT = 1
Data = dict[str, Any]


def _layout() -> str:
    classes = (HomeState, DeviceState, ExitWatch, BedSpan, SensorWatch, OpenAlert, AlertInfo, ContactPlan)
    names = ";".join(f"{c.__name__}:{','.join(f.name for f in fields(c))}" for c in classes)
    return f"{FORMAT}-" + hashlib.sha256(names.encode()).hexdigest()[:16]


LAYOUT = _layout()

# HomeState fields kept as they are (bool / None), as instants, or by their own codec below.
_PLAIN = ("bed_occupied", "leaving")
_TIMES = (
    "clock", "began_at", "left_bed_at", "up_night_end", "last_motion_at", "last_press_at",
    "last_inside_at", "out_since", "out_of_bed_done_for", "still_done_for", "next_bed_check",
    "next_up_check", "company_from", "company_until", "company_action_at", "next_due",
)
_DEVICE_TIMES = ("value_at", "heard_at", "availability_at", "offline_since", "offline_raised_for",
                 "battery_at")
_TIME_SET = frozenset(_TIMES)
_PLAIN_SET = frozenset(_PLAIN)
_DEVICE_TIME_SET = frozenset(_DEVICE_TIMES)
_DEVICE_PLAIN_SET = frozenset(("value", "online", "battery", "battery_low"))
_SENSOR_MAPS = ("occupied_since", "stuck_done_for", "detected_at", "silent_done_for", "up_seen")
_SENSOR_SET = frozenset(_SENSOR_MAPS)
_NOT_KEPT = ("plan", "rules")  # compiled from the configuration, not state
_CODED = ("devices", "exit_watch", "bed_spans", "raised_log", "next_summaries", "safety", "service",
          "offline", "sensors")


class SnapshotError(ValueError):
    """Data that is not a snapshot of this layout; the home is then replayed in full."""


def _t(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _req(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _contact(c: ContactPlan) -> list[Any]:
    return [c.name, list(c.notify), None if c.morning_summary is None else c.morning_summary.isoformat()]


def _contact_back(data: list[Any]) -> ContactPlan:
    at = None if data[2] is None else time.fromisoformat(data[2])
    return ContactPlan(data[0], tuple(data[1]), at)


_DEVICE_DEFAULTS = DeviceState()


def _device(d: DeviceState) -> Data:
    """Only what differs from a device never heard from: most of a device's fields are None."""
    out: Data = {}
    for name in _DEVICE_TIMES:
        value = getattr(d, name)
        if value is not None:
            out[name] = value.isoformat()
    for name in ("value", "online", "battery", "battery_low"):
        value = getattr(d, name)
        if value != getattr(_DEVICE_DEFAULTS, name) or type(value) is not type(
                getattr(_DEVICE_DEFAULTS, name)):
            out[name] = value
    return out


def _device_back(data: Data) -> DeviceState:
    d = DeviceState()
    for name, value in data.items():
        if name in _DEVICE_TIME_SET:
            setattr(d, name, datetime.fromisoformat(value))
        elif name in _DEVICE_PLAIN_SET:
            setattr(d, name, value)
        else:
            raise SnapshotError(f"unknown device field {name!r}")
    return d


def _alert(a: OpenAlert) -> Data:
    return {
        "id": a.info.id, "home": a.info.home, "kind": a.info.kind.value, "device": a.info.device,
        "raised_at": a.raised_at.isoformat(), "reasons": [[k.value, r] for k, r in a.reasons.items()],
        "audience": [_contact(c) for c in a.audience], "escalates": a.escalates,
        "notify_at": _t(a.notify_at), "next_contact": a.next_contact,
        "notified": [_contact(c) for c in a.notified], "acknowledged_by": a.acknowledged_by,
        "unreached": list(a.unreached), "asked_until": _t(a.asked_until),
    }


def _alert_back(data: Data) -> OpenAlert:
    return OpenAlert(
        info=AlertInfo(data["id"], data["home"], AlertKind(data["kind"]), data["device"]),
        raised_at=_req(data["raised_at"]),
        reasons={AlertKind(k): r for k, r in data["reasons"]},
        audience=tuple(_contact_back(c) for c in data["audience"]),
        escalates=data["escalates"], notify_at=_dt(data["notify_at"]), next_contact=data["next_contact"],
        notified=[_contact_back(c) for c in data["notified"]], acknowledged_by=data["acknowledged_by"],
        unreached=list(data["unreached"]), asked_until=_dt(data["asked_until"]),
    )


def _watch(w: ExitWatch | None) -> list[Any] | None:
    if w is None:
        return None
    return [w.door, w.opened_at.isoformat(), _t(w.closed_at), _t(w.raised_at)]


def _watch_back(data: list[Any] | None) -> ExitWatch | None:
    if data is None:
        return None
    return ExitWatch(data[0], _req(data[1]), _dt(data[2]), _dt(data[3]))


def _times_map(values: dict[str, datetime]) -> dict[str, str]:
    return {key: at.isoformat() for key, at in values.items()}


def _times_map_back(values: dict[str, str]) -> dict[str, datetime]:
    return {key: _req(at) for key, at in values.items()}


def to_data(state: HomeState) -> Data:
    """Everything the engine needs of `state` but its plan, as JSON-ready data.

    Only what differs from a new state is written (most instants are unset and
    most collections empty most of the time): smaller to keep, quicker to read.
    """
    out: Data = {"v": FORMAT}
    for name in _TIMES:
        value = getattr(state, name)
        if value is not None:
            out[name] = value.isoformat()
    if state.bed_occupied is not None:
        out["bed_occupied"] = state.bed_occupied
    if state.leaving:
        out["leaving"] = True
    coded: Data = {
        "devices": {key: _device(d) for key, d in state.devices.items()},
        "exit_watch": _watch(state.exit_watch),
        "bed_spans": [[s.start.isoformat(), _t(s.end)] for s in state.bed_spans],
        "raised_log": [[at.isoformat(), kind.value] for at, kind in state.raised_log],
        "next_summaries": _times_map(state.next_summaries),
        "safety": None if state.safety is None else _alert(state.safety),
        "service": [[kind.value, device, _alert(a)] for (kind, device), a in state.service.items()],
        "offline": sorted(state.offline),
        "sensors": {name: _times_map(m) for name in _SENSOR_MAPS if (m := getattr(state.sensors, name))},
    }
    out.update((key, value) for key, value in coded.items() if value)
    return out


def from_data(data: Data, plan: HomePlan) -> HomeState:
    """The state `to_data` was taken from, running on `plan`; `SnapshotError` if it is not one."""
    try:
        if data["v"] != FORMAT:
            raise ValueError(f"format {data['v']!r}")
        return _from_data(data, plan)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise SnapshotError(f"not a snapshot of layout {LAYOUT}: {exc!r}") from None


def _from_data(data: Data, plan: HomePlan) -> HomeState:
    state = HomeState(plan=plan)
    for name, value in data.items():
        if name in _TIME_SET:
            setattr(state, name, datetime.fromisoformat(value))
        elif name in _PLAIN_SET:
            setattr(state, name, value)
    get = data.get
    if devices := get("devices"):
        state.devices = {key: _device_back(d) for key, d in devices.items()}
    state.exit_watch = _watch_back(get("exit_watch"))
    if spans := get("bed_spans"):
        state.bed_spans = [BedSpan(_req(start), _dt(end)) for start, end in spans]
    if log := get("raised_log"):
        state.raised_log = [(_req(at), AlertKind(kind)) for at, kind in log]
    if summaries := get("next_summaries"):
        state.next_summaries = _times_map_back(summaries)
    if safety := get("safety"):
        state.safety = _alert_back(safety)
    if service := get("service"):
        state.service = {(AlertKind(kind), device): _alert_back(a) for kind, device, a in service}
    if offline := get("offline"):
        state.offline = set(offline)
    if sensors := get("sensors"):
        state.sensors = SensorWatch(**{name: _times_map_back(m) for name, m in sensors.items()
                                       if name in _SENSOR_SET})
    return state


def dumps(state: HomeState) -> str:
    """The snapshot as compact JSON text, the form the store keeps."""
    return json.dumps(to_data(state), separators=(",", ":"), ensure_ascii=False)


def loads(text: str, plan: HomePlan) -> HomeState:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SnapshotError(f"snapshot is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SnapshotError("snapshot is not a JSON object")
    return from_data(data, plan)


def covered_fields() -> set[str]:
    """The HomeState fields this module keeps or deliberately leaves out (checked by the tests)."""
    return {*_PLAIN, *_TIMES, *_NOT_KEPT, *_CODED}
