"""Reading home files fast: unchanged content is not read again, shared parts are validated once.

At start 100,000 home files are validated one by one; profiling showed most
of the time in pydantic and in binding each device to its profile, for parts
that most homes share word for word (the same four devices, a handful of
routine shapes, the default escalation). So each part is validated once per
distinct content, keyed by its exact parsed content, and the home is assembled from
those already validated (frozen) parts: only what is the home's own (its id,
person, contacts) and the checks across parts run for every home. A file
whose bytes have not changed since it was last applied is not applied again.

The result is the very configuration `load_home_config` gives; when anything
in a file is wrong it is validated again in full, so every problem is still
named by its field exactly as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SkipValidation, ValidationInfo, model_validator

from alerts.homeconfig import (
    SERVICE_FALLBACK,
    ConfigError,
    Device,
    Escalation,
    HomeConfig,
    Routine,
    parse_home_config,
)

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Assembled(HomeConfig):
    """A home whose shared parts arrive validated: its own fields and every check across
    parts run as in `HomeConfig`; the parts are not validated again (a model's own checks,
    such as binding a device to its profile, would otherwise run for every home)."""

    devices: list[SkipValidation[Device]]
    routine: SkipValidation[Routine]
    escalation: SkipValidation[Escalation] = Escalation()

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> _Assembled:
        """HomeConfig's checks across parts (same name: this replaces them), run once per
        shape: they read only the devices and the routine, which are shared objects here.
        A home with away periods is checked in full."""
        shapes: dict[tuple[int, ...], tuple[object, ...]] | None = (info.context or {}).get(_SHAPES)
        parts = (*self.devices, self.routine)
        key = tuple(map(id, parts))  # held by the entry: no live object can take these ids
        if shapes is None or self.away or key not in shapes:
            HomeConfig._consistent(self)  # type: ignore[operator]
            if shapes is not None and not self.away and len(shapes) < SHARED_PARTS_MAX:
                shapes[key] = parts
        return self


_SHAPES = "tecmon_checked_shapes"
SHARED_PARTS_MAX = 20_000  # distinct devices, routines and escalations kept; beyond, validated each time


def read_data(path: Path) -> tuple[bytes, Any]:
    """The file's bytes and its parsed YAML/JSON, or `ConfigError` as `load_home_config` says it."""
    try:
        with open(path, "rb") as file:  # pathlib's read_bytes costs twice as much here
            raw = file.read()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
        return raw, json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_YamlLoader)
    except (UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(str(path), [f"not valid YAML/JSON: {exc}"]) from None


@functools.cache
def reading_version() -> str:
    """A digest of how a file becomes a configuration (the schema, its defaults, the code that
    checks and normalises it): a new version of any of them saves every home file again."""
    digest = hashlib.sha256(json.dumps(HomeConfig.model_json_schema(), sort_keys=True).encode())
    folder = Path(__file__).resolve().parents[1] / "alerts"
    for name in ("homeconfig.py", "care_config.py", "durations.py"):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]


class ConfigCache:
    """Validated parts by content, and the digest of each file last applied."""

    def __init__(self, service_fallback: bool = False) -> None:
        self.service_fallback = service_fallback
        self._digests: dict[Path, bytes] = {}
        self._parts: dict[tuple[str, str], BaseModel] = {}
        self._shapes: dict[tuple[int, ...], tuple[object, ...]] = {}  # devices + routine found consistent

    def load(self, path: Path) -> HomeConfig | None:
        """The file's configuration; None when its content is what was last applied from it."""
        raw, data = read_data(path)
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if self._digests.get(path) == digest:
            return None
        cfg = self.parse(data, str(path))
        self._digests[path] = digest
        return cfg

    def source(self, path: Path) -> str | None:
        """What the configuration applied from `path` was read from: its bytes and the code
        that validates them (`reading_version`); None before it is applied."""
        digest = self._digests.get(path)
        return None if digest is None else f"{digest.hex()}:{reading_version()}"

    def forget(self, path: Path) -> None:
        """The file is gone, or what it said was not applied: read it in full next time."""
        self._digests.pop(path, None)

    def parse(self, data: object, source: str) -> HomeConfig:
        try:
            return self._assembled(data)
        except Exception:  # any problem: validate in full, which names it
            return parse_home_config(data, source, service_fallback=self.service_fallback)

    def _assembled(self, data: object) -> HomeConfig:
        if not isinstance(data, dict):
            raise TypeError("not a mapping")
        shared = dict(data)
        if isinstance(data.get("devices"), list):
            shared["devices"] = [self._part(Device, d) for d in data["devices"]]
        for key, model in (("routine", Routine), ("escalation", Escalation)):
            if key in data:
                shared[key] = self._part(model, data[key])
        context = {SERVICE_FALLBACK: self.service_fallback, _SHAPES: self._shapes}
        home = _Assembled.model_validate(shared, context=context)
        values = {name: getattr(home, name) for name in HomeConfig.model_fields}
        return HomeConfig.model_construct(_fields_set=set(home.model_fields_set), **values)

    def _part(self, model: type[BaseModel], value: object) -> BaseModel:
        key = (model.__name__, repr(value))  # types and order included: equal keys, equal input
        found = self._parts.get(key)
        if found is None:
            found = model.model_validate(value)
            if len(self._parts) < SHARED_PARTS_MAX:
                self._parts[key] = found
        return found

