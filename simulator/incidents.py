"""The built-in scenarios: what each one injects, and its ground truth in contract terms.

Every builder writes events on the timeline and returns the conditions it
caused, read straight off the contract's rule semantics (left bed at T with
no movement: stillness holds from T + still_while_up, if inside the night),
never by asking the engine.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from alerts.events import EventKind
from simulator import groundtruth as gt
from simulator.night import MINUTE, SECOND, Reading, asleep, evening, morning, place, roles
from simulator.personas import motion_devices
from simulator.scenarios import Ctx, Outcome, ScenarioError, scenario

Cond = gt.Condition


def still_conditions(ctx: Ctx, left: datetime, activity: list[datetime],
                     back: datetime | None) -> list[Cond]:
    """Stillness over one up-period: every quiet stretch from leaving bed or the last activity."""
    marks = [left, *sorted(a for a in activity if a > left and (back is None or a < back))]
    ends: list[datetime | None] = [*marks[1:], back]
    found = []
    for start, stop in zip(marks, ends, strict=True):
        onset = gt.still_onset(ctx.home, left, start)
        if onset is not None and (stop is None or onset < stop):
            found.append(Cond("still_while_up", onset, stop))
    return found


def _first(conditions: list[Cond]) -> Cond:
    live = [c for c in conditions if c.onset is not None]
    if not live:
        raise ScenarioError("this home's routine would raise nothing for this scenario")
    return min(live, key=lambda c: c.onset or datetime.max)


def _ends_after(ctx: Ctx, at: datetime | None, minutes: int = 40) -> datetime:
    base = at or ctx.times.night[1]
    return base + minutes * MINUTE + ctx.secs(7, 173)


def _exit(ctx: Ctx) -> str:
    exits = roles(ctx.home).exits
    ctx.need(exits, "a door with exit: true")
    return ctx.rng.choice(exits)


def _room_of(ctx: Ctx, device: str) -> tuple[str, ...]:
    found = ctx.home.device(device)
    return ((found.room,) if found and found.room else ()) + ctx.rooms


@scenario("normal", "an ordinary night of the persona: no alert")
def normal(ctx: Ctx) -> Outcome:
    times = ctx.times
    evening(ctx.tl, ctx.persona, ctx.rng, times)
    asleep(ctx.tl, ctx.persona, ctx.rng, (times.bedtime, times.wake), ctx.avoid)
    morning(ctx.tl, ctx.persona, ctx.rng, times.wake, times.end)
    return Outcome(times.end)


def _fall(ctx: Ctx, left: datetime, stir: bool) -> tuple[list[datetime], list[Cond]]:
    """Out of bed at `left`, perhaps one movement, then nothing: the person is on the floor."""
    ctx.tl.bed(left, False)
    moved: list[datetime] = []
    sensors = motion_devices(ctx.home, ctx.rooms)
    if stir and sensors:
        moved.append(left + ctx.secs(20, 90))
        ctx.tl.motion(sensors[0], moved[0])
    return moved, [Cond("out_of_bed_too_long", gt.out_of_bed_onset(ctx.home, left))]


@scenario("fall", "out of bed, no return, no movement: stillness, out-of-bed joins, escalation")
def fall(ctx: Ctx) -> Outcome:
    left = ctx.pick(2 * timedelta(hours=1))
    ctx.sleep_until(left)
    moved, conds = _fall(ctx, left, stir=ctx.rng.random() < 0.5)
    conds += still_conditions(ctx, left, moved, None)
    return Outcome(_ends_after(ctx, _first(conds).onset), tuple(conds))


@scenario("fall-found", "a fall; the night responder acknowledges, comes in, helps back to bed")
def fall_found(ctx: Ctx) -> Outcome:
    left = ctx.pick(timedelta(hours=2, minutes=30))
    ctx.sleep_until(left)
    moved, conds = _fall(ctx, left, stir=ctx.rng.random() < 0.5)
    first = _first(conds + still_conditions(ctx, left, moved, None))
    assert first.onset is not None
    escalation = ctx.home.escalation
    repeat = int(escalation.repeat_every.total_seconds())
    ack = first.onset + escalation.ack_within + ctx.secs(30, max(31, repeat - 30))
    by = ctx.send_at(first.onset, ack)
    ctx.tl.command(ack, ack=first.kind, by=by)
    arrive = ack + ctx.secs(480, 900)
    if conds[0].onset is not None:
        arrive = max(arrive, conds[0].onset + ctx.secs(60, 180))
    exits = roles(ctx.home).exits
    if exits:
        ctx.tl.door(exits[0], arrive, ctx.secs(10, 20))
    in_bed = arrive + ctx.secs(360, 720)
    helping = ctx.up(arrive + 20 * SECOND, in_bed + 5 * MINUTE)
    ctx.tl.bed(in_bed, True)
    conds = [Cond(c.kind, c.onset, in_bed) for c in conds]
    conds += still_conditions(ctx, left, moved + helping, in_bed)
    actions = (gt.Action(ack, "ack", by),)
    return Outcome(in_bed + ctx.secs(180, 420), tuple(conds), actions)


def _night_exit(ctx: Ctx, left: datetime, door: str) -> tuple[datetime, list[datetime]]:
    """Up, a few movements towards the door, out; returns (door opened, movements)."""
    ctx.tl.bed(left, False)
    opened = left + ctx.secs(120, 300)
    moved = ctx.up(left, opened - 20 * SECOND, _room_of(ctx, door))
    ctx.tl.door(door, opened, ctx.secs(8, 30))
    return opened, moved


def _exit_conditions(ctx: Ctx, left: datetime, opened: datetime, moved: list[datetime],
                     seen: datetime | None, in_bed: datetime | None) -> list[Cond]:
    conds = [Cond("not_back_after_exit", gt.exit_onset(ctx.home, opened), seen),
             Cond("out_of_bed_too_long", gt.out_of_bed_onset(ctx.home, left), in_bed)]
    return conds + still_conditions(ctx, left, moved, in_bed)


@scenario("wandering", "out through the exit door at night and not back: escalation")
def wandering(ctx: Ctx) -> Outcome:
    door = _exit(ctx)
    left = ctx.pick(timedelta(hours=2))
    ctx.sleep_until(left)
    opened, moved = _night_exit(ctx, left, door)
    conds = _exit_conditions(ctx, left, opened, moved, None, None)
    return Outcome(_ends_after(ctx, _first(conds).onset, 45), tuple(conds))


def _come_back(ctx: Ctx, door: str, at: datetime, moved: list[datetime]) -> tuple[datetime, datetime]:
    """Back through the door, moving about, back to bed; returns (first movement, in bed)."""
    ctx.tl.door(door, at, ctx.secs(8, 20))
    in_bed = at + ctx.secs(180, 360)
    inside = ctx.up(at + 20 * SECOND, in_bed - 30 * SECOND, _room_of(ctx, door))
    if not inside:
        raise ScenarioError("coming back needs a motion sensor to be seen by")
    moved += inside
    ctx.tl.bed(in_bed, True)
    return inside[0], in_bed


@scenario("wandering-back", "out at night, back after the alert: raised, escalated, resolved")
def wandering_back(ctx: Ctx) -> Outcome:
    door = _exit(ctx)
    left = ctx.pick(timedelta(hours=1, minutes=30))
    ctx.sleep_until(left)
    opened, moved = _night_exit(ctx, left, door)
    due = gt.exit_onset(ctx.home, opened) or opened + 15 * MINUTE
    seen, in_bed = _come_back(ctx, door, due + ctx.secs(600, 1500), moved)
    conds = _exit_conditions(ctx, left, opened, moved, seen, in_bed)
    return Outcome(ctx.rest_of_night(in_bed), tuple(conds))


@scenario("exit-back-in-time", "out at night, back before the exit rule's time: no alert")
def exit_back_in_time(ctx: Ctx) -> Outcome:
    door = _exit(ctx)
    rule = ctx.home.routine.exit_door
    ctx.need(rule and rule.alert_if_not_back_within >= 6 * MINUTE, "routine.exit_door of 6m or more")
    assert rule is not None
    left = ctx.pick(timedelta(hours=1))
    ctx.sleep_until(left)
    opened, moved = _night_exit(ctx, left, door)
    latest = int((rule.alert_if_not_back_within - 150 * SECOND).total_seconds())
    seen, in_bed = _come_back(ctx, door, opened + ctx.secs(90, latest), moved)
    conds = _exit_conditions(ctx, left, opened, moved, seen, in_bed)
    return Outcome(ctx.rest_of_night(in_bed), tuple(conds))


@scenario("restless", "a restless sleeper: many bed blips and sitting up a while: no alert")
def restless(ctx: Ctx) -> Outcome:
    times, rng = ctx.times, ctx.rng
    evening(ctx.tl, ctx.persona, rng, times)
    limits = [r.alert_after for r in (ctx.home.routine.still_while_up, ctx.home.routine.out_of_bed) if r]
    longest = min([*limits, timedelta(minutes=13)]) - 5 * MINUTE
    conds: list[Cond] = []
    for _ in range(2):
        length = ctx.secs(120, max(121, int(longest.total_seconds())))
        inner = (times.bedtime + 30 * MINUTE, times.wake - 30 * MINUTE)
        sat_up = place(rng, inner, length, ctx.avoid)
        if sat_up is not None:
            ctx.tl.bed(sat_up, False)
            ctx.tl.bed(sat_up + length, True)
            conds += still_conditions(ctx, sat_up, [], sat_up + length)
    asleep(ctx.tl, ctx.persona, rng, (times.bedtime, times.wake), ctx.avoid, blips=rng.randint(15, 25))
    morning(ctx.tl, ctx.persona, rng, times.wake, times.end)
    return Outcome(times.end, tuple(conds))


@scenario("not-to-bed", "still up at the in-bed-by time, to bed later: raised, escalated, resolved")
def not_to_bed(ctx: Ctx) -> Outcome:
    check = ctx.times.in_bed_check
    ctx.need(check, "routine.in_bed_by")
    assert check is not None
    in_bed = check + ctx.secs(20 * 60, 40 * 60)
    evening(ctx.tl, ctx.persona, ctx.rng, ctx.times, until=in_bed)
    ctx.tl.bed(in_bed, True)
    return Outcome(ctx.rest_of_night(in_bed), (Cond("not_in_bed_by", check, in_bed),))


@scenario("oversleeping", "still in bed at the up-by time: raised, escalated, resolved on rising")
def oversleeping(ctx: Ctx) -> Outcome:
    check, times = ctx.times.up_check, ctx.times
    ctx.need(check, "routine.up_by")
    assert check is not None
    evening(ctx.tl, ctx.persona, ctx.rng, times)
    asleep(ctx.tl, ctx.persona, ctx.rng, (times.bedtime, min(times.wake, times.night[1])), ctx.avoid)
    up = check + ctx.secs(15 * 60, 40 * 60)
    morning(ctx.tl, ctx.persona, ctx.rng, up, up + timedelta(hours=1))
    return Outcome(up + timedelta(hours=1), (Cond("not_up_by", check, up),))


def _ordinary(ctx: Ctx) -> None:
    times = ctx.times
    evening(ctx.tl, ctx.persona, ctx.rng, times)
    asleep(ctx.tl, ctx.persona, ctx.rng, (times.bedtime, times.wake), ctx.avoid)
    morning(ctx.tl, ctx.persona, ctx.rng, times.wake, times.end)


@scenario("sensor-offline", "a device reports offline for a while: the service desk is told")
def sensor_offline(ctx: Ctx) -> Outcome:
    device = ctx.rng.choice(roles(ctx.home).devices)
    after = ctx.home.routine.device_offline_after
    went = ctx.pick(after + 40 * MINUTE)
    back = went + after + ctx.secs(300, 1500)
    ctx.avoid.append((went - 10 * MINUTE, back + 10 * MINUTE))
    ctx.quiet[device] = (went - MINUTE, back)
    _ordinary(ctx)
    ctx.tl.add(device, EventKind.AVAILABILITY, False, went)
    ctx.tl.add(device, EventKind.AVAILABILITY, True, back)
    issue = gt.ServiceIssue("device_offline", device, went + after, back)
    return Outcome(ctx.times.end, issues=(issue,))


@scenario("low-battery", "a battery reports 15% or less at night: the service desk is told in daytime")
def low_battery(ctx: Ctx) -> Outcome:
    device = ctx.rng.choice(roles(ctx.home).devices)
    at = ctx.pick(10 * MINUTE)
    level = ctx.rng.randint(5, 15)
    ctx.battery[device] = (at, level)
    _ordinary(ctx)
    ctx.tl.add(device, EventKind.BATTERY, level, at)
    return Outcome(ctx.times.end, issues=(gt.ServiceIssue("low_battery", device, at),))


@scenario("im-ok", "up too long, alert sent, the person presses the button: resolved by the person")
def im_ok(ctx: Ctx) -> Outcome:
    rule = ctx.home.routine.out_of_bed
    ctx.need(rule and roles(ctx.home).button, "routine.out_of_bed and a button")
    assert rule is not None
    left = ctx.pick(rule.alert_after + 40 * MINUTE)
    ctx.sleep_until(left)
    ctx.tl.bed(left, False)
    due = gt.out_of_bed_onset(ctx.home, left)
    ctx.need(due, "an out-of-bed time that ends inside the night")
    assert due is not None
    ack_secs = int(ctx.home.escalation.ack_within.total_seconds())
    pressed = due + ctx.secs(45, max(46, ack_secs - 45))
    in_bed = pressed + ctx.secs(120, 360)
    moved = ctx.up(left, in_bed - 30 * SECOND)
    ctx.tl.press(pressed)
    ctx.tl.bed(in_bed, True)
    conds = [Cond("out_of_bed_too_long", due, in_bed),
             Cond("out_of_bed_too_long", gt.out_of_bed_onset(ctx.home, left, pressed), in_bed)]
    conds += still_conditions(ctx, left, [*moved, pressed], in_bed)
    actions = (gt.Action(pressed, "press", ctx.home.person.name),)
    return Outcome(ctx.rest_of_night(in_bed), tuple(conds), actions)


@scenario("help-button", "the help button pressed in bed: raised, acknowledged, resolved by the carer")
def help_button(ctx: Ctx) -> Outcome:
    ctx.need(roles(ctx.home).button and ctx.home.contacts, "a button and a contact")
    pressed = ctx.pick(40 * MINUTE)
    ack_secs = int(ctx.home.escalation.ack_within.total_seconds())
    ack = pressed + ctx.secs(60, max(61, ack_secs - 40))
    done = ack + ctx.secs(300, 900)
    by = ctx.home.contacts[0].name
    ctx.avoid.append((pressed - 10 * MINUTE, done + 10 * MINUTE))
    _ordinary(ctx)
    ctx.tl.press(pressed)
    ctx.tl.command(ack, ack="help_requested", by=by)
    ctx.tl.command(done, resolve="help_requested", by=by, outcome="went round: all fine, pressed by mistake")
    actions = (gt.Action(pressed, "press", ctx.home.person.name), gt.Action(ack, "ack", by),
               gt.Action(done, "resolve", by))
    return Outcome(ctx.times.end, actions=actions)


@scenario("duplicates", "wandering-back with QoS 1 redeliveries of many messages: no extra alert")
def duplicates(ctx: Ctx) -> Outcome:
    outcome = wandering_back(ctx)

    def redeliver() -> None:
        for item in list(ctx.tl.items):
            if isinstance(item, Reading) and ctx.rng.random() < 0.3:
                ctx.tl.items.append(Reading(item.event, item.received + ctx.secs(1, 20)))

    ctx.delivery.append(redeliver)
    return outcome


@scenario("out-of-order", "wandering where the door's opening arrives after its closing, plus late messages")
def out_of_order(ctx: Ctx) -> Outcome:
    outcome = wandering(ctx)
    left = min(c.onset for c in outcome.conditions if c.onset) - 2 * timedelta(hours=1)
    check = ctx.times.in_bed_check

    def late(item: Reading) -> Reading | None:
        event = item.event
        if event.kind is EventKind.DOOR and event.value and event.at > left:
            return Reading(event, item.received + ctx.secs(35, 45))  # after the close
        near_check = check is not None and abs(event.at - check) < 10 * MINUTE
        if event.at < left and not near_check and ctx.rng.random() < 0.15:
            return Reading(event, item.received + ctx.secs(5, 60))
        return None

    def reorder() -> None:
        items = ctx.tl.items
        for index, item in enumerate(items):
            if isinstance(item, Reading) and (moved := late(item)) is not None:
                items[index] = moved

    ctx.delivery.append(reorder)
    return outcome


def _fall_at_night_end(ctx: Ctx) -> Outcome:
    """Up near the end of the night: stillness raised, out-of-bed falls after the night ends."""
    routine, end_of_night = ctx.home.routine, ctx.times.night[1]
    ctx.need(routine.still_while_up and routine.out_of_bed, "still_while_up and out_of_bed rules")
    assert routine.still_while_up is not None and routine.out_of_bed is not None
    lo = end_of_night - routine.out_of_bed.alert_after + MINUTE
    hi = min(end_of_night - routine.still_while_up.alert_after, ctx.times.wake) - MINUTE
    ctx.need(lo < hi, "out_of_bed longer than still_while_up, ending after waking")
    left = ctx.pick(timedelta(0), lo, hi)
    ctx.sleep_until(left)
    moved, conds = _fall(ctx, left, stir=False)
    conds += still_conditions(ctx, left, moved, None)
    return Outcome(_ends_after(ctx, _first(conds).onset), tuple(conds))


@scenario("dst-spring", "a fall at the end of the spring-forward night (2026-03-28/29)",
          day=date(2026, 3, 28))
def dst_spring(ctx: Ctx) -> Outcome:
    return _fall_at_night_end(ctx)


@scenario("dst-autumn", "a fall at the end of the fall-back night (2026-10-24/25)",
          day=date(2026, 10, 24))
def dst_autumn(ctx: Ctx) -> Outcome:
    return _fall_at_night_end(ctx)
