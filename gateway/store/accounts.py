"""Accounts, machine tokens, used acknowledgement links and database-managed homes.

Written once over the SQL seam (`gateway/store/sql.py`), so SQLite and
PostgreSQL keep exactly the same rules. Password hashes and token digests
are stored; passwords and tokens themselves never are.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from gateway.store.base import ConfigVersion
from gateway.store.sql import SqlSeam

Role = Literal["admin", "coordinator", "carer", "engineer"]
ROLES: tuple[Role, ...] = ("admin", "coordinator", "carer", "engineer")


class AccountExists(ValueError):
    """A user of that name is already there."""


@dataclass(frozen=True, slots=True)
class UserRow:
    """An account; `homes` is a coordinator's caseload or a carer's homes (empty for the others)."""

    name: str
    role: Role
    homes: tuple[str, ...]
    contact: str | None
    password_hash: str
    created_at: datetime


_USER_COLUMNS = "name, role, homes, contact, password_hash, created_at"
SECRET_KEY_META = "auth_signing_key"


class AccountTables(SqlSeam):
    """The account queries of a store (a mixin of both backends)."""

    def _user(self, row: tuple[Any, ...]) -> UserRow:
        name, role, homes, contact, digest, created = row
        return UserRow(name, role, tuple(json.loads(homes)), contact, digest, self.ts_value(created))

    # -- users --------------------------------------------------------------------------

    async def add_user(self, user: UserRow) -> None:
        sql = f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        params = (user.name, user.role, json.dumps(list(user.homes)), user.contact,
                  user.password_hash, self.ts_param(user.created_at))
        try:
            await self.execute(sql, params)
        except self.unique_violation:
            raise AccountExists(f"a user called {user.name!r} already exists") from None

    async def get_user(self, name: str) -> UserRow | None:
        rows = await self.fetch(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,))
        return self._user(rows[0]) if rows else None

    async def list_users(self) -> list[UserRow]:
        return [self._user(r) for r in await self.fetch(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name")]

    async def remove_user(self, name: str) -> bool:
        """The account and its machine tokens; True when there was such a user."""
        counts = await self.transaction([
            ("DELETE FROM machine_tokens WHERE user_name = ?", (name,)),
            ("DELETE FROM users WHERE name = ?", (name,)),
        ])
        return counts[1] > 0

    async def set_user_homes(self, name: str, homes: tuple[str, ...]) -> None:
        await self.execute("UPDATE users SET homes = ? WHERE name = ?", (json.dumps(list(homes)), name))

    async def set_password_hash(self, name: str, digest: str) -> None:
        await self.execute("UPDATE users SET password_hash = ? WHERE name = ?", (digest, name))

    # -- machine tokens -----------------------------------------------------------------

    async def add_machine_token(self, token_id: str, user: str, digest: str, at: datetime) -> None:
        await self.execute("INSERT INTO machine_tokens (id, user_name, digest, created_at) "
                           "VALUES (?, ?, ?, ?)", (token_id, user, digest, self.ts_param(at)))

    async def machine_token(self, token_id: str) -> tuple[str, str] | None:
        """(user name, digest) of a machine token, or None."""
        rows = await self.fetch("SELECT user_name, digest FROM machine_tokens WHERE id = ?", (token_id,))
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    # -- acknowledgement links ----------------------------------------------------------

    async def use_ack_link(self, token_id: str, alert: str, contact: str, at: datetime) -> bool:
        """Mark a link used; False when it had been used already (single use, across restarts)."""
        try:
            await self.execute("INSERT INTO used_ack_links (token_id, alert, contact, used_at) "
                               "VALUES (?, ?, ?, ?)", (token_id, alert, contact, self.ts_param(at)))
        except self.unique_violation:
            return False
        return True

    async def release_ack_link(self, token_id: str) -> None:
        """Give a use back: what it was for was not applied (the home was changing hands)."""
        await self.execute("DELETE FROM used_ack_links WHERE token_id = ?", (token_id,))

    async def ack_link_used_at(self, token_id: str) -> datetime | None:
        rows = await self.fetch("SELECT used_at FROM used_ack_links WHERE token_id = ?", (token_id,))
        return self.ts_value(rows[0][0]) if rows else None

    # -- homes managed in the database --------------------------------------------------

    async def managed_homes(self) -> list[str]:
        return [str(r[0]) for r in await self.fetch("SELECT home FROM managed_homes ORDER BY home")]

    async def set_managed(self, home: str, managed: bool, at: datetime) -> None:
        if managed:
            await self.transaction([
                ("DELETE FROM managed_homes WHERE home = ?", (home,)),
                ("INSERT INTO managed_homes (home, managed_since) VALUES (?, ?)", (home, self.ts_param(at))),
            ])
        else:
            await self.execute("DELETE FROM managed_homes WHERE home = ?", (home,))

    async def home_config_version(self, home: str, version: int | None = None) -> ConfigVersion | None:
        """One saved version of a home (the latest without `version`)."""
        base = "SELECT home, version, config_json, saved_at, saved_by, why FROM home_configs WHERE home = ?"
        if version is None:
            rows = await self.fetch(base + " ORDER BY version DESC LIMIT 1", (home,))
        else:
            rows = await self.fetch(base + " AND version = ?", (home, version))
        if not rows:
            return None
        h, n, text, saved_at, by, why = rows[0]
        return ConfigVersion(h, int(n), text, self.ts_value(saved_at), by, why)

    # -- service settings kept with the data --------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        rows = await self.fetch("SELECT value FROM store_meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def set_meta_once(self, key: str, value: str) -> str:
        """Keep `value` unless the key already has one; return the value that is kept."""
        with contextlib.suppress(self.unique_violation):
            await self.execute("INSERT INTO store_meta (key, value) VALUES (?, ?)", (key, value))
        kept = await self.get_meta(key)
        return value if kept is None else kept
