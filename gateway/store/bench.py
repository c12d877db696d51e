"""How fast events go into PostgreSQL through the store, against a bare COPY.

The store's `write_events` should cost little more than the COPY it wraps; a
large gap would mean per-row Python overhead worth removing. Both are timed
in the same run, on the same rows, into the same table shape (a scratch
schema, dropped afterwards), median of three runs each.

    python -m gateway.store.bench postgresql://postgres@127.0.0.1:5432/test 200000
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import psycopg

from gateway.store.base import EventRow, row_getter
from gateway.store.postgres import COPY_TYPES, EVENT_COLUMNS, PostgresStore

RUNS = 3


def sample_events(count: int, homes: int = 1000) -> list[EventRow]:
    """A night's worth of plausible readings spread over many homes."""
    start = datetime(2026, 1, 12, 22, 0, tzinfo=UTC)
    devices = (("bed", "bed"), ("hall-motion", "motion"), ("front-door", "door"))
    rows = []
    for i in range(count):
        device, kind = devices[i % 3]
        at = start + timedelta(milliseconds=37 * i)
        home = f"home-{i % homes:05d}"
        received = at + timedelta(milliseconds=80)
        rows.append(EventRow(home, device, kind, i % 2, at, received, f"zigbee2mqtt/{home}/{device}"))
    return rows


def with_search_path(url: str, schema: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


async def _timed(prepare: Callable[[], Awaitable[None]], work: Callable[[], Awaitable[None]]) -> float:
    await prepare()
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def _raw_copy(conn: psycopg.AsyncConnection[Any], values: list[tuple[Any, ...]], binary: bool) -> None:
    """The bare minimum: one COPY of ready-made tuples in one transaction."""
    sql = f"COPY events ({EVENT_COLUMNS}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
    async with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
        if binary:
            copy.set_types(COPY_TYPES)
        for row in values:
            await copy.write_row(row)


async def copy_throughput(url: str, rows: int) -> dict[str, Any]:
    """Events per second: `PostgresStore.write_events` vs a raw psycopg COPY (median of 3 each)."""
    schema = f"tecmon_bench_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute(f"CREATE SCHEMA {schema}")
        try:
            return await _measure(with_search_path(url, schema), admin, schema, rows)
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")


async def _measure(url: str, admin: psycopg.AsyncConnection[Any], schema: str, rows: int) -> dict[str, Any]:
    events = sample_events(rows)
    values = [*map(row_getter("events"), events)]
    store = PostgresStore(url)
    await store.open()

    async def empty() -> None:
        await admin.execute(f"TRUNCATE {schema}.events")

    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:

            async def runs(work: Callable[[], Awaitable[None]]) -> list[float]:
                return [await _timed(empty, work) for _ in range(RUNS)]

            timings = {
                "store": await runs(lambda: store.write_events(events)),
                "raw_binary": await runs(lambda: _raw_copy(conn, values, True)),
                "raw_text": await runs(lambda: _raw_copy(conn, values, False)),
            }
        stored = await store.count_events()
    finally:
        await store.close()
    rate = {name: round(rows / statistics.median(seconds)) for name, seconds in timings.items()}
    return {
        "rows": rows, "runs": RUNS, "rows_in_table_after_last_run": stored,
        "store_rows_per_s": rate["store"], "raw_copy_binary_rows_per_s": rate["raw_binary"],
        "raw_copy_text_rows_per_s": rate["raw_text"],
        "store_vs_raw_binary": round(rate["store"] / rate["raw_binary"], 3),
        "store_vs_raw_text": round(rate["store"] / rate["raw_text"], 3),
        "seconds": {name: [round(s, 3) for s in seconds] for name, seconds in timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m gateway.store.bench POSTGRES_URL [ROWS]", file=sys.stderr)
        return 2
    rows = int(args[1]) if len(args) > 1 else 200_000
    print(json.dumps(asyncio.run(copy_throughput(args[0], rows))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
