"""Company mode through the API: a carer says someone is with the person, or has left.

It is an input to the engine like an acknowledgement, recorded as the
signed-in person (never a name sent in the body), so a restart rebuilds it
and `tecmon replay` shows it as `{"ts", "company": true|false, "by"}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from alerts import care
from alerts.events import SetCompany
from gateway.access import caller, not_found, problem
from gateway.accounts import Principal
from gateway.api.context import ApiContext, context
from gateway.api.problems import responses

if TYPE_CHECKING:
    from gateway.commands import CommandRouter

router = APIRouter(tags=["homes"])


class CompanyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on: bool = Field(examples=[True], description="true: someone is with the person; false: they left")


class CompanyState(BaseModel):
    home: str
    company: bool
    until: str | None = Field(None, description="when company mode ends by itself (UTC)")


@router.post("/homes/{home}/company", response_model=CompanyState,
             summary="Someone is with the person (company mode), or has left",
             responses=responses(401, 403, 404, 409, 422, 503))
async def set_company(home: str, body: CompanyBody, ctx: Annotated[ApiContext, Depends(context)],
                      who: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    if ctx.commands is not None:  # `ingest: nats`: the instance that runs the home applies it
        return await _at_owner(ctx, ctx.commands, home, SetCompany(body.on, who.display))
    runtime = ctx.runtime.homes.get(home)
    if runtime is None:
        raise not_found()
    if runtime.plan.company is None:
        raise _no_company()
    ctx.runtime.apply(home, SetCompany(body.on, who.display))
    state = ctx.runtime.homes[home].state
    on = care.company_on(state, ctx.clock.now())
    until = state.company_until.isoformat() if on and state.company_until else None
    return {"home": home, "company": on, "until": until}


async def _at_owner(ctx: ApiContext, commands: CommandRouter, home: str, inp: SetCompany) -> dict[str, Any]:
    """Checked against the configuration every instance knows; answered with the owner's state."""
    from gateway.commands import Command

    known = ctx.homes.runtime.homes.get(home)  # run here or by another instance
    if known is None:
        raise not_found()
    if known.config.routine.company is None:
        raise _no_company()
    done = await commands.apply(Command.of(inp, home))
    if done.outcome == "unknown_home":
        raise not_found()
    if done.outcome != "applied":
        raise problem(503, "Service Unavailable", "The home is changing hands; try again shortly.")
    return {"home": home, "company": bool(done.until), "until": done.until or None}


def _no_company() -> HTTPException:
    return problem(409, "Conflict", "This home's routine has no company mode (routine.company).")
