"""Scenarios of sensors that fail without going offline, with their ground truth.

Like `simulator.incidents`, each builder writes the events on the timeline
and states what must follow from the contract and the routine alone, never
by asking the engine.
"""

from __future__ import annotations

from datetime import datetime

from simulator import groundtruth as gt
from simulator.night import MINUTE, evening, roles, up_and_about
from simulator.scenarios import Ctx, Outcome, scenario


@scenario("stuck-bed", "the bed sensor sticks at occupied: not up by is raised and closed by a carer, "
          "and bed_occupied_max after bedtime the service desk is told; fixed, it says empty")
def stuck_bed(ctx: Ctx) -> Outcome:
    """Julie gets up as usual, but the bed goes on saying occupied from bedtime on.

    Contract: at up_by the bed still says occupied, so not_up_by is raised and
    the first contact called; they acknowledge and close it ("she is up: the
    bed sensor is stuck"). At bedtime + bed_occupied_max the service desk is
    told (bed_occupied_too_long); an engineer reseats the strap later and the
    bed says empty, which clears it. Movement all morning keeps every other
    rule quiet, and the bed saying nothing in between means nothing restarts.
    """
    times, home = ctx.times, ctx.home
    check = times.up_check
    ctx.need(check, "routine.up_by")
    assert check is not None
    evening(ctx.tl, ctx.persona, ctx.rng, times)  # the bed says occupied at bedtime, and sticks
    limit = home.routine.bed_occupied_max
    stuck = times.bedtime + limit
    ctx.need(check + 30 * MINUTE < stuck, f"up_by well before bedtime + {limit}")
    first = home.contacts[0].name if home.contacts else home.service_contacts[0].name
    ack = check + ctx.secs(120, 480)  # before anyone else is called
    done = ack + ctx.secs(120, 600)
    ctx.tl.command(ack, ack="not_up_by", by=first)
    ctx.tl.command(done, resolve="not_up_by", by=first, outcome="she is up: the bed sensor is stuck")
    fixed = stuck + ctx.secs(1200, 3600)
    _up_all_day(ctx, times.wake, fixed)
    ctx.tl.bed(fixed, False)
    end = fixed + 10 * MINUTE
    conditions = (gt.Condition("not_up_by", check, None),)
    actions = (gt.Action(ack, "ack", first), gt.Action(done, "resolve", first))
    issue = gt.ServiceIssue("bed_occupied_too_long", roles(home).bed, stuck, fixed)
    return Outcome(end, conditions, actions, (issue,))


def _up_all_day(ctx: Ctx, wake: datetime, until: datetime) -> None:
    """Moving about from waking until the engineer comes: no bed reading, no doors."""
    rooms = tuple(dict.fromkeys(r for t in ctx.persona.trips for r in t.rooms)) + ctx.persona.evening_rooms
    up_and_about(ctx.tl, ctx.persona, ctx.rng, wake, until - MINUTE, rooms)
