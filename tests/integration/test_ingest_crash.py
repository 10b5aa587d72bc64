"""Ingest dying after a commit and before it handed the batch on: the bands' messages
were not acked, so the broker sends them again to the next ingest process, which finds
them stored and hands them on (an SOS still reaches the alert engine). And the same
within one process: a batch retried after a lost connection hands on what its earlier
attempt committed."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg

from eldercare.protocol import DeviceEvent, EventType, StatusReport, Telemetry, encode
from eldercare.topics import Channel, device_topic
from ingest.handoff import IngestedBatch
from ingest.service import IngestService
from tests.conftest import Broker
from tests.support import (
    NOW_MS,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    running_ingest,
    scalar,
)


async def test_a_batch_stored_but_not_handed_on_before_a_crash_is_handed_on_after(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-cr"
    await register_bands(db_url, [dev])
    settings = ingest_settings(db_url, broker.url)  # one client id: the same session
    now = NOW_MS()
    press = (device_topic(dev, Channel.EVENTS),
             encode(DeviceEvent(device_id=dev, seq=1, ts=now, type=EventType.SOS)))  # fmt: skip
    stuck = asyncio.Event()

    async def dies_here(_batch: IngestedBatch) -> None:
        stuck.set()
        await asyncio.Event().wait()  # the process is killed while handing on

    first = IngestService(settings, handlers=[dies_here])
    task = asyncio.create_task(first.run(asyncio.Event()))
    await asyncio.wait_for(first.ready.wait(), 30)
    await asyncio.sleep(0.2)  # the SUBACK follows CONNACK
    publish_all(broker.url, [press])
    await asyncio.wait_for(stuck.wait(), 30)
    assert await scalar(db_url, "SELECT count(*) FROM device_events") == 1  # committed
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    handed_on: list[IngestedBatch] = []
    async with running_ingest(settings, handlers=[handed_on.append]) as second:
        # a band's own resend of a stored reading is still not handed on
        reading = (device_topic(dev, Channel.TELEMETRY),
                   encode(Telemetry(device_id=dev, seq=2, ts=now + 1000, hr=70)))  # fmt: skip
        publish_all(broker.url, [reading, reading])

        async def all_three() -> bool:  # the press again, the reading, its resend
            return second.stats.committed >= 3  # (each batch is handed on as it commits)

        await eventually(all_three)
    events = [a.message for b in handed_on for a in b.events]
    assert [(e.device_id, e.seq, e.type) for e in events] == [(dev, 1, EventType.SOS)]
    assert sum(len(b.telemetry) for b in handed_on) == 1
    assert await scalar(db_url, "SELECT count(*) FROM device_events") == 1  # stored once


# The writer's session loses its connection (the server ends it) on its first status
# write (the only writer of device_state.online): in the test below, right after the
# SOS was committed alone in a split.
LOSE_CONNECTION_ONCE = """
CREATE SEQUENCE lose_connection_calls;
CREATE FUNCTION lose_connection_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- nextval is not rolled back with the transaction
    IF NEW.online IS NOT NULL AND nextval('lose_connection_calls') = 1 THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER lose_connection_once BEFORE INSERT OR UPDATE ON device_state
    FOR EACH ROW EXECUTE FUNCTION lose_connection_once();
"""


async def test_a_message_committed_before_the_connection_was_lost_is_handed_on_after_the_retry(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """A batch the database refuses in part is written message by message; the
    connection is lost after the SOS was committed alone, and the batch is retried
    whole. The retry finds the SOS stored already: it is still this batch's, and is
    handed on. Before 2026-12-04 it was taken for the band's own resend: stored, acked,
    never raised (the same for a commit whose reply was lost)."""
    dev = f"{topic_prefix}-rt"
    await register_bands(db_url, [dev])
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(LOSE_CONNECTION_ONCE)  # type: ignore[arg-type]
    now = NOW_MS()
    batch = [
        (device_topic(dev, Channel.TELEMETRY),  # jsonb refuses NUL: the batch is split
         b'{"device_id": "%s", "seq": 1, "ts": %d, "extra": {"k": "a\\u0000b"}}'
         % (dev.encode(), now - 2000)),
        (device_topic(dev, Channel.EVENTS),
         encode(DeviceEvent(device_id=dev, seq=2, ts=now - 1000, type=EventType.SOS))),
        (device_topic(dev, Channel.STATUS),  # written after the SOS: the connection ends
         encode(StatusReport(device_id=dev, state="online", ts=now))),
    ]  # fmt: skip
    # one batch of the three, taken when all are in
    settings = ingest_settings(db_url, broker.url, ingest_batch_max=3,
                               ingest_batch_max_age_ms=60_000)  # fmt: skip
    handed_on: list[IngestedBatch] = []
    async with running_ingest(settings, handlers=[handed_on.append]) as service:
        publish_all(broker.url, batch)

        async def committed() -> bool:
            return service.stats.committed >= len(batch)

        await eventually(committed)
    assert service.stats.db_retries == 1  # the connection was lost, once
    assert service.stats.batches == 1
    events = [a.message for b in handed_on for a in b.events]
    assert [(e.device_id, e.seq, e.type) for e in events] == [(dev, 2, EventType.SOS)]
    assert [a.message.state for b in handed_on for a in b.status] == ["online"]  # type: ignore[union-attr]
    assert (service.stats.stored, service.stats.duplicates) == (1, 0)
    assert await scalar(db_url, "SELECT count(*) FROM device_events") == 1
