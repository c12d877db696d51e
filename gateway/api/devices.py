"""For engineers: every home's devices with last seen, battery and availability; dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from gateway.access import caller
from gateway.accounts import Principal
from gateway.api.context import ApiContext, context
from gateway.api.problems import responses

router = APIRouter(tags=["devices"])


class DeviceInfo(BaseModel):
    home: str = Field(examples=["julie-12-oak-road"])
    device: str = Field(examples=["front-door"])
    kind: str = Field(examples=["door"])
    room: str = Field(examples=["hall"])
    online: bool
    last_seen: str | None = Field(None, examples=["2026-12-01T02:10:00+00:00"])
    silent_for_s: float | None = Field(None, description="seconds since anything was heard")
    battery: int | None = Field(None, examples=[87])
    battery_low: bool = False


class DevicePage(BaseModel):
    items: list[DeviceInfo]
    next_cursor: str | None = None


class DeadLetter(BaseModel):
    received_at: str
    topic: str = Field(examples=["zigbee2mqtt/julie-12-oak-road/kettle"])
    payload: str
    reason: str = Field(examples=["unknown device 'kettle' in home julie-12-oak-road"])
    code: str = Field(examples=["unknown_device"])


def _device_rows(ctx: ApiContext, home: str, now: datetime) -> list[dict[str, Any]]:
    rt = ctx.runtime.homes[home]
    rows = []
    for device_id, plan in rt.plan.devices.items():
        state = rt.state.devices.get(device_id)
        heard = state.heard_at if state else None
        rows.append({"home": home, "device": device_id, "kind": plan.kind.value, "room": plan.room,
                     "online": state.online if state else True,
                     "last_seen": heard.isoformat() if heard else None,
                     "silent_for_s": (now - heard).total_seconds() if heard else None,
                     "battery": state.battery if state else None,
                     "battery_low": state.battery_low if state else False})
    return rows


def _is_silent(row: dict[str, Any], minutes: int) -> bool:
    silent = row["silent_for_s"]
    return not row["online"] or silent is None or silent >= minutes * 60


@router.get("/devices", response_model=DevicePage, summary="Devices of my homes, by home",
            responses=responses(401, 403))
def devices(ctx: Annotated[ApiContext, Depends(context)], who: Annotated[Principal, Depends(caller)],
            home: Annotated[str | None, Query(max_length=100)] = None,
            silent_for: Annotated[int | None, Query(ge=0, le=100_000, description="only devices offline, "
                                                    "never heard, or silent this many minutes")] = None,
            cursor: Annotated[str | None, Query(max_length=300)] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
    now = ctx.clock.now()
    homes = who.visible(ctx.runtime.homes) if home is None else [
        h for h in [home] if who.sees(h) and h in ctx.runtime.homes]
    page: list[dict[str, Any]] = []
    for h in homes:
        if cursor is not None and h < cursor.partition("/")[0]:
            continue
        for row in _device_rows(ctx, h, now):
            if cursor is not None and f"{h}/{row['device']}" <= cursor:
                continue
            if silent_for is None or _is_silent(row, silent_for):
                page.append(row)
        if len(page) > limit:
            break
    last = page[limit - 1] if len(page) > limit else None
    return {"items": page[:limit], "next_cursor": f"{last['home']}/{last['device']}" if last else None}


@router.get("/dead-letters", response_model=list[DeadLetter], summary="Messages that could not be used",
            responses=responses(401, 403))
def dead_letters(ctx: Annotated[ApiContext, Depends(context)],
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    return [{"received_at": r.received_at.isoformat(), "topic": r.topic, "payload": r.payload,
             "reason": r.reason, "code": r.code} for r in list(ctx.runtime.dead_letters)[-limit:]]
