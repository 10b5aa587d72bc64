"""Large hand-offs reach the internal topic whole: a batch is split into messages the
broker takes, and ingest's MQTT writes are never interleaved.

Found by fuzzing the device protocol (2026-12-03): a batch with a few full-size IMU
windows (up to 512 KiB each) was published as one message over the broker's 1 MiB
``message_size_limit`` (or paho's 256 MiB), so the alert engine never got it; and acks
written from the asyncio side landed inside a large packet the network thread was
writing, which the broker dropped as malformed (a stored SOS was never raised).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter

import aiomqtt
import numpy as np

from eldercare.protocol import DeviceEvent, EventType, ImuWindow, Telemetry, encode
from eldercare.topics import INGESTED, Channel, device_topic
from ingest.handoff import MAX_HANDOFF_BYTES, decode_batch
from tests.conftest import Broker
from tests.support import (
    NOW_MS,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    running_ingest,
)


def big_window(dev: str, seq: int, ts: int) -> bytes:
    """A 60 s window at 200 Hz: ~450 KB on the wire, under the 512 KiB cap."""
    n = 12_000
    rng = np.random.default_rng(seq)
    acc = np.round(rng.normal(0.0, 0.3, (n, 3)) + np.array([0.0, 0.0, 1.0]), 4)
    return encode(ImuWindow(device_id=dev, seq=seq, ts=ts, t_ms=[i * 5 for i in range(n)],
                            ax=acc[:, 0].tolist(), ay=acc[:, 1].tolist(), az=acc[:, 2].tolist(),
                            trigger="periodic"))  # fmt: skip


async def test_a_batch_of_large_windows_and_an_sos_reaches_the_internal_topic_whole(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-big"
    await register_bands(db_url, [dev])
    now = NOW_MS() - 120_000
    windows = [(device_topic(dev, Channel.IMU), big_window(dev, i, now + i)) for i in range(6)]
    assert all(len(p) < 512 * 1024 for _, p in windows)
    readings = [(device_topic(dev, Channel.TELEMETRY),
                 encode(Telemetry(device_id=dev, seq=100 + i, ts=now + 10 + i, hr=70)))
                for i in range(200)]  # fmt: skip
    press = DeviceEvent(device_id=dev, seq=999, ts=now + 500, type=EventType.SOS)
    sos = (device_topic(dev, Channel.EVENTS), encode(press))
    seen: Counter[str] = Counter()
    sizes: list[tuple[int, int]] = []  # (bytes, items) of each internal message
    # one batch for all of it: the hand-off of every window together is ~2.7 MB
    settings = ingest_settings(db_url, broker.url, ingest_publish_internal=True,
                               ingest_batch_max_age_ms=1000)  # fmt: skip
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"tap-{uuid.uuid4().hex[:6]}",
                              max_queued_incoming_messages=0) as tap:  # fmt: skip
        await tap.subscribe(INGESTED, qos=1)

        async def collect() -> None:
            async for message in tap.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                batch = decode_batch(payload)
                n = len(batch.telemetry) + len(batch.events) + len(batch.imu)
                sizes.append((len(payload), n))
                seen.update(telemetry=len(batch.telemetry), events=len(batch.events),
                            imu=len(batch.imu))  # fmt: skip

        reader = asyncio.create_task(collect())
        try:
            async with running_ingest(settings):
                await asyncio.to_thread(publish_all, broker.url, [*windows, *readings, sos])

                async def everything() -> bool:
                    if reader.done():
                        reader.result()
                    return seen == Counter(telemetry=200, events=1, imu=6)

                await eventually(everything, timeout=60)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    assert len(sizes) > 1
    assert all(size <= MAX_HANDOFF_BYTES or items == 1 for size, items in sizes), sizes
