"""The engineer's page: every device of my homes with last seen, battery and availability; a filter
for the silent ones; the messages that could not be used, with why.

The rows are those of `GET /devices` and `GET /dead-letters`, paged the same
way (by home/device cursor), so 10,000 homes are never drawn at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from gateway.access import caller
from gateway.accounts import Principal
from gateway.api.context import ApiContext, context
from gateway.api.devices import dead_letters, devices
from gateway.web.pages.common import ago, render

router = APIRouter(include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Principal, Depends(caller)]
PAGE_SIZE = 50
SILENT_CHOICES = ((None, "All devices"), (10, "Offline or silent 10 min+"), (60, "Offline or silent 1 hour+"),
                  (1440, "Offline or silent 1 day+"))
"""'Silent' includes never heard since the service started: a sensor that says nothing is not fine."""


def _state(row: dict[str, Any], silent_for: int | None) -> tuple[str, str]:
    """(words, css): what an engineer needs first: offline, never heard, quiet, fine."""
    if not row["online"]:
        return "offline", "state-offline"
    if row["last_seen"] is None:
        return "never heard", "state-silent"
    if silent_for is not None and row["silent_for_s"] >= silent_for * 60:
        return "silent", "state-silent"
    return "online", "state-online"


def _row(row: dict[str, Any], now: datetime, silent_for: int | None) -> dict[str, Any]:
    words, css = _state(row, silent_for)
    seen = ago(datetime.fromisoformat(row["last_seen"]), now) if row["last_seen"] else "never"
    low = " (low)" if row["battery_low"] else ""
    battery = "" if row["battery"] is None else f"{row['battery']} %{low}"
    return {**row, "state": words, "css": css, "seen": seen, "battery_text": battery or "not reported"}


@router.get("/devices/page", response_class=HTMLResponse)
def devices_page(request: Request, ctx: Ctx, who: Who,
                 silent: Annotated[int | None, Query(ge=0, le=100_000)] = None,
                 cursor: Annotated[str | None, Query(max_length=300)] = None) -> HTMLResponse:
    found = devices(ctx, who, home=None, silent_for=silent, cursor=cursor, limit=PAGE_SIZE)
    now = ctx.clock.now()
    letters = dead_letters(ctx, limit=20) if who.role in ("admin", "engineer") else []
    return render(request, ctx, "devices.html", who, current="devices",
                  rows=[_row(r, now, silent) for r in found["items"]], next_cursor=found["next_cursor"],
                  first_page=cursor is None, silent=silent, choices=SILENT_CHOICES,
                  letters=[{**d, "seen": ago(datetime.fromisoformat(d["received_at"]), now)}
                           for d in reversed(letters)], show_letters=who.role in ("admin", "engineer"))
