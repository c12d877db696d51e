"""A home's change history: every version with who, when and why; a diff; restore."""

from __future__ import annotations

import difflib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from gateway.access import caller, not_found
from gateway.accounts import Principal
from gateway.api.context import ApiContext, context
from gateway.api.homes import SavedHome, saved
from gateway.api.problems import responses
from gateway.home_admin import is_tombstone, redacted
from gateway.store.base import ConfigVersion

router = APIRouter(tags=["homes"])
Number = Annotated[int, Path(ge=1, le=1_000_000)]


class VersionInfo(BaseModel):
    version: int = Field(examples=[2])
    saved_at: str = Field(examples=["2026-12-01T10:00:00+00:00"])
    saved_by: str = Field(examples=["ana"])
    why: str = Field(examples=["Julie wants more time: she sometimes makes tea"])
    deleted: bool = False


class Version(VersionInfo):
    config: dict[str, Any] = Field(description="notification URLs redacted")


class Change(BaseModel):
    field: str = Field(examples=["routine.out_of_bed.alert_after"])
    before: Any = Field(examples=["45m"])
    after: Any = Field(examples=["1h"])


class Diff(BaseModel):
    home: str
    version: int
    against: int
    changes: list[Change]
    unified: str = Field(description="the two versions as YAML-like text, as a unified diff")


def _info(v: ConfigVersion) -> dict[str, Any]:
    return {"version": v.version, "saved_at": v.saved_at.isoformat(), "saved_by": v.saved_by, "why": v.why,
            "deleted": is_tombstone(v)}


async def _version(ctx: ApiContext, home: str, number: int) -> ConfigVersion:
    found = await ctx.store.home_config_version(home, number)
    if found is None:
        raise not_found(f"version {number} of this home")
    return found


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Field paths as `tecmon check-config` names them: `contacts[0].name`, `routine.night.from`."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    old, new = flatten(before), flatten(after)
    return [{"field": f, "before": old.get(f), "after": new.get(f)}
            for f in sorted(set(old) | set(new)) if old.get(f) != new.get(f)]


@router.get("/homes/{home}/versions", response_model=list[VersionInfo], summary="Every saved version",
            responses=responses(401, 403, 404))
async def list_versions(home: str, ctx: Annotated[ApiContext, Depends(context)]) -> list[dict[str, Any]]:
    history = await ctx.store.home_config_history(home)
    if not history:
        raise not_found()
    return [_info(v) for v in history]


@router.get("/homes/{home}/versions/{n}", response_model=Version, summary="One version",
            responses=responses(401, 403, 404))
async def get_version(home: str, n: Number, ctx: Annotated[ApiContext, Depends(context)]) -> dict[str, Any]:
    found = await _version(ctx, home, n)
    return {**_info(found), "config": redacted(found.config)}


@router.get("/homes/{home}/versions/{n}/diff", response_model=Diff,
            summary="What changed from another version (the one before, by default)",
            responses=responses(401, 403, 404))
async def diff_version(home: str, n: Number, ctx: Annotated[ApiContext, Depends(context)],
                       against: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> dict[str, Any]:
    other = against if against is not None else max(1, n - 1)
    new = redacted((await _version(ctx, home, n)).config)
    old = redacted((await _version(ctx, home, other)).config)
    text = [json.dumps(c, indent=2, sort_keys=True, ensure_ascii=False).splitlines() for c in (old, new)]
    unified = "\n".join(difflib.unified_diff(text[0], text[1], f"version {other}", f"version {n}",
                                             lineterm=""))
    return {"home": home, "version": n, "against": other, "changes": changes(old, new), "unified": unified}


class Restore(BaseModel):
    why: str | None = Field(None, max_length=500, examples=["the shorter time woke Sam twice"])


@router.post("/homes/{home}/versions/{n}/restore", response_model=SavedHome,
             summary="Make an earlier version current again (as a new version)",
             responses=responses(401, 403, 404, 409, 422))
async def restore_version(home: str, n: Number, ctx: Annotated[ApiContext, Depends(context)],
                          who: Annotated[Principal, Depends(caller)],
                          body: Restore | None = None) -> dict[str, Any]:
    result = await ctx.homes.restore(home, n, who.display, body.why if body else None)
    return saved(result)
