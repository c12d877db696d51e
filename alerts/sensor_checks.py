"""Stuck or silent sensors: notices to the service contacts, never to the family. Pure.

A sensor can fail without ever going offline: it keeps its heartbeat but its
reading is stuck, or it no longer sees the person. Two such failures are
checked here, each a `(due, fire)` rule like those in `alerts.rules`:

- bed_occupied_too_long: a bed sensor has said "occupied" for
  `routine.bed_occupied_max` (default 16h) without a break. The spell starts
  when it changed to occupied (or its first reading, if that says occupied);
  repeats of "occupied" do not restart it. Either the sensor is stuck, or the
  person is unwell in bed: the reason says both. One notice per spell, cleared
  when that bed says empty.
- motion_silent: a motion sensor has detected nothing for its
  `expect_movement_every` (24h unless the device says otherwise; `0m`: never)
  while other devices show the person up and about: a bed changing
  (occupied to empty or back), another motion sensor detecting, or an
  interior door opening. The silence starts at its newest detection (or, if it
  never detected anything, when the home's state began). Raised at silence
  start + 24h if such a sign came after the silence started, otherwise at the
  first sign after that. Heartbeats, batteries and "no motion" are not
  detections. One notice per silence, cleared by its next detection.

Both go through `lifecycle.raise_alert` like `device_offline`: nothing during
an away period, one open per kind and device.
"""

from __future__ import annotations

from datetime import datetime

from alerts import reasons
from alerts.decisions import AlertKind, Decision
from alerts.events import EventKind, SensorEvent
from alerts.lifecycle import clear_condition, raise_alert
from alerts.plan import DevicePlan, HomePlan
from alerts.state import DeviceState, HomeState

Out = list[Decision]


def seen(state: HomeState, device: DevicePlan, dev: DeviceState, event: SensorEvent, out: Out) -> None:
    """Called for every sensor event before the engine applies it (`dev` still holds the old reading)."""
    if event.kind is EventKind.BED:
        _bed_reading(state, device, dev, event, out)
    elif event.kind is EventKind.MOTION and event.value is True:
        _detection(state, device, event.at, out)
    elif event.kind is EventKind.DOOR and event.value is True and not device.exit:
        _up_and_about(state, device.id, event.at)


def _bed_reading(state: HomeState, device: DevicePlan, dev: DeviceState, ev: SensorEvent, out: Out) -> None:
    """Only a change of reading counts: Zigbee2MQTT repeats the whole state on every report."""
    if dev.value_at is not None and ev.at < dev.value_at:
        return  # older than what the bed already said
    occupied = bool(ev.value)
    if dev.value is not None and occupied == dev.value:
        return
    watch = state.sensors
    if dev.value is not None:
        _up_and_about(state, device.id, ev.at)
    if occupied:
        watch.occupied_since[device.id] = ev.at
        return
    watch.occupied_since.pop(device.id, None)
    now = state.clock or ev.at
    reason = reasons.bed_empty_again(device)
    clear_condition(state, AlertKind.BED_OCCUPIED_TOO_LONG, now, reason, out, device=device.id)


def _detection(state: HomeState, device: DevicePlan, at: datetime, out: Out) -> None:
    watch = state.sensors
    last = watch.detected_at.get(device.id)
    if last is not None and at <= last:
        return
    watch.detected_at[device.id] = at
    _up_and_about(state, device.id, at)
    now, reason = state.clock or at, reasons.motion_seen_again(device)
    clear_condition(state, AlertKind.MOTION_SILENT, now, reason, out, device=device.id)


def _up_and_about(state: HomeState, device_id: str, at: datetime) -> None:
    seen_at = state.sensors.up_seen
    if device_id not in seen_at or at > seen_at[device_id]:
        seen_at[device_id] = at


# --- bed occupied too long ------------------------------------------------------------------


def _stuck_dues(state: HomeState) -> list[tuple[datetime, str, datetime]]:
    """(due, bed, since) for every bed spell not yet noticed."""
    plan, watch = state.plan, state.sensors
    found = []
    for device_id, since in watch.occupied_since.items():
        device = plan.devices.get(device_id)
        if device is None or device.kind is not EventKind.BED:
            continue  # no longer configured as a bed
        if watch.stuck_done_for.get(device_id) != since:
            found.append((since + plan.bed_occupied_max, device_id, since))
    return found


def stuck_due(state: HomeState) -> datetime | None:
    if not state.sensors.occupied_since:
        return None
    return min((due for due, _, _ in _stuck_dues(state)), default=None)


def fire_stuck(state: HomeState, at: datetime, out: Out) -> None:
    for due, device_id, since in _stuck_dues(state):
        if due > at:
            continue
        state.sensors.stuck_done_for[device_id] = since
        device = state.plan.devices[device_id]
        reason = reasons.bed_occupied_too_long(state.plan, device, since, state.plan.bed_occupied_max)
        raise_alert(state, AlertKind.BED_OCCUPIED_TOO_LONG, at, reason, out, device=device_id)


# --- a motion sensor silent while the person is up -----------------------------------------


def _silence_start(state: HomeState, device_id: str) -> datetime | None:
    return state.sensors.detected_at.get(device_id, state.began_at)


def _sign_elsewhere(state: HomeState, device_id: str, since: datetime) -> tuple[str, datetime] | None:
    """The newest sign of the person up and about from any other device after `since`."""
    others = [(at, other) for other, at in state.sensors.up_seen.items() if other != device_id and at > since]
    if not others:
        return None
    at, other = max(others)
    return other, at


def _silent_due_for(state: HomeState, device_id: str) -> datetime | None:
    expect = state.plan.devices[device_id].expect_movement
    since = _silence_start(state, device_id)
    if expect is None or since is None or state.sensors.silent_done_for.get(device_id) == since:
        return None
    if _sign_elsewhere(state, device_id, since) is None:
        return None  # nothing shows the person up: a quiet home is not a broken sensor
    return since + expect


def _motion_devices(plan: HomePlan) -> list[str]:
    return [d.id for d in plan.devices.values() if d.expect_movement is not None]


def silent_due(state: HomeState) -> datetime | None:
    if not state.sensors.up_seen:
        return None
    dues = [due for i in _motion_devices(state.plan) if (due := _silent_due_for(state, i)) is not None]
    return min(dues, default=None)


def fire_silent(state: HomeState, at: datetime, out: Out) -> None:
    for device_id in _motion_devices(state.plan):
        due = _silent_due_for(state, device_id)
        since = _silence_start(state, device_id)
        sign = _sign_elsewhere(state, device_id, since) if since is not None else None
        if due is None or due > at or since is None or sign is None:
            continue
        state.sensors.silent_done_for[device_id] = since
        plan = state.plan
        device, other = plan.devices[device_id], plan.devices.get(sign[0])
        assert device.expect_movement is not None
        reason = reasons.motion_silent(plan, device, since, device.expect_movement, other, sign[1])
        raise_alert(state, AlertKind.MOTION_SILENT, at, reason, out, device=device_id)
