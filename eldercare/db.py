"""The database pool, and the storage path (TimescaleDB or plain PostgreSQL)."""

from __future__ import annotations

from enum import StrEnum

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool


class StoragePath(StrEnum):
    TIMESCALE = "timescaledb"
    PLAIN = "partitioned"  # native declarative partitioning and service-maintained rollups


async def open_pool(
    url: str, *, max_size: int = 10, min_size: int = 1, name: str = "eldercare"
) -> AsyncConnectionPool:
    """An opened pool; overload becomes a PoolTimeout error after 10 s, never a hang."""
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        max_waiting=max_size * 20,
        timeout=10.0,
        name=name,
        open=False,
        kwargs={"autocommit": False},
    )
    await pool.open(wait=False)
    return pool


async def storage_path(conn: psycopg.AsyncConnection[TupleRow]) -> StoragePath:
    """The path recorded by the first migration (the schema was built for it)."""
    cur = await conn.execute("SELECT value FROM schema_meta WHERE key = 'storage'")
    row = await cur.fetchone()
    if row is None:
        raise RuntimeError("the database is not migrated: run `eldercare migrate`")
    return StoragePath(str(row[0]))
