"""Health, readiness, metrics, the schema, and signing in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from gateway.access import caller, problem
from gateway.accounts import LoginRefused, Principal
from gateway.api.context import ApiContext, context
from gateway.api.problems import responses

router = APIRouter()
CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    mqtt_connected: bool
    homes: int = Field(examples=[1])


class Readiness(BaseModel):
    ready: bool
    mqtt_connected: bool
    store_reachable: bool
    recovered: bool = Field(description="start-up recovery from the stored history is done")


class Token(BaseModel):
    access_token: str = Field(examples=["eyJhbGciOiJIUzI1NiIs..."])
    token_type: str = Field("bearer", examples=["bearer"])
    expires_in: int = Field(examples=[1800], description="seconds")


class Me(BaseModel):
    name: str = Field(examples=["sam"])
    role: str = Field(examples=["carer"])
    homes: list[str] | None = Field(examples=[["julie-12-oak-road"]], description="null: every home")
    contact: str | None = Field(examples=["Sam (daughter)"])


@router.get("/healthz", response_model=Health, summary="Liveness")
def healthz(ctx: Annotated[ApiContext, Depends(context)]) -> dict[str, Any]:
    return {"status": "ok", "mqtt_connected": ctx.mqtt_state.get("connected", False),
            "homes": len(ctx.runtime.homes)}


@router.get("/readyz", response_model=Readiness, summary="Ready to watch homes",
            responses={503: {"model": Readiness, "description": "not ready yet"}})
def readyz(ctx: Annotated[ApiContext, Depends(context)]) -> JSONResponse:
    state = {"mqtt_connected": ctx.mqtt_state.get("connected", False),
             "store_reachable": ctx.store.is_open and ctx.store_up(),
             "recovered": ctx.ready.get("recovered", False)}
    ready = all(state.values())
    return JSONResponse({"ready": ready, **state}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"example": "tecmon_homes_loaded 1.0\n"}}},
                       **responses(401, 403)})
def prometheus(ctx: Annotated[ApiContext, Depends(context)]) -> Response:
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.post("/auth/token", response_model=Token, summary="Sign in (OAuth2 password flow)",
             responses=responses(401, 422, 429))
async def token(request: Request, ctx: Annotated[ApiContext, Depends(context)],
                username: Annotated[str, Form(min_length=1, max_length=200)],
                password: Annotated[str, Form(min_length=1, max_length=1000)]) -> dict[str, Any]:
    address = request.client.host if request.client else "unknown"
    try:
        user = await ctx.accounts.login(username, password, address)
    except LoginRefused as refused:
        if refused.retry_after_s is not None:
            raise problem(429, "Too many attempts", str(refused),
                          {"Retry-After": str(refused.retry_after_s)}) from None
        raise problem(401, "Not signed in", str(refused), {"WWW-Authenticate": "Bearer"}) from None
    access, seconds = ctx.accounts.issue(user)
    return {"access_token": access, "token_type": "bearer", "expires_in": seconds}


@router.get("/me", response_model=Me, summary="Who I am signed in as", responses=responses(401))
def me(who: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    return {"name": who.name, "role": who.role, "contact": who.contact,
            "homes": None if who.homes is None else sorted(who.homes)}


@router.get("/openapi.json", summary="This API's OpenAPI schema", include_in_schema=False)
def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())
