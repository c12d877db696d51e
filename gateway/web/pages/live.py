"""Live updates for open pages: lifecycle steps pushed as server-sent events.

The dispatcher hands every lifecycle line to `Broadcaster.publish` (hooked in
by `feed`); each open `GET /events/alerts` stream gets the lines of the homes
its viewer may see. Publishing never waits: a page that cannot keep up loses
events rather than holding up the alert path, and it only needs one event to
know it should refresh its list.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import StreamingResponse

from gateway.access import caller
from gateway.accounts import Principal
from gateway.web.pages.common import HEADERS

router = APIRouter(include_in_schema=False)
QUEUE_SIZE = 100
KEEPALIVE_S = 15.0
"""A comment this often keeps proxies from closing a quiet stream, and notices a closed tab."""
STREAM_S = 600.0
"""A stream ends after this long and the browser reconnects, so it re-checks the viewer's sign-in."""
Line = dict[str, Any]


class Broadcaster:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Line]] = set()

    def publish(self, line: Line) -> None:
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(line)

    @contextlib.contextmanager
    def subscribe(self) -> Any:
        queue: asyncio.Queue[Line] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._queues)


def broadcaster(app: FastAPI) -> Broadcaster:
    found: Broadcaster | None = getattr(app.state, "alert_events", None)
    if found is None:
        found = app.state.alert_events = Broadcaster()
    return found


def feed(app: FastAPI, also: Callable[[Line], None] | None) -> Callable[[Line], None]:
    """The dispatcher's `on_line`: the app's broadcaster first, then the service's own callback."""
    events = broadcaster(app)

    def on_line(line: Line) -> None:
        events.publish(line)
        if also is not None:
            also(line)

    return on_line


def _event(name: str, data: Line) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _stream(request: Request, who: Principal, events: Broadcaster, once: bool) -> AsyncIterator[str]:
    yield "retry: 3000\n" + _event("hello", {"listening": True})
    if once:
        return
    loop = asyncio.get_running_loop()
    ends = loop.time() + STREAM_S
    with events.subscribe() as queue:
        while loop.time() < ends and not await request.is_disconnected():
            try:
                line = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": still here\n\n"
                continue
            if who.sees(str(line.get("home", ""))):
                yield _event("alert", {k: line.get(k) for k in ("step", "alert", "home", "kind", "at")})


@router.get("/events/alerts")
async def alert_events(request: Request, who: Annotated[Principal, Depends(caller)]) -> StreamingResponse:
    """Lifecycle steps of my homes as they happen. A client that does not ask for an event stream
    (no `Accept: text/event-stream`) gets the greeting and the end, instead of a request that never ends."""
    once = "text/event-stream" not in request.headers.get("accept", "")
    headers = {**HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(request, who, broadcaster(request.app), once),
                             media_type="text/event-stream", headers=headers)
