"""The device profiles as shipped, and malformed profile files refused with the field named."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.events import EventKind, SensorEvent
from device_profiles import (
    ProfileError,
    builtin_profiles,
    get_profile,
    load_profile_file,
)
from tests.unit.profiles_support import (
    AVAILABILITY,
    BATTERY,
    BED,
    BUTTON,
    DOOR,
    MOTION,
    SEEN,
    SEEN_MS,
    codec,
    decode,
    readings,
)

# --- the shipped profiles --------------------------------------------------------------

SHIPPED: dict[str, frozenset[EventKind]] = {
    "aqara-rtcgq11lm": frozenset({MOTION}),
    "aqara-mccgq11lm": frozenset({DOOR}),
    "tuya-ts0601-bed": frozenset({BED}),
    "tuya-ts0601-presence": frozenset({BED, MOTION}),
    "aqara-wxkg11lm": frozenset({BUTTON}),
    "generic-json": frozenset({BED, DOOR, MOTION, BUTTON}),
    "zigbee2mqtt-availability": frozenset({AVAILABILITY}),
    "z2m-light": frozenset({EventKind.LIGHT}),
}


def test_shipped_profiles_are_the_contract_ids() -> None:
    profiles = builtin_profiles()
    assert {pid: p.kinds for pid, p in profiles.items()} == SHIPPED
    aqara = {"aqara-rtcgq11lm", "aqara-mccgq11lm", "aqara-wxkg11lm"}  # they report about hourly
    for profile in profiles.values():
        assert profile.heartbeat == (timedelta(hours=2) if profile.id in aqara else None)
        assert profile.vendor and profile.model and profile.description
    assert (profiles["aqara-mccgq11lm"].vendor, profiles["aqara-mccgq11lm"].model) == (
        "Aqara",
        "MCCGQ11LM",
    )


def test_builtin_profiles_are_loaded_once() -> None:
    assert builtin_profiles() is builtin_profiles()
    assert get_profile("aqara-wxkg11lm") is builtin_profiles()["aqara-wxkg11lm"]


def test_builtin_profiles_are_read_only() -> None:
    with pytest.raises(TypeError):
        builtin_profiles()["x"] = get_profile("generic-json")  # type: ignore[index]


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError) as caught:
        get_profile("aqara-nope")
    assert str(caught.value) == (
        "unknown profile 'aqara-nope'; known: aqara-mccgq11lm, aqara-rtcgq11lm, aqara-wxkg11lm, "
        "generic-json, tuya-ts0601-bed, tuya-ts0601-presence, z2m-light, zigbee2mqtt-availability"
    )


def test_shipped_files_load_the_same_through_load_profile_file() -> None:
    folder = Path(__file__).resolve().parents[2] / "device_profiles"
    for path in sorted(folder.glob("*.yaml")):
        assert load_profile_file(path) == builtin_profiles()[path.stem]


def test_codec_is_immutable() -> None:
    c = codec("aqara-rtcgq11lm", MOTION)
    with pytest.raises(AttributeError):
        c.kind = DOOR  # type: ignore[misc]
    assert (c.profile_id, c.kind) == ("aqara-rtcgq11lm", MOTION)


def test_bind_accepts_kind_as_text() -> None:
    assert get_profile("tuya-ts0601-bed").bind("bed").kind is BED


BIND_ERRORS: list[tuple[str, object, dict[str, object] | None, str]] = [
    (
        "aqara-rtcgq11lm",
        "bed",
        None,
        "profile 'aqara-rtcgq11lm' cannot be kind 'bed'; it can be: motion",
    ),
    ("aqara-rtcgq11lm", "battery", None, "cannot be kind 'battery'"),
    ("aqara-rtcgq11lm", "sofa", None, "cannot be kind 'sofa'"),
    ("generic-json", "availability", None, "it can be: bed, button, door, motion"),
    (
        "aqara-mccgq11lm",
        "door",
        {"invert": True},
        "profile 'aqara-mccgq11lm' has no option 'invert'; its options: none",
    ),
    (
        "generic-json",
        "door",
        {"colour": "red"},
        "has no option 'colour'; its options: battery_field, invert, timestamp_field, value_field",
    ),
    ("generic-json", "door", {"invert": "yes"}, "option 'invert': expected true/false, got 'yes'"),
    (
        "generic-json",
        "door",
        {"value_field": ""},
        "option 'value_field': expected a field name, got ''",
    ),
    (
        "generic-json",
        "door",
        {"value_field": None},
        "option 'value_field': expected a field name, got None",
    ),
    ("generic-json", "door", {"value_field": 3}, "option 'value_field': expected a field name"),
    (
        "generic-json",
        "door",
        {"battery_field": 3},
        "option 'battery_field': expected a field name or null",
    ),
    ("generic-json", "door", {"value_field": "battery"}, "field 'battery' is used for two things"),
    (
        "generic-json",
        "door",
        {"value_field": "last_seen"},
        "field 'last_seen' is used for two things",
    ),
    ("generic-json", "door", {"timestamp_field": "open"}, "field 'open' is used for two things"),
]


@pytest.mark.parametrize(("profile_id", "kind", "options", "message"), BIND_ERRORS)
def test_bind_errors(
    profile_id: str, kind: object, options: dict[str, object] | None, message: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        get_profile(profile_id).bind(kind, options)  # type: ignore[arg-type]
    assert message in str(caught.value)


# --- malformed profile files: (YAML, field named in the error, problem) -----------------

GOOD = {
    "vendor": "Acme",
    "model": "X1",
    "description": "test device",
    "kinds": ["motion"],
    "readings": [{"kind": "motion", "field": "pir", "type": "bool"}],
}


def with_(**changes: object) -> str:
    doc = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...})


PIR = {"kind": "motion", "field": "pir", "type": "bool"}
BATT = {"kind": "battery", "field": "b", "type": "percent"}


def pir(**changes: object) -> dict[str, object]:
    return {**PIR, **changes}


def with_readings(*items: object) -> str:
    return with_(readings=list(items))


MALFORMED: list[tuple[str, str, str]] = [
    ("vendor: [unclosed", "", "not valid YAML"),
    ("- just\n- a list\n", "(top level)", "expected a mapping"),
    (with_(vendor=...), "vendor", "missing"),
    (with_(readings=...), "readings", "missing"),
    (with_(vendor=""), "vendor", "expected non-empty text"),
    (with_(colour="red"), "colour", "unknown key"),
    (with_(id="Bad Id"), "id", "is not lower-case words"),
    (with_(kinds=[]), "kinds", "expected a non-empty list"),
    (with_(kinds=["motion", "sofa"]), "kinds[1]", "unknown kind 'sofa'"),
    (with_(kinds=["motion", "motion"]), "kinds", "a kind is listed twice"),
    (with_(kinds=["motion", "bed"]), "readings", "kind 'bed' is listed in kinds but has no"),
    (with_(readings=[]), "readings", "expected a non-empty list"),
    (with_readings("pir"), "readings[0]", "expected a mapping"),
    (with_readings({"kind": "motion", "type": "bool"}), "readings[0].field", "missing"),
    (with_readings(pir(type="boolean")), "readings[0].type", "expected one of bool, percent"),
    (with_readings(pir(colour=1)), "readings[0].colour", "unknown key"),
    (with_readings(pir(field="")), "readings[0].field", "expected non-empty text"),
    (with_readings(pir(kind="sofa")), "readings[0].kind", "unknown kind 'sofa'"),
    (with_readings(pir(invert="yes")), "readings[0].invert", "expected true or false"),
    (with_readings(pir(type="percent")), "readings[0].type", "only they, are of type percent"),
    (with_readings(PIR, {**BATT, "type": "bool"}), "readings[1].type", "of type percent"),
    (with_readings(pir(type="enum")), "readings[0].values", "required for type enum"),
    (with_readings(pir(values={"a": True})), "readings[0].values", "only for it"),
    (with_readings(pir(type="enum", values={"a": None})), "readings[0].values", "no word means"),
    (with_readings(pir(type="enum", values={"a": 1})), "readings[0].values.a", "expected true,"),
    (
        with_readings(pir(type="enum", values={"a": True, "A": False})),
        "readings[0].values.A",
        "listed twice",
    ),
    (with_readings(pir(type="enum", values=[])), "readings[0].values", "expected a mapping of"),
    (
        with_readings(pir(type="enum", values={"x": True}, ignore_false=True)),
        "readings[0].ignore_false",
        "only for type bool",
    ),
    (with_readings(PIR, {**BATT, "invert": True}), "readings[1].invert", "cannot be inverted"),
    (with_readings(PIR, pir(field="m")), "readings", "kind 'motion' has more than one reading"),
    (with_readings(PIR, {**BATT, "field": "pir"}), "readings", "field 'pir' is read for two kinds"),
    (with_(heartbeat="soon"), "heartbeat", "expected a duration"),
    (with_(heartbeat="0m"), "heartbeat", "expected a duration"),
    (with_(heartbeat=90), "heartbeat", "expected a duration"),
    (with_(options=["colour"]), "options[0]", "unknown option 'colour'"),
    (with_(options="invert"), "options", "expected a list of option names"),
    (with_(options=["battery_field"]), "options", "'battery_field' needs a battery reading"),
    (with_(bare_value="yes"), "bare_value", "expected true or false"),
    (with_(timestamp_field=""), "timestamp_field", "expected non-empty text"),
]


@pytest.mark.parametrize(("text", "field", "problem"), MALFORMED)
def test_malformed_profile_names_file_and_field(
    tmp_path: Path, text: str, field: str, problem: str
) -> None:
    path = tmp_path / "acme-x1.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    if field:
        assert f"field {field!r}: " in message
    assert problem in message


def test_enum_words_that_yaml_reads_as_booleans_must_be_quoted(tmp_path: Path) -> None:
    path = tmp_path / "acme-x1.yaml"
    path.write_text(
        "vendor: Acme\nmodel: X1\ndescription: d\nkinds: [motion]\n"
        "readings:\n  - {kind: motion, field: m, type: enum, values: {on: true, off: false}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ProfileError, match="quote it"):
        load_profile_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot be read"):
        load_profile_file(tmp_path / "absent.yaml")


def test_profile_file_with_all_features(tmp_path: Path) -> None:
    path = tmp_path / "acme-x1.yaml"
    path.write_text(
        "vendor: Acme\nmodel: X1\ndescription: a mat\nheartbeat: 1h30m\n"
        "kinds: [bed, motion]\noptions: [invert]\ntimestamp_field: ts\n"
        "readings:\n"
        "  - {kind: bed, field: mat, type: enum, values: {'pressed': true, 'free': false}}\n"
        "  - {kind: motion, field: mat, type: bool}\n"
        "  - {kind: battery, field: level, type: percent}\n",
        encoding="utf-8",
    )
    profile = load_profile_file(path)
    assert profile.id == "acme-x1"
    assert profile.heartbeat == timedelta(hours=1, minutes=30)
    assert profile.kinds == frozenset({BED, MOTION})
    c = profile.bind(BED, {"invert": True})
    events = decode(c, {"mat": "Pressed", "level": "33", "ts": SEEN_MS})
    assert readings(events) == [(BED, False), (BATTERY, 33)]
    assert events[0].at == SEEN
    assert c.encode(SensorEvent("h", "d", BED, True, SEEN)) == {
        "mat": "free",
        "ts": SEEN.isoformat(),
    }
