"""Home configuration files on disk, watched for changes.

A care coordinator edits a home's YAML; within `config_poll_s` the running
service applies it without a restart. A file that no longer validates is
refused with its problems logged and counted, and the home keeps running on
its last good configuration: a typo must never switch a home's safety off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from alerts.homeconfig import ConfigError, HomeConfig, load_home_config

log = logging.getLogger("tecmon.homes")

SUFFIXES = (".yaml", ".yml", ".json")


def home_files(sources: Iterable[Path]) -> list[Path]:
    """Every home file named directly or found in a named directory."""
    found: list[Path] = []
    for source in sources:
        if source.is_dir():
            found += sorted(p for p in source.iterdir() if p.suffix in SUFFIXES and p.is_file())
        elif source.is_file():
            found.append(source)
        else:
            log.warning("home source %s does not exist", source)
    return found


OnConfig = Callable[[HomeConfig], None]


@dataclass
class HomeWatcher:
    """Tracks which file holds which home, and what changed since the last look."""

    sources: list[Path]
    _mtimes: dict[Path, float] = field(default_factory=dict)
    _homes: dict[Path, str] = field(default_factory=dict)

    def changes(self) -> tuple[list[Path], list[tuple[Path, float]]]:
        """(every home file now, the new or changed ones with their mtime): only stats,
        safe to run on a worker thread so 100,000 files never stall the event loop."""
        current = home_files(self.sources)
        changed = []
        for path in current:
            mtime = path.stat().st_mtime
            if self._mtimes.get(path) != mtime:
                changed.append((path, mtime))
        return current, changed

    def scan(
        self, on_config: OnConfig, found: tuple[list[Path], list[tuple[Path, float]]] | None = None
    ) -> tuple[list[str], list[ConfigError]]:
        """Hand each new or changed home to `on_config` as it is read (100,000 homes are
        never all held at once); returns the homes whose file is gone and the files refused."""
        errors: list[ConfigError] = []
        current, changed = found or self.changes()
        for path, mtime in changed:
            self._mtimes[path] = mtime
            try:
                cfg = load_home_config(path)
            except ConfigError as exc:
                errors.append(exc)
                continue
            self._homes[path] = cfg.home
            on_config(cfg)
        present = set(current)
        gone = [p for p in self._homes if p not in present]
        removed = [self._homes.pop(p) for p in gone]
        for p in gone:
            self._mtimes.pop(p, None)
        return removed, errors


async def watch_homes(
    watcher: HomeWatcher,
    on_config: OnConfig,
    on_rest: Callable[[list[str], list[ConfigError]], None],
    every: float,
) -> None:
    """Poll the home files forever, applying what changed."""
    while True:
        await asyncio.sleep(every)
        found = await asyncio.to_thread(watcher.changes)
        on_rest(*watcher.scan(on_config, found))
