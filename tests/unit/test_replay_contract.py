"""`tecmon replay` follows its contract to the letter: fields, steps, UTC, order, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main

DATA = Path(__file__).resolve().parents[2] / "simulator" / "data"
HOME = str(DATA / "julie.home.yaml")
TOPIC = "zigbee2mqtt/julie-12-oak-road"
KEYS = {"step", "alert", "home", "kind", "at", "contact", "reason"}


def _write(tmp_path: Path, lines: list[object]) -> str:
    path = tmp_path / "events.jsonl"
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return str(path)


def _msg(ts: str, device: str, payload: object) -> dict[str, object]:
    return {"ts": ts, "topic": f"{TOPIC}/{device}", "payload": payload}


def _replay(capsys: pytest.CaptureFixture[str], path: str, *extra: str) -> tuple[int, list[dict[str, object]], str]:
    code = main(["replay", "--config", HOME, "--events", path, *extra])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


FALL = [
    _msg("2026-01-11T23:00:00+00:00", "bed", {"occupancy": True}),
    _msg("2026-01-12T02:14:00+00:00", "bed", {"occupancy": False}),
    _msg("2026-01-12T02:15:00+00:00", "hall-motion", {"occupancy": True}),
    _msg("2026-01-12T02:30:00+00:00", "hall-motion", {"occupancy": True}),
    _msg("2026-01-12T02:45:00+00:00", "hall-motion", {"occupancy": True}),
    _msg("2026-01-12T03:20:00+00:00", "bed", {"occupancy": True}),
]


def test_output_lines_have_exactly_the_contract_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = _replay(capsys, _write(tmp_path, FALL))
    assert code == 0, err
    assert [(x["step"], x["kind"], x["at"], x["contact"]) for x in lines] == [
        ("raised", "out_of_bed_too_long", "2026-01-12T02:59:00+00:00", None),
        ("notified", "out_of_bed_too_long", "2026-01-12T02:59:00+00:00", "Sam (daughter)"),
        ("escalated", "out_of_bed_too_long", "2026-01-12T03:09:00+00:00", "Night responder"),
        ("escalated", "out_of_bed_too_long", "2026-01-12T03:14:00+00:00", "Night responder"),
        ("escalated", "out_of_bed_too_long", "2026-01-12T03:19:00+00:00", "Night responder"),
        ("resolved", "out_of_bed_too_long", "2026-01-12T03:20:00+00:00", None),
    ]
    for line in lines:
        assert set(line) == KEYS
        assert line["home"] == "julie-12-oak-road"
        assert str(line["at"]).endswith("+00:00")
        assert line["alert"] == lines[0]["alert"]
    assert "Julie has been out of bed for 45 minutes" in str(lines[0]["reason"])
    assert "call after 45 minutes" in str(lines[0]["reason"])


def test_ack_line_stops_escalation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ack = {"ts": "2026-01-12T03:01:00+00:00", "ack": "out_of_bed_too_long", "by": "Sam"}
    code, lines, _ = _replay(capsys, _write(tmp_path, [*FALL[:5], ack, FALL[5]]))
    assert code == 0
    assert [(x["step"], x["at"], x["contact"]) for x in lines] == [
        ("raised", "2026-01-12T02:59:00+00:00", None),
        ("notified", "2026-01-12T02:59:00+00:00", "Sam (daughter)"),
        ("acknowledged", "2026-01-12T03:01:00+00:00", "Sam"),
        ("resolved", "2026-01-12T03:20:00+00:00", None),
    ]


def test_timers_fire_up_to_until(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, FALL[:5])
    _, without, _ = _replay(capsys, path)
    assert [x["step"] for x in without] == []  # the last line is at 02:45; the alert is due 02:59
    _, lines, _ = _replay(capsys, path, "--until", "2026-01-12T03:20:00+00:00")
    assert [(x["step"], x["at"][11:19]) for x in lines] == [
        ("raised", "02:59:00"), ("notified", "02:59:00"), ("escalated", "03:09:00"),
        ("escalated", "03:14:00"), ("escalated", "03:19:00"),
    ]


def test_lines_are_in_time_order_and_times_are_utc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = [
        {"ts": "2026-01-12T00:00:00+01:00", "topic": f"{TOPIC}/bed", "payload": {"occupancy": True}},
        {"ts": "2026-01-12T03:00:00+01:00", "topic": f"{TOPIC}/bed", "payload": {"occupancy": False}},
    ]
    _, lines, _ = _replay(capsys, _write(tmp_path, events), "--until", "2026-01-12T03:00:00+00:00")
    ats = [str(x["at"]) for x in lines]
    assert ats == sorted(ats) and ats[0] == "2026-01-12T02:20:00+00:00"  # still_while_up first


BAD_LINES = [
    ("not json", "not JSON"),
    ('{"topic": "x", "payload": {}}', "ts: expected an ISO-8601 time"),
    ('{"ts": "2026-01-12T02:00:00", "topic": "zigbee2mqtt/julie-12-oak-road/bed", "payload": {}}', "ts: needs a time zone offset"),
    ('{"ts": "2026-01-12T02:00:00+00:00", "topic": "zigbee2mqtt/julie-12-oak-road/kettle", "payload": {}}', "unknown device 'kettle'"),
    ('{"ts": "2026-01-12T02:00:00+00:00", "topic": "zigbee2mqtt/bob/bed", "payload": {}}', "unknown home 'bob'"),
    ('{"ts": "2026-01-12T02:00:00+00:00", "topic": "zigbee2mqtt/julie-12-oak-road/bed", "payload": {"occupancy": "maybe"}}', "occupancy"),
    ('{"ts": "2026-01-12T02:00:00+00:00", "topic": "zigbee2mqtt/julie-12-oak-road/bed"}', "payload: required"),
    ('{"ts": "2026-01-12T02:00:00+00:00", "ack": "out_of_bed_too_long"}', "by: required"),
    ("[1, 2]", "expected a JSON object"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES, ids=[r for _, r in BAD_LINES])
def test_bad_lines_are_reported_with_their_number_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, reason: str
) -> None:
    path = _write(tmp_path, [FALL[0], FALL[1], line, *FALL[2:]])
    code, lines, err = _replay(capsys, path)
    assert code == 3
    assert f"{path}:3: " in err and reason in err
    assert [x["step"] for x in lines] == ["raised", "notified"] + ["escalated"] * 3 + ["resolved"]


def test_availability_and_bridge_topics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = [
        {"ts": "2026-01-12T12:00:00+00:00", "topic": f"{TOPIC}/bridge/state", "payload": "online"},
        {"ts": "2026-01-12T12:00:00+00:00", "topic": f"{TOPIC}/hall-motion/availability", "payload": "offline"},
        {"ts": "2026-01-12T12:20:00+00:00", "topic": f"{TOPIC}/hall-motion/availability", "payload": {"state": "online"}},
    ]
    code, lines, err = _replay(capsys, _write(tmp_path, events))
    assert code == 0, err
    assert [(x["step"], x["kind"], x["at"][11:16], x["contact"]) for x in lines] == [
        ("raised", "device_offline", "12:10", None),
        ("notified", "device_offline", "12:10", "Tecmon service desk"),
        ("resolved", "device_offline", "12:20", None),
    ]


def test_events_from_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("".join(json.dumps(x) + "\n" for x in FALL)))
    code, lines, _ = _replay(capsys, "-")
    assert code == 0 and len(lines) == 6


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "home.yaml"
    bad.write_text("home: x\n")
    code = main(["replay", "--config", str(bad), "--events", _write(tmp_path, FALL)])
    assert code == 2
    assert "timezone: required" in capsys.readouterr().err
