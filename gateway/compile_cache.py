"""Compiling 100,000 homes that share a few shapes: each shared shape compiled once.

A home's plan and the text the runtime keeps of its configuration were built
from scratch for every home at start: profiling showed about 60 us a home,
most of it spent again on the same devices, routine and escalation.
`gateway/config_cache.py` already hands every home that shares a part word
for word the very same validated (frozen) object, so this cache keys a
home's shape (its time zone and those objects) on their identity: the
shape's plan fields and its JSON text are built once, and only what is each
home's own (its id, person, contacts, away periods) is built per home. A
shape met for the first time, as after an edit through the API, is simply
compiled; the result is always what `plan_from_config` and
`model_dump_json(by_alias=True)` give (tests/unit/test_compile_cache.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pydantic_core
from pydantic import BaseModel

from alerts.homeconfig import HomeConfig
from alerts.plan import DevicePlan, HomePlan, contact_plans, device_plans, plan_from_config, routine_fields

LIMIT = 20_000
"""Shapes remembered; past it the cache starts again (a start never has that many)."""

FIELDS = ("home", "timezone", "person", "devices", "routine", "contacts", "service_contacts", "escalation",
          "away")
"""`HomeConfig`'s fields in their order, which is the order of its JSON text."""


@dataclass(frozen=True, slots=True)
class _Shape:
    parts: tuple[object, ...]  # held, so that no live object can take the ids in its key
    devices: dict[str, DevicePlan]  # one dict for every home of the shape: a plan's devices are read-only
    routine: dict[str, Any]  # `routine_fields`
    plan: dict[str, Any]  # every HomePlan field of the shape
    middle: str  # `"devices":[...],"routine":{...}`
    escalation: str  # `"escalation":{...}`


def _json(value: object) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json(by_alias=True)
    return pydantic_core.to_json(value).decode()


def _list(items: Sequence[BaseModel]) -> str:
    return "[" + ",".join(item.model_dump_json(by_alias=True) for item in items) + "]" if items else "[]"


class CompileCache:
    """Shapes by the identity of their (frozen) parts and time zone."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._shapes: dict[tuple[object, ...], _Shape] = {}
        self._zones: dict[str, ZoneInfo] = {}
        self._exact = tuple(HomeConfig.model_fields) == FIELDS and not any(
            info.serialization_alias or info.alias for info in HomeConfig.model_fields.values())

    def _shape(self, cfg: HomeConfig) -> _Shape:
        parts = (*cfg.devices, cfg.routine, cfg.escalation)
        key = (cfg.timezone, *map(id, parts))
        shape = self._shapes.get(key)
        if shape is None:
            devices = device_plans(cfg.devices)
            routine = routine_fields(cfg.routine, self._zone(cfg.timezone))
            plan = {"devices": devices, "ack_within": cfg.escalation.ack_within,
                    "repeat_every": cfg.escalation.repeat_every,
                    "heartbeat_devices": tuple(d.id for d in devices.values() if d.heartbeat is not None),
                    **routine}
            middle = f'"devices":{_list(cfg.devices)},"routine":{_json(cfg.routine)}'
            shape = _Shape(parts, devices, routine, plan, middle, f'"escalation":{_json(cfg.escalation)}')
            if len(self._shapes) >= self.limit:
                self._shapes.clear()
            self._shapes[key] = shape
        return shape

    def _zone(self, name: str) -> ZoneInfo:
        zone = self._zones.get(name)
        if zone is None:
            zone = self._zones[name] = ZoneInfo(name)
        return zone

    def plan(self, cfg: HomeConfig) -> HomePlan:
        """`plan_from_config(cfg)`, with the shape's part compiled once."""
        shape = self._shape(cfg)
        if cfg.away:
            return plan_from_config(cfg, shape.devices, shape.routine)
        person = cfg.person
        return HomePlan(home=cfg.home, person=person.name, in_my_words=person.in_my_words,
                        zone=self._zone(cfg.timezone), contacts=contact_plans(cfg.contacts),
                        service_contacts=contact_plans(cfg.service_contacts), **shape.plan)

    def config_json(self, cfg: HomeConfig) -> str:
        """`cfg.model_dump_json(by_alias=True)`, with the shape's text made once."""
        if not self._exact:  # HomeConfig gained or reordered a field: build it all
            return cfg.model_dump_json(by_alias=True)
        shape = self._shape(cfg)
        return (f'{{"home":{_json(cfg.home)},"timezone":{_json(cfg.timezone)},"person":{_json(cfg.person)},'
                f'{shape.middle},"contacts":{_list(cfg.contacts)},'
                f'"service_contacts":{_list(cfg.service_contacts)},{shape.escalation},'
                f'"away":{_list(cfg.away)}}}')
