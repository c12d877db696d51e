"""The small SQL seam both backends offer, so a concern's queries are written once.

Accounts, acknowledgement links and history reads are a handful of ordinary
queries each. Rather than spell every one twice, a backend exposes `fetch`,
`execute` and `transaction` with `?` placeholders plus its timestamp
conversions; the modules that hold those queries (`accounts.py`,
`history.py`) are mixins over this class and run unchanged on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

Params = Sequence[Any]
Statement = tuple[str, Params]


class SqlSeam:
    """Implemented by `SqliteStore` and `PostgresStore`; see the module docstring."""

    async def fetch(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows of one query; `?` marks a parameter."""
        raise NotImplementedError

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One statement in its own transaction; the number of rows it touched."""
        return (await self.transaction([(sql, params)]))[0]

    async def transaction(self, statements: Sequence[Statement]) -> list[int]:
        """Several statements, all or none; the rows each touched."""
        raise NotImplementedError

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        """One statement for many rows in one transaction (pipelined where the driver can)."""
        raise NotImplementedError

    def in_list(self, column: str) -> str:
        """`column` is one of the values of a single list parameter (SQL text with one `?`)."""
        raise NotImplementedError

    def list_param(self, values: Sequence[str]) -> Any:
        """The parameter that `in_list` expects."""
        raise NotImplementedError

    def ts_param(self, moment: datetime) -> Any:
        """A timezone-aware time as this backend stores it."""
        raise NotImplementedError

    def ts_value(self, value: Any) -> datetime:
        """A stored time back as a timezone-aware datetime."""
        raise NotImplementedError

    @property
    def unique_violation(self) -> type[Exception]:
        """What this backend's driver raises when a primary key or unique index is hit."""
        raise NotImplementedError
