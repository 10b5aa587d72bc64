"""The alert engine's database connections, and recording that waits out an outage.

Two connections: the decisions' (under the engine's decision lock: persisting a
batch's alerts, the closed-alert check, escalations) and the tick's side
connection for reads that need no lock (the profile refresh). Both autocommit.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import psycopg
from psycopg.rows import TupleRow

from eldercare.logs import get_logger
from eldercare.settings import Settings
from eldercare.waiting import backoff_delay, stopped_within

log = get_logger(__name__)
RETRYABLE: Final = (psycopg.OperationalError, psycopg.InterfaceError)
_T = TypeVar("_T")
Connection = psycopg.AsyncConnection[TupleRow]


class EngineDatabase:
    """The decisions' connection and the side connection, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._conn: Connection | None = None
        self._side: Connection | None = None
        self.retries = 0  # failed attempts to record decisions (see until_answered)
        self.stopping = asyncio.Event()  # the engine's stop: until_answered gives up

    async def connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            self._conn = await self._connect()
        return self._conn

    async def side_connection(self) -> Connection:
        """The tick loop's reads that need no lock (the profile refresh)."""
        if self._side is None or self._side.closed:
            self._side = await self._connect()
        return self._side

    async def _connect(self) -> Connection:
        url = self._settings.require_database_url()
        return await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def drop(self, *, side: bool = False) -> None:
        """Close the decisions' connection (and, with ``side``, the tick's own)."""
        conns = [self._conn, self._side] if side else [self._conn]
        self._conn = None
        if side:
            self._side = None
        for conn in conns:
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    await conn.close()

    async def until_answered(self, work: Callable[[Connection], Awaitable[_T]]) -> _T:
        """Run ``work`` on the decisions' connection, trying again until the database
        answers. Decisions wait (under the engine's lock) meanwhile, as ingest's writes
        do: an alert is never published or held before it is recorded. Only an engine
        that is stopping gives up, with the error; see ``AlertEngine._emit`` for why
        nothing is lost then.
        """
        attempt = 0
        while True:
            try:
                return await work(await self.connection())
            except RETRYABLE as exc:
                await self.drop()
                if self.stopping.is_set():
                    raise
                delay = backoff_delay(attempt, base=0.2, cap=5.0, rnd=random.random())  # noqa: S311
                attempt += 1
                self.retries += 1
                log.warning("alert_persist_retry", error=str(exc).splitlines()[0],
                            attempt=attempt, retry_in_s=round(delay, 2))  # fmt: skip
                await stopped_within(self.stopping, delay)
