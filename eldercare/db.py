"""The database pool, and the storage path (TimescaleDB or plain PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.pq import ConnStatus
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool


class StoragePath(StrEnum):
    TIMESCALE = "timescaledb"
    PLAIN = "partitioned"  # native declarative partitioning and service-maintained rollups


async def still_connected(conn: psycopg.AsyncConnection[Any]) -> None:
    """Raise if the server has closed the connection, without a round trip.

    A server going down (restart, failover) sends "terminating connection" and
    closes the socket: the first non-blocking read takes the message, the second
    meets the end of the stream (OperationalError). On a live idle connection both
    find nothing. A ``SELECT 1`` would find no more and would cost every request a
    round trip.
    """
    pgconn = conn.pgconn
    pgconn.consume_input()
    pgconn.consume_input()
    if pgconn.status != ConnStatus.OK:
        raise psycopg.OperationalError("the server closed the connection")


class PoolCheck:
    """A pool's ``check``: a connection a database restart closed is replaced, not handed
    to a request (which would fail: an API request with a 500).

    A restart closes every idle connection at once, and the pool waits 1 s, then 2,
    4... between failed checks; so the first broken one found has the pool check all
    its idle ones together, and one request waits about a second, not one per broken
    connection (7 s for four).
    """

    def __init__(self) -> None:
        self.pool: AsyncConnectionPool | None = None
        self._sweep: asyncio.Task[None] | None = None

    async def __call__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            await still_connected(conn)
        except psycopg.OperationalError:
            if self.pool is not None and (self._sweep is None or self._sweep.done()):
                self._sweep = asyncio.create_task(_sweep(self.pool), name="pool-sweep")
            raise


async def _sweep(pool: AsyncConnectionPool) -> None:
    with contextlib.suppress(psycopg.Error):  # the pool closing meanwhile, say
        await pool.check()


def checked_pool(url: str, **options: Any) -> AsyncConnectionPool:
    """A pool (not yet opened) whose connections are checked as they are handed out
    (:class:`PoolCheck`); ``options`` go to psycopg_pool."""
    check = PoolCheck()
    pool: AsyncConnectionPool = AsyncConnectionPool(url, open=False, check=check, **options)
    check.pool = pool
    return pool


async def open_pool(
    url: str, *, max_size: int = 10, min_size: int = 1, name: str = "eldercare"
) -> AsyncConnectionPool:
    """An opened pool; overload becomes a PoolTimeout error after 10 s, never a hang."""
    pool = checked_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        max_waiting=max_size * 20,
        timeout=10.0,
        name=name,
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
