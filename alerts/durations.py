"""Durations and local clock times as people write them in a routine.

Care coordinators write `45m`, `1h30m`, `90s` and `07:30`; these helpers turn
that into `timedelta`/`time` and back into the same plain words for messages.
"""

from __future__ import annotations

import re
from datetime import time, timedelta

_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
_CLOCK = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2})$")


def parse_duration(text: str) -> timedelta:
    """Parse `90s`, `45m`, `1h30m`, `0m`; bare numbers are refused as ambiguous."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groupdict().values()):
        raise ValueError(f"expected a duration like 45m, 90s or 1h30m, got {text!r}")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return timedelta(hours=parts.get("h", 0), minutes=parts.get("m", 0), seconds=parts.get("s", 0))


def format_duration(delta: timedelta) -> str:
    """Short form for config files: `1h30m`, `45m`, `90s` -> `1m30s`."""
    total = int(delta.total_seconds())
    if total == 0:
        return "0m"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return out + (f"{seconds}s" if seconds else "")


def _unit(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def describe_duration(delta: timedelta) -> str:
    """Plain words for messages: `45 minutes`, `1 hour 30 minutes`, `90 seconds`."""
    total = int(delta.total_seconds())
    if total < 120 and total % 60:
        return _unit(total, "second")
    hours, rest = divmod(total, 3600)
    minutes = rest // 60
    if not hours:
        return _unit(minutes, "minute")
    return _unit(hours, "hour") + (" " + _unit(minutes, "minute") if minutes else "")


def parse_clock(text: str) -> time:
    """Parse a local wall-clock time `HH:MM` (24-hour)."""
    match = _CLOCK.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"expected a local time like 22:00, got {text!r}")
    hour, minute = int(match["h"]), int(match["m"])
    if hour > 23 or minute > 59:
        raise ValueError(f"expected a local time like 22:00, got {text!r}")
    return time(hour, minute)
