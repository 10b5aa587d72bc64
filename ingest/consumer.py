"""Consume what ingest hands on, from another process: the internal topic.

Two ways. :func:`ingested_batches` (aiomqtt, acks on receipt, a new session each
time) suits a consumer whose state the database can rebuild: what was published
while it was away is simply not seen. :class:`DurableConsumer` is for the alert
engine, whose decisions are on the readings themselves (an SOS pressed while the
engine restarts must still be raised): a persistent session under a fixed client
id, so the broker keeps what ingest publishes while the consumer is down, and each
batch acked only after the handler has finished with it (the engine has persisted
its alerts), as ingest acks the bands' messages only after commit
(:mod:`ingest.mqtt_source`). A handler that raises leaves its batch unacked: the
broker delivers it again to the next session. So a batch is handled at least once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec

from eldercare.logs import get_logger
from eldercare.mqtt_client import aiomqtt_client
from eldercare.settings import parse_mqtt_url
from eldercare.topics import INGESTED
from ingest.handoff import IngestedBatch, decode_batch
from ingest.mqtt_source import Inbox, MqttSource

log = get_logger(__name__)
RECEIVE_MAXIMUM = 100  # batches in flight to one durable consumer (each up to 4,000 readings)


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


class DurableConsumer:
    """The internal topic on a persistent session; see the module doc.

    One process per ``client_id``: a second one with the same id takes the session
    over (the broker disconnects the first), so each alert-engine shard has its own.
    """

    def __init__(self, mqtt_url: str, *, client_id: str, protocol: str = "5") -> None:
        self._endpoint = parse_mqtt_url(mqtt_url)
        self._client_id = client_id
        self._protocol = protocol
        self.subscribed = asyncio.Event()
        self.batches = 0
        self.undecodable = 0

    async def run(
        self, handler: Callable[[IngestedBatch], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        """Hand every batch to ``handler`` in order, acking each after it returns, until
        ``stop``; what ``handler`` raises ends the run (that batch stays unacked)."""
        loop = asyncio.get_running_loop()
        inbox = Inbox(capacity=RECEIVE_MAXIMUM, wake_at=1, loop=loop)
        source = MqttSource(self._endpoint, client_id=self._client_id, filters=[INGESTED],
                            protocol=self._protocol, receive_maximum=RECEIVE_MAXIMUM,
                            inbox=inbox)  # fmt: skip

        def subscribed() -> None:  # paho thread
            loop.call_soon_threadsafe(self.subscribed.set)

        source.on_subscribed = subscribed
        source.start()
        try:
            while not stop.is_set():
                waiter = asyncio.create_task(inbox.nonempty.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                for message in inbox.take(RECEIVE_MAXIMUM):
                    try:
                        batch = decode_batch(message.payload)
                    except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
                        # not ingest's: kept out of the way, never blocks the stream
                        self.undecodable += 1
                        log.warning("ingested_batch_undecodable", error=str(exc)[:200])
                    else:
                        await handler(batch)
                        self.batches += 1
                    source.ack([message])
        finally:
            source.stop()
