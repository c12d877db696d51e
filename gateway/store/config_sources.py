"""Configuration history for many homes at once: a start reads its files, it does not save them again.

Every version of a home file's configuration is kept (`home_configs`). A
start used to save each of 100,000 homes in turn, one transaction each, only
to find almost all of them unchanged. Since migration 7 each version also
records `source_digest`: a digest of the file's bytes and of the validation
code it was read with. A start asks once for every home's latest source
(`config_sources`) and sends only the homes whose file differs to
`save_home_configs`, which saves them a batch at a time: the same new
version `save_home_config` would make, and none when the content is what the
latest version already holds (that version then learns its source).

Written once over the SQL seam (`gateway/store/sql.py`) so both backends
answer alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.store.base import canonical_json
from gateway.store.sql import SqlSeam

_LATEST = "NOT EXISTS (SELECT 1 FROM home_configs n WHERE n.home = h.home AND n.version > h.version)"
"""A home's latest version: an anti-join (a third of the time of `IN (... MAX(version) ...)`)."""
INSERT = ("INSERT INTO home_configs (home, version, config_json, digest, saved_at, saved_by, why, "
          "source_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
LEARN = "UPDATE home_configs SET source_digest = ? WHERE home = ? AND version = ?"


@dataclass(frozen=True, slots=True)
class ConfigToSave:
    """One home's configuration as `save_home_config` takes it, and the source it came from."""

    home: str
    config: Mapping[str, Any]
    by: str
    why: str
    at: datetime
    source: str | None = None


class ConfigSources(SqlSeam):
    """The bulk configuration-history queries of a store (a mixin of both backends)."""

    async def config_sources(self) -> dict[str, str]:
        """Every home whose latest version records its source: home -> that source digest."""
        sql = f"SELECT home, source_digest FROM home_configs h WHERE source_digest IS NOT NULL AND {_LATEST}"
        return {str(home): str(source) for home, source in await self.fetch(sql)}

    async def save_home_configs(self, items: Sequence[ConfigToSave]) -> list[int]:
        """Each item saved as `save_home_config` would (a new version only when the content
        changed), in one transaction; the version of each, in order. A version saved by
        someone else meanwhile makes it raise the backend's unique violation."""
        homes = sorted({item.home for item in items})
        if not homes:
            return []
        sql = f"SELECT home, version, digest FROM home_configs h WHERE {self.in_list('h.home')} AND {_LATEST}"
        latest = {str(h): (int(v), str(d)) for h, v, d in await self.fetch(sql, (self.list_param(homes),))}
        statements: list[tuple[str, Sequence[Any]]] = []
        versions: list[int] = []
        for item in items:
            text = canonical_json(item.config)
            digest = hashlib.sha256(text.encode()).hexdigest()
            version, last = latest.get(item.home, (0, ""))
            if last != digest:
                version += 1
                latest[item.home] = (version, digest)
                statements.append((INSERT, (item.home, version, text, digest, self.ts_param(item.at),
                                            item.by, item.why, item.source)))
            elif item.source is not None:
                statements.append((LEARN, (item.source, item.home, version)))
            versions.append(version)
        await self.transaction(statements)
        return versions
