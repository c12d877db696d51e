"""The rule engine: a person's routine applied to their home's events. Pure.

No asyncio, no I/O, never reads a clock: time comes in as `now`, deadlines go
out as data (`next_deadline`). The same engine runs live, in replay, in the
simulator and in what-if previews.

Rules (all durations are real elapsed time; the night window is local time):
- out_of_bed_too_long: bed left inside the night (occupied, then empty: a first
  reading of "empty" is not leaving bed) and still empty `alert_after` later,
  if that moment is still inside that night. Cleared by the bed.
- Signs of someone inside: motion, bed occupied, a button press, or an
  interior (non-exit) door opening. An interior door opening is movement for
  every rule below.
- not_back_after_exit: an exit door opened inside the night and, by
  `alert_if_not_back_within` after it opened, no motion, bed or button after
  the door closed. Raised then even if the night has just ended. Cleared by
  motion, bed or button seen after the door closed. Coming home is not going
  out: an exit-door opening after an earlier exit (at any hour) whose door
  closed with no sign of anyone inside since (and no one in bed) is a return
  and starts no watch (a watch already running carries on). Until an exit is
  seen, every opening is an exit.
- still_while_up: up during the night, bed empty and no motion (or button) for
  `alert_after` since the later of leaving bed and the last motion, if still
  inside that night. Cleared by motion or bed.
- not_in_bed_by / not_up_by: the bed at those local times. Cleared when it changes.
  Unknown state never silences a rule: a bed with no reading since the state
  began (its first input) counts as empty for not_in_bed_by, whose reason says
  since when the bed has not reported (the state's start, or the bed's last
  message of any kind); not_up_by does not raise on an unknown bed, but a bed
  silent since before that night began (watched from then) is a device_offline
  notice for the bed. Each reason says what was seen and what was not.
- help_requested: the button pressed with no person-safety alert open. Pressed
  with one open, it means "I'm OK": that alert is resolved by the person. Every
  press restarts the out-of-bed and stillness periods. Presses less than
  `PRESS_DEBOUNCE` apart are one press.
- device_offline: reported offline (or silent past its heartbeat) for
  `device_offline_after`; to the service contacts. Any newer reading from the
  device, or an "online" report, means it is back: the episode ends, or the
  alert is cleared. A message carrying none of its profile's fields comes in
  as an "online" report (the gateway keeps it once as a `no_known_field` notice).
  A heartbeat is the device's `heartbeat`, else its profile's (Aqara: 2h); 0m: none.
- Stuck or silent sensors, to the service contacts (alerts/sensor_checks.py):
  bed_occupied_too_long, a bed saying occupied for `bed_occupied_max` (16h)
  since it changed to occupied; motion_silent, a motion sensor detecting nothing
  for its `expect_movement_every` (24h) while other devices show her up.
- low_battery: at or under 15 %, to the service contacts in daytime. Cleared
  at 30 % or more (a new battery), so a reading that wavers does not nag.
- Person-safety alerts go to the contacts, or to the service contacts when the
  home names none (configuration refuses a home that would reach nobody).
- One person-safety alert per home at a time: further conditions join its
  reasons; it resolves when all of them have cleared.
- During an away period nothing is raised.
- morning_summary (per contact, local time; alerts/summary.py): not an alert but
  a deadline like the daily checks: a `SendSummary` for that contact telling
  the last night (the night window that began most recently): in bed from/to,
  how often up and for how long, which alerts were raised; or that she has not
  got up yet, or that the bed never reported. None during an away period.
- A reading older than the newest one already seen from the same device, or
  identical to it, changes nothing, so redelivered messages never alert twice;
  a late exit-door opening still starts its exit watch.
- An input at the very instant of a deadline is applied after the deadline.
- check_with_me (alerts/care.py): out_of_bed_too_long, still_while_up,
  not_in_bed_by and not_up_by ask the person first (step `asked`, the shell
  blinks the light) and call the first contact at raised + `within`; a press
  before then is "I'm OK" and nobody is called. Help and exits are never
  delayed (an exit joining an alert still waiting calls at once).
- company (alerts/care.py): the routine's button action (not a press), or a
  carer (`SetCompany`), starts it; the action again, a carer, or `for` passing
  ends it (over at exactly start + for). Meanwhile no person-safety alert but
  help is raised; open alerts carry on; its end restarts the out-of-bed and
  stillness periods. A repeat of the action within `PRESS_DEBOUNCE` is one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts import care, lifecycle, reasons, sensor_checks, summary
from alerts.decisions import AlertKind, Decision
from alerts.events import (
    Acknowledge,
    DeliveryFailed,
    EngineInput,
    EventKind,
    ResolveAlert,
    SensorEvent,
    SetCompany,
    Tick,
)
from alerts.nights import next_local
from alerts.plan import DevicePlan, HomePlan
from alerts.rules import ends_stillness, rules_for
from alerts.state import DeviceState, ExitWatch, HomeState, copy_state, new_state

__all__ = ["PRESS_DEBOUNCE", "copy_state", "new_state", "next_deadline", "step", "with_plan"]

LOW_BATTERY = 15
BATTERY_REPLACED = 30
PRESS_DEBOUNCE = timedelta(seconds=10)

Out = list[Decision]


def step(state: HomeState, inp: EngineInput, now: datetime) -> tuple[HomeState, list[Decision]]:
    """Advance the home to `now`, firing what is due, then apply `inp`.

    Updates `state` in place and returns it with the decisions, in time order.
    """
    out: Out = []
    if state.clock is None:
        state.began_at = now
        _start(state, now)
    if state.next_due is not None and state.next_due <= now:
        _fire_due(state, now, out)
    assert state.clock is not None
    state.clock = max(state.clock, now)
    if isinstance(inp, SensorEvent):
        _apply_event(state, inp, out)
    elif isinstance(inp, Acknowledge):
        lifecycle.acknowledge(state, inp.alert, inp.by, state.clock, out)
    elif isinstance(inp, ResolveAlert):
        lifecycle.resolve_by_carer(state, inp.alert, inp.by, inp.outcome, state.clock, out)
    elif isinstance(inp, DeliveryFailed):
        lifecycle.delivery_failed(state, inp.alert, inp.contact, state.clock)
    elif isinstance(inp, SetCompany):
        care.set_company(state, inp.on, state.clock)
    elif not isinstance(inp, Tick):
        raise TypeError(f"not an engine input: {inp!r}")
    _fire_due(state, state.clock, out)  # a late event can make a deadline already past
    return state, out


def next_deadline(state: HomeState) -> datetime | None:
    """The next instant at which `step(state, Tick(), t)` may decide something."""
    return state.next_due


def with_plan(state: HomeState, plan: HomePlan) -> HomeState:
    """Apply a changed routine to a running home: what was seen is kept, rules change.

    Open alerts keep the contacts they were raised with; devices no longer
    configured are forgotten; the daily checks are re-timed to the new clock times.
    """
    state.plan = plan
    state.rules = None  # recomputed for the new routine
    for device_id in [d for d in state.devices if d not in plan.devices]:
        del state.devices[device_id]
        state.offline.discard(device_id)
    if state.exit_watch is not None and state.exit_watch.door not in plan.devices:
        state.exit_watch = None
    if state.clock is not None:
        _start(state, state.clock)
        best = _earliest(state)
        state.next_due = best[0] if best else None
    return state


def _start(state: HomeState, now: datetime) -> None:
    plan = state.plan
    state.clock = now
    state.next_bed_check = state.next_up_check = None
    if plan.in_bed_by is not None:
        state.next_bed_check = next_local(now, plan.in_bed_by, plan.zone)
    if plan.up_by is not None:
        state.next_up_check = next_local(now, plan.up_by, plan.zone)
    summary.start(state, now)


def _earliest(state: HomeState) -> tuple[datetime, int] | None:
    best: tuple[datetime, int] | None = None
    if state.rules is None:
        state.rules = rules_for(state.plan)
    for index, (due_fn, _) in enumerate(state.rules):
        due = due_fn(state)
        if due is not None and (best is None or due < best[0]):
            best = (due, index)
    return best


def _fire_due(state: HomeState, until: datetime, out: Out) -> None:
    """Fire every deadline up to `until`, each at its own instant (or now, if late).

    Leaves the next deadline in `state.next_due`, so a step with nothing due
    costs one look at a cached instant instead of asking every rule.
    """
    while True:
        best = _earliest(state)
        if best is None or best[0] > until:
            state.next_due = best[0] if best else None
            return
        assert state.clock is not None
        state.clock = max(state.clock, best[0])
        assert state.rules is not None
        state.rules[best[1]][1](state, state.clock, out)


def _apply_event(state: HomeState, event: SensorEvent, out: Out) -> None:
    device = state.plan.devices.get(event.device)
    if device is None or event.home != state.plan.home:
        return  # the shell dead-letters these before they reach the engine
    dev = state.device(event.device)
    if dev.heard_at is None or event.at > dev.heard_at:
        dev.heard_at = event.at
    sensor_checks.seen(state, device, dev, event, out)
    kind = event.kind
    if kind is EventKind.AVAILABILITY:
        _on_availability(state, device, dev, event, out)
    elif kind is EventKind.BATTERY:
        _on_battery(state, device, dev, event, out)
    elif kind is EventKind.BUTTON and care.is_company_action(state, event.action):
        care.on_company_action(state, event.at, state.clock or event.at, PRESS_DEBOUNCE)
    elif kind is EventKind.BUTTON:
        _on_press(state, device, event.at, out)
    elif kind is EventKind.MOTION:
        _on_motion(state, device, dev, event, out)
    elif _is_stale(dev, event):
        _on_stale_reading(state, device, dev, event)
    else:
        dev.value, dev.value_at = bool(event.value), event.at
        if kind is EventKind.BED:
            _on_bed(state, event.at, out)
        elif kind is EventKind.DOOR and device.exit:
            _on_exit_door(state, device, bool(event.value), event.at)
        elif kind is EventKind.DOOR and event.value:
            _on_interior_door(state, device, event.at, out)
    heard = kind is not EventKind.AVAILABILITY and _heard_again(state, device.id, dev, event.at)
    if heard and state.service:
        lifecycle.clear_condition(
            state, AlertKind.DEVICE_OFFLINE, state.clock or event.at,
            reasons.device_back(device), out, device=device.id,
        )


def _heard_again(state: HomeState, device_id: str, dev: DeviceState, at: datetime) -> bool:
    """A reading newer than an "offline" report means the device is back."""
    if not dev.online and (dev.availability_at is None or at > dev.availability_at):
        dev.online, dev.offline_since = True, None
        state.offline.discard(device_id)
    return dev.online


def _is_stale(dev: DeviceState, event: SensorEvent) -> bool:
    if dev.value_at is None:
        return False
    return event.at < dev.value_at or (event.at == dev.value_at and event.value == dev.value)


def _on_stale_reading(state: HomeState, device: DevicePlan, dev: DeviceState, ev: SensorEvent) -> None:
    """Delivered after a newer reading: only a missed night exit still matters."""
    late_exit = device.exit and ev.value is True and dev.value is False and dev.value_at
    if late_exit and state.exit_watch is None and _watching_exits(state, ev.at):
        state.exit_watch = ExitWatch(device.id, ev.at, closed_at=dev.value_at)


def _watching_exits(state: HomeState, at: datetime) -> bool:
    plan = state.plan
    return plan.exit_within is not None and plan.night.contains(at) and not plan.away_at(at)


def _coming_home(state: HomeState) -> bool:
    """The door opens after an exit, with no sign of anyone inside since it closed."""
    since = state.out_since
    if since is None:
        return False
    in_bed_since = state.bed_occupied or (state.left_bed_at is not None and state.left_bed_at > since)
    seen = in_bed_since or (state.last_inside_at is not None and state.last_inside_at > since)
    return not seen


def _on_exit_door(state: HomeState, device: DevicePlan, is_open: bool, at: datetime) -> None:
    """Opening: going out (watched at night), or coming home (never watched)."""
    watch = state.exit_watch
    if is_open:
        returning = _coming_home(state)
        state.out_since, state.leaving = None, not returning
        if watch is None and not returning and _watching_exits(state, at):
            state.exit_watch = ExitWatch(device.id, at)
        elif watch is not None:
            watch.closed_at = None
        return
    if state.leaving:
        state.out_since, state.leaving = at, False
    if watch is not None:
        watch.closed_at = at


def _on_interior_door(state: HomeState, device: DevicePlan, at: datetime, out: Out) -> None:
    """An inside door opening is someone moving about: the same as motion, for every rule."""
    if state.last_motion_at is not None and at <= state.last_motion_at:
        return
    state.last_motion_at = at
    _signs_of_life(state, at, device, out)


def _on_bed(state: HomeState, at: datetime, out: Out) -> None:
    beds = (d for i, d in state.devices.items() if state.plan.devices[i].kind is EventKind.BED)
    occupied = any(d.value for d in beds)
    if occupied == state.bed_occupied:
        return
    first_reading, state.bed_occupied = state.bed_occupied is None, occupied
    summary.on_bed(state, occupied, at)
    now = state.clock or at
    if occupied:
        state.up_night_end = None
        _signs_of_life(state, at, None, out)
        plan = state.plan
        lifecycle.clear_condition(state, AlertKind.OUT_OF_BED_TOO_LONG, now, reasons.back_in_bed(plan), out)
        lifecycle.clear_condition(state, AlertKind.NOT_IN_BED_BY, now, reasons.in_bed_now(plan), out)
        return
    if first_reading:
        return  # never seen in bed: this is not "getting up", nothing to time yet
    state.left_bed_at = at
    night = state.plan.night.night_at(at)
    state.up_night_end = night[1] if night else None
    lifecycle.clear_condition(state, AlertKind.NOT_UP_BY, now, reasons.up_now(state.plan), out)


def _on_motion(state: HomeState, device: DevicePlan, dev: DeviceState, ev: SensorEvent, out: Out) -> None:
    if dev.value_at is None or ev.at >= dev.value_at:
        dev.value, dev.value_at = bool(ev.value), ev.at
    if not ev.value:
        return
    if state.last_motion_at is not None and ev.at <= state.last_motion_at:
        return  # an older or repeated detection adds nothing
    state.last_motion_at = ev.at
    _signs_of_life(state, ev.at, device, out)


def _signs_of_life(state: HomeState, at: datetime, where: DevicePlan | None, out: Out) -> None:
    """The person is moving (or in bed): stillness and a pending exit watch end."""
    if state.last_inside_at is None or at > state.last_inside_at:
        state.last_inside_at = at
    now = state.clock or at
    in_bed = where is None and state.bed_occupied
    said = reasons.back_in_bed(state.plan) if in_bed else reasons.movement_seen(state.plan, where)
    if in_bed or ends_stillness(state, at, now):
        lifecycle.clear_condition(state, AlertKind.STILL_WHILE_UP, now, said, out)
    watch = state.exit_watch
    if watch is None:
        return
    # back inside: seen after the door closed (or, with it still open, after the alert)
    since = watch.closed_at if watch.closed_at is not None else watch.raised_at
    if since is not None and at > since:
        state.exit_watch = None
        if watch.raised_at is not None:
            lifecycle.clear_condition(state, AlertKind.NOT_BACK_AFTER_EXIT, now, said, out)


def _on_press(state: HomeState, button: DevicePlan, at: datetime, out: Out) -> None:
    last = state.last_press_at
    if last is not None and abs(at - last) < PRESS_DEBOUNCE:
        return  # the same press, redelivered or pressed again in a hurry
    state.last_press_at = at if last is None else max(last, at)
    now = state.clock or at
    if state.safety is not None:
        reason = reasons.im_ok(state.plan, button)
        lifecycle.resolve(state, state.safety, now, "person", reason, out, by=state.plan.person)
    else:
        reason = reasons.help_requested(state.plan, button, at)
        lifecycle.raise_alert(state, AlertKind.HELP_REQUESTED, now, reason, out)
    _signs_of_life(state, at, button, out)


def _on_availability(
    state: HomeState, device: DevicePlan, dev: DeviceState, ev: SensorEvent, out: Out
) -> None:
    if dev.availability_at is not None and ev.at < dev.availability_at:
        return
    dev.availability_at = ev.at
    online = bool(ev.value)
    if online != dev.online:
        dev.online = online
        dev.offline_since = None if online else ev.at
        if online:
            state.offline.discard(device.id)
        else:
            state.offline.add(device.id)
    if online:  # also when it was never reported offline: a silence past its heartbeat has ended
        lifecycle.clear_condition(
            state, AlertKind.DEVICE_OFFLINE, state.clock or ev.at,
            reasons.device_back(device), out, device=device.id,
        )


def _on_battery(
    state: HomeState, device: DevicePlan, dev: DeviceState, ev: SensorEvent, out: Out
) -> None:
    if dev.battery_at is not None and ev.at < dev.battery_at:
        return
    dev.battery, dev.battery_at = int(ev.value), ev.at
    now = state.clock or ev.at
    if dev.battery <= LOW_BATTERY and not dev.battery_low:
        dev.battery_low = True
        reason = reasons.low_battery(state.plan, device, dev.battery)
        lifecycle.raise_alert(state, AlertKind.LOW_BATTERY, now, reason, out, device=device.id)
    elif dev.battery >= BATTERY_REPLACED and dev.battery_low:
        dev.battery_low = False
        reason = reasons.battery_replaced(device, dev.battery)
        lifecycle.clear_condition(state, AlertKind.LOW_BATTERY, now, reason, out, device=device.id)
