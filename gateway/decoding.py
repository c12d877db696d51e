"""MQTT topic + payload -> canonical events, for every configured home.

Shared by the live ingest and by `tecmon replay`, so both treat a message the
same way. Nothing is dropped silently: a message for an unknown home or
device, or one that does not decode, raises `DeadLetter` with the reason, and
the caller counts, logs and keeps it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from alerts.events import EventKind, SensorEvent
from alerts.homeconfig import Device, HomeConfig
from device_profiles import DecodeError, DeviceCodec, get_profile

AVAILABILITY_SUFFIX = "availability"


class DeadLetter(Exception):
    """A message that could not become events, and why (in plain words)."""

    def __init__(self, reason: str, topic: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.topic = topic
        self.code = code  # bad_topic, unknown_home, unknown_device or undecodable: a metric label


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
        head, _, rest = topic.partition("/")
        if head != self.prefix or not rest:
            raise DeadLetter(f"topic is not under {self.prefix}/", topic, "bad_topic")
        home, _, device = rest.partition("/")
        if not device:
            raise DeadLetter("topic names no device", topic, "bad_topic")
        if device == "bridge" or device.startswith("bridge/"):
            return None
        availability = device.endswith("/" + AVAILABILITY_SUFFIX)
        if availability:
            device = device[: -len(AVAILABILITY_SUFFIX) - 1]
        return TopicParts(home, device, availability)

    def decode(self, topic: str, payload: object, received_at: datetime) -> list[SensorEvent]:
        parts = self.split_topic(topic)
        if parts is None:
            return []
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
        try:
            return codec.decode(
                payload, home=parts.home, device=parts.device, received_at=received_at, source=topic
            )
        except DecodeError as exc:
            raise DeadLetter(f"{parts.device}: {exc.reason}", topic, "undecodable") from None
