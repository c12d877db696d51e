"""A home's configuration: the person's routine, devices and contacts.

This is the contract shape written by care coordinators with the person (YAML
on disk, the same shape as JSON in the API). Validation is strict on purpose:
an unknown key is usually a typo that would silently switch a safety rule off,
so it is refused with a message that names the field.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alerts.durations import format_duration, parse_clock, parse_duration
from alerts.events import EventKind

# libyaml's loader when PyYAML was built with it: a service start reads every home file.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_PATHED = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.*)$", re.S)


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)  # type: ignore[arg-type]


def _clock(value: object) -> time:
    if isinstance(value, time):
        return value
    return parse_clock(value)  # type: ignore[arg-type]


def _local_datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a local date and time like 2026-12-24T10:00, got {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"expected a local date and time like 2026-12-24T10:00, got {value!r}"
        ) from None


Duration = Annotated[
    timedelta, BeforeValidator(_duration), PlainSerializer(format_duration, return_type=str)
]
Clock = Annotated[
    time, BeforeValidator(_clock), PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str)
]
LocalDateTime = Annotated[
    datetime,
    BeforeValidator(_local_datetime),
    PlainSerializer(lambda d: d.isoformat(timespec="minutes"), return_type=str),
]
Identifier = Annotated[str, Field(pattern=_ID_PATTERN, max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Person(_Strict):
    name: Annotated[str, Field(min_length=1)]
    in_my_words: str = ""


class Device(_Strict):
    id: Identifier
    profile: str
    kind: EventKind
    room: str = ""
    exit: bool = False
    heartbeat: Duration | None = None  # None: the profile's default; 0m: it sends none
    expect_movement_every: Duration | None = None  # motion only; None: 24h; 0m: never a notice
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _profile_fits(self) -> Device:
        from device_profiles import ProfileError, get_profile

        if self.kind in (EventKind.AVAILABILITY, EventKind.BATTERY):
            raise ValueError(
                f"kind: a device is a bed, door, motion, button or light, not {self.kind}"
            )
        if self.exit and self.kind is not EventKind.DOOR:
            raise ValueError("exit: only a door can be an exit")
        if self.expect_movement_every is not None and self.kind is not EventKind.MOTION:
            raise ValueError("expect_movement_every: only for a motion sensor")
        try:
            get_profile(self.profile).bind(self.kind, self.options)
        except ProfileError as exc:
            raise ValueError(f"profile: {exc}") from None
        return self


class Night(_Strict):
    from_: Clock = Field(alias="from")
    to: Clock

    @model_validator(mode="after")
    def _not_empty(self) -> Night:
        if self.from_ == self.to:
            raise ValueError("the night must not start and end at the same time")
        return self


class OutOfBed(_Strict):
    alert_after: Duration

    @field_validator("alert_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0m")
        return value


class StillWhileUp(OutOfBed):
    pass


class ExitDoor(_Strict):
    alert_if_not_back_within: Duration


class CheckWithMe(_Strict):
    """Ask the person first (a light blinks) and wait `within` for their button."""

    within: Duration
    device: Identifier

    @field_validator("within")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0m")
        return value


class Company(_Strict):
    """Someone is with the person: the button action that says so, and for how long at most."""

    action: Annotated[str, Field(min_length=1)]
    for_: Duration = Field(alias="for")

    @field_validator("for_")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0m")
        return value


class Routine(_Strict):
    night: Night
    out_of_bed: OutOfBed | None = None
    exit_door: ExitDoor | None = None
    still_while_up: StillWhileUp | None = None
    in_bed_by: Clock | None = None
    up_by: Clock | None = None
    device_offline_after: Duration = timedelta(minutes=10)
    check_with_me: CheckWithMe | None = None
    company: Company | None = None
    bed_occupied_max: Duration = timedelta(hours=16)  # longer says a stuck sensor, or unwell in bed

    @field_validator("bed_occupied_max")
    @classmethod
    def _a_real_limit(cls, value: timedelta) -> timedelta:
        """Shorter than a night's sleep would tell the service about every night."""
        if value < timedelta(hours=1):
            raise ValueError("must be at least 1h (a night in bed is longer than that)")
        return value


class Contact(_Strict):
    name: Annotated[str, Field(min_length=1)]
    notify: Annotated[list[Annotated[str, Field(min_length=3)]], Field(min_length=1)]
    morning_summary: Clock | None = None  # local time for a short account of the night


