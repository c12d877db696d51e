"""Homes edited through the API: one source of truth per home, and every change a version.

A home is defined either by a file (the directory in the settings, watched
for changes) or by the database (created and edited through the API). Never
both: a file for a home the database manages is refused and logged, and the
API answers 409 to an edit of a file-managed home, naming its file. `tecmon
homes import DIR` moves file homes into the database; `export DIR` writes
them back out as files and gives them back to those files.

Every change is saved as a numbered version with who, when and why before it
is applied to the running engine, which happens at once. Contact notification
URLs are write-only: what leaves here carries them redacted, and an edit that
sends a redacted URL back keeps the real one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alerts.homeconfig import ConfigError, HomeConfig, parse_home_config
from alerts.notify import redact
from gateway.runtime import Runtime
from gateway.store.base import ConfigVersion, Store

log = logging.getLogger("tecmon.homes")

TOMBSTONE_KEY = "deleted"


class HomeProblem(Exception):
    """An edit that cannot be made: `status` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Saved:
    home: str
    version: int
    config: HomeConfig


def redacted(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration as it may be shown: every notification URL reduced to scheme and host."""
    out = dict(config)
    for key in ("contacts", "service_contacts"):
        out[key] = [{**c, "notify": [redact(u) for u in c.get("notify", [])]} for c in config.get(key, [])]
    return out


def keep_secrets(proposed: dict[str, Any], current: HomeConfig | None) -> dict[str, Any]:
    """A redacted URL sent back (from a GET, edited elsewhere) stands for the real one it hides."""
    if current is None:
        return proposed
    real = {redact(u): u for c in (*current.contacts, *current.service_contacts) for u in c.notify}
    out = dict(proposed)
    for key in ("contacts", "service_contacts"):
        contacts = proposed.get(key)
        if isinstance(contacts, list):
            out[key] = [_with_real_urls(c, real) for c in contacts]
    return out


def _with_real_urls(contact: Any, real: dict[str, str]) -> Any:
    if not isinstance(contact, dict) or not isinstance(contact.get("notify"), list):
        return contact
    return {**contact, "notify": [real.get(u, u) if isinstance(u, str) else u for u in contact["notify"]]}


def is_tombstone(version: ConfigVersion) -> bool:
    return bool(version.config.get(TOMBSTONE_KEY))


async def _at_once(home: str) -> None:
    """One box: the runtime applied the change as it was made."""


class HomeAdmin:
    """Creates, edits, deletes and restores database-managed homes; knows each home's source."""

    def __init__(self, runtime: Runtime, store: Store, now: Callable[[], datetime],
                 file_of: Callable[[str], Path | None]) -> None:
        self.runtime = runtime
        self.store = store
        self.now = now
        self.file_of = file_of  # the file that defines a home, if one does
        self.managed: set[str] = set()
        # Awaited after a change reaches the runtime: at once on one box; in a cluster, until the
        # instance that runs the home has applied it (`gateway.cluster.HomesAtOwner.applied`).
        self.applied: Callable[[str], Awaitable[None]] = _at_once

    @property
    def _fallback(self) -> bool:
        """The settings' service contacts reach a home that names nobody itself."""
        return bool(self.runtime.service_contacts)

    def source(self, home: str) -> str | None:
        if home in self.managed:
            return "database"
        return "file" if self.file_of(home) is not None else None

    async def load(self) -> int:
        """At start: every database-managed home into the runtime (before history is replayed)."""
        self.managed = set(await self.store.managed_homes())
        loaded = 0
        for home in sorted(self.managed):
            latest = await self.store.home_config_version(home)
            if latest is None or is_tombstone(latest):
                continue
            try:
                cfg = parse_home_config(latest.config, f"database:{home}", service_fallback=self._fallback)
                self.runtime.set_home(cfg, start=False)
                loaded += 1
            except ConfigError as exc:
                log.error("home %s in the database no longer validates: %s", home, "; ".join(exc.problems))
        return loaded

    def refuses_file(self, cfg: HomeConfig, path: Path) -> bool:
        """A file for a home the database manages is not applied: one source per home."""
        if cfg.home not in self.managed:
            return False
        log.error("home file %s refused: home %s is managed in the database (edit it through the API, "
                  "or `tecmon homes export` it back to a file)", path, cfg.home)
        return True

    # -- edits --------------------------------------------------------------------------

    def _validate(self, data: object, home: str | None) -> HomeConfig:
        cfg = parse_home_config(data, "config", service_fallback=self._fallback)
        if home is not None and cfg.home != home:
            raise ConfigError("config", [f"home: must stay {home!r} (a home cannot be renamed)"])
        return cfg

    async def _save(self, cfg: HomeConfig, by: str, why: str) -> Saved:
        data = cfg.model_dump(mode="json", by_alias=True)
        version = await self.store.save_home_config(cfg.home, data, by, why, self.now())
        self.runtime.set_home(cfg)
        await self.applied(cfg.home)
        return Saved(cfg.home, version, cfg)

    def _editable(self, home: str) -> HomeConfig:
        path = self.file_of(home)
        if home not in self.managed and path is not None:
            raise HomeProblem(409, f"Home {home} is defined by the file {path.name}: edit that file, or "
                              "move it into the database with `tecmon homes import`.")
        current = self.runtime.homes.get(home)
        if current is None or home not in self.managed:
            raise HomeProblem(404, "There is no such home, or it is not one of yours.")
        return current.config

    async def create(self, data: object, by: str, why: str) -> Saved:
        cfg = self._validate(data, None)
        if cfg.home in self.runtime.homes or self.file_of(cfg.home) is not None or cfg.home in self.managed:
            raise HomeProblem(409, f"A home called {cfg.home} already exists.")
        await self.store.set_managed(cfg.home, True, self.now())
        self.managed.add(cfg.home)
        return await self._save(cfg, by, why)

    async def update(self, home: str, data: object, by: str, why: str) -> Saved:
        current = self._editable(home)
        proposed = keep_secrets(data, current) if isinstance(data, dict) else data
        return await self._save(self._validate(proposed, home), by, why)

    async def delete(self, home: str, by: str, why: str) -> int:
        self._editable(home)
        version = await self.store.save_home_config(home, {"home": home, TOMBSTONE_KEY: True}, by, why,
                                                    self.now())
        await self.store.set_managed(home, False, self.now())
        self.managed.discard(home)
        self.runtime.remove_home(home)
        await self.applied(home)
        return version

    async def restore(self, home: str, number: int, by: str, why: str | None = None) -> Saved:
        self._editable(home)
        old = await self.store.home_config_version(home, number)
        if old is None or is_tombstone(old):
            raise HomeProblem(404, f"Home {home} has no version {number} to restore.")
        reason = f"restored version {number}" + (f": {why}" if why else "")
        return await self._save(self._validate(old.config, home), by, reason)

    # -- moving between files and the database ------------------------------------------

    async def import_home(self, cfg: HomeConfig, by: str, why: str) -> int:
        """A file's home into the database (the caller then retires the file)."""
        await self.store.set_managed(cfg.home, True, self.now())
        self.managed.add(cfg.home)
        data = cfg.model_dump(mode="json", by_alias=True)
        return await self.store.save_home_config(cfg.home, data, by, why, self.now())
