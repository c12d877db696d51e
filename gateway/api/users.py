"""Accounts, for an admin: list, add, remove. Passwords are write-only; hashes never leave."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from gateway.access import not_found, problem
from gateway.accounts import AccountError
from gateway.api.context import ApiContext, context
from gateway.api.problems import responses
from gateway.store.accounts import AccountExists, Role, UserRow

router = APIRouter(tags=["users"])


class User(BaseModel):
    name: str = Field(examples=["sam"])
    role: Role = Field(examples=["carer"])
    homes: list[str] = Field(default_factory=list, examples=[["julie-12-oak-road"]])
    contact: str | None = Field(None, examples=["Sam (daughter)"])


class NewUser(User):
    password: str = Field(min_length=10, max_length=1000, examples=["correct horse battery"],
                          json_schema_extra={"writeOnly": True})


def user_out(user: UserRow) -> dict[str, Any]:
    return {"name": user.name, "role": user.role, "homes": list(user.homes), "contact": user.contact}


@router.get("/users", response_model=list[User], summary="Every account", responses=responses(401, 403))
async def list_users(ctx: Annotated[ApiContext, Depends(context)]) -> list[dict[str, Any]]:
    return [user_out(u) for u in await ctx.store.list_users()]


@router.post("/users", response_model=User, status_code=201, summary="Add an account",
             responses=responses(401, 403, 409, 422))
async def add_user(body: NewUser, ctx: Annotated[ApiContext, Depends(context)]) -> dict[str, Any]:
    try:
        user = await ctx.accounts.add_user(body.name, body.role, tuple(body.homes), body.contact,
                                           body.password)
    except AccountExists as exc:
        raise problem(409, "Conflict", str(exc)) from None
    except AccountError as exc:
        raise problem(422, "Invalid", str(exc)) from None
    return user_out(user)


@router.delete("/users/{name}", status_code=204, summary="Remove an account and its machine tokens",
               responses=responses(401, 403, 404))
async def remove_user(name: str, ctx: Annotated[ApiContext, Depends(context)]) -> Response:
    if not await ctx.store.remove_user(name):
        raise not_found("user")
    return Response(status_code=204)
