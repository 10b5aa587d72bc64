"""Publishing bands' messages over MQTT with paho-mqtt 2.x.

Two shapes:

- ``per_band=True``: one MQTT client per band, as real bands connect: client
  id = device id, the band's own credentials when known, a retained last will
  (``offline``). A simulated connection loss ends the session so the broker
  publishes the will (MQTT 5: DISCONNECT with reason 0x04 "with will message";
  3.1.1 has no such reason, so the band's transport publishes the same will
  payload itself before a plain DISCONNECT). One network thread per band:
  for tens of bands.
- ``per_band=False``: a few connections multiplex many bands (load tests,
  10,000 bands on one core). Each band sticks to one connection, so its
  messages keep their order; a connection loss is represented by publishing
  the band's will payload (retained) on its behalf.

QoS 1 messages that paho cannot send yet wait in its queue in order; the
runner applies backpressure through ``pending`` (published, not yet PUBACKed).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
import zlib
from collections.abc import Iterable, Mapping
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from eldercare.settings import MqttEndpoint, parse_mqtt_url
from eldercare.topics import Channel, device_topic
from simulators.uplink import Link, Publish

MqttProtocol = Literal["3.1.1", "5"]
_MAX_QUEUED_PER_CLIENT = 60_000  # paho message ids are 16-bit


class TransportError(RuntimeError):
    """The broker could not be reached or refused a band."""


def paho_protocol(protocol: MqttProtocol) -> MQTTProtocolVersion:
    return mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311


class _Conn:
    """One paho client and how many of its QoS 1 messages await a PUBACK."""

    def __init__(self, client: mqtt.Client, totals: _Conn | None = None) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._totals = totals
        self.published = 0
        self.acked = 0

    def sent(self) -> None:
        with self._lock:
            self.published += 1
        if self._totals is not None:
            self._totals.sent()

    def ack(self, *_: object) -> None:
        with self._lock:
            self.acked += 1
        if self._totals is not None:
            self._totals.ack()

    @property
    def pending(self) -> int:
        return self.published - self.acked


def make_client(
    endpoint: MqttEndpoint,
    *,
    client_id: str,
    protocol: MqttProtocol,
    username: str | None = None,
    password: str | None = None,
    will: tuple[str, bytes] | None = None,
) -> mqtt.Client:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho_protocol(protocol))  # fmt: skip
    user = username if username is not None else endpoint.username
    if user is not None:
        client.username_pw_set(user, password if password is not None else endpoint.password)
    if endpoint.tls:
        client.tls_set()
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(1, 5)
    return client


class MqttTransport:
    def __init__(
        self,
        url: str,
        *,
        protocol: MqttProtocol = "3.1.1",
        per_band: bool = False,
        connections: int = 4,
        credentials: Mapping[str, str] | None = None,
        connect_timeout_s: float = 15.0,
    ) -> None:
        self.endpoint = parse_mqtt_url(url)
        self.protocol = protocol
        self.per_band = per_band
        self.credentials = dict(credentials or {})
        self.connect_timeout_s = connect_timeout_s
        self._totals = _Conn(mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2))
        self._shared: list[_Conn] = []
        self._bands: dict[str, _Conn] = {}
        self._retired: list[_Conn] = []
        self._connections = max(1, connections)
        self._tag = uuid.uuid4().hex[:6]

    @property
    def published(self) -> int:
        return self._totals.published

    @property
    def acked(self) -> int:
        return self._totals.acked

    @property
    def pending(self) -> int:
        return self._totals.pending

    def _start_client(self, client: mqtt.Client, connected: threading.Event) -> _Conn:
        conn = _Conn(client, self._totals)
        client.on_publish = conn.ack

        def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
            if not rc.is_failure:
                connected.set()

        client.on_connect = on_connect
        kwargs: dict[str, object] = {"keepalive": 60}
        if self.protocol == "5":
            kwargs["clean_start"] = True
        client.connect_async(self.endpoint.host, self.endpoint.port, **kwargs)  # type: ignore[arg-type]
        client.loop_start()
        return conn

    async def start(self) -> None:
        """Open the shared connections (multiplexed mode); per-band clients open on link-up."""
        if self.per_band:
            return
        events = []
        for i in range(self._connections):
            client = make_client(self.endpoint, client_id=f"sim-{self._tag}-{i}",
                                 protocol=self.protocol)  # fmt: skip
            ev = threading.Event()
            self._shared.append(self._start_client(client, ev))
            events.append(ev)
        await _wait_all(events, self.connect_timeout_s)

    def _shared_for(self, device_id: str) -> _Conn:
        return self._shared[zlib.crc32(device_id.encode()) % len(self._shared)]

    async def link(self, link: Link) -> None:
        """A band's connection comes up or is lost (see the module docstring)."""
        topic = device_topic(link.device_id, Channel.STATUS)
        if not self.per_band:
            if not link.up:
                self._publish(self._shared_for(link.device_id), topic, link.will, retain=True)
            return
        old = self._bands.get(link.device_id)
        if link.up:
            if old is not None:
                return
            creds = link.device_id in self.credentials
            client = make_client(self.endpoint, client_id=link.device_id, protocol=self.protocol,
                                 username=link.device_id if creds else None,
                                 password=self.credentials.get(link.device_id),
                                 will=(topic, link.will))  # fmt: skip
            connected = threading.Event()
            self._bands[link.device_id] = self._start_client(client, connected)
            # paho sends a publish made between TCP connect and CONNACK at once, ahead of the
            # queued ones: wait for the session so the band's messages keep their order
            await _wait_all([connected], self.connect_timeout_s)
            return
        if old is None:
            return
        del self._bands[link.device_id]
        if self.protocol != "5":
            self._publish(old, topic, link.will, retain=True)
        # what the band sent is the band model's business: let it all arrive, then drop
        await _drained(old, self.connect_timeout_s)
        if self.protocol == "5":
            old.client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=4))
        else:
            old.client.disconnect()
        self._retired.append(old)

    def publish(self, pub: Publish) -> None:
        if self.per_band:
            conn = self._bands.get(pub.device_id)
            if conn is None:
                raise TransportError(f"band {pub.device_id} publishes while not linked")
        else:
            conn = self._shared_for(pub.device_id)
        self._publish(conn, pub.topic, pub.payload, qos=pub.qos, retain=pub.retain)

    def publish_raw(self, key: str, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        """Publish on the shared connection that ``key`` (a device id) sticks to."""
        self._publish(self._shared_for(key), topic, payload, qos=qos, retain=retain)

    def _publish(self, conn: _Conn, topic: str, payload: bytes, *, qos: int = 1,
                 retain: bool = False) -> None:  # fmt: skip
        info = conn.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            raise TransportError("paho queue full: too many unacknowledged messages")
        conn.sent()
        if qos == 0:
            conn.ack()

    async def drain(self, *, timeout_s: float = 30.0) -> bool:
        """Wait until every QoS 1 message has been acknowledged by the broker."""
        return await _drained(self._totals, timeout_s)

    async def close(self, *, drain_timeout_s: float = 30.0) -> None:
        await self.drain(timeout_s=drain_timeout_s)
        conns = [*self._shared, *self._bands.values(), *self._retired]
        for c in conns:
            c.client.disconnect()
        await asyncio.to_thread(_stop_loops, [c.client for c in conns])
        self._shared.clear()
        self._bands.clear()
        self._retired.clear()


def _stop_loops(clients: Iterable[mqtt.Client]) -> None:
    for c in clients:
        c.loop_stop()


async def _drained(conn: _Conn, timeout_s: float) -> bool:
    """Poll (paho's thread sets no asyncio event) until nothing awaits a PUBACK."""
    deadline = time.monotonic() + timeout_s
    while conn.pending > 0:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def _wait_all(events: list[threading.Event], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(e.is_set() for e in events):
        if time.monotonic() > deadline:
            raise TransportError("could not connect to the MQTT broker in time")
        await asyncio.sleep(0.01)
