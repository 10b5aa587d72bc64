"""The MQTT side of ingest: a paho-mqtt client whose deliveries wait in a bounded
inbox until the batch that holds them is committed, and only then are acked.

paho-mqtt 2.x is used here because it has manual acknowledgements; aiomqtt
2.5 acks on receipt (and drops messages when its queue is full), which would
lose acknowledged readings on a crash. The network loop runs in its own
thread; reconnects back off exponentially with full jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from eldercare.logs import get_logger
from eldercare.settings import MqttEndpoint
from eldercare.waiting import backoff_delay
from ingest.rows import RawMessage

log = get_logger(__name__)
_PUBACK = struct.Struct("!BBH")  # fixed header, remaining length 2, packet id
SESSION_EXPIRY_S = 7 * 86_400  # the broker keeps our subscription and unacked messages a week


class _BufferedClient(mqtt.Client):
    """paho reads every packet with three or more ``recv()`` calls (type byte, each
    length byte, body): at 20k msg/s that is the largest cost of ingest. This
    reads up to 64 KiB at once and serves paho's small reads from the buffer.
    """

    _rx: bytes = b""
    _rx_pos: int = 0
    on_delivery: Callable[[int, int, str, bytes, int], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock = threading.RLock()  # see _packet_write

    def _handle_publish(self) -> MQTTErrorCode:
        """Hand QoS 0/1 deliveries straight to ``on_delivery`` (mid, qos, topic, payload,
        and the fixed header's flags: DUP 0x08, RETAIN 0x01).

        paho builds an MQTTMessage, a v5 Properties object and walks its topic
        matcher for every message; ingest needs none of them. QoS 2 (which the
        QoS 1 subscriptions never deliver) keeps paho's own handling.
        """
        deliver = self.on_delivery
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if deliver is None or qos == 2:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        end = 2 + ((packet[0] << 8) | packet[1])
        try:
            topic = bytes(packet[2:end]).decode()
        except UnicodeDecodeError:
            topic = "<topic is not UTF-8>"  # dead-lettered as a bad topic, then acked
        mid = 0
        if qos:
            mid = (packet[end] << 8) | packet[end + 1]
            end += 2
        if self._protocol == mqtt.MQTTv5:  # skip the properties (variable-length size first)
            size = shift = 0
            while True:
                byte = packet[end]
                end += 1
                size |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            end += size
        deliver(mid, qos, topic, bytes(packet[end:]), header)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rx_pos >= len(self._rx):
            data = super()._sock_recv(65536)  # BlockingIOError when nothing is there
            if not data:
                return data  # the broker closed the connection
            self._rx, self._rx_pos = data, 0
        chunk = self._rx[self._rx_pos : self._rx_pos + bufsize]
        self._rx_pos += len(chunk)
        return chunk

    def buffered(self) -> bool:
        return self._rx_pos < len(self._rx)

    def _packet_write(self) -> MQTTErrorCode:
        """One writer at a time. paho writes a queued packet at once from whichever
        thread queues it (ingest's acks and hand-off publishes come from the asyncio
        side) and its writer takes no lock: a packet only partly written goes back to
        the head of the queue, so a second thread meanwhile wrote its own packet into the
        middle of it. The broker dropped the connection for a malformed packet and the
        alert engine met corrupt batches (a stored SOS never raised; found by fuzzing on
        2026-12-03). Handing every write to the network thread instead (a socket-write
        callback) cost ~17 % of ingest's throughput (bench/ingest.py --rate 8000 on a slow
        host: 6,474 against 7,224 msg/s); with this lock, 6,928 against 6,855 (no change)."""
        with self._write_lock:
            return super()._packet_write()

    def reconnect(self) -> MQTTErrorCode:
        self._rx, self._rx_pos = b"", 0  # never feed a new connection the old one's bytes
        return super().reconnect()


# payload bytes the inbox holds before the paho thread waits: 256 MiB is ~1.3 million
# readings of ~200 bytes (count, not bytes, is the bound then), but only 512 of the
# largest movement windows the protocol allows (512 KiB), against 8,000 before 2026-12-04
INBOX_MAX_BYTES = 256 * 1024 * 1024


class Inbox:
    """Deliveries between the paho thread and the asyncio pipeline.

    Full policy: the paho thread waits (backpressure: the socket is not read,
    the broker holds the messages). It never drops. With MQTT v5 the broker's
    Receive Maximum keeps it from filling at all. Full is ``capacity`` messages or
    ``max_bytes`` of payload, whichever comes first; a message larger than that
    alone still goes in when the inbox is empty.
    """

    def __init__(
        self,
        *,
        capacity: int,
        wake_at: int,
        loop: asyncio.AbstractEventLoop,
        max_bytes: int = INBOX_MAX_BYTES,
    ) -> None:
        self._items: list[RawMessage] = []
        self._cond = threading.Condition()
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0
        self._wake_at = wake_at
        self._loop = loop
        self.nonempty = asyncio.Event()
        self.full_batch = asyncio.Event()
        self.first_at = 0.0
        self.blocked_s = 0.0

    def _full(self, adding: int) -> bool:
        items = self._items
        return len(items) >= self._capacity or (
            bool(items) and self._bytes + adding > self._max_bytes
        )

    def put(self, message: RawMessage) -> None:  # paho thread
        size = len(message.payload)
        with self._cond:
            items = self._items
            # the check inlined: this runs for every delivery on the MQTT thread
            if len(items) >= self._capacity or self._bytes + size > self._max_bytes:
                started = time.monotonic()
                while self._full(size):
                    self._cond.wait(0.5)
                self.blocked_s += time.monotonic() - started
            items.append(message)
            self._bytes += size
            n = len(items)
            if n == 1:
                self.first_at = time.monotonic()
        if n == 1:
            self._loop.call_soon_threadsafe(self.nonempty.set)
        if n == self._wake_at:
            self._loop.call_soon_threadsafe(self.full_batch.set)

    def take(self, limit: int) -> list[RawMessage]:  # asyncio side
        with self._cond:
            batch = self._items[:limit]
            del self._items[:limit]
            self._bytes -= sum(len(m.payload) for m in batch)
            remaining = len(self._items)
            if remaining:
                self.first_at = time.monotonic()
            self._cond.notify_all()
        if not remaining:
            self.nonempty.clear()
        if remaining < self._wake_at:
            self.full_batch.clear()
        return batch

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class MqttSource:
    """Subscribes to the uplink filters and feeds the inbox; acks on request."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        *,
        client_id: str,
        filters: list[str],
        protocol: str,
        receive_maximum: int,
        inbox: Inbox,
    ) -> None:
        self._endpoint = endpoint
        self._filters = filters
        self._v5 = protocol == "5"
        self._receive_maximum = receive_maximum
        self._inbox = inbox
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.on_connected: Callable[[], None] | None = None
        self.on_subscribed: Callable[[], None] | None = None  # the broker's SUBACK
        self.connects = 0
        self.client = _BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else False,  # MQTT 5 uses clean_start on connect
            manual_ack=True,
        )
        if endpoint.username:
            self.client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            self.client.tls_set()
        self.client.max_inflight_messages_set(1000)  # our own publishes (internal topic)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message  # QoS 2 only; the rest skip MQTTMessage
        self.client.on_delivery = self._on_delivery
        self.client.on_subscribe = self._on_subscribe

    # paho callbacks (network thread)
    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object,
                    _p: object) -> None:  # fmt: skip
        if getattr(reason, "is_failure", False):
            log.warning("mqtt_connect_refused", reason=str(reason))
            return
        self.connects += 1
        if self._v5:
            client.subscribe([(f, SubscribeOptions(qos=1)) for f in self._filters])
        else:
            client.subscribe([(f, 1) for f in self._filters])
        self.connected.set()
        log.info("mqtt_connected", host=self._endpoint.host, port=self._endpoint.port,
                 protocol="5" if self._v5 else "3.1.1", filters=len(self._filters))  # fmt: skip
        if self.on_connected is not None:
            self.on_connected()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: object,
                       _p: object) -> None:  # fmt: skip
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("mqtt_disconnected", reason=str(reason))

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _m: object, _r: object,
                      _p: object) -> None:  # fmt: skip
        if self.on_subscribed is not None:
            self.on_subscribed()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put(RawMessage(msg.mid, msg.qos, msg.topic, bytes(msg.payload), msg.dup,
                                   msg.retain))  # fmt: skip

    def _on_delivery(self, mid: int, qos: int, topic: str, payload: bytes, header: int) -> None:
        self._inbox.put(RawMessage(mid, qos, topic, payload, dup=bool(header & 0x08),
                                   retain=bool(header & 0x01)))  # fmt: skip

    # lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):  # already disconnected
            self.client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def ack(self, messages: list[RawMessage]) -> None:
        """Acknowledge committed deliveries, all in one write.

        paho's ``ack()`` sends each PUBACK as its own packet (two system calls
        per message, the largest single cost of ingest at 20k msg/s). A PUBACK
        for QoS 1 is four bytes, valid in MQTT 3.1.1 and 5 alike (v5 allows
        omitting the reason code when it is Success), so the batch's PUBACKs
        are queued as one buffer through the same internal queue ``ack()``
        uses. QoS 2 (never used by bands) goes through ``ack()``.
        """
        packed = bytearray()
        for m in messages:
            if m.qos == 1:
                packed += _PUBACK.pack(0x40, 2, m.mid)
            elif m.qos == 2:
                self.client.ack(m.mid, m.qos)
        if packed:
            self.client._packet_queue(mqtt.PUBACK, bytes(packed), 0, 0)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos)

    def _run(self) -> None:
        attempt = 0
        first = True
        while not self._stop.is_set():
            try:
                if first:
                    self._connect()
                    first = False
                else:
                    self.client.reconnect()
            except (OSError, mqtt.WebsocketConnectionError) as exc:
                delay = backoff_delay(attempt, rnd=random.random())  # noqa: S311
                attempt += 1
                log.warning("mqtt_connect_failed", error=str(exc), retry_in_s=round(delay, 2))
                self._stop.wait(delay)
                continue
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            while not self._stop.is_set() and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = self.client.loop(timeout=0.5)
                while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self.client.buffered():
                    rc = self.client.loop_read()
                if self.connected.is_set():
                    attempt = 0
            if self._stop.is_set():
                break
            delay = backoff_delay(attempt, rnd=random.random())  # noqa: S311
            attempt += 1
            self._stop.wait(delay)
        # flush pending acks and the DISCONNECT before the thread ends
        for _ in range(20):
            if self.client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        # paho's loop() opens a socket pair to wake itself and closes it only in
        # Client.__del__; the client sits in a reference cycle (its callbacks are our
        # bound methods), so without this the pair is left to the garbage collector,
        # unclosed, once per source. (Private in paho 2.x; skipped if a release drops it.)
        reset = getattr(self.client, "_reset_sockets", None)
        if reset is not None:
            reset()

    def _connect(self) -> None:
        if self._v5:
            # paho leaves Properties.__init__ unannotated
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = self._receive_maximum
            self.client.connect(self._endpoint.host, self._endpoint.port, keepalive=30,
                                clean_start=False, properties=props)  # fmt: skip
        else:
            self.client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
