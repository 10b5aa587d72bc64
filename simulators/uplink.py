"""A band's uplink: what it sends (``Publish``, ``Link``) and the modem state behind it.

``Uplink`` holds what the band's MQTT side owns: the sequence number shared by
every uplink message, the drifting device clock (payload ``ts`` is the band's
clock, ``t_ms`` the true time), the connection going down and up, the store of
readings taken offline (sent in order on reconnect) and, after a drop, the last
message resent with its sequence number (the PUBACK was lost). It draws nothing
random itself: ``simulators.device.Band`` sets the clock and sequence for a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from eldercare.protocol import DeviceEvent, EventType, Location, StatusReport, encode
from eldercare.topics import Channel, device_topic

MAX_CLOCK_ERROR_MS = 90_000
STORE_CAPACITY = 5_000  # readings kept while offline; the oldest are dropped beyond


@dataclass(frozen=True, slots=True)
class Publish:
    t_ms: int  # true (simulated) time the band sends it
    device_id: str
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Link:
    """The band's connection goes up (``up``) or is lost; ``will`` is its offline status."""

    t_ms: int
    device_id: str
    up: bool
    will: bytes


Output = Publish | Link


def will_payload(device_id: str) -> bytes:
    return encode(StatusReport(device_id=device_id, state="offline", reason="connection lost"))


class Uplink:
    """One band's sequence numbers, clock, connection and store-and-forward."""

    def __init__(self, device_id: str, *, interval_s: int, firmware: str) -> None:
        self.device_id = device_id
        self.interval_s = interval_s
        self.firmware = firmware
        self.will = will_payload(device_id)
        self.topics = {c: device_topic(device_id, c) for c in Channel}
        # state of a run; start, clock0, ppm and seq are set by Band.outputs()
        self.start = 0
        self.clock0 = 0.0
        self.ppm = 0.0
        self.seq = 0
        self.online = False
        self.store: list[Publish] = []
        self.last_sent: Publish | None = None
        self.resend_last = False

    def device_ts(self, t_ms: int) -> int:
        err = self.clock0 + self.ppm * 1e-6 * (t_ms - self.start)
        return t_ms + int(max(-MAX_CLOCK_ERROR_MS, min(MAX_CLOCK_ERROR_MS, err)))

    def send(self, t_ms: int, channel: Channel, payload: bytes) -> Iterator[Output]:
        pub = Publish(t_ms, self.device_id, self.topics[channel], payload)
        if self.online:
            self.last_sent = pub
            yield pub
        else:
            self.store.append(pub)
            if len(self.store) > STORE_CAPACITY:
                del self.store[0]

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) % 4_294_967_296
        return self.seq

    def event(
        self, t_ms: int, kind: EventType, *, loc: Location | None = None,
        data: dict[str, object] | None = None,
    ) -> Iterator[Output]:  # fmt: skip
        msg = DeviceEvent(device_id=self.device_id, seq=self.next_seq(),
                          ts=self.device_ts(t_ms), type=kind, loc=loc, data=data)  # fmt: skip
        yield from self.send(t_ms, Channel.EVENTS, encode(msg))

    def link(self, t_ms: int, up: bool) -> Iterator[Output]:
        if up == self.online:
            return
        self.online = up
        yield Link(t_ms, self.device_id, up, self.will)
        if not up:
            return
        status = StatusReport(device_id=self.device_id, state="online",
                              ts=self.device_ts(t_ms), interval_s=self.interval_s,
                              firmware=self.firmware)  # fmt: skip
        yield Publish(t_ms, self.device_id, self.topics[Channel.STATUS], encode(status),
                      retain=True)  # fmt: skip
        last = self.last_sent
        if last is not None and self.resend_last:
            yield Publish(t_ms, last.device_id, last.topic, last.payload)  # same seq, same bytes
        for pub in self.store:
            yield Publish(t_ms, pub.device_id, pub.topic, pub.payload)
        if self.store:
            self.last_sent = self.store[-1]
        self.store.clear()
