"""The alert engine's durable read of the ingested topic (ingest/consumer.py): what is
published while the consumer is away waits for it, and a batch its handler failed on
comes again."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from eldercare.protocol import DeviceEvent, EventType
from eldercare.topics import INGESTED
from ingest.consumer import DurableConsumer
from ingest.handoff import IngestedBatch, encode_batch
from ingest.rows import Accepted
from tests.conftest import Broker
from tests.support import NOW_MS, eventually, publish_all


def batch(seq: int) -> bytes:
    press = DeviceEvent(device_id="wb-durable", seq=seq, ts=NOW_MS(), type=EventType.SOS)
    return encode_batch(IngestedBatch(events=[Accepted(press, 7)]))


class Recorder:
    def __init__(self, *, fail_on: int | None = None) -> None:
        self.seqs: list[int] = []
        self.fail_on = fail_on

    async def __call__(self, got: IngestedBatch) -> None:
        seq = got.events[0].message.seq
        if seq == self.fail_on:
            # (a moment first: an ack sent too early, before the handler, would reach the
            # broker meanwhile, and the batch would not come again)
            await asyncio.sleep(0.5)
            raise RuntimeError("the handler failed on this batch")
        self.seqs.append(seq)


async def run_until(consumer: DurableConsumer, handler: Recorder, want: list[int]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(handler, stop))

    async def done() -> bool:
        if task.done():
            task.result()
        return handler.seqs == want

    try:
        await eventually(done)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def subscribed_then_stopped(consumer: DurableConsumer) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(Recorder(), stop))
    await asyncio.wait_for(consumer.subscribed.wait(), 20)
    stop.set()
    await asyncio.wait_for(task, 20)


async def test_what_is_published_while_the_consumer_is_away_waits_for_it(broker: Broker) -> None:
    client_id = f"durable-{uuid.uuid4().hex[:8]}"
    await subscribed_then_stopped(DurableConsumer(broker.url, client_id=client_id))
    publish_all(broker.url, [(INGESTED, batch(1)), (INGESTED, batch(2))])
    handler = Recorder()
    await run_until(DurableConsumer(broker.url, client_id=client_id), handler, [1, 2])
    # a new session under another id starts empty: it gets only what comes after it
    other_id = f"durable-{uuid.uuid4().hex[:8]}"
    await subscribed_then_stopped(DurableConsumer(broker.url, client_id=other_id))
    publish_all(broker.url, [(INGESTED, batch(3))])
    await run_until(DurableConsumer(broker.url, client_id=other_id), Recorder(), [3])


async def test_a_batch_the_handler_failed_on_comes_again(broker: Broker) -> None:
    client_id = f"durable-{uuid.uuid4().hex[:8]}"
    await subscribed_then_stopped(DurableConsumer(broker.url, client_id=client_id))
    publish_all(broker.url, [(INGESTED, batch(1)), (INGESTED, batch(2))])
    failing = Recorder(fail_on=2)
    with pytest.raises(RuntimeError, match="failed on this batch"):
        await run_until(DurableConsumer(broker.url, client_id=client_id), failing, [1, 2])
    assert failing.seqs == [1]
    handler = Recorder()
    await run_until(DurableConsumer(broker.url, client_id=client_id), handler, [2])


async def test_a_message_that_is_not_a_batch_is_skipped_not_blocking(broker: Broker) -> None:
    client_id = f"durable-{uuid.uuid4().hex[:8]}"
    consumer = DurableConsumer(broker.url, client_id=client_id)
    await subscribed_then_stopped(consumer)
    publish_all(broker.url, [(INGESTED, b"not json"), (INGESTED, batch(5))])
    again = DurableConsumer(broker.url, client_id=client_id)
    await run_until(again, Recorder(), [5])
    assert again.undecodable == 1
