"""A database that stops answering with its sockets left open (a failover or a network
partition, as a client sees it; here a TCP proxy that swallows every byte). Before
2026-12-04 nothing in ingest had a deadline: the write waited for ever, even after the
database was back, and a stop waited behind it."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from eldercare.protocol import DeviceEvent, EventType, Telemetry, encode
from eldercare.topics import Channel, device_topic
from ingest.handoff import IngestedBatch
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


class SilentProxy:
    """A TCP proxy to PostgreSQL that, while ``silent`` is set, reads and drops every
    byte both ways: connections stay open and nothing ever answers."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.silent = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _keep(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                self._keep(client)
                server = socket.create_connection(self.target)
                self._keep(server)
            except OSError:  # closed: the test is over
                return
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not self.silent.is_set():
                    sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


@pytest.fixture
def proxy() -> Iterator[SilentProxy]:
    p = SilentProxy(("127.0.0.1", 5432))
    try:
        yield p
    finally:
        p.close()


def first_reading(dev: str, now: int) -> tuple[str, bytes]:
    return device_topic(dev, Channel.TELEMETRY), encode(Telemetry(device_id=dev, seq=1,
                                                                  ts=now - 1000))  # fmt: skip


def through(db_url: str, proxy: SilentProxy) -> str:
    base, _, name = db_url.rpartition("/")
    host = base.rpartition("@")[0]
    return f"{host}@127.0.0.1:{proxy.port}/{name}"


async def test_told_to_stop_while_the_database_is_silent_ingest_stops_and_loses_nothing(
    db_url: str, broker: Broker, topic_prefix: str, proxy: SilentProxy
) -> None:
    """The write in flight is abandoned shortly after the stop (``running_ingest``
    gives ingest 30 s to end; the reply deadline, 60 s by default, plays no part), the
    SOS stays unacked, and the next ingest on the same session stores and hands it on."""
    dev = f"{topic_prefix}-st"
    await register_bands(db_url, [dev])
    now = NOW_MS()
    settings = ingest_settings(through(db_url, proxy), broker.url)
    press = encode(DeviceEvent(device_id=dev, seq=2, ts=now, type=EventType.SOS))
    async with running_ingest(settings) as service:
        publish_all(broker.url, [first_reading(dev, now)])

        async def connected() -> bool:  # the writer has its connection, through the proxy
            return service.stats.committed >= 1

        await eventually(connected)
        proxy.silent.set()
        publish_all(broker.url, [(device_topic(dev, Channel.EVENTS), press)])

        async def writing() -> bool:
            return service.stats.received >= 2

        await eventually(writing)
    assert service.stats.committed == 1
    handed_on: list[IngestedBatch] = []
    direct = settings.model_copy(update={"database_url": db_url})  # the same MQTT session
    async with running_ingest(direct, handlers=[handed_on.append]) as second:

        async def stored() -> bool:
            return second.stats.committed >= 1

        await eventually(stored)
    assert [a.message for b in handed_on for a in b.events] == [
        DeviceEvent(device_id=dev, seq=2, ts=now, type=EventType.SOS)
    ]
    assert await scalar(db_url, "SELECT count(*) FROM device_events") == 1


async def test_a_database_silent_for_a_while_is_given_up_on_and_ingest_goes_on_after(
    db_url: str, broker: Broker, topic_prefix: str, proxy: SilentProxy
) -> None:
    """No stop: past the reply deadline the connection is dropped and the batch retried
    on a new one (each attempt ends at the connect timeout while the silence lasts);
    once the database answers again, the SOS is stored and handed on."""
    dev = f"{topic_prefix}-sl"
    await register_bands(db_url, [dev])
    now = NOW_MS()
    settings = ingest_settings(through(db_url, proxy), broker.url,
                               ingest_db_reply_timeout_s=2.0, ingest_db_statement_timeout_s=1.0,
                               ingest_db_connect_timeout_s=2)  # fmt: skip
    handed_on: list[IngestedBatch] = []
    async with running_ingest(settings, handlers=[handed_on.append]) as service:
        publish_all(broker.url, [first_reading(dev, now)])

        async def connected() -> bool:
            return service.stats.committed >= 1

        await eventually(connected)
        proxy.silent.set()
        publish_all(broker.url, [(device_topic(dev, Channel.EVENTS),
                                  encode(DeviceEvent(device_id=dev, seq=2, ts=now,
                                                     type=EventType.SOS)))])  # fmt: skip

        async def given_up() -> bool:
            return service.stats.db_retries >= 1

        await eventually(given_up, timeout=30)
        proxy.silent.clear()

        async def stored() -> bool:
            return service.stats.committed >= 2

        await eventually(stored, timeout=60)
    assert [a.message.seq for b in handed_on for a in b.events] == [2]  # type: ignore[union-attr]
    assert await scalar(db_url, "SELECT count(*) FROM device_events") == 1
