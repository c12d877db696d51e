"""MQTT topic + payload -> canonical events, for every configured home.

Shared by the live ingest and by `tecmon replay`, so both treat a message the
same way. Nothing is dropped silently: a message for an unknown home or
device, or one that does not decode, raises `DeadLetter` with the reason, and
the caller counts, logs and keeps it.

A configured device whose message carries none of its profile's fields (a Tuya
radar set up with the strap's profile sends `presence`, never `occupancy`) is
still alive: the message becomes an "online" availability event, so it keeps
the device's heartbeat and ends an offline episode. The first such message of
each device also comes back as a `no_known_field` notice, once per process,
because the likely cause is a wrong profile that no later message will fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from alerts.events import EventKind, SensorEvent
from alerts.homeconfig import Device, HomeConfig
from device_profiles import DecodeError, DeviceCodec, get_profile
from device_profiles.codec import parse_timestamp

AVAILABILITY_SUFFIX = "availability"
MAX_PAYLOAD_BYTES = 64 * 1024
"""Zigbee2MQTT device states are a few hundred bytes; past this it is not a sensor talking,
and it is refused before a JSON parser spends time and memory on it."""
MAX_DEPTH = 16
"""A device state is an object of values a level or two deep (`update.state`)."""
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""What a home or device id in a configuration may be; anything else cannot name one, and
`+`, `#`, `..`, control characters or an empty level in a topic are reported as such."""
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_PAIR = re.compile(rb"\[\]|\{\}")


