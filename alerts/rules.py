"""The timed rules: when each one is next due, and what happens when it is.

Every rule is a pair: `*_due(state)` returns the instant it must be looked at
(or None), and `fire_*(state, at, out)` decides at that instant. Deadlines are
computed from event times with UTC arithmetic, so they are exact across
daylight-saving changes; the night window is checked at the deadline itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from alerts import reasons
from alerts.decisions import AlertKind, Decision
from alerts.events import EventKind
from alerts.lifecycle import notify_due, raise_alert, send_due
from alerts.nights import next_local
from alerts.plan import HomePlan
from alerts.sensor_checks import fire_silent, fire_stuck, silent_due, stuck_due
from alerts.state import DeviceState, HomeState
from alerts.summary import fire_summary, summary_due

Out = list[Decision]


def _up_period_start(
    state: HomeState, mark: datetime | None, other: datetime | None = None
) -> datetime | None:
    """Start of the current out-of-bed period (restarted by `mark`/`other`), if up at night."""
    start = state.left_bed_at
    if state.bed_occupied is not False or state.up_night_end is None or start is None:
        return None
    alone = state.company_until  # company mode: timing resumes when she is alone again
    if alone is not None and alone > start:
        start = alone
    if mark is not None and mark > start:
        start = mark
    if other is not None and other > start:
        start = other
    return start


def out_of_bed_due(state: HomeState) -> datetime | None:
    after = state.plan.out_of_bed_after
    start = _up_period_start(state, state.last_press_at)
    if after is None or start is None or start == state.out_of_bed_done_for:
        return None
    due = start + after
    return due if state.up_night_end is not None and due < state.up_night_end else None


def fire_out_of_bed(state: HomeState, at: datetime, out: Out) -> None:
    start = _up_period_start(state, state.last_press_at)
    after = state.plan.out_of_bed_after
    assert start is not None and after is not None and state.left_bed_at is not None
    state.out_of_bed_done_for = start
    reason = reasons.out_of_bed(state.plan, state.left_bed_at, start + after, after)
    raise_alert(state, AlertKind.OUT_OF_BED_TOO_LONG, at, reason, out)


def still_due(state: HomeState) -> datetime | None:
    after = state.plan.still_after
    start = _up_period_start(state, state.last_motion_at, state.last_press_at)
    if after is None or start is None or start == state.still_done_for:
        return None
    due = start + after
    return due if state.up_night_end is not None and due < state.up_night_end else None


def ends_stillness(state: HomeState, at: datetime, now: datetime) -> bool:
    """Movement at `at` ends "up and not moving" only if it is recent enough that the stillness
    has not lasted the routine's limit again since. A late report of movement long ago (a hub
    catching up after an outage, a redelivery) would otherwise give the carer an all-clear and,
    at once, the same alert again."""
    after = state.plan.still_after
    return after is None or at + after > now


def fire_still(state: HomeState, at: datetime, out: Out) -> None:
    start = _up_period_start(state, state.last_motion_at, state.last_press_at)
    after = state.plan.still_after
    assert start is not None and after is not None and state.left_bed_at is not None
    state.still_done_for = start
    reason = reasons.still_while_up(state.plan, start, after, state.left_bed_at)
    raise_alert(state, AlertKind.STILL_WHILE_UP, at, reason, out)


def exit_due(state: HomeState) -> datetime | None:
    watch, within = state.exit_watch, state.plan.exit_within
    if watch is None or within is None or watch.raised_at is not None:
        return None
    return watch.opened_at + within


def _back_inside(state: HomeState) -> bool:
    """Any sign of the person after the door closed: motion, bed, the button."""
    watch = state.exit_watch
    if watch is None or watch.closed_at is None:
        return False
    closed = watch.closed_at
    return bool(
        state.bed_occupied
        or (state.last_motion_at is not None and state.last_motion_at > closed)
        or (state.last_press_at is not None and state.last_press_at > closed)
    )


def fire_exit(state: HomeState, at: datetime, out: Out) -> None:
    watch, within = state.exit_watch, state.plan.exit_within
    assert watch is not None and within is not None
    if _back_inside(state):
        state.exit_watch = None
        return
    watch.raised_at = at
    door = state.plan.devices[watch.door]
    reason = reasons.not_back(state.plan, door, watch.opened_at, within, watch.closed_at)
    raise_alert(state, AlertKind.NOT_BACK_AFTER_EXIT, at, reason, out)


def bed_check_due(state: HomeState) -> datetime | None:
    return state.next_bed_check if state.plan.in_bed_by else None


def _bed_devices(state: HomeState) -> list[DeviceState]:
    plan = state.plan
    return [d for i, d in state.devices.items() if plan.devices[i].kind is EventKind.BED]


def _bed_since(state: HomeState) -> datetime | None:
    """When the bed last changed to what it says now (None: no reading yet)."""
    times = [d.value_at for d in _bed_devices(state) if d.value_at is not None]
    return max(times) if times else None


def _bed_unheard_since(state: HomeState) -> datetime:
    """Since when the bed has said nothing useful: its last message, or the state's start."""
    heard = [d.heard_at for d in _bed_devices(state) if d.heard_at is not None]
    start = state.began_at
    assert start is not None
    return max(heard) if heard else start


