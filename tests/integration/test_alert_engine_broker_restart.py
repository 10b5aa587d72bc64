"""The alert engine and a broker that goes away: it keeps deciding and persisting, and
publishes what it decided, in order, once the broker is back. Before, a broker restart
left a running engine raising alerts that nobody heard of, and an engine started while
the broker was down exited."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiomqtt

from alerts.engine import AlertEngine
from eldercare.protocol import DeviceEvent, EventType
from eldercare.topics import ALERTS
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
from tests.conftest import Broker
from tests.integration.engine_support import (
    MODEL,
    alert_messages,
    alerts_of,
    event,
    running_engine,
)
from tests.support import (
    NOW_MS,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    running_ingest,
)


async def test_a_standalone_engine_raises_and_publishes_after_the_broker_restarts(
    db_url: str, tmp_path: Path, topic_prefix: str
) -> None:
    own = Broker(tmp_path)
    own.start()
    try:
        dev = f"{topic_prefix}-br"
        (resident,) = await register_bands(db_url, [dev])
        settings = ingest_settings(db_url, own.url, ingest_publish_internal=True)
        async with running_engine(settings, consume=True), running_ingest(settings):
            own.stop()
            own.start()
            async with alert_messages(own) as published:
                publish_all(own.url, [event(dev, 1, EventType.SOS, NOW_MS())])

                async def raised() -> bool:
                    return [a[1:4] for a in await alerts_of(db_url, resident)] == [
                        ("sos", "critical", "open")
                    ]

                await eventually(raised, timeout=60)

                async def announced() -> bool:
                    return [m["kind"] for m in published if m["resident_id"] == resident] == [
                        "raised"
                    ]

                await eventually(announced, timeout=60)
    finally:
        own.stop()


async def test_what_is_decided_while_the_broker_is_down_is_published_in_order_when_it_is_back(
    db_url: str, tmp_path: Path, topic_prefix: str
) -> None:
    own = Broker(tmp_path)
    own.start()
    listener = f"listener-{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client("127.0.0.1", own.port, identifier=listener,
                              clean_session=False) as client:  # fmt: skip
        await client.subscribe(ALERTS, qos=1)  # the broker keeps what comes while it is away
    own.stop()  # the broker is down when the engine starts
    dev = f"{topic_prefix}-bd"
    (resident,) = await register_bands(db_url, [dev])
    engine = AlertEngine(ingest_settings(db_url, own.url), fall_model=MODEL)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        await asyncio.wait_for(engine.started.wait(), 30)
        now = NOW_MS()
        for seq in (1, 2, 3):  # a press, then two more: raised, updated, updated
            press = DeviceEvent(device_id=dev, seq=seq, ts=now + seq * 1000, type=EventType.SOS)
            await engine.on_batch(IngestedBatch(events=[Accepted(press, resident)]))
        assert [a[1:5] for a in await alerts_of(db_url, resident)] == [
            ("sos", "critical", "open", 3)
        ]
        await asyncio.sleep(1.0)
        assert not task.done(), "the engine must wait for the broker, not exit"
        assert engine.published == 0
        own.start()

        async def sent() -> bool:
            return engine.published == 3

        await eventually(sent, timeout=60)
        got: list[dict[str, Any]] = []
        async with aiomqtt.Client("127.0.0.1", own.port, identifier=listener,
                                  clean_session=False) as client:  # fmt: skip
            async with asyncio.timeout(30):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    got.append(json.loads(message.payload))
                    if len(got) == 3:
                        break
        assert [(m["kind"], m["repeat_count"]) for m in got] == [
            ("raised", 1),
            ("updated", 2),
            ("updated", 3),
        ]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        own.stop()
