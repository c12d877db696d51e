"""The Ordóñez ADL dataset (UCI, "Activities of Daily Living Recognition Using
Binary Sensors") as replay JSONL for `tecmon replay`.

Why: two weeks of a real person's sensor data is the most honest test of a
routine: it shows whether the service stays quiet on ordinary nights and what
it would have said on the others. The dataset records activation intervals in
local time (`start end location type place`, tab-separated); the gateway
receives vendor payloads on MQTT topics, stamped in UTC. Each interval becomes
an "on" and an "off" canonical event for the device the *device map* assigns
to that sensor, encoded with the same profile codec the gateway decodes with,
so a replay goes through the real decoding path rather than a shortcut.

The device map (YAML) names the dataset's time zone, the home id used in
topics, and for every sensor location either `{device, kind, profile}` (plus
optional profile `options`) or `{skip: true}`. A location in the data that the
map does not mention is an error, never silently dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from alerts.events import EventKind, SensorEvent
from alerts.homeconfig import HomeConfig
from device_profiles import DeviceCodec, ProfileError, get_profile

ReplayLine = dict[str, Any]

_FIELD_SEPARATOR = re.compile(r"\t+")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_FIELDS = ("start", "end", "location", "type", "place")
_MAP_KEYS = frozenset({"dataset", "home", "timezone", "sensors"})
_ENTRY_KEYS = frozenset({"device", "kind", "profile", "options", "skip"})
# An interval has a beginning and an end; a button press has no "off" to send.
_INTERVAL_KINDS = (EventKind.BED, EventKind.DOOR, EventKind.MOTION)
_OFF_BEFORE, _ON, _OFF_SAME_INSTANT = 0, 1, 2


class DatasetError(ValueError):
    """A sensors file or device map that cannot be converted; says which file and line."""


# --- the device map -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorMapping:
    """What one dataset sensor location becomes: a device, or nothing (`skip`)."""

    location: str
    device: str = ""
    kind: EventKind = EventKind.MOTION
    profile: str = ""
    options: Mapping[str, object] = field(default_factory=dict)
    skip: bool = False


@dataclass(frozen=True, slots=True)
class DeviceMap:
    """A checked device map: the home id for topics, the dataset's zone, each location's fate."""

    home: str
    zone: ZoneInfo
    sensors: Mapping[str, SensorMapping]
    source: str


def load_device_map(path: Path) -> DeviceMap:
    """Read and check a device map; every problem names the file and the field."""
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"{source}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise DatasetError(f"{source}: not valid YAML: {exc}") from None
    doc = _mapping(raw, source, "(top level)", _MAP_KEYS)
    for key in ("home", "timezone", "sensors"):
        if key not in doc:
            raise DatasetError(f"{source}: {key}: required")
    sensors = _mapping(doc["sensors"], source, "sensors", None)
    entries = {str(loc): _entry(str(loc), item, source) for loc, item in sensors.items()}
    return DeviceMap(_text(doc["home"], source, "home"), _zone(doc["timezone"], source), entries, source)


def _mapping(raw: object, source: str, where: str, allowed: frozenset[str] | None) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DatasetError(f"{source}: {where}: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if allowed is not None and k not in allowed)
    if unknown:
        allowed_keys = ", ".join(sorted(allowed or ()))
        raise DatasetError(f"{source}: {where}: unknown key {unknown[0]!r}; allowed: {allowed_keys}")
    return raw


def _text(raw: object, source: str, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise DatasetError(f"{source}: {where}: expected non-empty text, got {raw!r}")
    return raw


def _zone(raw: object, source: str) -> ZoneInfo:
    try:
        return ZoneInfo(_text(raw, source, "timezone"))
    except (ZoneInfoNotFoundError, ValueError):
        raise DatasetError(f"{source}: timezone: unknown IANA time zone {raw!r}") from None


def _entry(location: str, raw: object, source: str) -> SensorMapping:
    where = f"sensors.{location}"
    item = _mapping(raw, source, where, _ENTRY_KEYS)
    skip = item.get("skip", False)
    if not isinstance(skip, bool):
        raise DatasetError(f"{source}: {where}.skip: expected true or false, got {skip!r}")
    if skip:
        return SensorMapping(location, skip=True)
    for key in ("device", "kind", "profile"):
        if key not in item:
            raise DatasetError(f"{source}: {where}.{key}: required (or skip: true)")
    kind = item["kind"]
    if kind not in [str(k) for k in _INTERVAL_KINDS]:
        raise DatasetError(f"{source}: {where}.kind: expected bed, door or motion, got {kind!r}")
    options = _mapping(item.get("options", {}), source, f"{where}.options", None)
    mapping = SensorMapping(
        location, _text(item["device"], source, f"{where}.device"), EventKind(kind),
        _text(item["profile"], source, f"{where}.profile"), options,
    )
    _codec(mapping, source)  # an unknown profile or option fails here, not mid-conversion
    return mapping


def _codec(mapping: SensorMapping, source: str) -> DeviceCodec:
    try:
        return get_profile(mapping.profile).bind(mapping.kind, mapping.options)
    except ProfileError as exc:
        raise DatasetError(f"{source}: sensors.{mapping.location}: {exc}") from None


def _codecs_for(device_map: DeviceMap, home: HomeConfig | None) -> dict[str, DeviceCodec]:
    """One codec per mapped device, checked against the home the replay will use.

    A device the home does not configure would be dead-lettered by the replay,
    and a different kind or profile would be decoded differently from how it
    was encoded; both are refused here with the sensor named.
    """
    codecs: dict[str, DeviceCodec] = {}
    for mapping in device_map.sensors.values():
        if mapping.skip:
            continue
        if home is not None:
            _check_against_home(mapping, home, device_map.source)
        codecs[mapping.device] = _codec(mapping, device_map.source)
    return codecs


def _check_against_home(mapping: SensorMapping, home: HomeConfig, source: str) -> None:
    where = f"{source}: sensors.{mapping.location}"
    device = home.device(mapping.device)
    if device is None:
        known = ", ".join(d.id for d in home.devices)
        raise DatasetError(f"{where}: device {mapping.device!r} is not in home {home.home!r} ({known})")
    mapped = (mapping.kind, mapping.profile, dict(mapping.options))
    if mapped != (device.kind, device.profile, device.options):
        raise DatasetError(
            f"{where}: mapped as {mapping.kind} with {mapping.profile} {dict(mapping.options)}, but "
            f"home {home.home!r} configures {device.id!r} as {device.kind} with {device.profile} "
            f"{device.options}; the replay would decode it differently"
        )


# --- the sensors file -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    """One activation of one sensor, as UTC instants; `line` is where it was read."""

    line: int
    location: str
    start: datetime
    end: datetime


def _is_header(text: str) -> bool:
    """The column titles (`Start time ...`) and the dashed rule under them in some copies."""
    return text.casefold().startswith("start time") or set(text) <= set("-\t ")


def parse_intervals(lines: Iterable[str], zone: ZoneInfo, source: str = "<sensors>") -> Iterator[Interval]:
    """Intervals in file order. Header lines are allowed only before the first interval.

    The published files have one or two header lines depending on the copy, so
    headers are recognised by their content rather than skipped by count: a
    fixed count would silently drop the first night's bed interval.
    """
    seen_data = False
    for number, raw in enumerate(lines, start=1):
        text = raw.strip("\r\n\t ")
        if not text:
            continue
        if not seen_data and _is_header(text):
            continue
        seen_data = True
        yield _interval(text, number, zone, source)


def _interval(text: str, number: int, zone: ZoneInfo, source: str) -> Interval:
    where = f"{source}:{number}"
    parts = _FIELD_SEPARATOR.split(text)
    if len(parts) != len(_FIELDS):
        raise DatasetError(
            f"{where}: expected {len(_FIELDS)} tab-separated fields ({', '.join(_FIELDS)}), "
            f"got {len(parts)}: {text[:80]!r}"
        )
    start_text, end_text, location = (p.strip() for p in parts[:3])
    start = _local(start_text, zone, where, "start", fold=0)
    end = _local(end_text, zone, where, "end", fold=0)
    if end < start:  # an end in a repeated (fall-back) hour may mean its second occurrence
        end = _local(end_text, zone, where, "end", fold=1)
    if end < start:
        raise DatasetError(f"{where}: ends ({end_text}) before it starts ({start_text})")
    if not location:
        raise DatasetError(f"{where}: location: empty")
    return Interval(number, location, start, end)


def _local(text: str, zone: ZoneInfo, where: str, name: str, fold: int) -> datetime:
    try:
        naive = datetime.strptime(text, _TIME_FORMAT)
    except ValueError:
        raise DatasetError(f"{where}: {name} time {text!r} is not YYYY-MM-DD HH:MM:SS") from None
    return naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)


# --- intervals -> replay lines ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Edge:
    """A sensor turning on or off; sorts by time, then offs before ons, then file order."""

    at: datetime
    rank: int
    line: int
    device: str
    value: bool


def _merged(intervals: list[Interval]) -> list[Interval]:
    """Overlapping activations of one device become one: a sensor cannot be on twice.

    Intervals that only touch stay apart, giving an "off" then an "on" at that instant.
    """
    out: list[Interval] = []
    for item in sorted(intervals, key=lambda i: (i.start, i.line)):
        last = out[-1] if out else None
        if last is not None and item.start < last.end:
            out[-1] = Interval(last.line, last.location, last.start, max(last.end, item.end))
        else:
            out.append(item)
    return out


def _edges(intervals: Iterable[Interval], device_map: DeviceMap, source: str) -> list[_Edge]:
    by_device: dict[str, list[Interval]] = {}
    for item in intervals:
        mapping = device_map.sensors.get(item.location)
        if mapping is None:
            raise DatasetError(
                f"{source}:{item.line}: sensor location {item.location!r} is not in the "
                f"device map {device_map.source} (map it, or add it with skip: true)"
            )
        if not mapping.skip:
            by_device.setdefault(mapping.device, []).append(item)
    edges: list[_Edge] = []
    for device, items in by_device.items():
        for item in _merged(items):
            off_rank = _OFF_SAME_INSTANT if item.end == item.start else _OFF_BEFORE
            edges.append(_Edge(item.start, _ON, item.line, device, True))
            edges.append(_Edge(item.end, off_rank, item.line, device, False))
    edges.sort(key=lambda e: (e.at, e.rank, e.line))
    return edges


def convert_ordonez(
    sensors: Path,
    device_map: Path | DeviceMap,
    home: HomeConfig | None = None,
    prefix: str = "zigbee2mqtt",
) -> Iterator[ReplayLine]:
    """Replay lines `{"ts", "topic", "payload"}` in time order for an Ordóñez sensors file.

    The whole file is read and checked before this returns, so a bad line is
    reported before anything is written. With `home`, topics use its id and
    every mapped device must be one of its devices, of the same kind and profile.
    """
    dmap = device_map if isinstance(device_map, DeviceMap) else load_device_map(device_map)
    codecs = _codecs_for(dmap, home)
    home_id = home.home if home is not None else dmap.home
    try:
        with open(sensors, encoding="utf-8") as handle:
            edges = _edges(parse_intervals(handle, dmap.zone, str(sensors)), dmap, str(sensors))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{sensors}: not UTF-8 text ({exc.reason})") from None
    return _encoded(edges, codecs, home_id, prefix, str(sensors))


def _encoded(
    edges: list[_Edge], codecs: Mapping[str, DeviceCodec], home: str, prefix: str, source: str
) -> Iterator[ReplayLine]:
    for edge in edges:
        codec = codecs[edge.device]
        event = SensorEvent(home, edge.device, codec.kind, edge.value, edge.at, f"{source}:{edge.line}")
        yield {
            "ts": edge.at.isoformat(),
            "topic": f"{prefix}/{home}/{edge.device}",
            "payload": codec.encode(event),
        }


# --- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WriteSummary:
    events: int
    devices: tuple[str, ...]
    first: str | None
    last: str | None

    def describe(self) -> str:
        """The one line printed at the end of a conversion."""
        span = f"{self.first} .. {self.last}" if self.first else "no events"
        devices = len(self.devices)
        return f"{self.events} events from {devices} device{'' if devices == 1 else 's'}, {span}"


Progress = Callable[[int, str], None]


def write_jsonl(
    lines: Iterable[ReplayLine], out: TextIO, progress: Progress | None = None, every: int = 100_000
) -> WriteSummary:
    """Write one JSON object per line; call `progress(count, ts)` every `every` lines."""
    count = 0
    devices: set[str] = set()
    first: str | None = None
    last: str | None = None
    for line in lines:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        count += 1
        first = first or str(line["ts"])
        last = str(line["ts"])
        devices.add(str(line["topic"]).rsplit("/", 1)[-1])
        if progress is not None and count % every == 0:
            progress(count, last)
    return WriteSummary(count, tuple(sorted(devices)), first, last)