def fire_bed_check(state: HomeState, at: datetime, out: Out) -> None:
    """An unknown bed counts as empty here: a person who never went to bed may send nothing."""
    check, by = state.next_bed_check, state.plan.in_bed_by
    assert check is not None and by is not None
    state.next_bed_check = next_local(check, by, state.plan.zone)
    if state.bed_occupied is True:
        return
    if state.bed_occupied is None:
        reason = reasons.not_in_bed_unknown(state.plan, check, _bed_unheard_since(state))
    else:
        reason = reasons.not_in_bed_by(state.plan, check, _bed_since(state))
    raise_alert(state, AlertKind.NOT_IN_BED_BY, at, reason, out)


def up_check_due(state: HomeState) -> datetime | None:
    return state.next_up_check if state.plan.up_by else None


def fire_up_check(state: HomeState, at: datetime, out: Out) -> None:
    """An unknown bed does not raise here; a bed silent all night is a notice to the service."""
    check, by = state.next_up_check, state.plan.up_by
    assert check is not None and by is not None
    state.next_up_check = next_local(check, by, state.plan.zone)
    if state.bed_occupied is True:
        reason = reasons.not_up_by(state.plan, check, _bed_since(state))
        raise_alert(state, AlertKind.NOT_UP_BY, at, reason, out)
    elif state.bed_occupied is None:
        _bed_silent_all_night(state, check, out)


def _bed_silent_all_night(state: HomeState, at: datetime, out: Out) -> None:
    """Not a word from the bed since before last night began (and we were watching)."""
    plan = state.plan
    day = at.astimezone(plan.zone).date()
    starts = [plan.night.night_starting(d)[0] for d in (day, day - timedelta(days=1))]
    night_start = max((s for s in starts if s <= at), default=None)
    unheard = _bed_unheard_since(state)
    began = state.began_at
    if night_start is None or began is None or began > night_start or unheard > night_start:
        return
    for device_id, device in plan.devices.items():
        if device.kind is EventKind.BED:
            reason = reasons.bed_silent(plan, device, unheard)
            raise_alert(state, AlertKind.DEVICE_OFFLINE, at, reason, out, device=device_id)


def _offline_due_for(state: HomeState, device_id: str) -> tuple[datetime, datetime, bool] | None:
    """(due, since, silent) for this device's offline episode, unless already alerted."""
    dev = state.devices.get(device_id)
    if dev is None:
        return None
    plan = state.plan
    heartbeat = plan.devices[device_id].heartbeat
    if not dev.online and dev.offline_since is not None:
        since, silent = dev.offline_since, False
        due = since + plan.offline_after
    elif heartbeat is not None and dev.heard_at is not None:
        since, silent = dev.heard_at, True
        due = since + heartbeat + plan.offline_after
    else:
        return None
    return None if dev.offline_raised_for == due else (due, since, silent)


def _offline_candidates(state: HomeState) -> list[str]:
    """Only devices reported offline or kept to a heartbeat can fall due; not every device."""
    if not state.offline:
        return list(state.plan.heartbeat_devices)
    return sorted(state.offline.union(state.plan.heartbeat_devices))


def offline_due(state: HomeState) -> datetime | None:
    if not state.offline and not state.plan.heartbeat_devices:
        return None
    dues = [found[0] for i in _offline_candidates(state) if (found := _offline_due_for(state, i))]
    return min(dues) if dues else None


def fire_offline(state: HomeState, at: datetime, out: Out) -> None:
    for device_id in _offline_candidates(state):
        found = _offline_due_for(state, device_id)
        if found is None or found[0] > at:
            continue
        due, since, silent = found
        state.devices[device_id].offline_raised_for = due
        device = state.plan.devices[device_id]
        reason = reasons.device_offline(state.plan, device, since, silent)
        raise_alert(state, AlertKind.DEVICE_OFFLINE, at, reason, out, device=device_id)


Rule = tuple[Callable[[HomeState], datetime | None], Callable[[HomeState, datetime, Out], None]]

# Order matters only for ties: the rule listed first names a merged alert.
RULES: tuple[Rule, ...] = (
    (exit_due, fire_exit),
    (out_of_bed_due, fire_out_of_bed),
    (still_due, fire_still),
    (bed_check_due, fire_bed_check),
    (up_check_due, fire_up_check),
    (offline_due, fire_offline),
    (stuck_due, fire_stuck),
    (silent_due, fire_silent),
    (notify_due, send_due),
    (summary_due, fire_summary),
)


def rules_for(plan: HomePlan) -> tuple[Rule, ...]:
    """Only the rules this routine uses are asked for deadlines after every event."""
    wanted: dict[Callable[[HomeState], datetime | None], bool] = {
        exit_due: plan.exit_within is not None,
        out_of_bed_due: plan.out_of_bed_after is not None,
        still_due: plan.still_after is not None,
        bed_check_due: plan.in_bed_by is not None,
        up_check_due: plan.up_by is not None,
        summary_due: bool(plan.summaries),
        stuck_due: any(d.kind is EventKind.BED for d in plan.devices.values()),
        silent_due: any(d.expect_movement is not None for d in plan.devices.values()),
    }
    return tuple(rule for rule in RULES if wanted.get(rule[0], True))
