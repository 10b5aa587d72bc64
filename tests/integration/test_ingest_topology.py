"""Ingest over MQTT 3.1.1, several processes sharing the load, the internal topic,
revoked bands, and a broker restart."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import psycopg
import pytest

from eldercare.protocol import Telemetry, encode
from eldercare.registry import revoke_wristband
from eldercare.topics import Channel, device_topic
from ingest.consumer import DurableConsumer
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
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


def readings(devices: list[str], per_device: int, *, seq0: int = 0) -> list[tuple[str, bytes]]:
    now = NOW_MS() - 600_000
    return [
        (device_topic(d, Channel.TELEMETRY),
         encode(Telemetry(device_id=d, seq=s, ts=now + s * 100, hr=70)))
        for s in range(seq0, seq0 + per_device) for d in devices
    ]  # fmt: skip


async def test_ingest_over_mqtt_3_1_1(db_url: str, broker: Broker, topic_prefix: str) -> None:
    devices = [f"{topic_prefix}-{i}" for i in range(5)]
    await register_bands(db_url, devices)
    messages = readings(devices, 40)
    async with running_ingest(ingest_settings(db_url, broker.url, mqtt_protocol="3.1.1")) as svc:
        publish_all(broker.url, messages)

        async def done() -> bool:
            return svc.stats.committed >= len(messages)

        await eventually(done)
    assert await scalar(db_url, "SELECT count(*) FROM telemetry") == len(messages)


async def test_shared_subscription_splits_the_load_and_stores_each_reading_once(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    devices = [f"{topic_prefix}-{i}" for i in range(10)]
    await register_bands(db_url, devices)
    messages = readings(devices, 100)
    group = f"ingest{uuid.uuid4().hex[:6]}"
    async with (
        running_ingest(ingest_settings(db_url, broker.url, ingest_shared_group=group)) as one,
        running_ingest(ingest_settings(db_url, broker.url, ingest_shared_group=group)) as two,
    ):
        publish_all(broker.url, messages)

        async def done() -> bool:
            return one.stats.committed + two.stats.committed >= len(messages)

        await eventually(done)
        assert one.stats.committed > 0
        assert two.stats.committed > 0
    assert one.stats.committed + two.stats.committed == len(messages)
    assert await scalar(db_url, "SELECT count(*) FROM telemetry") == len(messages)


async def test_committed_batches_are_published_on_the_internal_topic(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    devices = [f"{topic_prefix}-{i}" for i in range(3)]
    residents = await register_bands(db_url, devices)
    messages = readings(devices, 10)
    items: list[Accepted] = []

    async def collect(batch: IngestedBatch) -> None:
        items.extend(batch.telemetry)

    reader = DurableConsumer(broker.url, client_id=f"reader-{uuid.uuid4().hex[:8]}")
    stop = asyncio.Event()
    consumer = asyncio.create_task(reader.run(collect, stop))
    try:
        await asyncio.wait_for(reader.subscribed.wait(), 10)
        settings = ingest_settings(db_url, broker.url, ingest_publish_internal=True)
        async with running_ingest(settings):
            publish_all(broker.url, messages)

            async def all_handed_on() -> bool:
                return len(items) >= len(messages)

            await eventually(all_handed_on)
    finally:
        stop.set()
        await asyncio.wait_for(consumer, 20)
    assert sorted((a.message.device_id, a.message.seq) for a in items) == sorted(
        (d, s) for d in devices for s in range(10)
    )
    assert {a.resident_id for a in items} == set(residents)


async def test_a_revoked_band_is_dead_lettered(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    good, revoked = f"{topic_prefix}-ok", f"{topic_prefix}-gone"
    await register_bands(db_url, [good, revoked])
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        assert await revoke_wristband(conn, revoked)
        await conn.commit()
    messages = readings([good, revoked], 3)
    async with running_ingest(ingest_settings(db_url, broker.url)) as svc:
        publish_all(broker.url, messages)

        async def done() -> bool:
            return svc.stats.committed >= len(messages)

        await eventually(done)
    assert svc.stats.dead_letters["revoked_device"] == 3
    assert await scalar(db_url, "SELECT count(DISTINCT device_id) FROM telemetry") == 1


@pytest.mark.slow
async def test_broker_restart_ingest_reconnects_and_keeps_its_session(
    db_url: str, tmp_path_factory: pytest.TempPathFactory, topic_prefix: str
) -> None:
    private = Broker(tmp_path_factory.mktemp("restart-broker"))
    private.start()
    try:
        devices = [f"{topic_prefix}-{i}" for i in range(4)]
        await register_bands(db_url, devices)
        before, after = readings(devices, 25), readings(devices, 25, seq0=25)
        async with running_ingest(ingest_settings(db_url, private.url)) as svc:
            publish_all(private.url, before)

            async def first() -> bool:
                return svc.stats.committed >= len(before)

            await eventually(first)
            connects = svc._source.connects if svc._source else 0
            private.stop()
            private.start()  # same port, same persistence file: the session survives
            publish_all(private.url, after)

            async def second() -> bool:
                return svc.stats.committed >= len(before) + len(after)

            await eventually(second, timeout=60)
            assert svc._source is not None
            assert svc._source.connects > connects
    finally:
        with contextlib.suppress(Exception):
            private.stop()
    assert await scalar(db_url, "SELECT count(*) FROM telemetry") == len(before) + len(after)
