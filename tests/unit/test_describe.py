"""`tecmon check-config` in plain words: every key a coordinator can write is read back.

The table says, for each key of the routine, a device and a contact, what
the explanation must say when it is set; a further test walks the models'
fields so that a key added later without an explanation fails here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.describe import explain
from alerts.homeconfig import Contact, Device, Routine, parse_home_config
from gateway.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "simulator" / "data" / "julie.home.yaml"
Change = Callable[[dict[str, Any]], None]


def julie() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


def words(data: dict[str, Any]) -> str:
    return "\n".join(explain(parse_home_config(data)))


def device(data: dict[str, Any], ident: str) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in data["devices"] if d["id"] == ident)
    return found


def _lamp(data: dict[str, Any]) -> None:
    data["devices"].append({"id": "bedside-light", "profile": "z2m-light", "kind": "light", "room": "bedroom"})
    data["routine"]["check_with_me"] = {"within": "2m", "device": "bedside-light"}


def _radar_bed(data: dict[str, Any]) -> None:
    device(data, "bed")["profile"] = "tuya-ts0601-presence"


def _radar_room(data: dict[str, Any]) -> None:
    device(data, "hall-motion")["profile"] = "tuya-ts0601-presence"


def _no_exit(data: dict[str, Any]) -> None:
    device(data, "front-door")["exit"] = False
    del data["routine"]["exit_door"]


def _set(path: str, value: Any) -> Change:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            if part.startswith("@"):
                target = next(d for d in target if d["id"] == part[1:])
            else:
                target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    return change


# (key, change, what the explanation must say)
EXPLAINED: list[tuple[str, Change, str]] = [
    ("routine.night", _set("routine.night", {"from": "21:00", "to": "06:30"}), "Night: 21:00 to 06:30"),
    ("routine.out_of_bed", _set("routine.out_of_bed", {"alert_after": "1h"}), "out of bed for 1 hour"),
    ("routine.exit_door", _set("routine.exit_door", {"alert_if_not_back_within": "5m"}),
     "if not back within 5 minutes when Julie goes out"),
    ("routine.still_while_up", _set("routine.still_while_up", {"alert_after": "30m"}),
     "no movement is seen for 30 minutes"),
    ("routine.in_bed_by", _set("routine.in_bed_by", "00:30"), "not in bed by 00:30"),
    ("routine.up_by", _set("routine.up_by", "09:45"), "still in bed at 09:45"),
    ("routine.device_offline_after", _set("routine.device_offline_after", "30m"), "offline for 30 minutes"),
    ("routine.check_with_me", _lamp,
     "the bedside-light light blinks; if Julie presses the button within 2 minutes, nobody is called"),
    ("routine.company", _set("routine.company", {"action": "double", "for": "90m"}),
     "When someone is with Julie, Julie presses the button twice (or a carer says so in the app): "
     "nobody is called for 1 hour 30 minutes unless Julie asks for help"),
    ("routine.bed_occupied_max", _set("routine.bed_occupied_max", "12h"),
     "the bed says Julie has been in bed for 12 hours without a break"),
    ("device.heartbeat", _set("devices.@bed.heartbeat", "1h"),
     "Device bed: bed sensor in the bedroom; reports at least every 1 hour (silent for 1 hour 10 minutes"),
    ("device.heartbeat none", _set("devices.@hall-motion.heartbeat", "0m"),
     "Device hall-motion: motion sensor in the hall; should see"),
    ("device.expect_movement_every", _set("devices.@hall-motion.expect_movement_every", "72h"),
     "should see Julie at least every 72 hours while Julie is up and about (otherwise the service is told)"),
    ("device.expect_movement_every never", _set("devices.@hall-motion.expect_movement_every", "0m"),
     "seeing nobody for a long time is not reported"),
    ("device.exit", _no_exit, "Device front-door: door sensor in the hall"),
    ("device.room", _set("devices.@bed.room", "front room"), "Device bed: bed sensor in the front room"),
    ("device.profile presence bed", _radar_bed, "a presence radar: someone in its range counts as in bed"),
    ("device.profile presence motion", _radar_room,
     "a presence radar: someone in its range counts as moving, even when nearly still"),
    ("contact.morning_summary", _set("contacts.0.morning_summary", "08:15"),
     "Sam (daughter) gets a short account of Julie's night every morning at 08:15"),
]


@pytest.mark.parametrize(("key", "change", "said"), EXPLAINED, ids=[k for k, _, _ in EXPLAINED])
def test_each_key_is_read_back_in_words(key: str, change: Change, said: str) -> None:
    data = julie()
    change(data)
    assert said in words(data)


def test_every_key_of_the_routine_a_device_and_a_contact_is_in_the_table() -> None:
    """A key added to the models without an explanation (and a row here) fails the build."""
    listed = {key.split(" ")[0] for key, _, _ in EXPLAINED}
    fields = {f"routine.{f.alias or name}" for name, f in Routine.model_fields.items()}
    fields |= {f"device.{name}" for name in Device.model_fields} - {"device.id", "device.kind", "device.options"}
    fields |= {f"contact.{name}" for name in Contact.model_fields} - {"contact.name", "contact.notify"}
    assert fields <= listed, f"explain these in alerts/describe.py and list them here: {fields - listed}"


def test_the_morning_summary_of_a_service_contact_is_read_back_too() -> None:
    data = julie()
    data["service_contacts"] = [{**data["service_contacts"][0], "morning_summary": "09:00"}]
    assert "Tecmon service desk gets a short account of Julie's night every morning at 09:00" in words(data)


def test_the_same_home_reads_the_same_and_nothing_is_said_of_keys_left_out() -> None:
    data = julie()
    said = words(copy.deepcopy(data))
    assert said == words(data)
    assert "Ask Julie first" not in said and "someone is with" not in said and "account of" not in said


def test_check_config_prints_the_care_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = julie()
    _lamp(data)
    data["routine"]["company"] = {"action": "double", "for": "2h"}
    data["contacts"][0]["morning_summary"] = "08:00"
    home = tmp_path / "julie.home.yaml"
    home.write_text(yaml.safe_dump(data))
    assert main(["check-config", str(home)]) == 0
    out = capsys.readouterr().out
    assert "Ask Julie first" in out and "nobody is called for 2 hours unless Julie asks for help" in out
    assert "every morning at 08:00" in out and "tecmon-julie" not in out
