"""Homes: list, read, create, change, delete. Changes take effect in the running engine at once.

Bodies carry the home configuration in its contract shape (the same as the
YAML files) and a `why`; contact notification URLs are write-only and come
back redacted. A file-managed home is read-only here (409, naming its file).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from alerts.describe import explain
from gateway.access import caller, not_found
from gateway.accounts import Principal
from gateway.api.context import ApiContext, context
from gateway.api.problems import responses
from gateway.home_admin import Saved, redacted

router = APIRouter(tags=["homes"])

EXAMPLE_CONFIG: dict[str, Any] = {
    "home": "julie-12-oak-road", "timezone": "Europe/London",
    "person": {"name": "Julie", "in_my_words": "I get up for the loo once or twice and sometimes make tea."},
    "devices": [{"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed", "room": "bedroom"}],
    "routine": {"night": {"from": "22:00", "to": "07:30"}, "out_of_bed": {"alert_after": "45m"}},
    "contacts": [{"name": "Sam (daughter)", "notify": ["ntfy://tecmon-julie"]}],
}


class HomeSummary(BaseModel):
    home: str = Field(examples=["julie-12-oak-road"])
    person: str | None = Field(examples=["Julie"], description="null for engineers")
    devices: list[str] = Field(examples=[["bed", "front-door"]])
    source: str = Field(examples=["database"], description="'database' (edited here) or 'file' (read-only)")


class HomePage(BaseModel):
    items: list[HomeSummary]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")


class HomeDetail(BaseModel):
    home: str
    source: str
    editable: bool
    config: dict[str, Any] = Field(examples=[EXAMPLE_CONFIG], description="notification URLs redacted")
    in_plain_words: list[str] = Field(examples=[["Night: 22:00 to 07:30 (Europe/London local time)."]])


class HomeChange(BaseModel):
    config: dict[str, Any] = Field(examples=[EXAMPLE_CONFIG])
    why: str = Field(min_length=1, max_length=500, examples=["set up with Julie and Sam"])


class SavedHome(BaseModel):
    home: str = Field(examples=["julie-12-oak-road"])
    version: int = Field(examples=[3])
    in_plain_words: list[str]


def saved(result: Saved) -> dict[str, Any]:
    return {"home": result.home, "version": result.version, "in_plain_words": explain(result.config)}


@router.get("/homes", response_model=HomePage, summary="The homes I may see, by id",
            responses=responses(401))
def list_homes(ctx: Annotated[ApiContext, Depends(context)], who: Annotated[Principal, Depends(caller)],
               cursor: Annotated[str | None, Query(max_length=200)] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    known = ctx.homes.runtime.homes  # with `ingest: nats`, also the homes other instances run
    ids = [h for h in who.visible(known) if cursor is None or h > cursor]
    page = ids[:limit]
    items = []
    for home in page:
        devices, person = _summary(known[home])
        items.append({"home": home, "devices": devices, "source": ctx.homes.source(home),
                      "person": None if who.role == "engineer" else person})
    return {"items": items, "next_cursor": page[-1] if len(ids) > limit else None}


def _summary(entry: Any) -> tuple[list[str], str]:
    """Devices and person of a home run here (its compiled plan) or parked (its configuration)."""
    plan = getattr(entry, "plan", None)
    if plan is not None:
        return list(plan.devices), str(plan.person)
    cfg = entry.config
    return [d.id for d in cfg.devices], str(cfg.person.name)


@router.get("/homes/{home}", response_model=HomeDetail, summary="One home, its routine in plain words",
            responses=responses(401, 403, 404))
def get_home(home: str, ctx: Annotated[ApiContext, Depends(context)]) -> dict[str, Any]:
    rt = ctx.homes.runtime.homes.get(home)  # run here, or (`ingest: nats`) by another instance
    if rt is None:
        raise not_found()
    cfg = rt.config
    return {"home": home, "source": ctx.homes.source(home), "editable": ctx.homes.source(home) == "database",
            "config": redacted(cfg.model_dump(mode="json", by_alias=True)), "in_plain_words": explain(cfg)}


@router.post("/homes", response_model=SavedHome, status_code=201, summary="Create a home (database-managed)",
             responses=responses(401, 403, 409, 422))
async def create_home(body: HomeChange, ctx: Annotated[ApiContext, Depends(context)],
                      who: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    result = await ctx.homes.create(body.config, who.display, body.why)
    if who.homes is not None and result.home not in who.homes:  # it joins the coordinator's caseload
        user = await ctx.store.get_user(who.name)
        if user is not None:
            await ctx.store.set_user_homes(who.name, (*user.homes, result.home))
    return saved(result)


@router.put("/homes/{home}", response_model=SavedHome, summary="Change a home; applies at once",
            responses=responses(401, 403, 404, 409, 422))
async def change_home(home: str, body: HomeChange, ctx: Annotated[ApiContext, Depends(context)],
                      who: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    return saved(await ctx.homes.update(home, body.config, who.display, body.why))


class Deleted(BaseModel):
    home: str
    version: int = Field(description="the version that records the deletion")


@router.delete("/homes/{home}", response_model=Deleted, summary="Stop watching a home (kept in history)",
               responses=responses(401, 403, 404, 409, 422))
async def delete_home(home: str, ctx: Annotated[ApiContext, Depends(context)],
                      who: Annotated[Principal, Depends(caller)],
                      why: Annotated[str, Query(min_length=1, max_length=500)]) -> dict[str, Any]:
    return {"home": home, "version": await ctx.homes.delete(home, who.display, why)}
