"""A home's past: one night ready to chart, a summary of many nights, and the what-if preview.

Everything here is read from the store (events in the order they were
applied, lifecycle steps as recorded) and computed by `gateway.history`; the
live state is never touched. Nights are named by the local date they start
on, in the home's current night window and time zone; "the last N nights"
end with the last night that has finished by the service clock.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import date as Date
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from alerts.homeconfig import ConfigError
from gateway.access import not_found
from gateway.api.context import ApiContext, context
from gateway.api.problems import responses
from gateway.history import summary as figures
from gateway.history.nights import (
    TRACKED,
    Night,
    last_completed,
    night_chart,
    night_index,
    night_of_date,
    nights_ending,
)
from gateway.history.preview import company_inputs, preview, proposed_config
from gateway.runtime import HomeRuntime
from gateway.store.base import EventRow, StepRow, Store

router = APIRouter(tags=["history"])
LOOKBACK = timedelta(days=30)
"""How far back a device's last reading is looked for, to know its state when a night began."""
BED_LEAD = timedelta(hours=12)
"""Bed readings read before the first night of a summary, to see when the person went to bed."""
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
T = "2026-01-12T23:40:00+00:00"


class Interval(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    device: str = Field(examples=["bed"])
    from_: str = Field(alias="from", examples=["2026-01-12T22:41:00+00:00"])
    to: str = Field(examples=["2026-01-13T02:10:00+00:00"], description="clipped to the night's window")
    minutes: float = Field(examples=[209.0])


class Door(Interval):
    exit: bool = Field(examples=[True])


class Moment(BaseModel):
    device: str = Field(examples=["hall-motion"])
    at: str = Field(examples=[T])


class StepOut(BaseModel):
    step: str = Field(examples=["notified"])
    at: str = Field(examples=[T])
    contact: str | None = Field(None, examples=["Sam (daughter)"])
    reason: str = Field(examples=["Julie has been out of bed for 45 minutes (since 01:29)."])
    late: bool = False


class NightAlert(BaseModel):
    alert: str = Field(examples=["julie:20260113T021400Z:out_of_bed_too_long"])
    kind: str = Field(examples=["out_of_bed_too_long"])
    raised_at: str = Field(examples=["2026-01-13T02:14:00+00:00"])
    reason: str
    steps: list[StepOut]


class Window(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from", examples=["2026-01-12T22:00:00+00:00"])
    to: str = Field(examples=["2026-01-13T07:30:00+00:00"])


class NightChart(BaseModel):
    home: str = Field(examples=["julie"])
    date: str = Field(examples=["2026-01-12"], description="the local date the night starts on")
    timezone: str = Field(examples=["Europe/London"])
    window: Window
    in_bed: list[Interval] = Field(description="bed occupied")
    doors: list[Door] = Field(description="door open")
    motion: list[Moment]
    buttons: list[Moment]
    offline: list[Interval] = Field(description="a device reported offline")
    alerts: list[NightAlert] = Field(description="raised from the night's start until the next night's")


class NightCount(BaseModel):
    date: str = Field(examples=["2026-01-12"])
    alerts: int = Field(examples=[1])
    kinds: dict[str, int] = Field(examples=[{"out_of_bed_too_long": 1}])


class KindOutcomes(BaseModel):
    kind: str = Field(examples=["out_of_bed_too_long"])
    alerts: int = Field(examples=[4])
    false_alarm: int = Field(examples=[2])
    needed_help: int = Field(examples=[1])
    no_action_needed: int = Field(examples=[0])
    other: int = Field(examples=[0])
    cleared: int = Field(examples=[1], description="resolved by the condition clearing")
    by_person: int = Field(examples=[0], description="the person pressed their button: I'm OK")
    open: int = Field(examples=[0])
    false_alarm_share: float | None = Field(examples=[0.667], description="of the alerts a carer judged")


class AckTimes(BaseModel):
    contact: str = Field(examples=["Sam (daughter)"])
    count: int = Field(examples=[3])
    median_s: float = Field(examples=[140.0])
    p90_s: float = Field(examples=[420.0])


class Bucket(BaseModel):
    from_minutes: int = Field(examples=[15])
    to_minutes: int | None = Field(examples=[30], description="null: and longer")
    count: int = Field(examples=[6])


class OutOfBed(BaseModel):
    count: int = Field(examples=[11])
    buckets: list[Bucket]


class Summary(BaseModel):
    home: str = Field(examples=["julie"])
    first: str = Field(examples=["2026-01-01"])
    last: str = Field(examples=["2026-01-14"], description="the last night that has finished")
    nights: list[NightCount]
    nights_without_alert: int = Field(examples=[12])
    outcomes: list[KindOutcomes]
    acknowledge: list[AckTimes]
    out_of_bed: OutOfBed
    bedtime: str | None = Field(examples=["22:41"], description="median, local time")
    rising: str | None = Field(examples=["07:05"], description="median, local time")
    nights_with_sleep: int = Field(examples=[14])


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    routine: dict[str, Any] | None = Field(None, examples=[{"night": {"from": "22:00", "to": "07:30"},
                                                            "out_of_bed": {"alert_after": "30m"}}])
    config: dict[str, Any] | None = Field(None, description="a whole home configuration (same home id)")
    nights: int = Field(14, ge=1, le=90)


class WouldRaise(BaseModel):
    kind: str = Field(examples=["out_of_bed_too_long"])
    at: str = Field(examples=["2026-01-13T02:14:00+00:00"])
    reason: str = Field(examples=["Julie has been out of bed for 30 minutes (since 01:44)."])


class PreviewNight(BaseModel):
    date: str = Field(examples=["2026-01-12"])
    current: list[WouldRaise]
    proposed: list[WouldRaise]


class PreviewTotals(BaseModel):
    current: int = Field(examples=[0])
    proposed: int = Field(examples=[1])


class Preview(BaseModel):
    nights: list[PreviewNight]
    totals: PreviewTotals


def _home(ctx: ApiContext, home: str) -> HomeRuntime:
    rt = ctx.runtime.homes.get(home)
    if rt is None:
        raise not_found()
    return rt


def _day(text: str) -> Date:
    try:
        if _DAY.match(text):
            return Date.fromisoformat(text)
    except ValueError:
        pass
    raise ConfigError("path", [f"date: expected a date like 2026-01-12 (YYYY-MM-DD), got {text!r}"])


async def _alerts(store: Store, home: str, nights: Sequence[Night]) -> list[list[StepRow]]:
    """Every alert raised in these nights, each with all its steps (acknowledged later too)."""
    steps = await store.home_steps_between(home, nights[0].start, nights[-1].until + timedelta(days=1))
    grouped: dict[str, list[StepRow]] = {}
    for s in steps:
        grouped.setdefault(s.alert, []).append(s)
    return [g for g in grouped.values() if g[0].step == "raised" and night_index(nights, g[0].at) is not None]


async def _prior(store: Store, rt: HomeRuntime, before: datetime, kinds: Sequence[str]) -> list[EventRow]:
    """Each device's last reading of each kind before `before` (its state at that moment)."""
    found = []
    for device in rt.plan.devices.values():
        for kind in {device.kind.value, "availability"} & set(kinds):
            row = await store.home_last_reading(rt.plan.home, device.id, kind, before, before - LOOKBACK)
            if row is not None:
                found.append(row)
    return found


@router.get("/homes/{home}/nights/{date}", response_model=NightChart, response_model_by_alias=True,
            summary="One night, ready to chart", responses=responses(401, 403, 404, 422))
async def get_night(home: str, date: str, ctx: Annotated[ApiContext, Depends(context)]) -> dict[str, Any]:
    rt = _home(ctx, home)
    night = night_of_date(rt.plan.night, _day(date))
    events = await ctx.store.home_events_between(home, night.start, night.end)
    prior = await _prior(ctx.store, rt, night.start, tuple(TRACKED))
    return night_chart(rt.plan, night, prior, events, await _alerts(ctx.store, home, [night]))


@router.get("/homes/{home}/summary", response_model=Summary, summary="The last N nights in figures",
            responses=responses(401, 403, 404, 422))
async def get_summary(home: str, ctx: Annotated[ApiContext, Depends(context)],
                      nights: Annotated[int, Query(ge=1, le=90)] = 14) -> dict[str, Any]:
    rt = _home(ctx, home)
    span = nights_ending(rt.plan.night, last_completed(rt.plan.night, ctx.clock.now()), nights)
    alerts = await _alerts(ctx.store, home, span)
    since = span[0].start - BED_LEAD
    beds = await ctx.store.home_kind_events_between(home, "bed", since, span[-1].until)
    initial = {r.device: bool(r.value) for r in await _prior(ctx.store, rt, since, ("bed",))}
    occupied = figures.in_bed(beds, initial, since)
    counts = figures.per_night(span, alerts)
    return {"home": home, "first": span[0].day.isoformat(), "last": span[-1].day.isoformat(),
            "nights": counts, "nights_without_alert": sum(1 for c in counts if not c["alerts"]),
            "outcomes": figures.outcomes(alerts), "acknowledge": figures.acknowledge_times(alerts),
            "out_of_bed": figures.out_of_bed(span, occupied),
            **figures.sleep_times(span, occupied, since, rt.plan.zone)}


@router.post("/homes/{home}/preview", response_model=Preview,
             summary="What the current and a proposed routine would have raised on the stored nights",
             responses=responses(401, 403, 404, 422))
async def post_preview(home: str, body: PreviewBody, ctx: Annotated[ApiContext, Depends(context)]
                       ) -> dict[str, Any]:
    rt = _home(ctx, home)
    current = rt.config
    proposed = proposed_config(current, body.routine, body.config)
    now = ctx.clock.now()
    span = nights_ending(rt.plan.night, last_completed(rt.plan.night, now), body.nights + 1)
    until = min(now, span[-1].until)
    rows = await ctx.store.home_events_between(home, span[0].start, until)  # one night more: a known start
    company = company_inputs(await ctx.store.home_inputs_between(home, span[0].start, until), home)
    # The engine work is CPU-bound: off the event loop, so live messages keep flowing meanwhile.
    return await asyncio.to_thread(preview, current, proposed, span[1:], rows, until, company=company)
