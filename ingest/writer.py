"""The batch writer: one transaction per batch, on one dedicated connection.

The connection holds the session's staging tables; on any connection failure
it is dropped and reopened (the batch is retried whole: inserts are
idempotent). A batch the database rejects for its content is split and the
offending messages are dead-lettered, so one bad row never blocks the stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg.rows import TupleRow

from eldercare.db import StoragePath
from eldercare.protocol import RejectReason, encode
from eldercare.storage import ensure_partitions, existing_partitions
from ingest import sql
from ingest.rows import (
    EVENT_COLUMNS,
    EVENT_TYPES,
    IMU_COLUMNS,
    IMU_TYPES,
    TELEMETRY_COLUMNS,
    TELEMETRY_TYPES,
    Accepted,
    DeadLetter,
    ReadingKey,
    SortedBatch,
    event_row,
    imu_row,
    ms_to_datetime,
    status_row,
    telemetry_row,
)
from ingest.state import STATE_COLUMNS, STATE_TYPES, latest_states

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(slots=True)
class WriteResult:
    """What one committed batch added (keys of rows that were new, not redeliveries)."""

    new_telemetry: set[ReadingKey] = field(default_factory=set)
    new_events: set[ReadingKey] = field(default_factory=set)
    new_imu: set[ReadingKey] = field(default_factory=set)
    dead_letters: int = 0
    refused: list[DeadLetter] = field(default_factory=list)  # valid, but the database said no
    split: bool = False  # the batch had to be written message by message


class BatchWriter:
    """Writes sorted batches; callers own the retry policy for connection errors."""

    def __init__(self, url: str, path: StoragePath) -> None:
        self._url = url
        self._path = path
        self._conn: psycopg.AsyncConnection[TupleRow] | None = None
        self._partitions: set[date] = set()

    async def _connection(self) -> psycopg.AsyncConnection[TupleRow]:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                self._url, autocommit=False, application_name="eldercare-ingest"
            )
            for statement in sql.create_staging_sql():
                await conn.execute(statement)
            await conn.commit()
            if self._path is StoragePath.PLAIN:
                self._partitions = await existing_partitions(conn)
                await conn.commit()
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def drop_connection(self) -> None:
        """Forget a connection that failed; the next write opens a new one."""
        if self._conn is not None and not self._conn.closed:
            # finishing a broken socket may itself fail
            with contextlib.suppress(Exception):
                self._conn.pgconn.finish()
        self._conn = None

    async def write(self, batch: SortedBatch, *, now_ms: int) -> WriteResult:
        conn = await self._connection()
        if self._path is StoragePath.PLAIN:
            await self._ensure_days(conn, batch)
        try:
            result = await self._write_all(conn, batch, now_ms=now_ms)
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError):
            await conn.rollback()
            return await self._write_split(conn, batch, now_ms=now_ms)
        return result

    async def _ensure_days(
        self, conn: psycopg.AsyncConnection[TupleRow], batch: SortedBatch
    ) -> None:
        days = {ms_to_datetime(a.message.ts or 0).date() for a in batch.telemetry}
        missing = days - self._partitions
        if missing:
            await ensure_partitions(conn, missing)
            self._partitions |= missing

    async def _write_all(
        self, conn: psycopg.AsyncConnection[TupleRow], batch: SortedBatch, *, now_ms: int
    ) -> WriteResult:
        result = WriteResult(dead_letters=len(batch.dead))
        async with conn.cursor() as cur:
            if batch.telemetry:
                await _copy(cur, "_stage_telemetry", TELEMETRY_COLUMNS, TELEMETRY_TYPES,
                            [telemetry_row(a) for a in batch.telemetry])  # fmt: skip
                await cur.execute(
                    sql.telemetry_insert_sql(maintain_rollups=self._path is StoragePath.PLAIN)
                )
                result.new_telemetry = _keys(await cur.fetchall())
                await _copy(cur, "_stage_state", STATE_COLUMNS, STATE_TYPES,
                            latest_states(batch.telemetry))  # fmt: skip
                await cur.execute(sql.state_upsert_sql())
            if batch.events:
                await _copy(cur, "_stage_events", EVENT_COLUMNS, EVENT_TYPES,
                            [event_row(a) for a in batch.events])  # fmt: skip
                await cur.execute(sql.events_insert_sql())
                result.new_events = _keys(await cur.fetchall())
            if batch.imu:
                await _copy(cur, "_stage_imu", IMU_COLUMNS, IMU_TYPES,
                            [imu_row(a) for a in batch.imu])  # fmt: skip
                await cur.execute(sql.imu_insert_sql())
                result.new_imu = _keys(await cur.fetchall())
            if batch.status:
                status_rows = [status_row(a, now_ms=now_ms) for a in batch.status]
                status_rows.sort(
                    key=lambda r: r[0]
                )  # device: lock order; stable keeps arrival order
                await cur.executemany(sql.STATUS_UPSERT_SQL, status_rows)
            if batch.dead:
                await _write_dead(cur, batch.dead)
        await conn.commit()
        return result

    async def _write_split(
        self, conn: psycopg.AsyncConnection[TupleRow], batch: SortedBatch, *, now_ms: int
    ) -> WriteResult:
        """Write each message alone; one the database refuses becomes a dead letter."""
        total = WriteResult(dead_letters=0, split=True)
        singles: list[SortedBatch] = [SortedBatch(dead=list(batch.dead))]
        for kind in ("telemetry", "events", "imu", "status"):
            for accepted in getattr(batch, kind):
                single = SortedBatch()
                getattr(single, kind).append(accepted)
                singles.append(single)
        for single in singles:
            try:
                part = await self._write_all(conn, single, now_ms=now_ms)
            except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
                await conn.rollback()
                letter = _refused(single, exc)
                part = await self._write_all(conn, SortedBatch(dead=[letter]), now_ms=now_ms)
                total.refused.append(letter)
            total.new_telemetry |= part.new_telemetry
            total.new_events |= part.new_events
            total.new_imu |= part.new_imu
            total.dead_letters += part.dead_letters
        return total


def _refused(single: SortedBatch, exc: psycopg.Error) -> DeadLetter:
    accepted: Accepted = (single.telemetry or single.events or single.imu or single.status)[0]
    raw = accepted.raw
    device_id = accepted.message.device_id
    return DeadLetter(
        raw.topic if raw else f"eldercare/v1/devices/{device_id}",
        device_id,
        RejectReason.INVALID,
        f"database refused it: {str(exc).splitlines()[0][:300]}",
        raw.payload if raw else encode(accepted.message),
    )


def _keys(rows: Sequence[TupleRow]) -> set[ReadingKey]:
    """(device, ts in ms, seq) of RETURNING rows: the same key as the table's primary key."""
    return {(str(d), (t - _EPOCH) // _MS, int(q)) for d, t, q in rows}


async def _copy(
    cur: psycopg.AsyncCursor[TupleRow],
    stage: str,
    columns: tuple[str, ...],
    types: tuple[str, ...],
    rows: Sequence[tuple[object, ...]],
) -> None:
    async with cur.copy(sql.copy_sql(stage, columns)) as copy:
        copy.set_types(list(types))
        for row in rows:
            await copy.write_row(row)


async def _write_dead(cur: psycopg.AsyncCursor[TupleRow], dead: Sequence[DeadLetter]) -> None:
    async with cur.copy(sql.DEAD_LETTER_COPY) as copy:
        copy.set_types(list(sql.DEAD_LETTER_TYPES))
        for d in dead:
            await copy.write_row((d.topic, d.device_id, d.reason.value, d.detail, d.payload))
