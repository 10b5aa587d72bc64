"""The inbox between the MQTT thread and ingest's pipeline holds a bounded number of
payload bytes, not only of messages: 8,000 of the largest movement windows (512 KiB)
were 4 GB before 2026-12-04. Past the bound the MQTT thread waits; nothing is dropped."""

from __future__ import annotations

import asyncio
import threading

from ingest.mqtt_source import Inbox
from ingest.rows import RawMessage


def message(n: int, size: int) -> RawMessage:
    return RawMessage(n, 1, "eldercare/v1/devices/wb-1/imu", b"x" * size)


async def test_past_its_bytes_the_mqtt_thread_waits_and_nothing_is_dropped() -> None:
    inbox = Inbox(capacity=100, wake_at=10, loop=asyncio.get_running_loop(), max_bytes=1000)
    inbox.put(message(1, 400))
    inbox.put(message(2, 400))
    waiting = threading.Thread(target=inbox.put, args=(message(3, 400),))
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive()  # 1,200 bytes would be past the bound: it waits
    assert len(inbox) == 2
    assert [m.mid for m in inbox.take(1)] == [1]  # the pipeline takes one ...
    waiting.join(30)
    assert not waiting.is_alive()  # ... and the third goes in
    assert [m.mid for m in inbox.take(10)] == [2, 3]


async def test_a_message_larger_than_the_bound_goes_into_an_empty_inbox() -> None:
    inbox = Inbox(capacity=100, wake_at=10, loop=asyncio.get_running_loop(), max_bytes=1000)
    inbox.put(message(1, 5000))  # alone it would wait for ever
    assert [m.mid for m in inbox.take(10)] == [1]
    inbox.put(message(2, 10))  # and the count of bytes went back to nothing
    inbox.put(message(3, 900))
    assert len(inbox) == 2
