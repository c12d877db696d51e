"""Fixtures of the integration tests: each store test runs on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.store import open_store
from gateway.store.base import Store
from tests import store_contract as sc


@dataclass
class Backend:
    name: str
    url: str
    store: Store

    def another(self) -> Store:
        """A second store object on the same database (a restart, another process)."""
        return open_store(self.url)


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tecmon.db'}"
        store = open_store(url)
        await store.open()
        yield Backend("sqlite", url, store)
        await store.close()
        return
    async with sc.postgres_schema() as url:
        store = open_store(url)
        await store.open()
        yield Backend("postgresql", url, store)
        await store.close()
