"""Home configuration files on disk, watched for changes.

A care coordinator edits a home's YAML; within `config_poll_s` the running
service applies it without a restart. A file that no longer validates is
refused with its problems logged and counted, and the home keeps running on
its last good configuration: a typo must never switch a home's safety off.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from alerts.homeconfig import ConfigError, HomeConfig
from gateway.bulk import collector_paused
from gateway.config_cache import ConfigCache

log = logging.getLogger("tecmon.homes")

SUFFIXES = (".yaml", ".yml", ".json")
BULK = 1000  # changed files at once (a start): loaded with the garbage collector paused


def home_file_times(sources: Iterable[Path]) -> dict[Path, float]:
    """Every home file named directly or found in a named directory, with its mtime.

    `os.scandir` and plain strings: with 100,000 homes this runs every few
    seconds, and pathlib's per-file objects cost more than the stat itself.
    """
    found: dict[Path, float] = {}
    for source in sources:
        if source.is_dir():
            with os.scandir(source) as entries:
                for entry in entries:
                    if entry.name.endswith(SUFFIXES) and entry.is_file():
                        found[Path(entry.path)] = entry.stat().st_mtime
        elif source.is_file():
            found[source] = source.stat().st_mtime
        else:
            log.warning("home source %s does not exist", source)
    return found


OnConfig = Callable[[HomeConfig], None]


@dataclass
class HomeWatcher:
    """Tracks which file holds which home, and what changed since the last look."""

    sources: list[Path]
    service_fallback: bool = False  # the settings give every home service contacts
    _mtimes: dict[Path, float] = field(default_factory=dict)
    _homes: dict[Path, str] = field(default_factory=dict)
    _paths: dict[str, Path] = field(default_factory=dict)
    _cache: ConfigCache | None = None

    def __post_init__(self) -> None:
        self._cache = ConfigCache(self.service_fallback)

    def file_of(self, home: str) -> Path | None:
        """The file that defines `home`, if one does."""
        return self._paths.get(home)

    def source_of(self, home: str) -> str | None:
        """The source digest of the file last applied for `home` (`ConfigCache.source`)."""
        path = self._paths.get(home)
        return None if path is None or self._cache is None else self._cache.source(path)

    def changes(self) -> tuple[set[Path], list[tuple[Path, float]]]:
        """(every home file now, the new or changed ones with their mtime): only stats,
        safe to run on a worker thread so 100,000 files never stall the event loop."""
        times = home_file_times(self.sources)
        changed = [(p, t) for p, t in times.items() if self._mtimes.get(p) != t]
        changed.sort(key=lambda item: str(item[0]))  # a string sort: Path comparisons cost 10x more
        return set(times), changed

    def scan(
        self, on_config: OnConfig, found: tuple[set[Path], list[tuple[Path, float]]] | None = None
    ) -> tuple[list[str], list[ConfigError]]:
        """Hand each new or changed home to `on_config` as it is read (100,000 homes are
        never all held at once); returns the homes whose file is gone and the files refused.
        A file touched but not changed (the same bytes) is not applied again."""
        errors: list[ConfigError] = []
        current, changed = found or self.changes()
        cache = self._cache or ConfigCache(self.service_fallback)
        with collector_paused(len(changed) >= BULK):
            self._apply(cache, changed, on_config, errors)
        gone = [p for p in self._homes if p not in current]
        removed = [self._homes.pop(p) for p in gone]
        for p, home in zip(gone, removed, strict=True):
            self._mtimes.pop(p, None)
            cache.forget(p)
            if self._paths.get(home) == p:
                del self._paths[home]
        return removed, errors

    def _apply(self, cache: ConfigCache, changed: list[tuple[Path, float]], on_config: OnConfig,
               errors: list[ConfigError]) -> None:
        for path, mtime in changed:
            self._mtimes[path] = mtime
            try:
                cfg = cache.load(path)
            except ConfigError as exc:
                cache.forget(path)
                errors.append(exc)
                continue
            if cfg is None:
                continue
            self._homes[path] = cfg.home
            self._paths[cfg.home] = path
            on_config(cfg)


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
