"""The Ordóñez converter: parsing, ordering, encoding, the device map, and the command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.events import EventKind
from alerts.homeconfig import load_home_config
from gateway.cli import main
from gateway.decoding import MessageDecoder
from simulator.ordonez import (
    DatasetError,
    ReplayLine,
    convert_ordonez,
    load_device_map,
    parse_intervals,
    write_jsonl,
)

DATA = Path(__file__).resolve().parents[2] / "simulator" / "data"
MAP = DATA / "ordonez-a.map.yaml"
HOME = DATA / "ordonez-a.home.yaml"
MADRID = ZoneInfo("Europe/Madrid")
HEADER = "Start time\tEnd time\tLocation\tType\tPlace\r\n"
RULE = "----------\t--------\t--------\t----\t-----\r\n"


def _row(start: str, end: str, location: str, kind: str = "PIR", place: str = "Bathroom", sep: str = "\t") -> str:
    return sep.join([start, end, location, kind, place]) + "\r\n"


def _sensors(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "Sensors.txt"
    path.write_text(header + "".join(rows), encoding="utf-8", newline="")
    return path


def _utc(text: str) -> str:
    return datetime.fromisoformat(text).replace(tzinfo=MADRID).astimezone(UTC).isoformat()


def _convert(path: Path) -> list[ReplayLine]:
    return list(convert_ordonez(path, MAP))


# --- parsing -----------------------------------------------------------------------------------


def test_fields_split_on_runs_of_tabs_and_local_time_becomes_utc() -> None:
    lines = [HEADER, "2011-11-28 02:27:59\t\t2011-11-28 10:18:11\t\t\tBed\tPressure\t\tBedroom\t\r\n"]
    (item,) = parse_intervals(lines, MADRID)
    assert (item.line, item.location) == (2, "Bed")
    assert item.start == datetime(2011, 11, 28, 1, 27, 59, tzinfo=UTC)
    assert item.end == datetime(2011, 11, 28, 9, 18, 11, tzinfo=UTC)


@pytest.mark.parametrize("header", ["", HEADER, HEADER + RULE, "\r\n" + HEADER + RULE + "\r\n"])
def test_header_lines_are_recognised_not_counted(header: str) -> None:
    """Copies of the dataset have zero, one or two header lines; the first interval is never lost."""
    lines = (header + _row("2011-11-28 02:27:59", "2011-11-28 10:18:11", "Bed")).splitlines(keepends=True)
    assert [i.location for i in parse_intervals(lines, MADRID)] == ["Bed"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2011-11-28 10:00:00\t2011-11-28 10:01:00\tBasin\r\n", "expected 5 tab-separated fields"),
        ("2011-11-28 10:00:00  2011-11-28 10:01:00  Basin  PIR  Bathroom\r\n", "got 1"),
        (_row("28/11/2011 10:00", "2011-11-28 10:01:00", "Basin"), "start time '28/11/2011 10:00' is not YYYY-MM-DD HH:MM:SS"),
        (_row("2011-11-28 10:00:00", "2011-11-28 25:01:00", "Basin"), "end time"),
        (_row("2011-11-28 10:00:00", "2011-11-28 09:59:59", "Basin"), "ends (2011-11-28 09:59:59) before it starts"),
        (HEADER, "start time 'Start time' is not"),  # a header after the data has started
    ],
)
def test_a_malformed_line_is_an_error_naming_its_line(tmp_path: Path, row: str, message: str) -> None:
    path = _sensors(tmp_path, _row("2011-11-28 09:00:00", "2011-11-28 09:00:05", "Basin"), "\r\n", row)
    with pytest.raises(DatasetError) as caught:
        _convert(path)
    assert f"{path}:4: " in str(caught.value)
    assert message in str(caught.value)


def test_an_unmapped_location_is_an_error_not_a_silent_drop(tmp_path: Path) -> None:
    path = _sensors(tmp_path, _row("2011-11-28 09:00:00", "2011-11-28 09:00:05", "Sofa"))
    with pytest.raises(DatasetError, match=r":2: sensor location 'Sofa' is not in the device map"):
        _convert(path)


def test_an_ambiguous_end_in_the_autumn_hour_means_its_second_occurrence() -> None:
    """02:30 CEST -> 02:10 CET on 30 Oct 2011 is 40 minutes, not an interval ending before it starts."""
    (item,) = parse_intervals([_row("2011-10-30 02:30:00", "2011-10-30 02:10:00", "Basin")], MADRID)
    assert item.start == datetime(2011, 10, 30, 0, 30, tzinfo=UTC)
    assert item.end == datetime(2011, 10, 30, 1, 10, tzinfo=UTC)


# --- ordering and encoding ---------------------------------------------------------------------


def test_each_interval_is_an_on_then_an_off_encoded_for_its_device(tmp_path: Path) -> None:
    path = _sensors(
        tmp_path,
        _row("2011-11-28 02:27:59", "2011-11-28 10:18:11", "Bed", "Pressure", "Bedroom"),
        _row("2011-11-28 13:09:31", "2011-11-28 13:09:35", "Maindoor", "Magnetic", "Entrance"),
        _row("2011-11-28 13:33:32", "2011-11-28 13:38:23", "Fridge", "Magnetic", "Kitchen"),
    )
    got = [(x["topic"], x["payload"]) for x in _convert(path)]
    stamps = [x["ts"] for x in _convert(path)]
    assert stamps == sorted(stamps) and stamps[0] == "2011-11-28T01:27:59+00:00"
    topic = "zigbee2mqtt/ordonez-a/"
    assert got == [
        (topic + "bed", {"occupancy": True, "last_seen": "2011-11-28T01:27:59+00:00"}),
        (topic + "bed", {"occupancy": False, "last_seen": "2011-11-28T09:18:11+00:00"}),
        # Aqara contact sensors say contact: true for a CLOSED door, so open is contact: false.
        (topic + "main-door", {"contact": False, "last_seen": "2011-11-28T12:09:31+00:00"}),
        (topic + "main-door", {"contact": True, "last_seen": "2011-11-28T12:09:35+00:00"}),
        (topic + "fridge-door", {"motion": True, "last_seen": "2011-11-28T12:33:32+00:00"}),
        (topic + "fridge-door", {"motion": False, "last_seen": "2011-11-28T12:38:23+00:00"}),
    ]


def test_at_equal_times_off_comes_before_on_but_never_before_its_own_on(tmp_path: Path) -> None:
    path = _sensors(
        tmp_path,
        _row("2011-11-28 10:41:43", "2011-11-28 10:41:59", "Cooktop"),
        _row("2011-11-28 10:41:59", "2011-11-28 10:42:55", "Microwave"),  # starts as the cooktop stops
        _row("2011-11-28 16:10:05", "2011-11-28 16:10:05", "Basin"),  # zero length, as in house A
        _row("2011-11-28 17:00:00", "2011-11-28 17:00:10", "Basin"),
        _row("2011-11-28 17:00:10", "2011-11-28 17:00:20", "Basin"),  # touches: off, then on again
    )
    got = [(x["ts"][11:19], x["topic"].rsplit("/", 1)[1], next(iter(x["payload"].values()))) for x in _convert(path)]
    assert got == [
        ("09:41:43", "cooktop-motion", True),
        ("09:41:59", "cooktop-motion", False),
        ("09:41:59", "microwave", True),
        ("09:42:55", "microwave", False),
        ("15:10:05", "basin-motion", True),
        ("15:10:05", "basin-motion", False),
        ("16:00:00", "basin-motion", True),
        ("16:00:10", "basin-motion", False),
        ("16:00:10", "basin-motion", True),
        ("16:00:20", "basin-motion", False),
    ]


def test_equal_instants_keep_file_order(tmp_path: Path) -> None:
    path = _sensors(
        tmp_path,
        _row("2011-12-04 12:45:44", "2011-12-04 12:46:15", "Toilet"),
        _row("2011-12-04 12:46:11", "2011-12-04 12:46:15", "Cabinet"),
    )
    got = [x["topic"].rsplit("/", 1)[1] for x in _convert(path)]
    assert got == ["toilet-flush", "bathroom-cabinet", "toilet-flush", "bathroom-cabinet"]


def test_overlapping_activations_of_one_device_become_one(tmp_path: Path) -> None:
    path = _sensors(
        tmp_path,
        _row("2011-11-28 17:00:00", "2011-11-28 17:10:00", "Seat"),
        _row("2011-11-28 17:05:00", "2011-11-28 17:07:00", "Seat"),
    )
    got = [(x["ts"][11:19], x["payload"]["motion"]) for x in _convert(path)]
    assert got == [("16:00:00", True), ("16:10:00", False)]


def test_skipped_sensors_produce_nothing(tmp_path: Path) -> None:
    (tmp_path / "map.yaml").write_text(
        "home: h1\ntimezone: Europe/Madrid\nsensors:\n"
        "  Basin: {device: basin, kind: motion, profile: aqara-rtcgq11lm}\n  Toaster: {skip: true}\n"
    )
    path = _sensors(
        tmp_path,
        _row("2011-11-28 10:38:00", "2011-11-28 10:42:41", "Toaster"),
        _row("2011-11-28 10:49:48", "2011-11-28 10:51:13", "Basin"),
    )
    got = list(convert_ordonez(path, tmp_path / "map.yaml"))
    assert [x["topic"] for x in got] == ["zigbee2mqtt/h1/basin"] * 2


def test_every_line_decodes_back_to_the_interval_through_the_gateway(tmp_path: Path) -> None:
    home = load_home_config(HOME)
    path = _sensors(
        tmp_path,
        _row("2011-11-28 13:09:31", "2011-11-28 13:09:35", "Maindoor"),
        _row("2011-11-28 13:33:32", "2011-11-28 13:38:23", "Toilet"),
    )
    decoder = MessageDecoder([home])
    events = [
        e
        for x in convert_ordonez(path, MAP, home)
        for e in decoder.decode(str(x["topic"]), x["payload"], datetime.fromisoformat(str(x["ts"])))
    ]
    assert [(e.device, e.kind, e.value, e.at.isoformat()) for e in events] == [
        ("main-door", EventKind.DOOR, True, _utc("2011-11-28T13:09:31")),
        ("main-door", EventKind.DOOR, False, _utc("2011-11-28T13:09:35")),
        ("toilet-flush", EventKind.MOTION, True, _utc("2011-11-28T13:33:32")),
        ("toilet-flush", EventKind.MOTION, False, _utc("2011-11-28T13:38:23")),
    ]


# --- the device map ----------------------------------------------------------------------------


def test_the_bundled_map_covers_every_house_a_sensor_and_fits_the_home() -> None:
    dmap = load_device_map(MAP)
    assert sorted(dmap.sensors) == sorted(
        ["Bed", "Maindoor", "Shower", "Basin", "Cooktop", "Fridge", "Cabinet", "Cupboard", "Toilet", "Seat", "Microwave", "Toaster"]
    )
    home = load_home_config(HOME)
    for mapping in dmap.sensors.values():
        device = home.device(mapping.device)
        assert device is not None and (device.kind, device.profile) == (mapping.kind, mapping.profile)
    door = home.device("main-door")
    assert door is not None and door.exit


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("home: h\ntimezone: Europe/Madrid\nsensors: {}\ncolour: red\n", "unknown key 'colour'"),
        ("home: h\nsensors: {}\n", "timezone: required"),
        ("home: h\ntimezone: Mars/Olympus\nsensors: {}\n", "unknown IANA time zone"),
        ("home: h\ntimezone: UTC\nsensors:\n  Bed: {device: bed, kind: bed}\n", "sensors.Bed.profile: required"),
        ("home: h\ntimezone: UTC\nsensors:\n  Bed: {device: b, kind: button, profile: aqara-wxkg11lm}\n", "expected bed, door or motion"),
        ("home: h\ntimezone: UTC\nsensors:\n  Bed: {device: b, kind: bed, profile: nope}\n", "unknown profile 'nope'"),
        ("home: h\ntimezone: UTC\nsensors:\n  Bed: {device: b, kind: door, profile: tuya-ts0601-bed}\n", "cannot be kind 'door'"),
        ("home: h\ntimezone: UTC\nsensors:\n  Bed: {skip: yes please}\n", "sensors.Bed.skip: expected true or false"),
        ("home: [h\n", "not valid YAML"),
    ],
)
def test_a_bad_map_is_refused_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(DatasetError, match=r"map\.yaml: ") as caught:
        load_device_map(path)
    assert message in str(caught.value)


def test_a_map_that_does_not_fit_the_home_is_refused(tmp_path: Path) -> None:
    (tmp_path / "map.yaml").write_text(
        "home: h\ntimezone: Europe/Madrid\nsensors:\n  Bed: {device: bed, kind: motion, profile: generic-json}\n"
        "  Seat: {device: sofa, kind: motion, profile: generic-json}\n"
    )
    path = _sensors(tmp_path, _row("2011-11-28 10:00:00", "2011-11-28 10:01:00", "Bed"))
    with pytest.raises(DatasetError, match=r"sensors.Bed: mapped as motion with generic-json .* configures 'bed' as bed"):
        list(convert_ordonez(path, tmp_path / "map.yaml", load_home_config(HOME)))
    (tmp_path / "map.yaml").write_text(
        "home: h\ntimezone: Europe/Madrid\nsensors:\n  Seat: {device: sofa, kind: motion, profile: generic-json}\n"
    )
    with pytest.raises(DatasetError, match=r"device 'sofa' is not in home 'ordonez-a'"):
        list(convert_ordonez(path, tmp_path / "map.yaml", load_home_config(HOME)))


# --- writing and the command -------------------------------------------------------------------


def test_write_jsonl_reports_progress_and_sums_up(tmp_path: Path) -> None:
    path = _sensors(
        tmp_path,
        _row("2011-11-28 10:00:00", "2011-11-28 10:01:00", "Basin"),
        _row("2011-11-28 11:00:00", "2011-11-28 11:01:00", "Toilet"),
    )
    seen: list[tuple[int, str]] = []
    out = (tmp_path / "out.jsonl").open("w")
    summary = write_jsonl(_convert(path), out, lambda n, ts: seen.append((n, ts)), every=3)
    out.close()
    assert seen == [(3, "2011-11-28T10:00:00+00:00")]
    assert summary.describe() == (
        "4 events from 2 devices, 2011-11-28T09:00:00+00:00 .. 2011-11-28T10:01:00+00:00"
    )
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 4


def test_the_command_writes_jsonl_that_replays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _sensors(
        tmp_path,
        # Night of 2 Dec: bed at 01:00, the main door opened at 03:10 and nothing else: not back.
        _row("2011-12-02 01:00:00", "2011-12-02 03:05:00", "Bed", "Pressure", "Bedroom"),
        _row("2011-12-02 03:10:00", "2011-12-02 03:10:20", "Maindoor", "Magnetic", "Entrance"),
        _row("2011-12-02 03:40:00", "2011-12-02 03:41:00", "Basin"),
    )
    out = tmp_path / "events.jsonl"
    code = main(["sim", "dataset", "ordonez", "--sensors", str(path), "--home-config", str(HOME), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.strip() == (
        "ordonez: 6 events from 3 devices, 2011-12-02T00:00:00+00:00 .. 2011-12-02T02:41:00+00:00 -> " + str(out)
    )
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["topic"] for x in lines][:2] == ["zigbee2mqtt/ordonez-a/bed"] * 2
    assert main(["replay", "--config", str(HOME), "--events", str(out)]) == 0
    steps = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    raised = [(x["kind"], x["at"]) for x in steps if x["step"] == "raised"]
    assert raised == [("not_back_after_exit", "2011-12-02T02:25:00+00:00")]  # 03:10 + 15 min, local


def test_the_command_writes_to_stdout_with_the_bundled_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _sensors(tmp_path, _row("2011-11-28 10:00:00", "2011-11-28 10:01:00", "Shower"))
    assert main(["sim", "dataset", "ordonez", "--sensors", str(path), "--out", "-"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(x)["topic"] for x in captured.out.splitlines()] == ["zigbee2mqtt/ordonez-a/shower-motion"] * 2
    assert "2 events from 1 device," in captured.err


def test_the_command_reports_a_bad_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _sensors(tmp_path, _row("2011-11-28 10:00:00", "2011-11-28 10:01:00", "Shower"), "oops\r\n")
    out = tmp_path / "events.jsonl"
    assert main(["sim", "dataset", "ordonez", "--sensors", str(path), "--out", str(out)]) == 2
    assert f"{path}:3: expected 5 tab-separated fields" in capsys.readouterr().err
    assert not out.exists()


def test_the_command_reports_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.txt"
    assert main(["sim", "dataset", "ordonez", "--sensors", str(missing), "--out", "-"]) == 2
    assert "nope.txt" in capsys.readouterr().err
