"""Device profiles: one declarative YAML file per device model, checked on load.

A profile says which payload field carries which canonical reading, its type
(`bool`, `percent` or `enum`), whether it is inverted, and which per-device
options it takes. Keeping this as data rather than code means adding a sensor
model is a reviewed YAML file, and the same description drives both the
gateway (decode) and the simulator (encode), so they cannot drift apart.

A malformed profile is refused with `ProfileError` naming the file and the
field, at start-up rather than at 3 a.m. when the first message arrives.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Final, NoReturn

import yaml

from alerts.events import EventKind

from .codec import BoolValue, BoundReading, DeviceCodec, EnumValue, PercentValue, ValueCodec

VALUE_TYPES: Final = ("bool", "percent", "enum")
OPTION_NAMES: Final = ("value_field", "battery_field", "timestamp_field", "invert")
_PROFILE_KEYS: Final = frozenset(
    {
        "id",
        "vendor",
        "model",
        "description",
        "heartbeat",
        "kinds",
        "readings",
        "options",
        "timestamp_field",
        "bare_value",
        "ask",
    }
)
_READING_KEYS: Final = frozenset({"kind", "field", "type", "invert", "ignore_false", "values"})
_ID_PATTERN: Final = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")
_DURATION: Final = re.compile(r"(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


class ProfileError(ValueError):
    """A profile file, or a device's use of a profile, that cannot work; says where."""


@dataclass(frozen=True, slots=True)
class ReadingSpec:
    """One reading as declared in a profile, before it is bound to a device."""

    kind: EventKind
    field: str
    type: str
    invert: bool = False
    ignore_false: bool = False
    values: tuple[tuple[str, bool | None], ...] = ()

    def bound(self) -> BoundReading:
        """The fast form used on the ingest path."""
        value: ValueCodec
        if self.type == "percent":
            value = PercentValue()
        elif self.type == "enum":
            value = EnumValue.build(self.values, self.invert)
        else:
            value = BoolValue(self.invert, self.ignore_false)
        return BoundReading(self.kind, self.field, value)


