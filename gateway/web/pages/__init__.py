"""The web pages served by `tecmon serve`: one module per page, all under one router.

Server-rendered HTML with plain forms that work without JavaScript; our own
small scripts add live updates and the what-if preview. Every route has its
rule in `gateway.access.RULES` like the API's.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.web.pages import devices, errors, home, inbox, live, login, night, versions

router = APIRouter(include_in_schema=False)
for _module in (login, inbox, live, home, versions, night, devices):
    router.include_router(_module.router)
__all__ = ["errors", "router"]
