"""One night of a home as a timeline: bed, doors, movement, button presses, offline sensors, alerts,
and when someone was with the person (company mode).

The data is the chart `GET /homes/{home}/nights/{date}` gives; here it is
drawn as inline SVG on the server (no script, no chart library) and listed
again in words below it, which is also what a screen reader reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date as Date
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from alerts.decisions import AlertKind
from alerts.messages import WHAT_HAPPENED
from gateway.access import caller
from gateway.accounts import Principal
from gateway.api.context import ApiContext, context
from gateway.api.history import get_night
from gateway.history.nights import company_spans, night_of_date
from gateway.web.pages.common import render
from gateway.web.pages.steps import step_words

router = APIRouter(include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(caller)]
WIDTH, LEFT, RIGHT = 640, 78, 630
ROWS = ("Bed", "Doors", "Movement", "Button", "Offline", "Company", "Alerts")
ROW_H, TOP = 34, 26


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    y: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    y: float
    css: str
    title: str


class Scale:
    def __init__(self, start: datetime, end: datetime, zone: Any) -> None:
        self.start, self.end, self.zone = start, end, zone

    def x(self, at: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        share = min(1.0, max(0.0, (at - self.start).total_seconds() / span))
        return round(LEFT + share * (RIGHT - LEFT), 1)

    def local(self, at: datetime) -> str:
        return f"{at.astimezone(self.zone):%H:%M}"

    def hours(self) -> list[tuple[float, str]]:
        """A grid line on every local hour (every second one on long nights)."""
        hour = self.start.astimezone(self.zone).replace(minute=0, second=0, microsecond=0)
        first = hour + timedelta(hours=1)
        step = 1 if self.end - self.start <= timedelta(hours=10) else 2
        out, at = [], first
        while at < self.end:
            out.append((self.x(at), f"{at:%H}"))
            at += timedelta(hours=step)
        return out


def _row(index: int) -> float:
    return TOP + index * ROW_H


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _bars(scale: Scale, spans: list[dict[str, Any]], row: int, css: Any, what: Any) -> list[Bar]:
    bars = []
    for span in spans:
        start, end = _when(span["from"]), _when(span["to"])
        x = scale.x(start)
        bars.append(Bar(x, max(2.0, scale.x(end) - x), _row(row) + 6, css(span),
                        f"{what(span)} {scale.local(start)}–{scale.local(end)}"))
    return bars


def _what(kind: str) -> str:
    try:
        return WHAT_HAPPENED.get(AlertKind(kind), kind)
    except ValueError:
        return kind


def _lines(scale: Scale, chart: dict[str, Any], person: str) -> list[tuple[datetime, str]]:
    """The same night in words, in time order."""
    out = []
    for s in chart.get("company", []):
        ended = f"ended by {s['ended_by']}" if s["ended_by"] else "its time ran out"
        out.append((_when(s["from"]), f"someone with {person} (company, started by {s['by']}) until "
                    f"{scale.local(_when(s['to']))}: {ended}"))
    for s in chart["in_bed"]:
        until = scale.local(_when(s["to"]))
        out.append((_when(s["from"]), f"in bed until {until} ({round(s['minutes'])} min)"))
    for s in chart["doors"]:
        out.append((_when(s["from"]), f"{s['device']} open{' (exit)' if s['exit'] else ''} until "
                    f"{scale.local(_when(s['to']))}"))
    for m in chart["buttons"]:
        out.append((_when(m["at"]), f"{m['device']} pressed"))
    for s in chart["offline"]:
        out.append((_when(s["from"]), f"{s['device']} offline until {scale.local(_when(s['to']))}"))
    for a in chart["alerts"]:
        steps = "; ".join(f"{step_words(st, person)} at {scale.local(_when(st['at']))}"
                          for st in a["steps"][1:])
        out.append((_when(a["raised_at"]), f"alert: {_what(a['kind'])}. {a['reason']}"
                    + (f" ({steps})" if steps else "")))
    if chart["motion"]:
        first, last = _when(chart["motion"][0]["at"]), _when(chart["motion"][-1]["at"])
        out.append((first, f"movement seen {len(chart['motion'])} times, until {scale.local(last)}"))
    return sorted(out, key=lambda pair: pair[0])


def drawing(chart: dict[str, Any], zone: Any, person: str = "") -> dict[str, Any]:
    scale = Scale(_when(chart["window"]["from"]), _when(chart["window"]["to"]), zone)
    bars = _bars(scale, chart["in_bed"], 0, lambda s: "bed", lambda s: "in bed")
    bars += _bars(scale, chart["doors"], 1, lambda s: "door-exit" if s["exit"] else "door",
                  lambda s: f"{s['device']} open")
    bars += _bars(scale, chart["offline"], 4, lambda s: "offline", lambda s: f"{s['device']} offline")
    bars += _bars(scale, chart.get("company", []), 5, lambda s: "company", lambda s: f"someone with {person}")
    ticks = [Tick(scale.x(_when(m["at"])), _row(2), "motion", f"{m['device']} {scale.local(_when(m['at']))}")
             for m in chart["motion"]]
    presses = [Tick(scale.x(_when(m["at"])), _row(3), "button-press", f"{m['device']} pressed "
                    f"{scale.local(_when(m['at']))}") for m in chart["buttons"]]
    alerts = [Tick(scale.x(_when(a["raised_at"])), _row(6), "alert", f"{_what(a['kind'])} at "
                   f"{scale.local(_when(a['raised_at']))}") for a in chart["alerts"]]
    return {"width": WIDTH, "height": TOP + len(ROWS) * ROW_H + 8, "left": LEFT, "right": RIGHT,
            "rows": [(name, _row(i)) for i, name in enumerate(ROWS)], "row_h": ROW_H, "top": TOP,
            "hours": scale.hours(), "bars": bars, "ticks": ticks, "presses": presses, "alerts": alerts,
            "lines": [(scale.local(at), text) for at, text in _lines(scale, chart, person)],
            "from": scale.local(scale.start), "to": scale.local(scale.end)}


@router.get("/homes/{home}/nights/{date}/page", response_class=HTMLResponse)
async def night_page(home: str, date: str, request: Request, ctx: Ctx, who: Who) -> HTMLResponse:
    chart = await get_night(home, date, ctx)
    rt = ctx.runtime.homes[home]
    day = Date.fromisoformat(chart["date"])
    chart["company"] = await _company(ctx, home, day)
    after = day + timedelta(days=1)
    started = night_of_date(rt.plan.night, after).start <= ctx.clock.now()  # no link to a night to come
    return render(request, ctx, "night.html", who, current="homes", home=home, person=rt.plan.person,
                  day=day, previous=(day - timedelta(days=1)).isoformat(),
                  next=after.isoformat() if started else None,
                  can_edit=who.role in ("admin", "coordinator"),
                  svg=drawing(chart, rt.plan.zone, rt.plan.person))


async def _company(ctx: ApiContext, home: str, day: Date) -> list[dict[str, Any]]:
    """Company mode in this night, from the stored inputs (a carer's, or the routine's button action)."""
    plan = ctx.runtime.homes[home].plan
    if plan.company is None:
        return []
    night = night_of_date(plan.night, day)
    inputs = await ctx.store.home_inputs_between(home, night.start - plan.company.lasts, night.end)
    return company_spans(inputs, night, plan.company.lasts)
