"""Turning one device's vendor payloads into canonical events, and back.

This module is the hot ingest path: every MQTT message from every home goes
through `DeviceCodec.decode`. Everything that can be decided once (which field
means what, inversion, enum tables, where the timestamp is) is decided when a
profile is bound to a device (see `loader.Profile.bind`), so decoding is a few
dictionary look-ups per payload. No pydantic here, on purpose: it costs tens of
microseconds per message and its error texts are not written for carers'
engineers reading a dead-letter table.

Every way a payload can be wrong ends in `DecodeError` with a reason in plain
words, because the gateway keeps undecodable payloads with that reason for
someone to inspect; anything else escaping would be a bug.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from alerts.events import EventKind, SensorEvent

Value = bool | int

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_BOOL_WORDS: Final[Mapping[str, bool]] = {
    "true": True,
    "false": False,
    "on": True,
    "off": False,
    "1": True,
    "0": False,
}
_JSON_OPENERS: Final = ("{", "[", '"')


class DecodeError(ValueError):
    """A payload that cannot be turned into events; `reason` says why, in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def show(raw: object) -> str:
    """How a received value is quoted in an error: short, and JSON-like where possible."""
    try:
        text = repr(raw) if isinstance(raw, str) else json.dumps(raw)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(raw)
        except ValueError:  # an int too long to print
            text = f"<{type(raw).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(parsed: object) -> str:
    """Name a non-object JSON value the way someone looking at MQTT traffic would."""
    if isinstance(parsed, list):
        return "a JSON array"
    if isinstance(parsed, str):
        return f"the JSON string {show(parsed)}"
    if parsed is None:
        return "null"
    if isinstance(parsed, bool | int | float):
        return f"the bare value {show(parsed)}"
    return f"a {type(parsed).__name__}"


class ValueCodec(Protocol):
    """How one field's raw value maps to a canonical value, both ways."""

    def decode(self, label: str, raw: object) -> Value | None:
        """Canonical value, None for "no reading" (a button release), or DecodeError."""

    def encode(self, value: Value) -> object:
        """The raw value a device would send; ValueError if it has no spelling for it."""


@dataclass(frozen=True, slots=True)
class BoolValue:
    """A true/false field. Older firmwares send "true", "ON" or 1, so all are accepted.

    `invert` is for sensors whose field means the opposite of the canonical
    value (a contact sensor's `contact: true` is a *closed* door).
    `ignore_false` is for fields where false is not an event (a button release).
    """

    invert: bool = False
    ignore_false: bool = False

    def decode(self, label: str, raw: object) -> Value | None:
        if raw is True or raw is False:
            value: bool | None = raw
        elif isinstance(raw, str):
            value = _BOOL_WORDS.get(raw.strip().lower())
        elif isinstance(raw, int | float) and raw in (0, 1):
            value = raw == 1
        else:
            value = None
        if value is None:
            raise DecodeError(f"field {label!r}: expected true/false, got {show(raw)}")
        value = value is not self.invert
        return None if self.ignore_false and not value else value

    def encode(self, value: Value) -> object:
        if not isinstance(value, bool) or (self.ignore_false and not value):
            raise ValueError(f"no payload spelling for value {value!r}")
        return value is not self.invert


@dataclass(frozen=True, slots=True)
class PercentValue:
    """A battery percentage: numbers or numeric strings, clamped and rounded to 0..100."""

    def decode(self, label: str, raw: object) -> Value | None:
        number: float | int | None = None
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            number = raw
        elif isinstance(raw, str) and "_" not in raw:
            try:
                number = float(raw)
            except ValueError:
                number = None
        if number is None or (isinstance(number, float) and not math.isfinite(number)):
            raise DecodeError(f"field {label!r}: expected a number, got {show(raw)}")
        if number <= 0:
            return 0
        if number >= 100:
            return 100
        return math.floor(number + 0.5)

    def encode(self, value: Value) -> object:
        if isinstance(value, bool) or not 0 <= value <= 100:
            raise ValueError(f"no payload spelling for battery {value!r}")
        return int(value)


@dataclass(frozen=True, slots=True, eq=False)
class EnumValue:
    """A field with a fixed set of words, each meaning true, false or "no reading".

    Words match case-insensitively; `spellings` keeps the profile's own
    spelling for error messages and for encoding (the first word for a value).
    """

    table: Mapping[str, bool | None]
    spellings: tuple[str, ...]
    encoding: Mapping[bool, str]

    @classmethod
    def build(cls, values: tuple[tuple[str, bool | None], ...], invert: bool) -> EnumValue:
        """Precompute the look-up tables once, at bind time."""
        table: dict[str, bool | None] = {}
        encoding: dict[bool, str] = {}
        for word, meaning in values:
            flipped = None if meaning is None else meaning is not invert
            table[word.lower()] = flipped
            if flipped is not None:
                encoding.setdefault(flipped, word)
        return cls(table, tuple(word for word, _ in values), encoding)

    def decode(self, label: str, raw: object) -> Value | None:
        if isinstance(raw, str):
            key = raw.strip().lower()
            if key in self.table:
                return self.table[key]
        words = ", ".join(repr(word) for word in self.spellings)
        raise DecodeError(f"field {label!r}: expected one of {words}; got {show(raw)}")

    def encode(self, value: Value) -> object:
        if not isinstance(value, bool) or value not in self.encoding:
            raise ValueError(f"no payload spelling for value {value!r}")
        return self.encoding[value]


