"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error the API gives has the same shape, so a phone app or a script
reads one format: `type`, `title`, `status`, `detail`, and for validation
problems `errors: [{field, message}]` worded exactly like `tecmon
check-config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from alerts.homeconfig import ConfigError
from gateway.home_admin import HomeProblem

PROBLEM_TYPE = "application/problem+json"
TITLES = {400: "Bad request", 401: "Not signed in", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 410: "Gone", 422: "Invalid",
          429: "Too many attempts", 500: "Internal error", 503: "Unavailable"}


class FieldProblem(BaseModel):
    field: str = Field(examples=["routine.out_of_bed.alert_after"])
    message: str = Field(examples=["expected a duration like 45m, 90s or 1h30m, got '45'"])


class Problem(BaseModel):
    """An RFC 9457 problem; `errors` lists each invalid field."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldProblem] | None = None


def problem_response(status: int, detail: str, title: str | None = None,
                     errors: list[dict[str, str]] | None = None,
                     headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title or TITLES.get(status, "Error"),
                            "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def field_problems(problems: list[str]) -> list[dict[str, str]]:
    """`routine.night.from: expected ...` -> {"field": "routine.night.from", "message": "expected ..."}."""
    out = []
    for text in problems:
        field, sep, message = text.partition(": ")
        out.append({"field": field, "message": message} if sep and " " not in field
                   else {"field": "", "message": text})
    return out


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = getattr(exc, "title", None)
        return problem_response(exc.status_code, str(exc.detail), title, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def request_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _loc(tuple(e["loc"])), "message": str(e["msg"])} for e in exc.errors()]
        return problem_response(422, "The request does not have the expected shape.", errors=errors)

    @app.exception_handler(ConfigError)
    async def config_problem(request: Request, exc: ConfigError) -> JSONResponse:
        return problem_response(422, "The configuration is not valid.", errors=field_problems(exc.problems))

    @app.exception_handler(HomeProblem)
    async def home_problem(request: Request, exc: HomeProblem) -> JSONResponse:
        return problem_response(exc.status, str(exc))


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors a route can give, each with an example."""
    examples = {
        401: "Sign in first: POST /auth/token, then send 'Authorization: Bearer <token>'.",
        403: "A carer cannot use PUT /homes/{home}.",
        404: "There is no such home, or it is not one of yours.",
        409: "Home julie is defined by the file julie.yaml: edit that file.",
        422: "The configuration is not valid.",
        429: "Too many failed attempts. Try again in 15 minutes.",
        503: "Not ready: start-up recovery is still running.",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        example: dict[str, Any] = {"type": "about:blank", "title": TITLES[status], "status": status,
                                   "detail": examples.get(status, "")}
        if status == 422:
            example["errors"] = [{"field": "routine.out_of_bed.alert_after",
                                  "message": "expected a duration like 45m, 90s or 1h30m, got '45'"}]
        out[status] = {"model": Problem, "description": TITLES[status],
                       "content": {PROBLEM_TYPE: {"example": example}}}
    return out
