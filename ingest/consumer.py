"""Consume what ingest hands on, from another process: the internal topic.

aiomqtt fits here: a consumer of derived batches needs no manual acks (the
database, not this stream, is the record: a consumer that restarts rebuilds
its state from the database), and async iteration is the natural shape. Its
incoming queue is left unbounded (aiomqtt 2.x silently discards messages
when a bounded queue is full), so a slow consumer delays, never drops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from eldercare.mqtt_client import aiomqtt_client
from eldercare.settings import parse_mqtt_url
from eldercare.topics import INGESTED
from ingest.handoff import IngestedBatch, decode_batch


async def ingested_batches(
    mqtt_url: str, *, client_id: str | None = None, subscribed: asyncio.Event | None = None
) -> AsyncIterator[IngestedBatch]:
    """Yield each batch ingest committed, as it is published on the internal topic."""
    endpoint = parse_mqtt_url(mqtt_url)
    async with aiomqtt_client(
        endpoint,
        identifier=client_id,
        max_queued_incoming_messages=None,  # unbounded: never discard
    ) as client:
        await client.subscribe(INGESTED, qos=1)
        if subscribed is not None:
            subscribed.set()
        async for message in client.messages:
            if isinstance(message.payload, bytes | bytearray):
                yield decode_batch(bytes(message.payload))
