"""Consume what ingest hands on, from another process: the internal topic.

:class:`DurableConsumer` reads it on a persistent session under a fixed client
id, so the broker keeps what ingest publishes while the consumer is down, and
acks each batch only after the handler has finished with it (the alert engine
has persisted its alerts), as ingest acks the bands' messages only after the
hand-off (:mod:`ingest.mqtt_source`, whose paho source it reuses; aiomqtt 2.5
acks on receipt). A handler that raises leaves its batch unacked: the broker
delivers it again to the next session. So a batch is handled at least once: an
SOS pressed while the alert engine restarts is still raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec

from eldercare.logs import get_logger
from eldercare.settings import parse_mqtt_url
from eldercare.topics import INGESTED
from ingest.handoff import IngestedBatch, decode_batch
from ingest.mqtt_source import Inbox, MqttSource

log = get_logger(__name__)
RECEIVE_MAXIMUM = 100  # batches in flight to one durable consumer (each up to 4,000 readings)


class DurableConsumer:
    """The internal topic on a persistent session; see the module doc.

    One process per ``client_id``: a second one with the same id takes the session
    over (the broker disconnects the first), so each alert-engine shard has its own.
    """

    def __init__(
        self,
        mqtt_url: str,
        *,
        client_id: str,
        protocol: str = "5",
        subscribed: asyncio.Event | None = None,
    ) -> None:
        self._endpoint = parse_mqtt_url(mqtt_url)
        self._client_id = client_id
        self._protocol = protocol
        self.subscribed = subscribed or asyncio.Event()  # set on the broker's SUBACK
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
                    source.ack([message])
        finally:
            source.stop()
