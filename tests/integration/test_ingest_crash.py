"""Ingest dying after a commit and before it handed the batch on: the bands' messages
were not acked, so the broker sends them again to the next ingest process, which finds
them stored and hands them on (an SOS still reaches the alert engine)."""

from __future__ import annotations

import asyncio
import contextlib

from eldercare.protocol import DeviceEvent, EventType, Telemetry, encode
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
