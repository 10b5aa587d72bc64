"""Crash and outage recovery: every reading the broker acknowledged to a band is
stored exactly once, whatever happens to ingest or the database mid-stream."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid

import pytest

from eldercare.migrate import migrate
from eldercare.protocol import Telemetry, encode
from eldercare.topics import Channel, device_topic
from tests.conftest import Broker, PrivatePostgres, create_database, free_port
from tests.support import (
    NOW_MS,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    running_ingest,
    scalar,
)

pytestmark = pytest.mark.slow


def stream(devices: list[str], per_device: int) -> list[tuple[str, bytes]]:
    now = NOW_MS() - per_device * 1000
    return [
        (device_topic(d, Channel.TELEMETRY),
         encode(Telemetry(device_id=d, seq=s, ts=now + s * 1000, hr=60 + s % 40, steps=s)))
        for s in range(per_device) for d in devices
    ]  # fmt: skip


class Publisher(threading.Thread):
    """Publishes a stream at QoS 1 in the background (waiting for every PUBACK)."""

    def __init__(self, broker_url: str, messages: list[tuple[str, bytes]], chunk: int,
                 pause_at: int | None = None) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.broker_url, self.messages, self.chunk = broker_url, messages, chunk
        self.pause_at = pause_at
        self.resume = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i in range(0, len(self.messages), self.chunk):
                if self.pause_at is not None and i >= self.pause_at:
                    self.resume.wait(120)  # hold the rest until the test has crashed ingest
                    self.pause_at = None
                publish_all(self.broker_url, self.messages[i : i + self.chunk])
                self.sent = i + self.chunk
        except BaseException as exc:  # reported to the test
            self.error = exc


def start_ingest_process(db_url: str, broker_url: str, client_id: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ELDERCARE_DATABASE_URL": db_url, "ELDERCARE_MQTT_URL": broker_url,
           "ELDERCARE_INGEST_CLIENT_ID": client_id, "ELDERCARE_INGEST_BATCH_MAX": "500",
           "ELDERCARE_INGEST_BATCH_MAX_AGE_MS": "20", "ELDERCARE_LOG_LEVEL": "WARNING"}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "eldercare.cli", "ingest"], env=env,
                            stdout=subprocess.DEVNULL)  # fmt: skip


async def test_kill_9_mid_stream_loses_nothing_and_stores_nothing_twice(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    devices = [f"{topic_prefix}-{i}" for i in range(20)]
    await register_bands(db_url, devices)
    messages = stream(devices, 600)  # 12,000 readings
    client_id = f"ingest-kill-{uuid.uuid4().hex[:6]}"
    proc = start_ingest_process(db_url, broker.url, client_id)
    publisher = Publisher(broker.url, messages, chunk=500, pause_at=len(messages) // 2)
    count = "SELECT count(*) FROM telemetry"
    try:
        await _wait_subscribed(broker, db_url)  # from here on the broker queues for the session
        publisher.start()
        for threshold in (2000, 6000):  # kill twice, at different points of the stream

            async def reached(n: int = threshold) -> bool:
                return int(await scalar(db_url, count)) >= n  # type: ignore[call-overload]

            await eventually(reached, timeout=60)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            publisher.resume.set()  # the second half arrives while ingest is dead or restarting
            proc = start_ingest_process(db_url, broker.url, client_id)
        await asyncio.to_thread(publisher.join, 120)
        assert publisher.error is None

        async def complete() -> bool:
            return int(await scalar(db_url, count)) >= len(messages)  # type: ignore[call-overload]

        await eventually(complete, timeout=90)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert await scalar(db_url, count) == len(messages)
    distinct = "SELECT count(*) FROM (SELECT DISTINCT device_id, seq FROM telemetry) d"
    assert await scalar(db_url, distinct) == len(messages)
    assert await scalar(db_url, "SELECT sum(readings) FROM vitals_hourly") == len(messages)


async def _wait_subscribed(broker: Broker, db_url: str) -> None:
    """A probe from an unregistered band becomes a dead letter once ingest is subscribed."""
    probe = f"probe{uuid.uuid4().hex[:8]}"
    message = (device_topic(probe, Channel.TELEMETRY),
               encode(Telemetry(device_id=probe, seq=0, ts=NOW_MS())))  # fmt: skip

    async def subscribed() -> bool:
        publish_all(broker.url, [message])
        await asyncio.sleep(0.1)
        return int(await scalar(db_url, "SELECT count(*) FROM dead_letters")) > 0  # type: ignore[call-overload]

    await eventually(subscribed, timeout=30)


async def test_database_restart_mid_stream_loses_nothing(
    private_postgres: PrivatePostgres, broker: Broker, topic_prefix: str
) -> None:
    db_url = create_database(private_postgres.admin_url)
    migrate(db_url)
    devices = [f"{topic_prefix}-{i}" for i in range(10)]
    await register_bands(db_url, devices)
    messages = stream(devices, 600)  # 6,000 readings
    outage_s = float(os.environ.get("ELDERCARE_TEST_OUTAGE_S", "5"))
    count = "SELECT count(*) FROM telemetry"
    settings = ingest_settings(db_url, broker.url, ingest_batch_max=200)
    async with running_ingest(settings) as service:
        publisher = Publisher(broker.url, messages, chunk=200)
        publisher.start()

        async def some_stored() -> bool:
            return service.stats.stored >= 1000

        await eventually(some_stored, timeout=60)
        await asyncio.to_thread(private_postgres.stop, "immediate")  # a crash, not a clean stop
        await asyncio.sleep(outage_s)  # the outage itself is the scenario, not a wait for a result
        stalled_at = service.stats.stored
        await asyncio.to_thread(private_postgres.start)
        await asyncio.to_thread(publisher.join, 120)
        assert publisher.error is None

        async def complete() -> bool:
            return service.stats.committed >= len(messages)

        await eventually(complete, timeout=120)
        assert service.stats.db_retries > 0
        assert stalled_at < len(messages)
    assert await scalar(db_url, count) == len(messages)
    distinct = "SELECT count(*) FROM (SELECT DISTINCT device_id, seq FROM telemetry) d"
    assert await scalar(db_url, distinct) == len(messages)


async def test_stopped_while_the_database_is_away_ingest_ends_and_loses_nothing(
    private_postgres: PrivatePostgres, broker: Broker, topic_prefix: str
) -> None:
    """SIGTERM during an outage: ingest stops without committing or acking what waits,
    and the next ingest on the same session stores it. Before, it went on retrying
    until the database was back (the stop unheard; ``running_ingest`` gives it 30 s)."""
    db_url = create_database(private_postgres.admin_url)
    migrate(db_url)
    devices = [f"{topic_prefix}-{i}" for i in range(5)]
    await register_bands(db_url, devices)
    messages = stream(devices, 200)  # 1,000 readings
    half = len(messages) // 2
    settings = ingest_settings(db_url, broker.url, ingest_batch_max=100)
    count = "SELECT count(*) FROM telemetry"
    async with running_ingest(settings) as service:
        publish_all(broker.url, messages[:half])

        async def first_half() -> bool:
            return service.stats.committed >= half

        await eventually(first_half, timeout=60)
        await asyncio.to_thread(private_postgres.stop, "immediate")
        publish_all(broker.url, messages[half:])  # taken by the broker for ingest's session

        async def retrying() -> bool:
            return service.stats.db_retries > 0

        await eventually(retrying, timeout=60)
    # stopped (within running_ingest's 30 s); the database comes back, then ingest
    await asyncio.to_thread(private_postgres.start)
    async with running_ingest(settings):

        async def complete() -> bool:
            return int(await scalar(db_url, count)) >= len(messages)  # type: ignore[call-overload]

        await eventually(complete, timeout=60)
    assert await scalar(db_url, count) == len(messages)
    distinct = "SELECT count(*) FROM (SELECT DISTINCT device_id, seq FROM telemetry) d"
    assert await scalar(db_url, distinct) == len(messages)


async def test_a_new_band_is_not_dead_lettered_because_the_registry_was_down(
    private_postgres: PrivatePostgres, broker: Broker, topic_prefix: str
) -> None:
    db_url = create_database(private_postgres.admin_url)
    migrate(db_url)
    old, new = f"{topic_prefix}-old", f"{topic_prefix}-new"
    await register_bands(db_url, [old])
    async with running_ingest(ingest_settings(db_url, broker.url)) as service:
        await register_bands(db_url, [new])  # provisioned after ingest loaded its directory
        await asyncio.to_thread(private_postgres.stop, "immediate")
        publish_all(broker.url, stream([new], 3))

        async def waiting_for_registry() -> bool:
            return service.stats.received >= 3

        await eventually(waiting_for_registry)
        await asyncio.to_thread(private_postgres.start)

        async def stored() -> bool:
            return service.stats.committed >= 3

        await eventually(stored, timeout=60)
    assert sum(service.stats.dead_letters.values()) == 0
    assert await scalar(db_url, "SELECT count(*) FROM telemetry") == 3


async def test_ingest_waiting_for_its_database_stops_on_sigterm(broker: Broker) -> None:
    """Started before its database is up, ingest waits for it; told to stop meanwhile, it
    stops. Before, it went on waiting (SIGTERM ignored until the database answered)."""
    env = {
        **os.environ,
        "ELDERCARE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
        "ELDERCARE_MQTT_URL": broker.url,
        "ELDERCARE_INGEST_CLIENT_ID": f"ingest-{uuid.uuid4().hex[:6]}",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eldercare.cli", "ingest", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        while b"database_unavailable" not in await asyncio.wait_for(proc.stdout.readline(), 60):
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()[-2000:]