@dataclass(frozen=True, slots=True)
class Profile:
    """A device model: what it reports and how, and which kinds a device of it may be.

    `kinds` are the kinds a configured device of this model may have; any other
    reading in `readings` (battery) is decoded for every device of the model.
    """

    id: str
    vendor: str
    model: str
    description: str
    kinds: frozenset[EventKind]
    heartbeat: timedelta | None = None
    readings: tuple[ReadingSpec, ...] = ()
    options: frozenset[str] = frozenset()
    timestamp_field: str | None = "last_seen"
    bare_value: bool = False
    ask: tuple[tuple[str, str | int | bool], ...] | None = None  # the `set` payload that asks

    def ask_payload(self) -> dict[str, object] | None:
        """What to publish on `<device topic>/set` to ask the person (blink a light), if anything."""
        return dict(self.ask) if self.ask is not None else None

    @property
    def button_actions(self) -> frozenset[str]:
        """The words a button of this model sends for a press (`single`, `double`, `hold`)."""
        return frozenset(
            word.lower()
            for spec in self.readings
            if spec.kind is EventKind.BUTTON and spec.type == "enum"
            for word, meaning in spec.values
            if meaning is True
        )

    def bind(
        self, kind: EventKind | str, options: Mapping[str, object] | None = None
    ) -> DeviceCodec:
        """The codec for one device configured as `kind`, with its per-device options."""
        chosen = self._bind_kind(kind)
        given = self._check_options(options or {})
        primary = next(spec for spec in self.readings if spec.kind is chosen)
        extras = [spec for spec in self.readings if spec.kind not in self.kinds]
        if "value_field" in given:
            primary = replace(primary, field=str(given["value_field"]))
        if given.get("invert"):
            primary = replace(primary, invert=not primary.invert)
        if "battery_field" in given:
            extras = _with_battery_field(extras, given["battery_field"])
        stamp = given.get("timestamp_field", self.timestamp_field)
        stamp = stamp if isinstance(stamp, str) else None
        self._check_distinct([primary.field, *(spec.field for spec in extras), stamp])
        readings = tuple(spec.bound() for spec in (primary, *extras))
        return DeviceCodec(self.id, chosen, readings, stamp, self.bare_value)

    def _bind_kind(self, kind: EventKind | str) -> EventKind:
        try:
            chosen = EventKind(kind)
        except ValueError:
            chosen = None
        if chosen is None or chosen not in self.kinds:
            allowed = ", ".join(sorted(self.kinds))
            raise ProfileError(
                f"profile {self.id!r} cannot be kind {str(kind)!r}; it can be: {allowed}"
            )
        return chosen

    def _check_options(self, options: Mapping[str, object]) -> Mapping[str, object]:
        """Refuse unknown options and wrong types here, naming the option."""
        for name, value in options.items():
            if name not in self.options:
                takes = ", ".join(sorted(self.options)) or "none"
                raise ProfileError(
                    f"profile {self.id!r} has no option {name!r}; its options: {takes}"
                )
            if name == "invert" and not isinstance(value, bool):
                raise ProfileError(f"option 'invert': expected true/false, got {value!r}")
            nullable = name in ("battery_field", "timestamp_field")
            if name != "invert" and not (
                (isinstance(value, str) and value.strip() == value != "")
                or (nullable and value is None)
            ):
                wanted = "a field name" + (" or null" if nullable else "")
                raise ProfileError(f"option {name!r}: expected {wanted}, got {value!r}")
        return options

    def _check_distinct(self, fields: list[str | None]) -> None:
        named = [name for name in fields if name is not None]
        for name in named:
            if named.count(name) > 1:
                raise ProfileError(
                    f"profile {self.id!r}: field {name!r} is used for two things; "
                    "check the value_field, battery_field and timestamp_field options"
                )


def _with_battery_field(specs: list[ReadingSpec], field: object) -> list[ReadingSpec]:
    """Move the battery reading to another field, or drop it when the device has none."""
    if not isinstance(field, str):
        return [spec for spec in specs if spec.kind is not EventKind.BATTERY]
    return [
        replace(spec, field=field) if spec.kind is EventKind.BATTERY else spec for spec in specs
    ]


def parse_duration(text: str) -> timedelta | None:
    """`90s`, `45m`, `1h30m` as in the home configuration; None if not of that form."""
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


