"""Record a live MQTT stream to JSONL and replay it at 1x or N x speed.

A recording line: ``{"t": seconds since the recording started, "topic": ...,
"payload": base64, "qos": 0|1|2, "retain": bool}``. The recorder subscribes
with MQTT 5 and *retain as published*, so a retained status message keeps its
flag. Replay publishes every message with its recorded topic, bytes, QoS and
retain flag at ``t / speed``; all messages of one device go through the same
connection in recorded order, so each device's stream is reproduced byte for
byte and in order (messages of different devices may interleave differently).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from eldercare.settings import parse_mqtt_url
from eldercare.topics import ROOT, Channel, device_topic, parse_device_topic
from simulators.runner import backpressure
from simulators.transport import MqttProtocol, MqttTransport, TransportError, make_client

DEFAULT_FILTER = f"{ROOT}/devices/#"


class RecordingError(ValueError):
    """A recording that cannot be replayed; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Recorded:
    t: float
    topic: str
    payload: bytes
    qos: int
    retain: bool

    def line(self) -> str:
        return json.dumps({"t": round(self.t, 6), "topic": self.topic,
                           "payload": base64.b64encode(self.payload).decode("ascii"),
                           "qos": self.qos, "retain": self.retain})  # fmt: skip

    @classmethod
    def from_line(cls, line: str) -> Recorded:
        """One recording line; ``RecordingError`` says what is wrong with it."""
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordingError(f"not JSON ({exc.msg})") from None
        if not isinstance(d, dict):
            raise RecordingError("a line is a JSON object {t, topic, payload, qos, retain}")
        missing = [k for k in ("t", "topic", "payload") if k not in d]
        if missing:
            raise RecordingError(f"missing {missing}")
        t, topic, payload = d["t"], d["topic"], d["payload"]
        qos, retain = d.get("qos", 1), d.get("retain", False)
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
            raise RecordingError(f"t: {t!r} is not seconds >= 0")
        if not isinstance(topic, str) or not topic:
            raise RecordingError(f"topic: {topic!r} is not a topic")
        if qos not in (0, 1, 2) or isinstance(qos, bool):
            raise RecordingError(f"qos: {qos!r} is not 0, 1 or 2")
        if not isinstance(retain, bool):
            raise RecordingError(f"retain: {retain!r} is not true or false")
        try:
            data = base64.b64decode(payload, validate=True) if isinstance(payload, str) else None
        except binascii.Error:
            data = None
        if data is None:
            raise RecordingError("payload: not base64")
        return cls(t=float(t), topic=topic, payload=data, qos=qos, retain=retain)


def read_recording(path: str | Path) -> Iterator[Recorded]:
    """Every message of a recording; a bad line is a ``RecordingError`` naming file and line."""
    try:
        f = Path(path).open(encoding="utf-8")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read the recording: {exc.strerror}") from None
    with f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = Recorded.from_line(line)
            except RecordingError as exc:
                raise RecordingError(f"{path}: line {n}: {exc}") from None
            yield rec


def check_recording(path: str | Path) -> int:
    """Read a whole recording (``RecordingError`` on the first bad line); its length."""
    return sum(1 for _ in read_recording(path))


