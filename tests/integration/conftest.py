"""Fixtures of the integration tests: each store test runs on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from gateway.store import open_store
from gateway.store.base import Store
from tests import store_contract as sc
from tests.conftest import port_open

SHARED_PG = "postgresql://postgres@127.0.0.1:5432/test"


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


@pytest.fixture(scope="module")
def postgres() -> str:
    if not port_open("127.0.0.1", 5432):
        clusters = os.listdir("/etc/postgresql")
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", clusters[0], "main", "start"], check=False)
        time.sleep(2)
    if not port_open("127.0.0.1", 5432):
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started")
    return SHARED_PG


@pytest.fixture
def database(postgres: str) -> Iterator[str]:
    """A database of this test's own on the shared server, dropped afterwards."""
    name = f"tecmon_r_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
