"""`eldercare ingest`: MQTT -> decode -> batch COPY -> commit -> ack -> hand on.

Two stages joined by a bounded queue run in one TaskGroup: the decoder takes
what the inbox holds (a full batch, or whatever is older than the batch age),
classifies it; the writer commits it and only then acknowledges every message
of the batch to the broker. While the database is away the writer retries the
same batch, the queue and then the inbox fill, and the broker stops sending
(backpressure); nothing is acked that is not committed. A database that stops
answering is given up on after a deadline (:mod:`ingest.database`), and a stop
abandons a write still in flight ``STOP_GRACE_S`` after it (left unacked).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow

from eldercare.db import StoragePath
from eldercare.logs import get_logger
from eldercare.migrate import migrate
from eldercare.protocol import StatusReport
from eldercare.settings import Settings
from eldercare.storage import RetentionPolicy, apply_timescale_policies, maintain
from eldercare.topics import INGESTED, parse_device_topic, uplink_filters
from eldercare.waiting import backoff_delay, stopped_within
from ingest.database import AbandonedError, DbTimeouts, connect, unless, within
from ingest.devices import DeviceDirectory
from ingest.handoff import Handler, IngestedBatch, deliver, encode_batches
from ingest.mqtt_source import Inbox, MqttSource
from ingest.rows import Accepted, RawMessage, ReadingKey, SortedBatch, sort_batch
from ingest.writer import BatchWriter, WriteResult

log = get_logger(__name__)
_RETRYABLE = (psycopg.OperationalError, psycopg.InterfaceError)
# After a stop, how long a write or registry lookup in flight may still take (to drain
# what had arrived) before it is abandoned: a database that does not answer must not
# hold the stop (systemd and Docker kill after 10 s).
STOP_GRACE_S = 5.0


@dataclass(slots=True)
class IngestStats:
    received: int = 0
    committed: int = 0  # messages acked after commit (readings, events, dead letters)
    stored: int = 0  # new rows (telemetry + events + imu)
    duplicates: int = 0  # redeliveries and repeats that were not stored again
    dead_letters: Counter[str] = field(default_factory=Counter)
    stale_statuses: int = 0  # retained statuses of revoked or unknown bands, not stored
    batches: int = 0
    db_retries: int = 0
    last_commit_ms: float = 0.0


def retention_policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        raw_days=settings.raw_retention_days,
        compress_after_days=settings.compress_after_days,
        rollup_days=settings.rollup_retention_days,
        imu_days=settings.imu_retention_days,
        partitions_ahead_days=settings.partitions_ahead_days,
    )


async def prepare_database(
    settings: Settings, stop: asyncio.Event | None = None
) -> StoragePath | None:
    """Migrate (waiting for the database if it is not up yet) and set storage policies.

    None if ``stop`` is set while waiting: a service told to stop before its database
    came up stops (before, SIGTERM was ignored until the database answered)."""
    url = settings.require_database_url()
    timeouts = DbTimeouts.from_settings(settings)
    # migrations may rightly run long: connect and TCP limits only
    bounded_url = make_conninfo(url, **timeouts.options(url, statement_timeout=False))
    stop = stop or asyncio.Event()
    attempt = 0
    while True:
        try:
            path, _ = await asyncio.to_thread(migrate, bounded_url)
            break
        except _RETRYABLE as exc:
            delay = backoff_delay(attempt, rnd=random.random())  # noqa: S311
            attempt += 1
            log.warning("database_unavailable", error=str(exc).splitlines()[0],
                        retry_in_s=round(delay, 2))  # fmt: skip
            if await stopped_within(stop, delay):
                return None
    async with await connect(url, timeouts, statement_timeout=False) as conn:
        if path is StoragePath.TIMESCALE:
            await apply_timescale_policies(conn, retention_policy(settings))
        else:
            await maintain(conn, path, retention_policy(settings), now=datetime.now(UTC))
    return path


class IngestService:
    def __init__(self, settings: Settings, *, handlers: list[Handler] | None = None) -> None:
        self.settings = settings
        self.handlers: list[Handler] = list(handlers or [])
        self.stats = IngestStats()
        self.directory = DeviceDirectory()
        self._timeouts = DbTimeouts.from_settings(settings)
        self.ready = asyncio.Event()  # connected and subscribed
        self._queue: asyncio.Queue[tuple[list[RawMessage], SortedBatch]] = asyncio.Queue(2)
        self._source: MqttSource | None = None
        self._inbox: Inbox | None = None
        self._drain_left: int | None = None
        self._stop = asyncio.Event()  # run's: ends a wait for the database
        self._give_up = asyncio.Event()  # STOP_GRACE_S after the stop: abandon the database
        self._lookup_conn: psycopg.AsyncConnection[TupleRow] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        settings = self.settings
        url = settings.require_database_url()
        path = await prepare_database(settings, stop)
        if path is None:
            return
        try:
            await unless(stop, self._load_directory(url))
        except AbandonedError:
            return
        loop = asyncio.get_running_loop()
        capacity = max(settings.ingest_receive_maximum * 2, settings.ingest_batch_max * 4)
        self._inbox = Inbox(capacity=capacity, wake_at=settings.ingest_batch_max, loop=loop)
        self._source = MqttSource(
            settings.mqtt(),
            client_id=settings.ingest_client_id,
            filters=uplink_filters(settings.ingest_shared_group),
            protocol=settings.mqtt_protocol,
            receive_maximum=settings.ingest_receive_maximum,
            inbox=self._inbox,
        )

        def connected() -> None:  # paho thread
            loop.call_soon_threadsafe(self.ready.set)

        self._source.on_connected = connected
        writer = BatchWriter(url, path, timeouts=self._timeouts)
        log.info("ingest_starting", storage=path.value, wristbands=len(self.directory))
        self._source.start()
        grace = asyncio.create_task(self._grace_after(stop), name="ingest-stop-grace")
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._decode_loop(url, stop), name="ingest-decode")
                tg.create_task(self._write_loop(writer), name="ingest-write")
                tg.create_task(self._maintenance_loop(url, path, stop), name="ingest-upkeep")
                tg.create_task(self._directory_loop(url, stop), name="ingest-directory")
        except* AbandonedError:
            log.warning("ingest_stopped_database_away", waiting_unacked=len(self._inbox))
        finally:
            grace.cancel()
            self._source.stop()
            await writer.close()
            if self._lookup_conn is not None:
                await self._lookup_conn.close()
            blocked = round(self._inbox.blocked_s, 1)  # time the MQTT thread waited on a full inbox
            log.info("ingest_stopped", inbox_blocked_s=blocked, **self.summary())

    async def _grace_after(self, stop: asyncio.Event) -> None:
        await stop.wait()
        await asyncio.sleep(STOP_GRACE_S)
        self._give_up.set()

    async def _load_directory(self, url: str) -> None:
        async with await connect(url, self._timeouts) as conn:
            await within(conn, self.directory.load_all(conn), seconds=self._timeouts.reply_s)

    def summary(self) -> dict[str, object]:
        s = self.stats
        return {"received": s.received, "committed": s.committed, "stored": s.stored,
                "duplicates": s.duplicates, "dead_letters": sum(s.dead_letters.values()),
                "batches": s.batches}  # fmt: skip

    async def _next_batch(self, stop: asyncio.Event) -> list[RawMessage]:
        """A full batch, or what is older than the batch age; on stop, what was waiting then."""
        inbox = self._inbox
        if inbox is None:
            raise RuntimeError("the inbox is created in run() before batches are taken")
        limit = self.settings.ingest_batch_max
        if stop.is_set():  # drain what had arrived when the stop came, then end
            if self._drain_left is None:
                self._drain_left = len(inbox)
            batch = inbox.take(min(limit, self._drain_left)) if self._drain_left > 0 else []
            self._drain_left -= len(batch)
            return batch
        age = self.settings.ingest_batch_max_age_ms / 1000
        while not len(inbox):
            if stop.is_set():
                return await self._next_batch(stop)
            waiter = asyncio.create_task(inbox.nonempty.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
        remaining = inbox.first_at + age - time.monotonic()
        if remaining > 0 and len(inbox) < limit and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(inbox.full_batch.wait(), remaining)
        return inbox.take(limit)

    async def _decode_loop(self, url: str, stop: asyncio.Event) -> None:
        """Stage 1: take, look up bands the directory does not know, decode and classify."""
        while True:
            raw = await self._next_batch(stop)
            if not raw:
                await self._queue.put(([], SortedBatch()))  # sentinel: drained
                return
            self.stats.received += len(raw)
            ids = {p.device_id for m in raw if (p := parse_device_topic(m.topic))}
            await self._resolve_devices(url, ids)
            now_ms = int(time.time() * 1000)
            batch = sort_batch(raw, lookup=self.directory.lookup, now_ms=now_ms,
                               limits=self.settings.limits())  # fmt: skip
            await self._queue.put((raw, batch))

    async def _resolve_devices(self, url: str, ids: set[str]) -> None:
        """Ask the registry about unknown bands, waiting out a database outage: a band
        must never be dead-lettered as unknown only because the registry was away."""
        attempt = 0
        while True:
            try:
                if self._lookup_conn is None or self._lookup_conn.closed:
                    self._lookup_conn = await unless(self._give_up, connect(url, self._timeouts))
                conn = self._lookup_conn
                lookup = self.directory.resolve_missing(conn, ids)
                await unless(self._give_up, within(conn, lookup, seconds=self._timeouts.reply_s))
            except _RETRYABLE as exc:
                if self._lookup_conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await self._lookup_conn.close()
                self._lookup_conn = None
                delay = backoff_delay(attempt, base=0.2, cap=5.0, rnd=random.random())  # noqa: S311
                attempt += 1
                log.warning("registry_lookup_retry", error=str(exc).splitlines()[0][:200],
                            retry_in_s=round(delay, 2))  # fmt: skip
                await self._pause(delay)
            else:
                return

    async def _write_loop(self, writer: BatchWriter) -> None:
        """Stage 2: commit (retrying through outages), hand on, then ack.

        Acked last, so a crash after the commit leaves the bands' messages unacked: the
        broker sends them again (DUP) to the next ingest process, which finds them
        stored and hands them on again (:meth:`_hand_on`). At least once, then: a
        handler or the engine may see a batch twice after a crash, never zero times.
        """
        source = self._source
        if source is None:
            raise RuntimeError("the MQTT source is created in run() before writing starts")
        while True:
            raw, batch = await self._queue.get()
            if not raw:
                return
            started = time.perf_counter()
            result = await self._write_with_retry(writer, batch)
            self._account(raw, batch, result, started)
            await self._hand_on(batch, result)
            # after the internal publish, on the same connection: the broker has the
            # batch before it sees the acks
            source.ack(raw)

    async def _write_with_retry(self, writer: BatchWriter, batch: SortedBatch) -> WriteResult:
        """Commit ``batch``, retrying on a new connection after a lost one; the result's
        keys include what earlier attempts committed (:meth:`BatchWriter.write`)."""
        attempt = 0
        attempts = WriteResult()
        while True:
            try:
                write = writer.write(batch, now_ms=int(time.time() * 1000), attempts=attempts)
                return await unless(self._give_up, write)
            except _RETRYABLE as exc:
                writer.drop_connection()
                delay = backoff_delay(attempt, base=0.2, cap=5.0, rnd=random.random())  # noqa: S311
                attempt += 1
                self.stats.db_retries += 1
                log.warning("batch_write_retry", error=str(exc).splitlines()[0][:200],
                            attempt=attempt, retry_in_s=round(delay, 2),
                            pending=len(batch.telemetry) + len(batch.events))  # fmt: skip
                await self._pause(delay)

    async def _pause(self, delay: float) -> None:
        """Wait ``delay`` before trying the database again, unless told to stop meanwhile:
        then give up (:class:`AbandonedError`), leaving what is not committed unacked.
        Before, a SIGTERM during an outage went unheard until the database was back."""
        if await stopped_within(self._stop, delay):
            raise AbandonedError

    def _account(self, raw: list[RawMessage], batch: SortedBatch, result: WriteResult,
                 started: float) -> None:  # fmt: skip
        s = self.stats
        stored = len(result.new_telemetry) + len(result.new_events) + len(result.new_imu)
        # the refused include status reports, which are never duplicates (before
        # 2026-12-04 each one the database refused took the count down by one)
        refused_readings = len(result.refused) - (len(batch.status) - len(result.status))
        s.batches += 1
        s.committed += len(raw)
        s.stored += stored
        s.duplicates += (
            batch.duplicates_in_batch
            + len(batch.telemetry)
            + len(batch.events)
            + len(batch.imu)
            - stored
            - refused_readings
        )
        for d in [*batch.dead, *result.refused, *(letter for _, letter in result.stripped)]:
            s.dead_letters[d.reason.value] += 1
        s.last_commit_ms = (time.perf_counter() - started) * 1000
        s.stale_statuses += batch.stale_statuses
        if batch.stale_statuses:
            # retained statuses of revoked or unknown bands, replayed by the broker
            log.info("stale_statuses_skipped", count=batch.stale_statuses)
        if batch.dead or result.split:
            log.info("batch_committed", messages=len(raw), stored=stored,
                     dead_letters=result.dead_letters, split=result.split,
                     commit_ms=round(s.last_commit_ms, 1))  # fmt: skip
        else:
            log.debug("batch_committed", messages=len(raw), stored=stored,
                      commit_ms=round(s.last_commit_ms, 1))  # fmt: skip

    async def _hand_on(self, batch: SortedBatch, result: WriteResult) -> None:
        def new(group: list[Accepted], keys: set[ReadingKey]) -> list[Accepted]:
            """The newly stored, and what the broker sent again (DUP): stored by a
            process that may have died before handing it on. A band's own resend of a
            stored reading is not handed on (it would count twice in a persistence run),
            nor a message the database refused (a dead letter, handed on as a refusal)."""
            if len(keys) == len(group):  # the usual case: nothing was a redelivery
                return group
            return [
                a
                for a in group
                if not isinstance(a.message, StatusReport)  # status has no seq; never in these
                and ((key := _key(a)) in keys
                     or (a.raw is not None and a.raw.dup and key not in result.refused_keys))
            ]  # fmt: skip

        bare = {_key(a): a for a, _ in result.stripped}
        out = IngestedBatch(
            telemetry=new(batch.telemetry, result.new_telemetry),
            # an event stored without its data is handed on so (the engine may store
            # what it reads of it, and the database would refuse that again)
            events=[bare.get(_key(a), a) for a in new(batch.events, result.new_events)],
            imu=new(batch.imu, result.new_imu),
            status=result.status,  # not those the database refused (dead letters now)
            refused=[*batch.refused, *result.refusals],
        )
        if not out:
            return
        await deliver(self.handlers, out)
        if self.settings.ingest_publish_internal and self._source is not None:
            for payload in encode_batches(out):
                self._source.publish(INGESTED, payload, qos=1)

    async def _maintenance_loop(self, url: str, path: StoragePath, stop: asyncio.Event) -> None:
        while not await stopped_within(stop, 3600):
            try:
                await unless(stop, self._maintain(url, path))
            except AbandonedError:
                return
            except psycopg.Error as exc:
                log.warning("maintenance_failed", error=str(exc).splitlines()[0])

    async def _maintain(self, url: str, path: StoragePath) -> None:
        # upkeep may rightly run long (dropping a partition waits for its readers)
        async with await connect(url, self._timeouts, statement_timeout=False) as conn:
            upkeep = maintain(conn, path, retention_policy(self.settings), now=datetime.now(UTC))
            await within(conn, upkeep, seconds=None)

    async def _directory_loop(self, url: str, stop: asyncio.Event) -> None:
        while not await stopped_within(stop, 60):
            try:
                await unless(stop, self._load_directory(url))
            except AbandonedError:
                return
            except psycopg.Error as exc:
                log.warning("directory_refresh_failed", error=str(exc).splitlines()[0])


def _key(a: Accepted) -> ReadingKey:
    """The key a reading is stored under (device, ts, seq); a status report has none."""
    m = a.message
    if isinstance(m, StatusReport):
        raise TypeError("a status report is not stored under a key")
    return (m.device_id, m.ts, m.seq)