class Recorder:
    """Subscribes to ``topic_filter`` and appends every message to ``path`` as it arrives."""

    def __init__(
        self,
        url: str,
        path: str | Path,
        *,
        topic_filter: str = DEFAULT_FILTER,
        protocol: MqttProtocol = "5",
        keep: bool = False,
    ) -> None:
        self.endpoint = parse_mqtt_url(url)
        self.path = Path(path)
        self.keep = keep
        self.messages: list[Recorded] = []  # kept in memory too when ``keep``
        self.topic_filter = topic_filter
        self.protocol = protocol
        self.count = 0
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._t0 = 0.0
        self._client: mqtt.Client | None = None

    def _on_connect(self, c: mqtt.Client, _u: object, _f: object, rc: ReasonCode,
                    _p: object) -> None:  # fmt: skip
        if rc.is_failure:
            return
        if self.protocol == "5":
            c.subscribe(self.topic_filter, options=SubscribeOptions(qos=1, retainAsPublished=True))
        else:
            c.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(self, *_: object) -> None:
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        rec = Recorded(time.monotonic() - self._t0, msg.topic, bytes(msg.payload), msg.qos,
                       bool(msg.retain))  # fmt: skip
        with self._lock:
            if self._file is not None:
                self._file.write(rec.line() + "\n")
                self.count += 1
                if self.keep:
                    self.messages.append(rec)

    async def __aenter__(self) -> Recorder:
        self._file = self.path.open("w", encoding="utf-8")
        client = make_client(self.endpoint, client_id=f"sim-rec-{uuid.uuid4().hex[:8]}",
                             protocol=self.protocol)  # fmt: skip
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._t0 = time.monotonic()
        client.connect_async(self.endpoint.host, self.endpoint.port)
        client.loop_start()
        self._client = client
        deadline = time.monotonic() + 15
        while not self.subscribed.is_set():
            if time.monotonic() > deadline:
                await self.__aexit__(None, None, None)
                raise TransportError("recorder could not subscribe in time")
            await asyncio.sleep(0.01)
        return self

    def kept(self, predicate: Callable[[Recorded], bool] | None = None) -> list[Recorded]:
        with self._lock:
            return [m for m in self.messages if predicate is None or predicate(m)]

    async def wait_for(
        self,
        count: int,
        *,
        timeout_s: float,
        predicate: Callable[[Recorded], bool] | None = None,
    ) -> bool:
        """Poll until ``count`` (matching, kept) messages are recorded or the deadline passes."""
        deadline = time.monotonic() + timeout_s
        while (len(self.kept(predicate)) if predicate else self.count) < count:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def __aexit__(self, *_: object) -> None:
        if self._client is not None:
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)
            self._client = None
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


async def record(
    url: str,
    path: str | Path,
    *,
    topic_filter: str = DEFAULT_FILTER,
    duration_s: float | None = None,
    max_messages: int | None = None,
    stop: asyncio.Event | None = None,
    protocol: MqttProtocol = "5",
) -> int:
    """Record until ``duration_s`` passes, ``max_messages`` arrive or ``stop`` is set."""
    async with Recorder(url, path, topic_filter=topic_filter, protocol=protocol) as rec:
        deadline = time.monotonic() + duration_s if duration_s is not None else None
        while not (stop is not None and stop.is_set()):
            if deadline is not None and time.monotonic() >= deadline:
                break
            if max_messages is not None and rec.count >= max_messages:
                break
            await asyncio.sleep(0.02)
        return rec.count


def _key(topic: str) -> str:
    parsed = parse_device_topic(topic)
    return parsed.device_id if parsed is not None else topic


async def replay(
    url: str,
    path: str | Path,
    *,
    speed: float | None = 1.0,
    protocol: MqttProtocol = "5",
    connections: int = 4,
    stop: asyncio.Event | None = None,
) -> int:
    """Publish a recording again at ``speed`` (None: as fast as possible); returns the count.

    The whole file is read first: a bad line is refused before anything is published.
    """
    check_recording(path)
    transport = MqttTransport(url, protocol=protocol, connections=connections)
    await transport.start()
    n = 0
    wall0 = time.monotonic()
    try:
        for rec in read_recording(path):
            if stop is not None and stop.is_set():
                break
            if speed is not None and speed > 0:
                ahead = rec.t / speed - (time.monotonic() - wall0)
                if ahead > 0.002:
                    await asyncio.sleep(ahead)
            await backpressure(transport, 20_000)
            transport.publish_raw(_key(rec.topic), rec.topic, rec.payload, qos=rec.qos,
                                  retain=rec.retain)  # fmt: skip
            n += 1
    finally:
        await transport.close()
    return n


async def clear_retained(url: str, topics: Iterable[str], *, protocol: MqttProtocol = "5") -> int:
    """Delete retained messages (an empty retained publish each), e.g. a finished run's statuses."""
    transport = MqttTransport(url, protocol=protocol, connections=1)
    await transport.start()
    n = 0
    try:
        for topic in sorted(set(topics)):
            transport.publish_raw(topic, topic, b"", qos=1, retain=True)
            n += 1
    finally:
        await transport.close()
    return n


def status_topics(device_ids: Iterable[str]) -> list[str]:
    return [device_topic(d, Channel.STATUS) for d in device_ids]
