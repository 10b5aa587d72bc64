"""The batch writer: one transaction per batch, on one dedicated connection.

The connection holds the session's staging tables; on any connection failure
it is dropped and reopened (the batch is retried whole: inserts are
idempotent). A batch the database rejects for its content is split and the
offending messages are dead-lettered, so one bad row never blocks the stream;
an event whose ``data`` the database refuses is stored without it.
Every transaction has a reply deadline (:mod:`ingest.database`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg.rows import TupleRow

from eldercare.db import StoragePath
from eldercare.protocol import DeviceEvent, RejectReason, StatusReport, encode
from eldercare.storage import ensure_partitions, existing_partitions
from ingest import sql
from ingest.database import DbTimeouts, abandon, connect, within
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
    Refusal,
    SortedBatch,
    event_row,
    imu_row,
    ms_to_datetime,
    status_row,
    stored_refusal,
    telemetry_row,
    without_data,
)
from ingest.state import STATE_COLUMNS, STATE_TYPES, latest_states

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# what the database says of a batch's content (not of the connection): split the batch
_REFUSED = (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError)
# another session created the same partition at the same moment (IF NOT EXISTS does not
# cover a creation that is not yet committed)
_CREATED_MEANWHILE = (psycopg.errors.DuplicateTable, psycopg.errors.UniqueViolation)


@dataclass(slots=True)
class WriteResult:
    """What one committed batch added (keys of rows that were new, not redeliveries)."""

    new_telemetry: set[ReadingKey] = field(default_factory=set)
    new_events: set[ReadingKey] = field(default_factory=set)
    new_imu: set[ReadingKey] = field(default_factory=set)
    status: list[Accepted] = field(default_factory=list)  # the reports written (not refused)
    dead_letters: int = 0
    refused: list[DeadLetter] = field(default_factory=list)  # valid, but the database said no
    refusals: list[Refusal] = field(default_factory=list)  # of ``refused``: paired bands'
    refused_keys: set[ReadingKey] = field(default_factory=set)  # of ``refused``: readings'
    # events stored without the ``data`` the database refused (as stored, and the dead
    # letter that keeps the original)
    stripped: list[tuple[Accepted, DeadLetter]] = field(default_factory=list)
    split: bool = False  # the batch had to be written message by message

    def add_keys(self, other: WriteResult) -> None:
        self.new_telemetry |= other.new_telemetry
        self.new_events |= other.new_events
        self.new_imu |= other.new_imu


class BatchWriter:
    """Writes sorted batches; callers own the retry policy for connection errors."""

    def __init__(self, url: str, path: StoragePath, *, timeouts: DbTimeouts | None = None) -> None:
        self._url = url
        self._path = path
        self._timeouts = timeouts or DbTimeouts()
        self._conn: psycopg.AsyncConnection[TupleRow] | None = None
        self._partitions: set[date] = set()

    async def _connection(self) -> psycopg.AsyncConnection[TupleRow]:
        if self._conn is None or self._conn.closed:
            conn = await connect(self._url, self._timeouts, autocommit=False,
                                 application_name="eldercare-ingest")  # fmt: skip
            try:
                await within(conn, self._prepare(conn), seconds=self._timeouts.reply_s)
            except BaseException:
                abandon(conn)
                raise
            self._conn = conn
        return self._conn

    async def _prepare(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        for statement in sql.create_staging_sql():
            await conn.execute(statement)
        await conn.commit()
        if self._path is StoragePath.PLAIN:
            self._partitions = await existing_partitions(conn)
            await conn.commit()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def drop_connection(self) -> None:
        """Forget a connection that failed; the next write opens a new one."""
        abandon(self._conn)
        self._conn = None

    async def write(
        self, batch: SortedBatch, *, now_ms: int, attempts: WriteResult | None = None
    ) -> WriteResult:
        """Write ``batch``; the keys in the result are of the rows this batch stored.

        ``attempts`` carries, across the retries of one batch after a lost connection,
        the keys of the rows its attempts inserted and may have committed: a message
        committed alone during a split, or a commit whose reply was lost. A retry finds
        them stored already, yet they are this batch's, not a band's resend, and must
        be handed on (before 2026-12-04 they were not: an SOS stored and acked, never
        raised). A key of a commit that did not happen is inserted again by the retry.
        """
        attempts = attempts if attempts is not None else WriteResult()
        conn = await self._connection()
        if self._path is StoragePath.PLAIN:
            await within(conn, self._ensure_days(conn, batch), seconds=self._timeouts.reply_s)
        try:
            result = await self._transaction(conn, batch, now_ms=now_ms, attempts=attempts)
        except _REFUSED:
            result = await self._write_split(conn, batch, now_ms=now_ms, attempts=attempts)
        result.add_keys(attempts)
        for keys in (result.new_telemetry, result.new_events, result.new_imu):
            # inserted before a commit the server refused, then refused alone
            keys.difference_update(result.refused_keys)
        return result

    async def _ensure_days(
        self, conn: psycopg.AsyncConnection[TupleRow], batch: SortedBatch
    ) -> None:
        days = {ms_to_datetime(a.message.ts or 0).date() for a in batch.telemetry}
        missing = days - self._partitions
        while missing:
            try:
                await ensure_partitions(conn, missing)
            except _CREATED_MEANWHILE:
                # another ingest process, or upkeep, made one of them at the same moment
                # (the error comes once its creation is committed): see what exists now
                # and make the rest. Before 2026-12-04 the error ended ingest.
                await conn.rollback()
                self._partitions = await existing_partitions(conn)
                await conn.rollback()
                remaining = missing - self._partitions
                if remaining == missing:
                    raise  # nothing new exists: not a race after all
                missing = remaining
            else:
                self._partitions |= missing
                return

    async def _transaction(
        self, conn: psycopg.AsyncConnection[TupleRow], batch: SortedBatch, *, now_ms: int,
        attempts: WriteResult,
    ) -> WriteResult:  # fmt: skip
        """One transaction with a reply deadline; rolled back if its content is refused."""
        work = self._write_all(conn, batch, now_ms=now_ms, attempts=attempts)
        return await within(conn, work, seconds=self._timeouts.reply_s)

    async def _write_all(
        self, conn: psycopg.AsyncConnection[TupleRow], batch: SortedBatch, *, now_ms: int,
        attempts: WriteResult,
    ) -> WriteResult:  # fmt: skip
        try:
            result = await self._insert(conn, batch, now_ms=now_ms)
        except _REFUSED:
            await conn.rollback()
            raise
        attempts.add_keys(result)  # before the commit: its reply may be lost
        await conn.commit()
        return result

    async def _insert(
        self, conn: psycopg.AsyncConnection[TupleRow], batch: SortedBatch, *, now_ms: int
    ) -> WriteResult:
        result = WriteResult(dead_letters=len(batch.dead), status=list(batch.status))
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
        return result

    async def _write_split(
        self, conn: psycopg.AsyncConnection[TupleRow], batch: SortedBatch, *, now_ms: int,
        attempts: WriteResult,
    ) -> WriteResult:  # fmt: skip
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
                part = await self._transaction(conn, single, now_ms=now_ms, attempts=attempts)
            except _REFUSED as exc:
                part = await self._refuse(conn, single, exc, now_ms=now_ms, attempts=attempts)
            total.add_keys(part)
            total.status += part.status
            total.dead_letters += part.dead_letters
            total.refused += part.refused
            total.refusals += part.refusals
            total.refused_keys |= part.refused_keys
            total.stripped += part.stripped
        return total

    async def _refuse(
        self, conn: psycopg.AsyncConnection[TupleRow], single: SortedBatch, exc: psycopg.Error,
        *, now_ms: int, attempts: WriteResult,
    ) -> WriteResult:  # fmt: skip
        """A message the database refused: a dead letter and, for a paired band, a
        :class:`~ingest.rows.Refusal` handed on with any SOS or fall it holds.

        An event with ``data`` is first tried without it, and stored so, with the dead
        letter beside it (the original payload, the reason): an SOS press whose vendor
        data held a NUL is then an SOS like any other, its time, place and the band's
        state changes kept. Before 2026-12-04 the whole press was dead-lettered and,
        salvage running only for decode's refusals, never raised."""
        accepted: Accepted = (single.telemetry or single.events or single.imu
                              or single.status)[0]  # fmt: skip
        letter = _refused(accepted, exc)
        message = accepted.message
        if isinstance(message, DeviceEvent) and message.data is not None:
            kept = replace(letter, detail=f"stored without its data; {letter.detail}")
            bare = replace(accepted, message=without_data(message))
            alone = SortedBatch(events=[bare], dead=[kept])
            try:
                part = await self._transaction(conn, alone, now_ms=now_ms, attempts=attempts)
            except _REFUSED:
                pass  # something else was refused too: dead-letter the message whole
            else:
                part.stripped.append((bare, kept))
                return part
        part = await self._transaction(conn, SortedBatch(dead=[letter]), now_ms=now_ms,
                                       attempts=attempts)  # fmt: skip
        part.refused.append(letter)
        if not isinstance(message, StatusReport):
            part.refused_keys.add((message.device_id, message.ts, message.seq))
        if (refusal := stored_refusal(accepted, letter.detail)) is not None:
            part.refusals.append(refusal)
        return part


def _refused(accepted: Accepted, exc: psycopg.Error) -> DeadLetter:
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
