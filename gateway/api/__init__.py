"""The HTTP API: one module per resource, every route behind `gateway.access.authorize`.

`create_app` assembles the routers; the access rule of each route lives in
`gateway.access.RULES`, not in the handlers.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from gateway.access import authorize
from gateway.api import ack, alerts, company, devices, health, history, homes, problems, users, versions
from gateway.api.context import ApiContext
from gateway.api.headers import SecurityHeaders

ROUTERS = (health.router, users.router, homes.router, versions.router, alerts.router, devices.router,
           history.router, ack.router, company.router)


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="tecmon",
        version="1",
        description="Night-time routines applied to home sensors, for carers, coordinators and engineers. "
        "Sign in with POST /auth/token and send the token as 'Authorization: Bearer <token>'.",
        dependencies=[Depends(authorize)],
        docs_url=None, redoc_url=None, openapi_url=None,  # the schema is served behind sign-in
    )
    app.state.ctx = ctx
    problems.install(app)
    from gateway.web import mount_static  # the pages build on the API's modules: imported once they exist
    from gateway.web import pages as web_pages

    for router in (*ROUTERS, web_pages.router):
        app.include_router(router)
    web_pages.errors.install(app)  # page routes answer errors as pages; the API keeps problem+json
    mount_static(app)
    app.add_middleware(SecurityHeaders)
    return app
