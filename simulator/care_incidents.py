"""Scenarios of the care features, ask the person first and company mode, with their ground truth.

Like `simulator.incidents`, each builder writes the events on the timeline
and states what must follow from the contract and the routine alone, never
by asking the engine:

- check_with_me: an alert it covers is raised, the light is asked at once
  (step `asked`) and the first contact is called only at raised + within. A
  press before then is the person's "I'm OK": resolved by them, nobody called.
- company: while someone is with the person (from the routine's button
  action or a carer's input, until the action or input again, or `for`
  passing) no person-safety rule but the call for help raises anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.homeconfig import CheckWithMe, Company, OutOfBed
from simulator import groundtruth as gt
from simulator.incidents import still_conditions
from simulator.night import MINUTE, SECOND, roles
from simulator.scenarios import Ctx, Outcome, ScenarioError, scenario

Cond = gt.Condition


def _ask_rules(ctx: Ctx) -> tuple[CheckWithMe, OutOfBed]:
    routine = ctx.home.routine
    ask, rule = routine.check_with_me, routine.out_of_bed
    ctx.need(ask and rule and roles(ctx.home).button,
             "routine.check_with_me, routine.out_of_bed and a button")
    assert ask is not None and rule is not None
    ctx.need(ask.within >= MINUTE, "routine.check_with_me.within of 1m or more")
    return ask, rule


def _up_too_long(ctx: Ctx, length: timedelta) -> tuple[datetime, datetime]:
    """Asleep, then out of bed for longer than the routine allows; returns (left, raised)."""
    _, rule = _ask_rules(ctx)
    left = ctx.pick(rule.alert_after + length)
    ctx.sleep_until(left)
    ctx.tl.bed(left, False)
    due = gt.out_of_bed_onset(ctx.home, left)
    ctx.need(due, "an out-of-bed time that ends inside the night")
    assert due is not None
    return left, due


def _raised_first(conds: list[Cond], due: datetime) -> None:
    """Moving about keeps the stillness rule quiet, so the out-of-bed alert is the one asked about."""
    first = min((c.onset for c in conds if c.onset is not None), default=None)
    if first != due:
        raise ScenarioError("the person's movements let another alert come first")


@scenario("ask-first-ok", "up too long: the light blinks, the person presses within the time: "
          "resolved by the person, nobody called")
def ask_first_ok(ctx: Ctx) -> Outcome:
    ask, _ = _ask_rules(ctx)
    left, due = _up_too_long(ctx, ask.within + 30 * MINUTE)
    window = int(ask.within.total_seconds())
    pressed = due + ctx.secs(15, max(16, window - 15))  # after seeing the light, inside the window
    in_bed = pressed + ctx.secs(120, 360)
    moved = ctx.up(left, in_bed - 30 * SECOND)
    ctx.tl.press(pressed)
    ctx.tl.bed(in_bed, True)
    conds = [Cond("out_of_bed_too_long", due, in_bed),
             Cond("out_of_bed_too_long", gt.out_of_bed_onset(ctx.home, left, pressed), in_bed)]
    conds += still_conditions(ctx, left, [*moved, pressed], in_bed)
    _raised_first(conds, due)
    actions = (gt.Action(pressed, "press", ctx.home.person.name),)
    return Outcome(ctx.rest_of_night(in_bed), tuple(conds), actions)


@scenario("ask-first-no-answer", "up too long: the light blinks, the person does not press: "
          "the contacts are called from raised + within, resolved when back in bed")
def ask_first_no_answer(ctx: Ctx) -> Outcome:
    ask, _ = _ask_rules(ctx)
    escalation = ctx.home.escalation
    calls = ask.within + escalation.ack_within * max(1, len(ctx.home.contacts) - 1)
    left, due = _up_too_long(ctx, calls + escalation.repeat_every + 20 * MINUTE)
    in_bed = due + calls + ctx.secs(30, max(31, int(escalation.repeat_every.total_seconds()) - 30))
    moved = ctx.up(left, in_bed - 30 * SECOND)
    ctx.tl.bed(in_bed, True)
    conds = [Cond("out_of_bed_too_long", due, in_bed), *still_conditions(ctx, left, moved, in_bed)]
    _raised_first(conds, due)
    return Outcome(ctx.rest_of_night(in_bed), tuple(conds))


def _company_rules(ctx: Ctx) -> tuple[Company, OutOfBed]:
    routine = ctx.home.routine
    company, rule = routine.company, routine.out_of_bed
    ctx.need(company and rule and roles(ctx.home).button,
             "routine.company, routine.out_of_bed and a button")
    assert company is not None and rule is not None
    ctx.need(company.for_ >= rule.alert_after + 50 * MINUTE, "routine.company.for 50m longer than out_of_bed")
    return company, rule


def _company_night(ctx: Ctx, by_button: bool) -> Outcome:
    """A visitor at night: up together past the out-of-bed time, then a call for help in bed.

    The out-of-bed condition starts to hold while someone is there, so it
    raises nothing; the single press asks for help, which company mode never
    holds back; the carer acknowledges and closes it; the visitor leaves.
    """
    company, rule = _company_rules(ctx)
    carer = ctx.home.contacts[0].name if ctx.home.contacts else "a carer"
    start = ctx.pick(company.for_ + 10 * MINUTE)
    ctx.avoid.append((start - 10 * MINUTE, start + company.for_ + 10 * MINUTE))
    ctx.sleep_until(start)
    left = start + ctx.secs(60, 180)
    back = left + rule.alert_after + ctx.secs(300, 900)  # would have alerted, alone
    helped = back + ctx.secs(180, 420)
    ack = helped + ctx.secs(60, max(61, int(ctx.home.escalation.ack_within.total_seconds()) - 40))
    done = ack + ctx.secs(120, 300)
    ended = done + ctx.secs(120, 300)
    if ended >= start + company.for_ - MINUTE:
        raise ScenarioError("routine.company.for is too short for this visit")
    _company(ctx, start, by_button, carer, on=True)
    ctx.tl.bed(left, False)
    moved = ctx.up(left, back - 30 * SECOND)
    ctx.tl.bed(back, True)
    ctx.tl.press(helped)
    ctx.tl.command(ack, ack="help_requested", by=carer)
    ctx.tl.command(done, resolve="help_requested", by=carer, outcome="pressed by mistake: a visitor")
    _company(ctx, ended, by_button, carer, on=False)
    conds = [Cond("out_of_bed_too_long", gt.out_of_bed_onset(ctx.home, left), back),
             *still_conditions(ctx, left, moved, back)]
    actions = (gt.Action(helped, "press", ctx.home.person.name), gt.Action(ack, "ack", carer),
               gt.Action(done, "resolve", carer))
    return Outcome(ctx.rest_of_night(ended + MINUTE), tuple(conds), actions, company=((start, ended),))


def _company(ctx: Ctx, at: datetime, by_button: bool, carer: str, on: bool) -> None:
    if by_button:
        assert ctx.home.routine.company is not None
        ctx.tl.press(at, ctx.home.routine.company.action)  # the same action starts and ends it
    else:
        ctx.tl.command(at, company=on, by=carer)


@scenario("company-button", "someone visits: the routine's button action starts company mode, up "
          "together past the out-of-bed time raises nothing, a call for help still does")
def company_button(ctx: Ctx) -> Outcome:
    return _company_night(ctx, by_button=True)


@scenario("company-carer", "as company-button, with a carer's company input (POST /homes/{home}/company) "
          "starting and ending it")
def company_carer(ctx: Ctx) -> Outcome:
    return _company_night(ctx, by_button=False)


@scenario("company-ends-up", "company mode ends while the person is still up: the out-of-bed time "
          "counts from its end; raised, called, resolved when back in bed")
def company_ends_up(ctx: Ctx) -> Outcome:
    company, rule = _company_rules(ctx)
    start = ctx.pick(company.for_ + rule.alert_after + 30 * MINUTE)
    ctx.avoid.append((start - 10 * MINUTE, start + company.for_ + rule.alert_after + 30 * MINUTE))
    ctx.sleep_until(start)
    _company(ctx, start, True, "", on=True)
    left = start + ctx.secs(60, 180)
    ended = left + ctx.secs(20 * 60, 40 * 60)  # the visitor goes; she stays up
    _company(ctx, ended, True, "", on=False)
    due = gt.out_of_bed_onset(ctx.home, left, ended)
    ctx.need(due, "an out-of-bed time that ends inside the night")
    assert due is not None
    in_bed = due + ctx.secs(120, max(121, int(ctx.home.escalation.ack_within.total_seconds()) - 60))
    ctx.tl.bed(left, False)
    moved = ctx.up(left, in_bed - 30 * SECOND)
    ctx.tl.bed(in_bed, True)
    conds = [Cond("out_of_bed_too_long", due, in_bed)]
    conds += still_conditions(ctx, ended, moved, in_bed)  # stillness, too, counts from the end
    return Outcome(ctx.rest_of_night(in_bed), tuple(conds), company=((start, ended),))