class Escalation(_Strict):
    ack_within: Duration = timedelta(minutes=10)
    repeat_every: Duration = timedelta(minutes=5)

    @field_validator("ack_within", "repeat_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0m")
        return value


class AwayPeriod(_Strict):
    from_: LocalDateTime = Field(alias="from")
    to: LocalDateTime
    reason: str = ""


SERVICE_FALLBACK = "service_fallback"
NOBODY_TO_CALL = "contacts: nobody would be called: add a contact (or service_contacts)"


class HomeConfig(_Strict):
    home: Identifier
    timezone: str
    person: Person
    devices: list[Device]
    routine: Routine
    contacts: list[Contact] = Field(default_factory=list)
    service_contacts: list[Contact] = Field(default_factory=list)
    escalation: Escalation = Field(default_factory=Escalation)
    away: list[AwayPeriod] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/London)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @model_validator(mode="after")
    def _someone_to_call(self, info: ValidationInfo) -> HomeConfig:
        """A home whose alerts reach nobody is worse than none: it looks watched.

        The service settings may supply `service_contacts` for every home; the
        caller says so with the validation context `{"service_fallback": True}`.
        """
        fallback = bool((info.context or {}).get(SERVICE_FALLBACK))
        if not self.contacts and not self.service_contacts and not fallback:
            raise ValueError(NOBODY_TO_CALL)
        return self

    @model_validator(mode="after")
    def _consistent(self) -> HomeConfig:
        ids = [d.id for d in self.devices]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"devices: device id {dupes[0]!r} is used twice")
        for problem in _rules_without_devices(self):
            raise ValueError(problem)
        for i, period in enumerate(self.away):
            if period.to <= period.from_:
                raise ValueError(f"away[{i}].to: must be after away[{i}].from")
        return self

    def device(self, device_id: str) -> Device | None:
        return next((d for d in self.devices if d.id == device_id), None)


def _rules_without_devices(cfg: HomeConfig) -> list[str]:
    """A rule that can never see its sensor would give a false sense of safety."""
    kinds = {d.kind for d in cfg.devices}
    has_exit = any(d.exit for d in cfg.devices)
    routine = cfg.routine
    needs = [
        ("routine.out_of_bed", routine.out_of_bed, EventKind.BED in kinds, "a bed device"),
        ("routine.still_while_up", routine.still_while_up, EventKind.BED in kinds, "a bed device"),
        ("routine.in_bed_by", routine.in_bed_by, EventKind.BED in kinds, "a bed device"),
        ("routine.up_by", routine.up_by, EventKind.BED in kinds, "a bed device"),
        ("routine.exit_door", routine.exit_door, has_exit, "a door device with exit: true"),
    ]
    found = [f"{field}: needs {what}" for field, rule, ok, what in needs if rule and not ok]
    from alerts.care_config import care_problems

    return found + care_problems(cfg)


class ConfigError(ValueError):
    """A home configuration that cannot be used; each problem names its field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("from_", "for_"):
            path += f".{part[:-1]}" if path else part[:-1]
        else:
            path += f".{part}" if path else str(part)
    return path


def _problem(error: Any) -> str:
    """One line per problem: `devices[1].profile: unknown profile 'x'; known: ...`."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required"
    path = _field_path(tuple(error["loc"]))
    pathed = _PATHED.match(message)
    if pathed:  # a model-level check that names its own sub-field
        sub, message = pathed.groups()
        path = f"{path}.{sub}" if path else sub
    return f"{path}: {message}" if path else message


def parse_home_config(
    data: object, source: str = "<config>", *, service_fallback: bool = False
) -> HomeConfig:
    """Validate already-parsed YAML/JSON data; raise `ConfigError` naming each bad field.

    `service_fallback`: the service settings give service contacts to every
    home, so a home with neither `contacts` nor `service_contacts` still
    reaches someone and is accepted.
    """
    if not isinstance(data, dict):
        raise ConfigError(source, ["expected a mapping with home, timezone, person, ..."])
    try:
        return HomeConfig.model_validate(data, context={SERVICE_FALLBACK: service_fallback})
    except ValidationError as exc:
        raise ConfigError(source, [_problem(e) for e in exc.errors()]) from None


def load_home_config(path: str | Path, *, service_fallback: bool = False) -> HomeConfig:
    """Read a home configuration from a YAML (or JSON) file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_YamlLoader)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(str(path), [f"not valid YAML/JSON: {exc}"]) from None
    return parse_home_config(data, str(path), service_fallback=service_fallback)
