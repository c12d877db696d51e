"""Compiling 100,000 homes that share a few shapes: each shared part compiled once.

A home's plan and the text the runtime keeps of its configuration were built
from scratch for every home at start: profiling showed about 65 us a home,
nearly all of it spent again on the same devices, routine and escalation.
`gateway/config_cache.py` already hands every home that shares a part word
for word the very same validated (frozen) object, so this cache keys on that
object: the part's compiled plan fields and its JSON text are built once and
reused, and only what is each home's own (its id, person, contacts) is built
per home. A part met for the first time, as from an edit through the API, is
simply compiled; the result is always what `plan_from_config` and
`model_dump_json(by_alias=True)` give (tests/unit/test_compile_cache.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel

from alerts.homeconfig import HomeConfig
from alerts.plan import DevicePlan, HomePlan, device_plans, plan_from_config, routine_fields

T = TypeVar("T")

LIMIT = 20_000
"""Parts remembered; past it the cache starts again (a start never has that many shapes)."""

_SHARED = frozenset(("devices", "routine", "escalation"))
"""The fields `ConfigCache` shares between homes."""
_KEYS = tuple((name, pydantic_core.to_json(info.serialization_alias or info.alias or name).decode())
              for name, info in HomeConfig.model_fields.items())


class CompileCache:
    """Compiled parts by the identity of the (frozen) part; each entry holds its part alive,
    so an id is never reused while it is a key."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._memo: dict[tuple[str, int], tuple[object, Any]] = {}
        self._device_sets: dict[tuple[int, ...], tuple[tuple[object, ...], dict[str, DevicePlan]]] = {}

    def _get(self, kind: str, part: object, build: Callable[[], T]) -> T:
        key = (kind, id(part))
        hit = self._memo.get(key)
        if hit is not None and hit[0] is part:
            value: T = hit[1]
            return value
        value = build()
        if len(self._memo) >= self.limit:
            self._memo.clear()
        self._memo[key] = (part, value)
        return value

    def plan(self, cfg: HomeConfig) -> HomePlan:
        """`plan_from_config(cfg)`, with the devices and the routine compiled once per shape."""
        devices = self._devices(cfg.devices)
        routine = self._get(f"routine:{cfg.timezone}", cfg.routine,
                            lambda: routine_fields(cfg.routine, cfg.zone))
        return plan_from_config(cfg, devices, routine)

    def _devices(self, devices: Sequence[object]) -> dict[str, DevicePlan]:
        """One dict for every home with these very devices: a plan's devices are read-only."""
        parts = tuple(devices)
        key = tuple(map(id, parts))  # held by the entry: no live object can take these ids
        hit = self._device_sets.get(key)
        if hit is not None:
            return hit[1]
        compiled = device_plans(parts)  # type: ignore[arg-type]  # HomeConfig.devices
        if len(self._device_sets) >= self.limit:
            self._device_sets.clear()
        self._device_sets[key] = (parts, compiled)
        return compiled

    def config_json(self, cfg: HomeConfig) -> str:
        """`cfg.model_dump_json(by_alias=True)`, assembled from each field's JSON text; the
        shared parts' text is made once (a home's own fields are not remembered)."""
        return "{" + ",".join(f"{key}:{self._json(getattr(cfg, name), name in _SHARED)}"
                              for name, key in _KEYS) + "}"

    def _json(self, value: object, shared: bool) -> str:
        if isinstance(value, list):
            return "[" + ",".join(self._json(item, shared) for item in value) + "]"
        if isinstance(value, BaseModel):
            if shared:
                return self._get("json", value, lambda: value.model_dump_json(by_alias=True))
            return value.model_dump_json(by_alias=True)
        return pydantic_core.to_json(value).decode()
