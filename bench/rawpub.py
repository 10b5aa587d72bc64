"""A lean MQTT 3.1.1 QoS 1 publisher for load generation (raw socket, no client library).

A Python MQTT client spends ~100-170 us of CPU per QoS 1 publish; at 20k msg/s
that alone would take a core from the two this benchmark shares with the
broker, the database and ingest. Framing PUBLISH packets by hand and reading
PUBACKs in bulk costs a few microseconds, so the figures measure the platform,
not the load generator. Bands in the field are small devices on their own
connections; here one connection carries many bands, which is what a
gateway or a load balancer in front of the broker would do.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


class RawPublisher:
    def __init__(self, host: str, port: int, client_id: str, *, window: int = 20000) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = _utf8("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _utf8(client_id)
        self.sock.sendall(bytes([0x10]) + _remaining_length(len(body)) + body)
        connack = self.sock.recv(4)
        if len(connack) != 4 or connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"CONNACK refused: {connack!r}")
        self.window = window
        self.sent = 0
        self.acked = 0
        self._mid = 0
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read_acks, daemon=True)
        self._reader.start()

    def _read_acks(self) -> None:
        pending = b""
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            pending += chunk
            n = len(pending) // 4  # PUBACKs are 4 bytes; nothing else arrives (keepalive off)
            pending = pending[n * 4 :]
            with self._cond:
                self.acked += n
                self._cond.notify_all()

    def publish_many(self, topics: list[str], payloads: list[bytes]) -> None:
        """Send a burst of QoS 1 PUBLISH packets, waiting if too many are unacknowledged."""
        with self._cond:
            while self.sent - self.acked + len(payloads) > self.window:
                self._cond.wait(0.5)
        frames = bytearray()
        for topic, payload in zip(topics, payloads, strict=True):
            self._mid = self._mid % 65535 + 1
            variable = _utf8(topic) + struct.pack("!H", self._mid)
            frames += b"\x32" + _remaining_length(len(variable) + len(payload))
            frames += variable
            frames += payload
        self.sock.sendall(frames)
        self.sent += len(payloads)

    def wait_acked(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.acked < self.sent and time.monotonic() < deadline:
                self._cond.wait(0.2)

    def close(self) -> None:
        try:
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        finally:
            self.sock.close()


def paced(rate: float, duration: float, burst: Callable[[int], None]) -> int:
    """Call ``burst(n)`` so that ``rate`` items/s go out for ``duration`` seconds."""
    sent = 0
    t0 = time.monotonic()
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= duration:
            return sent
        due = int(elapsed * rate) - sent
        if due <= 0:
            time.sleep(0.002)
            continue
        n = min(due, 2000)
        burst(n)
        sent += n
