"""A progress bar and an end-of-run summary for long simulator runs, on stderr.

The bar is drawn only on a terminal (or when asked with `--progress`), so
logs and pipes stay clean; it is redrawn at most ten times a second because a
load run can call `update` tens of thousands of times a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

WIDTH = 30


def wanted(flag: bool, stream: TextIO) -> bool:
    """Draw a bar when asked to, or when a person is watching the terminal."""
    return flag or stream.isatty()


class Progress:
    """`update(done)` with a count out of `total`; `finish()` ends the line."""

    def __init__(self, total: float, unit: str, stream: TextIO, enabled: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = max(total, 1)
        self.unit = unit
        self.stream = stream
        self.enabled = enabled
        self.clock = clock
        self.started = clock()
        self.drawn_at = -1.0
        self.done = 0.0

    def update(self, done: float) -> None:
        self.done = done
        now = self.clock()
        if self.enabled and now - self.drawn_at >= 0.1:
            self.drawn_at = now
            self.stream.write("\r" + self.line(now))
            self.stream.flush()

    def line(self, now: float) -> str:
        share = min(self.done / self.total, 1.0)
        filled = int(share * WIDTH)
        elapsed = max(now - self.started, 1e-9)
        bar = "#" * filled + "-" * (WIDTH - filled)
        return (f"[{bar}] {share:4.0%} {self.done:,.0f}/{self.total:,.0f} {self.unit} "
                f"{self.done / elapsed:,.0f} {self.unit}/s")

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r" + self.line(self.clock()) + "\n")
            self.stream.flush()


@dataclass(frozen=True, slots=True)
class Summary:
    """What a run did, for the last line on stderr."""

    what: str
    events: int
    homes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        return (f"{self.what}: {self.events:,} events, {self.homes:,} home(s), "
                f"{self.seconds:.2f} s, {self.rate:,.0f} events/s")