class _Reader:
    """Checks one profile document, so every message can name the file."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, field: str, problem: str) -> NoReturn:
        raise ProfileError(f"{self.name}: field {field!r}: {problem}")

    def mapping(self, raw: object, where: str, allowed: frozenset[str]) -> Mapping[str, object]:
        if not isinstance(raw, dict):
            self.fail(where, f"expected a mapping, got {type(raw).__name__}")
        for key in raw:
            if key not in allowed:
                prefix = f"{where}." if where != "(top level)" else ""
                self.fail(f"{prefix}{key}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
        return raw

    def text(self, raw: object, where: str) -> str:
        if not isinstance(raw, str) or not raw.strip():
            self.fail(where, f"expected non-empty text, got {raw!r}")
        return raw

    def flag(self, raw: object, where: str) -> bool:
        if not isinstance(raw, bool):
            self.fail(where, f"expected true or false, got {raw!r}")
        return raw

    def kind(self, raw: object, where: str) -> EventKind:
        try:
            return EventKind(str(raw))
        except ValueError:
            self.fail(where, f"unknown kind {raw!r}; kinds: {', '.join(EventKind)}")

    def profile(self, raw: object, default_id: str) -> Profile:
        doc = self.mapping(raw, "(top level)", _PROFILE_KEYS)
        for key in ("vendor", "model", "description", "kinds", "readings"):
            if key not in doc:
                self.fail(key, "missing")
        profile_id = self.text(doc.get("id", default_id), "id")
        if not _ID_PATTERN.fullmatch(profile_id):
            self.fail("id", f"{profile_id!r} is not lower-case words joined by '-'")
        kinds = self.kinds(doc["kinds"])
        readings = self.readings(doc["readings"], kinds)
        stamp = doc.get("timestamp_field", "last_seen")
        return Profile(
            id=profile_id,
            vendor=self.text(doc["vendor"], "vendor"),
            model=self.text(doc["model"], "model"),
            description=self.text(doc["description"], "description"),
            kinds=kinds,
            heartbeat=self.heartbeat(doc.get("heartbeat")),
            readings=readings,
            options=self.options(doc.get("options", []), readings, kinds),
            timestamp_field=None if stamp is None else self.text(stamp, "timestamp_field"),
            bare_value=self.flag(doc.get("bare_value", False), "bare_value"),
            ask=self.ask(doc.get("ask")),
        )

    def ask(self, raw: object) -> tuple[tuple[str, str | int | bool], ...] | None:
        """A flat mapping of field to text, number or true/false: the device's `set` payload."""
        if raw is None:
            return None
        if not isinstance(raw, dict) or not raw:
            self.fail("ask", "expected a mapping of field to value, e.g. {state: 'ON'}")
        for key, value in raw.items():
            if not isinstance(key, str) or not isinstance(value, str | int | bool):
                self.fail(f"ask.{key}", f"expected text, a number or true/false, got {value!r}")
        return tuple(raw.items())

    def kinds(self, raw: object) -> frozenset[EventKind]:
        if not isinstance(raw, list) or not raw:
            self.fail("kinds", f"expected a non-empty list of kinds, got {raw!r}")
        kinds = [self.kind(item, f"kinds[{index}]") for index, item in enumerate(raw)]
        if len(set(kinds)) != len(kinds):
            self.fail("kinds", "a kind is listed twice")
        return frozenset(kinds)

    def heartbeat(self, raw: object) -> timedelta | None:
        if raw is None:
            return None
        duration = parse_duration(raw) if isinstance(raw, str) else None
        if not duration:
            self.fail("heartbeat", f"expected a duration such as 90s, 45m or 1h30m, got {raw!r}")
        return duration

    def options(
        self, raw: object, readings: tuple[ReadingSpec, ...], kinds: frozenset[EventKind]
    ) -> frozenset[str]:
        if not isinstance(raw, list):
            self.fail("options", f"expected a list of option names, got {raw!r}")
        for index, name in enumerate(raw):
            if name not in OPTION_NAMES:
                self.fail(
                    f"options[{index}]",
                    f"unknown option {name!r}; known: {', '.join(OPTION_NAMES)}",
                )
        extras = {spec.kind for spec in readings if spec.kind not in kinds}
        if "battery_field" in raw and EventKind.BATTERY not in extras:
            self.fail("options", "'battery_field' needs a battery reading")
        return frozenset(raw)

    def readings(self, raw: object, kinds: frozenset[EventKind]) -> tuple[ReadingSpec, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail("readings", f"expected a non-empty list of readings, got {raw!r}")
        specs = tuple(self.reading(item, f"readings[{index}]") for index, item in enumerate(raw))
        seen = [spec.kind for spec in specs]
        for kind in seen:
            if seen.count(kind) > 1:
                self.fail("readings", f"kind {str(kind)!r} has more than one reading")
        for kind in sorted(kinds - set(seen)):
            self.fail("readings", f"kind {str(kind)!r} is listed in kinds but has no reading")
        primary_fields = {spec.field for spec in specs if spec.kind in kinds}
        extra_fields = [spec.field for spec in specs if spec.kind not in kinds]
        for field in extra_fields:
            if field in primary_fields or extra_fields.count(field) > 1:
                self.fail("readings", f"field {field!r} is read for two kinds")
        return specs

    def reading(self, raw: object, where: str) -> ReadingSpec:
        item = self.mapping(raw, where, _READING_KEYS)
        for key in ("kind", "field", "type"):
            if key not in item:
                self.fail(f"{where}.{key}", "missing")
        kind = self.kind(item["kind"], f"{where}.kind")
        value_type = item["type"]
        if value_type not in VALUE_TYPES:
            self.fail(
                f"{where}.type", f"expected one of {', '.join(VALUE_TYPES)}; got {value_type!r}"
            )
        if (value_type == "percent") != (kind is EventKind.BATTERY):
            self.fail(f"{where}.type", "battery readings, and only they, are of type percent")
        if (value_type == "enum") != ("values" in item):
            self.fail(f"{where}.values", "required for type enum, and only for it")
        if value_type == "percent" and ("invert" in item or "ignore_false" in item):
            self.fail(f"{where}.invert", "a percent reading cannot be inverted or ignored")
        if value_type != "bool" and "ignore_false" in item:
            self.fail(f"{where}.ignore_false", "only for type bool (use null in enum values)")
        return ReadingSpec(
            kind=kind,
            field=self.text(item["field"], f"{where}.field"),
            type=str(value_type),
            invert=self.flag(item.get("invert", False), f"{where}.invert"),
            ignore_false=self.flag(item.get("ignore_false", False), f"{where}.ignore_false"),
            values=self.enum_values(item.get("values"), f"{where}.values"),
        )

    def enum_values(self, raw: object, where: str) -> tuple[tuple[str, bool | None], ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict) or not raw:
            self.fail(where, "expected a mapping of words to true, false or null")
        pairs: list[tuple[str, bool | None]] = []
        for word, meaning in raw.items():
            if not isinstance(word, str):
                self.fail(
                    where,
                    f"word {word!r} is not text (quote it: YAML reads on/off/yes as booleans)",
                )
            if meaning is not None and not isinstance(meaning, bool):
                self.fail(f"{where}.{word}", f"expected true, false or null, got {meaning!r}")
            if any(word.lower() == known.lower() for known, _ in pairs):
                self.fail(f"{where}.{word}", "listed twice (words match case-insensitively)")
            pairs.append((word, meaning))
        if all(meaning is None for _, meaning in pairs):
            self.fail(where, "no word means true or false")
        return tuple(pairs)


def parse_profile(text: str, *, name: str, default_id: str) -> Profile:
    """A profile from YAML text; `name` is how errors refer to it (usually the file name)."""
    try:
        raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ProfileError(f"{name}: not valid YAML: {exc}") from None
    return _Reader(name).profile(raw, default_id)


def load_profile_file(path: Path) -> Profile:
    """A profile from a YAML file; its id defaults to the file name without `.yaml`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot be read: {exc}") from None
    return parse_profile(text, name=str(path), default_id=path.stem)


@functools.cache
def builtin_profiles() -> Mapping[str, Profile]:
    """The profiles shipped in this package, by id; read once per process."""
    found: dict[str, Profile] = {}
    entries = sorted(
        resources.files(__package__ or "device_profiles").iterdir(), key=lambda entry: entry.name
    )
    for entry in entries:
        if not entry.name.endswith(".yaml") or not entry.is_file():
            continue
        profile = parse_profile(
            entry.read_text(encoding="utf-8"), name=entry.name, default_id=entry.name[:-5]
        )
        if profile.id in found:
            raise ProfileError(f"{entry.name}: field 'id': {profile.id!r} is used twice")
        found[profile.id] = profile
    return MappingProxyType(found)


def get_profile(profile_id: str) -> Profile:
    """A shipped profile by id, or ProfileError listing the ids that exist."""
    profiles = builtin_profiles()
    try:
        return profiles[profile_id]
    except (KeyError, TypeError):
        known = ", ".join(sorted(profiles))
        raise ProfileError(f"unknown profile {profile_id!r}; known: {known}") from None
