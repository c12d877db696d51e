"""The HTTP API: health, metrics, homes, alerts, acknowledgements, dead letters.

Carers acknowledge and resolve alerts here (a phone app or the notification's
link calls it); engineers read dead letters and metrics. Acknowledging goes
through the engine like every other input, so it is recorded as a lifecycle
step and stops escalation at once.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, Field

from alerts.describe import explain
from alerts.events import Acknowledge, EngineInput, ResolveAlert
from gateway.metrics import Metrics
from gateway.runtime import Runtime

CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"


class AckRequest(BaseModel):
    by: str = Field(min_length=1, description="who is dealing with it")


class ResolveRequest(BaseModel):
    by: str = Field(min_length=1)
    outcome: str = Field(min_length=1, description="what happened, e.g. 'false alarm: making tea'")


def create_app(
    runtime: Runtime, metrics: Metrics, history: deque[dict[str, Any]], mqtt_state: dict[str, bool]
) -> FastAPI:
    app = FastAPI(title="tecmon", description="Night-time routines applied to home sensors, for carers.")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "mqtt_connected": mqtt_state.get("connected", False),
            "homes": len(runtime.homes),
        }

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/homes")
    def homes() -> list[dict[str, Any]]:
        return [
            {"home": h, "person": rt.plan.person, "devices": list(rt.plan.devices)}
            for h, rt in sorted(runtime.homes.items())
        ]

    @app.get("/homes/{home}")
    def home(home: str) -> dict[str, Any]:
        rt = runtime.homes.get(home)
        if rt is None:
            raise HTTPException(404, f"unknown home {home!r}")
        return {
            "config": rt.config.model_dump(
                mode="json", by_alias=True, exclude={"contacts", "service_contacts"}
            ),
            "in_plain_words": explain(rt.config),
        }

    @app.get("/alerts")
    def open_alerts() -> list[dict[str, Any]]:
        return runtime.open_alerts()

    @app.get("/alerts/history")
    def alert_history(limit: int = 100) -> list[dict[str, Any]]:
        return list(history)[-limit:]

    def _apply(alert_id: str, inp: EngineInput) -> dict[str, Any]:
        home_id = runtime.find_alert_home(alert_id)
        if home_id is None:
            raise HTTPException(404, f"no open alert {alert_id!r}")
        steps = runtime.apply(home_id, inp)
        return {"alert": alert_id, "steps": [d.step for d in steps]}

    @app.post("/alerts/{alert_id}/ack")
    def acknowledge(alert_id: str, body: AckRequest) -> dict[str, Any]:
        return _apply(alert_id, Acknowledge(alert_id, body.by))

    @app.post("/alerts/{alert_id}/resolve")
    def resolve(alert_id: str, body: ResolveRequest) -> dict[str, Any]:
        return _apply(alert_id, ResolveAlert(alert_id, body.by, body.outcome))

    @app.get("/dead-letters")
    def dead_letters(limit: int = 100) -> list[dict[str, Any]]:
        return [
            {
                "received_at": r.received_at.isoformat(),
                "topic": r.topic,
                "payload": r.payload,
                "reason": r.reason,
                "code": r.code,
            }
            for r in list(runtime.dead_letters)[-limit:]
        ]

    return app