class DeadLetter(Exception):
    """A message that could not become events, and why (in plain words)."""

    def __init__(self, reason: str, topic: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.topic = topic
        # bad_topic, unknown_home, unknown_device, undecodable or no_known_field: a metric label
        self.code = code


@dataclass(frozen=True, slots=True)
class Decoded:
    """The events of one message, and a notice to keep although the events still apply."""

    events: list[SensorEvent]
    notice: DeadLetter | None = None


@dataclass(frozen=True, slots=True)
class TopicParts:
    home: str
    device: str
    availability: bool


class MessageDecoder:
    """Routes `<prefix>/<home>/<device>[/availability]` to that device's codec."""

    def __init__(self, homes: Iterable[HomeConfig], prefix: str = "zigbee2mqtt") -> None:
        self.prefix = prefix.rstrip("/")
        self._homes: dict[str, dict[str, DeviceCodec]] = {}
        self._shared: dict[tuple[str, str, str], DeviceCodec] = {}  # one codec per distinct setup
        self._availability = get_profile("zigbee2mqtt-availability").bind(EventKind.AVAILABILITY)
        self._told_no_field: set[tuple[str, str]] = set()  # (home, device) already reported
        for home in homes:
            self.add_home(home)

    def add_home(self, cfg: HomeConfig) -> None:
        """Install (or replace) a home's devices; takes effect for the next message."""
        self._homes[cfg.home] = {device.id: self._codec(device) for device in cfg.devices}

    def _codec(self, device: Device) -> DeviceCodec:
        """Codecs are immutable, so 100,000 homes of the same devices share a handful."""
        options = json.dumps(device.options, sort_keys=True) if device.options else ""
        key = (device.profile, device.kind.value, options)
        codec = self._shared.get(key)
        if codec is None:
            codec = self._shared[key] = get_profile(device.profile).bind(device.kind, device.options)
        return codec

    def remove_home(self, home: str) -> None:
        self._homes.pop(home, None)

    def split_topic(self, topic: str) -> TopicParts | None:
        """None for topics that are not device messages (e.g. the bridge's own)."""
        if not topic.startswith(self.prefix + "/"):
            raise DeadLetter(f"topic is not under {self.prefix}/", topic, "bad_topic")
        home, *levels = topic[len(self.prefix) + 1 :].split("/")
        if not levels:
            raise DeadLetter("topic names no device", topic, "bad_topic")
        if levels[0] == "bridge":
            return None
        _check_id("home", home, topic)
        _check_id("device", levels[0], topic)
        extra = levels[1:]
        if extra and extra != [AVAILABILITY_SUFFIX]:
            raise DeadLetter(
                f"topic has levels after the device ({_quote('/'.join(extra))}); "
                f"expected {self.prefix}/<home>/<device>[/{AVAILABILITY_SUFFIX}]",
                topic,
                "bad_topic",
            )
        return TopicParts(home, levels[0], bool(extra))

    def decode(self, topic: str, payload: object, received_at: datetime) -> list[SensorEvent]:
        """The events of one message (a `no_known_field` notice, if any, is left out)."""
        return self.decode_message(topic, payload, received_at).events

    def decode_message(self, topic: str, payload: object, received_at: datetime) -> Decoded:
        """The events of one message and, once per device, why it carried none of them."""
        parts = self.split_topic(topic)
        if parts is None:
            return Decoded([])
        devices = self._homes.get(parts.home)
        if devices is None:
            raise DeadLetter(f"unknown home {parts.home!r}", topic, "unknown_home")
        codec = devices.get(parts.device)
        if codec is None:
            raise DeadLetter(
                f"unknown device {parts.device!r} in home {parts.home!r}", topic, "unknown_device"
            )
        if parts.availability:
            codec = self._availability
        check_payload(payload, parts.device, topic)
        try:
            events = codec.decode(
                payload, home=parts.home, device=parts.device, received_at=received_at, source=topic
            )
        except DecodeError as exc:
            raise DeadLetter(f"{parts.device}: {exc.reason}", topic, "undecodable") from None
        if events or parts.availability:
            return Decoded(events)
        return self._no_known_field(parts, codec, payload, received_at, topic)

    def _no_known_field(
        self, parts: TopicParts, codec: DeviceCodec, payload: object, received_at: datetime, topic: str
    ) -> Decoded:
        """A message with none of the profile's fields: the device is alive, its profile maybe wrong.

        A message that has a field without a reading in it (a button's empty
        `action` after a press) is not this: the profile fits, nothing happened.
        """
        fields = _fields_of(payload)
        if fields is None or any(reading.field in fields for reading in codec.readings):
            return Decoded([])
        at = _message_time(codec, fields, received_at)
        alive = SensorEvent(parts.home, parts.device, EventKind.AVAILABILITY, True, at, topic)
        key = (parts.home, parts.device)
        if key in self._told_no_field:
            return Decoded([alive])
        self._told_no_field.add(key)
        reason = (
            f"{parts.device}: no {codec.readings[0].field!r} field; is this device's profile right? "
            f"(profile {codec.profile_id}, kind {codec.kind}; the message still counts as the "
            "device being alive)"
        )
        return Decoded([alive], DeadLetter(reason, topic, "no_known_field"))


def _fields_of(payload: object) -> Mapping[str, object] | None:
    """The payload as a JSON object (it has already decoded once), or None if it is not one."""
    if isinstance(payload, Mapping):
        return payload
    if isinstance(payload, bytes | bytearray):
        payload = bytes(payload).decode("utf-8", errors="replace")
    if not isinstance(payload, str):
        return None
    try:
        parsed = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _message_time(codec: DeviceCodec, fields: Mapping[str, object], received_at: datetime) -> datetime:
    """The device's own `last_seen` when it sent one (never later than received), as for readings."""
    received = received_at.astimezone(UTC)
    raw = fields.get(codec.timestamp_field) if codec.timestamp_field else None
    if raw is None:
        return received
    try:
        seen = parse_timestamp(str(codec.timestamp_field), raw)
    except DecodeError:
        return received
    return min(seen, received)


def _quote(text: str, limit: int = 40) -> str:
    """An id or topic part as it appears in a reason: escaped (no control characters), short."""
    shown = repr(text[: limit + 1])
    return shown if len(text) <= limit else shown[:-1] + "…" + shown[-1]


def _check_id(what: str, value: str, topic: str) -> None:
    if not value:
        raise DeadLetter(f"topic names no {what} (an empty level)", topic, "bad_topic")
    if not _ID.fullmatch(value):
        raise DeadLetter(
            f"{what} id {_quote(value)} is not one: letters, digits, '.', '_' and '-' only",
            topic,
            "bad_topic",
        )


def check_payload(payload: object, device: str, topic: str) -> None:
    """Refuse, before any parsing, what no device sends: empty, too large, nested too deeply.

    Cheap by design: a length, a strip, and a bracket scan only when there are enough
    brackets to matter. Already-parsed payloads (replay lines) are not checked here.
    """
    if isinstance(payload, str):
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise DeadLetter(f"{device}: payload too large ({len(payload):,} characters)", topic,
                             "undecodable")
        payload = payload.encode("utf-8", "surrogatepass")
    if not isinstance(payload, bytes | bytearray):
        return
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DeadLetter(
            f"{device}: payload too large ({len(payload):,} bytes; a device state is at most "
            f"{MAX_PAYLOAD_BYTES:,})",
            topic,
            "undecodable",
        )
    if not payload.strip():
        raise DeadLetter(f"{device}: empty payload (a retained message being cleared?)", topic, "undecodable")
    if _nesting_exceeds(bytes(payload), MAX_DEPTH):
        raise DeadLetter(
            f"{device}: payload nested more than {MAX_DEPTH} levels deep (or its brackets do not match)",
            topic,
            "undecodable",
        )


def _nesting_exceeds(data: bytes, limit: int) -> bool:
    """Whether JSON brackets outside strings nest deeper than `limit` (or do not match).

    Linear passes in C, never a Python loop over the bytes nor a backtracking pattern: drop
    escapes, then strings, then everything but brackets; each removal of the innermost
    `[]`/`{}` pairs then takes one level off, so brackets left after `limit` of them are
    either deeper than `limit` or unmatched (which no JSON parser would accept either).
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", _ESCAPE.sub(b"", data)))
    for _ in range(limit):
        reduced = _PAIR.sub(b"", brackets)
        if not reduced or reduced == brackets:
            return bool(reduced)
        brackets = reduced
    return bool(brackets)