def _from_epoch_ms(label: str, millis: float) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except (OverflowError, ValueError):
        raise DecodeError(
            f"field {label!r}: epoch milliseconds out of range: {show(millis)}"
        ) from None


def parse_timestamp(label: str, raw: object) -> datetime:
    """A device time as Zigbee2MQTT sends it (ISO-8601 with offset, or epoch ms), in UTC.

    A time without an offset is refused rather than guessed: guessing the zone
    would shift every event of that device by hours, silently.
    """
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _from_epoch_ms(label, raw)
    parsed: datetime | None = None
    if isinstance(raw, str):
        text = raw.strip()
        if text.isascii() and text.replace(".", "", 1).isdigit():
            try:
                millis = float(text) if "." in text else int(text)
            except ValueError:  # more digits than int() accepts
                millis = math.inf
            return _from_epoch_ms(label, millis)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
    if parsed is not None and parsed.utcoffset() is None:
        raise DecodeError(f"field {label!r}: time {show(raw)} has no UTC offset")
    if parsed is not None:
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            pass
    raise DecodeError(
        f"field {label!r}: expected an ISO-8601 time with offset or epoch milliseconds, "
        f"got {show(raw)}"
    )


def _as_utc(received_at: datetime) -> datetime:
    if received_at.utcoffset() is None:
        raise ValueError(f"received_at must be timezone-aware, got {received_at!r}")
    return received_at.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class BoundReading:
    """One field of a bound device: where it is, what kind it is, how to read it."""

    kind: EventKind
    field: str
    value: ValueCodec


def _action(reading: BoundReading, raw: object) -> str | None:
    """A button's word for the press (`double`), kept so a routine can give it a meaning."""
    if reading.kind is not EventKind.BUTTON or not isinstance(reading.value, EnumValue):
        return None
    word = raw.strip().lower() if isinstance(raw, str) else None
    return word if word is not None and reading.value.table.get(word) is True else None


@dataclass(frozen=True, slots=True, eq=False)
class DeviceCodec:
    """What the gateway keeps per device: decode its payloads, encode events for the simulator.

    Built by `Profile.bind`. `readings[0]` is the reading of the kind the device
    is configured as; the rest (battery) follow in profile order, which is
    also the order of the events `decode` returns.
    """

    profile_id: str
    kind: EventKind
    readings: tuple[BoundReading, ...]
    timestamp_field: str | None = "last_seen"
    bare_value: bool = False

    def decode(
        self,
        payload: object,
        *,
        home: str,
        device: str,
        received_at: datetime,
        source: str = "",
    ) -> list[SensorEvent]:
        """Events in one payload; [] if it carries no reading we use (e.g. only linkquality)."""
        received = received_at if received_at.tzinfo is UTC else _as_utc(received_at)
        fields = payload if type(payload) is dict else self._as_object(payload)
        found: list[tuple[EventKind, Value, str | None]] = []
        for reading in self.readings:
            raw = fields.get(reading.field)
            if raw is not None:
                value = reading.value.decode(reading.field, raw)
                if value is not None:
                    found.append((reading.kind, value, _action(reading, raw)))
        at = self._event_time(fields, received)
        return [SensorEvent(home, device, kind, value, at, source, action) for kind, value, action in found]

    def _event_time(self, fields: Mapping[str, object], received: datetime) -> datetime:
        """The device's own time when it sent one, but never later than we received it."""
        if self.timestamp_field is None:
            return received
        raw = fields.get(self.timestamp_field)
        if raw is None:
            return received
        seen = parse_timestamp(self.timestamp_field, raw)
        return seen if seen < received else received

    def _as_object(self, payload: object) -> Mapping[str, object]:
        """The payload as field -> raw value, parsing JSON text and bare words."""
        if isinstance(payload, Mapping):
            return payload
        if isinstance(payload, bytes | bytearray):
            try:
                payload = bytes(payload).decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError("payload is not UTF-8 text") from None
        parsed = payload
        if isinstance(payload, str):
            text = payload.strip()
            if not self.bare_value or text.startswith(_JSON_OPENERS):
                parsed = self._parse_json(text)
            else:
                parsed = text
        if isinstance(parsed, dict):
            return parsed
        if self.bare_value and not isinstance(parsed, list):
            return {self.readings[0].field: parsed}
        raise DecodeError(f"payload is {_describe(parsed)}, expected a JSON object")

    @staticmethod
    def _parse_json(text: str) -> object:
        try:
            return json.loads(text)
        except RecursionError:
            raise DecodeError("payload is nested too deeply to be a device state") from None
        except ValueError as exc:
            raise DecodeError(f"payload is not valid JSON ({exc})") from None

    def encode(self, event: SensorEvent) -> dict[str, object] | str:
        """The payload the real device would publish for `event` (for the simulator)."""
        for reading in self.readings:
            if reading.kind is event.kind:
                break
        else:
            raise ValueError(
                f"profile {self.profile_id!r} bound as {self.kind} has no field for "
                f"{event.kind} events"
            )
        raw = reading.value.encode(event.value)
        if event.action is not None and _action(reading, event.action) is not None:
            raw = event.action  # the button's own word for how it was pressed
        if self.bare_value and reading is self.readings[0]:
            return raw if isinstance(raw, str) else json.dumps(raw)
        payload: dict[str, object] = {reading.field: raw}
        if self.timestamp_field is not None:
            payload[self.timestamp_field] = event.at.astimezone(UTC).isoformat()
        return payload
