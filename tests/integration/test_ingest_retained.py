"""A band that publishes a reading with the MQTT retain flag (the protocol says not to):
the broker keeps a copy and sends it again on every subscription, so at each ingest
restart or reconnect. The live publish is taken as usual; the copies are refused."""

from __future__ import annotations

import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from eldercare.topics import Channel, device_topic
from ingest.handoff import IngestedBatch
from tests.conftest import Broker
from tests.support import (
    NOW_MS,
    eventually,
    ingest_settings,
    register_bands,
    rows,
    running_ingest,
)


def publish_retained(broker_url: str, topic: str, payload: bytes) -> None:
    host, port = broker_url.removeprefix("mqtt://").split(":")
    band = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                       client_id=f"band-{uuid.uuid4().hex[:8]}")  # fmt: skip
    band.connect(host, int(port))
    band.loop_start()
    try:
        band.publish(topic, payload, qos=1, retain=True).wait_for_publish(timeout=30)
    finally:
        band.disconnect()
        band.loop_stop()


async def test_a_retained_sos_is_raised_once_not_again_at_every_restart(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """Refused for a clock an hour fast, the press is salvaged and stamped with its
    arrival. Before 2026-12-04 the broker's retained copy was salvaged again at each
    restart, with a new arrival time each time, so raised as a new press each time."""
    dev = f"{topic_prefix}-rt"
    await register_bands(db_url, [dev])
    topic = device_topic(dev, Channel.EVENTS)
    press = b'{"device_id": "%s", "seq": 5, "ts": %d, "type": "sos"}' % (
        dev.encode(), NOW_MS() + 3_600_000)  # fmt: skip
    settings = ingest_settings(db_url, broker.url)  # one client id: the same session
    handed_on: list[IngestedBatch] = []
    try:
        for run in range(3):  # the first hears the band publish; two restarts follow
            async with running_ingest(settings, handlers=[handed_on.append]) as service:
                if run == 0:
                    publish_retained(broker.url, topic, press)

                async def delivered() -> bool:
                    return service.stats.committed >= 1

                await eventually(delivered)
    finally:
        publish_retained(broker.url, topic, b"")  # an empty retained message clears it
    salvaged = [r.event for b in handed_on for r in b.refused if r.event is not None]
    assert [(e.device_id, e.seq) for e in salvaged] == [(dev, 5)]
    letters = await rows(db_url, "SELECT reason, detail FROM dead_letters ORDER BY id")
    assert [reason for reason, _ in letters] == ["future_timestamp", "invalid", "invalid"]
    assert all("retained" in detail for _, detail in letters[1:])
