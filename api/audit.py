"""The audit log of health-data reads and changes, written in batches off the request path.

A read of a resident's status, telemetry, location or alert is recorded as
``(at, actor, role, action, resource, resident_id)`` — never the data itself.
Requests put entries on a bounded queue and go on; one task writes whatever
is queued in one statement every ``flush_interval`` (or at once when a batch
is full). Policy when the queue is full: the request fails with 503 rather
than serve health data unaudited. On shutdown the queue is drained.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from api.principal import Principal
from api.problems import Problem
from eldercare.logs import get_logger

log = get_logger(__name__)
Conn = psycopg.AsyncConnection[TupleRow]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    role: str
    action: str
    resource: str
    resident_id: int | None
    detail: dict[str, Any] = field(default_factory=dict)


class AuditWriter:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        max_queue: int = 50_000,
        batch: int = 2_000,
        flush_interval: float = 0.2,
    ) -> None:
        self._pool = pool
        self._queue: asyncio.Queue[AuditEntry] = asyncio.Queue(max_queue)
        self._batch = batch
        self._interval = flush_interval
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.refused = 0  # entries the database would never take (logged, dropped)

    def record(
        self,
        principal: Principal,
        action: str,
        resource: str,
        *,
        at: datetime,
        resident_id: int | None = None,
        **detail: Any,
    ) -> None:
        entry = AuditEntry(
            at, principal.actor, principal.role.value, action, resource, resident_id, detail
        )
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull as exc:
            log.warning("audit_queue_full")
            raise Problem(
                503, "the audit log is behind; retry shortly", headers={"Retry-After": "1"}
            ) from exc

    async def __aenter__(self) -> AuditWriter:
        self._task = asyncio.create_task(self._run(), name="audit-writer")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    def _take(self) -> list[AuditEntry]:
        entries: list[AuditEntry] = []
        while len(entries) < self._batch:
            try:
                entries.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return entries

    async def flush(self, conn: Conn | None = None) -> int:
        """Write everything queued now; returns how many rows were written.

        On ``conn`` if given (a request that holds a pooled connection already: asking
        the pool for a second one while holding the first deadlocked the pool under
        concurrent ``GET /audit``), else on a connection of the pool's. If the database
        goes away, what was not written goes back on the queue (and the error is raised).
        """
        total = 0
        while entries := self._take():
            try:
                if conn is None:
                    async with self._pool.connection() as own:
                        total += await self._write(own, entries)
                else:
                    total += await self._write(conn, entries)
            except Exception:
                for e in entries:  # what is left, for the next attempt, as room allows
                    with contextlib.suppress(asyncio.QueueFull):
                        self._queue.put_nowait(e)
                raise
        return total

    async def _write(self, conn: Conn, entries: list[AuditEntry]) -> int:
        """One statement for the batch; if the database refuses it for what is in it (not
        an outage), entry by entry, so one entry it can never take (a resident id out of
        range from a message on the internal topic) costs itself, not the log for good
        (before, the batch went back on the queue and no entry was written again).

        Takes from ``entries`` what it has written or refused: if the database goes away
        meanwhile, ``entries`` holds only what is still to write (before, the entries
        already written one by one went back too, and were written twice).
        """
        try:
            async with conn.transaction():
                await self._insert(conn, entries)
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            if len(entries) == 1:
                self.refused += 1
                log.warning("audit_entry_refused", action=entries[0].action,
                            resource=entries[0].resource[:100],
                            error_type=type(exc).__name__)  # fmt: skip
                entries.clear()
                return 0
            written = 0
            while entries:
                one = entries[:1]
                written += await self._write(conn, one)  # an outage leaves entries[0] in
                del entries[0]
            return written
        written = len(entries)
        self.written += written
        entries.clear()
        return written

    @staticmethod
    async def _insert(conn: Conn, entries: list[AuditEntry]) -> None:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO audit_log (at, actor, role, action, resource, resident_id,"
                " detail) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (e.at, e.actor, e.role, e.action, e.resource, e.resident_id, Jsonb(e.detail))
                    for e in entries
                ],
            )

    async def _run(self) -> None:
        while True:
            entry = await self._queue.get()
            self._queue.put_nowait(entry)  # put back: flush takes it with the rest
            try:
                await self.flush()
            except Exception as exc:  # keep the writer alive across a database outage
                log.warning("audit_flush_failed", error_type=type(exc).__name__)
            await asyncio.sleep(self._interval)
