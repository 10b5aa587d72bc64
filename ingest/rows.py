"""Pure conversion of decoded protocol messages into database rows.

Nothing here touches the network or the database: `sort_batch` takes the raw
messages of one batch, the device directory and the clock, and says what each
message becomes (a telemetry/event/imu row, a status change, or a dead letter).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
from psycopg.types.json import Jsonb

from eldercare.protocol import (
    EMERGENCIES,
    DeviceEvent,
    ImuWindow,
    Limits,
    Location,
    Rejected,
    RejectReason,
    StatusReport,
    Telemetry,
    decode,
    salvage_emergency,
)
from eldercare.topics import Channel, DeviceTopic, parse_device_topic


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One MQTT delivery as it came off the wire (mid is the packet id to acknowledge)."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    # the broker sending it again (MQTT DUP): delivered before to this session and not
    # acknowledged, so the previous ingest process may have stored it and died before
    # handing it on. A band resending after its own reconnect is a new publish (no DUP).
    dup: bool = False
    # MQTT RETAIN on a delivery: the broker's retained copy, sent again on every
    # (re)subscription. A live publish reaches an existing subscription without it,
    # whatever the band set (MQTT 3.1.1 3.3.1-9; v5 with Retain As Published off).
    retain: bool = False


ReadingKey = tuple[str, int, int]  # device id, ts (ms), seq: the primary key of stored readings


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    resident_id: int | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    device_id: str | None
    reason: RejectReason
    detail: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message from a band paired with a resident that decode (or, since 2026-12-04, the
    database: :func:`stored_refusal`) refused, kept as a dead letter: handed on with the
    new readings, so that the alert engine notices a band whose data never arrives (a
    band model sending gravity-free or m/s^2 windows turns the fall detector off for
    its wearer without any other sign).

    ``event``: the SOS press or band fall the refused message still says
    (:func:`eldercare.protocol.salvage_emergency`), raised by the engine as any other.
    """

    device_id: str
    resident_id: int
    channel: Channel
    reason: RejectReason
    detail: str
    event: DeviceEvent | None = None
    raw: RawMessage | None = None  # in process only (a benchmark finds its send time by it)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid message and the resident its band is paired with at ingest time."""

    message: Telemetry | DeviceEvent | ImuWindow | StatusReport
    resident_id: int | None
    raw: RawMessage | None = None  # kept so a row the database refuses is dead-lettered as sent


@dataclass(slots=True)
class SortedBatch:
    telemetry: list[Accepted] = field(default_factory=list)
    events: list[Accepted] = field(default_factory=list)
    imu: list[Accepted] = field(default_factory=list)
    status: list[Accepted] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)  # of ``dead``: paired bands' own
    duplicates_in_batch: int = 0
    stale_statuses: int = 0  # retained statuses of revoked or unknown bands (sort_batch)


def sort_batch(
    raw: Sequence[RawMessage],
    *,
    lookup: Callable[[str], DeviceInfo | None],
    now_ms: int,
    limits: Limits,
) -> SortedBatch:
    """Decode, validate and classify a batch; repeats of one reading inside it are dropped."""
    out = SortedBatch()
    seen: set[tuple[str, str, int, int]] = set()
    for m in raw:
        if (replayed := _retained_reading(m)) is not None:
            out.dead.append(replayed)
            continue
        decoded = decode(m.topic, m.payload, now_ms=now_ms, limits=limits)
        if isinstance(decoded, Rejected):
            parsed = parse_device_topic(m.topic)
            out.dead.append(
                DeadLetter(
                    m.topic,
                    parsed.device_id if parsed else None,
                    decoded.reason,
                    decoded.detail,
                    m.payload,
                )
            )
            if parsed is not None and (
                refusal := _refusal(m, parsed, decoded, lookup, now_ms=now_ms, limits=limits)
            ):
                out.refused.append(refusal)
            continue
        info = lookup(decoded.device_id)
        if info is None or info.revoked:
            if m.retain and isinstance(decoded, StatusReport):
                # the broker's copy of a gone band's last status, sent again on every
                # subscription: counted, not a dead letter each time (before 2026-12-04
                # every ingest restart wrote one per revoked band). The live publish,
                # without the flag, was a dead letter as below.
                out.stale_statuses += 1
                continue
            reason = RejectReason.UNKNOWN_DEVICE if info is None else RejectReason.REVOKED_DEVICE
            state = "not registered" if info is None else "revoked"
            detail = f"wristband {decoded.device_id} is {state}"
            out.dead.append(DeadLetter(m.topic, decoded.device_id, reason, detail, m.payload))
            continue
        accepted = Accepted(decoded, info.resident_id, m)
        if isinstance(decoded, StatusReport):
            out.status.append(accepted)
            continue
        key = (type(decoded).__name__, decoded.device_id, decoded.ts, decoded.seq)
        if key in seen:
            out.duplicates_in_batch += 1
            continue
        seen.add(key)
        if isinstance(decoded, Telemetry):
            out.telemetry.append(accepted)
        elif isinstance(decoded, DeviceEvent):
            out.events.append(accepted)
        else:
            out.imu.append(accepted)
    return out


MAX_REFUSAL_DETAIL = 300  # characters of decode's reason handed on (it may quote the input)
_READINGS = frozenset({Channel.TELEMETRY, Channel.EVENTS, Channel.IMU})


def _retained_reading(m: RawMessage) -> DeadLetter | None:
    """A retained reading is refused whole, nothing salvaged or handed on: it is the
    broker's copy of what a band published with RETAIN set (the protocol says not to),
    delivered again on every subscription, so at each ingest restart or reconnect. The
    live publish came without RETAIN and was taken as usual. Before 2026-12-04 a
    retained SOS refused for its clock was salvaged at each restart, stamped with that
    arrival, and raised again each time."""
    if not m.retain:  # the usual case, checked first: this runs for every message
        return None
    parsed = parse_device_topic(m.topic)
    if parsed is None or parsed.channel not in _READINGS:
        return None
    detail = (f"a retained copy, sent again on subscribing: publish {parsed.channel.value}"
              " without the MQTT retain flag")  # fmt: skip
    return DeadLetter(m.topic, parsed.device_id, RejectReason.INVALID, detail, m.payload)


def _refusal(
    m: RawMessage,
    parsed: DeviceTopic,
    rejected: Rejected,
    lookup: Callable[[str], DeviceInfo | None],
    *,
    now_ms: int,
    limits: Limits,
) -> Refusal | None:
    """What the alert engine hears of a refused message: only a paired band's, and a
    redelivery (DUP) only if it holds an emergency (it may never have been handed on:
    at least once, as for readings; a plain refusal was counted the first time)."""
    owner = lookup(parsed.device_id)
    if owner is None or owner.revoked or owner.resident_id is None:
        return None
    event = salvage_emergency(m.topic, m.payload, now_ms=now_ms, limits=limits)
    if m.dup and event is None:
        return None
    return Refusal(parsed.device_id, owner.resident_id, parsed.channel, rejected.reason,
                   rejected.detail[:MAX_REFUSAL_DETAIL], event, m)  # fmt: skip


_CHANNELS: dict[type, Channel] = {Telemetry: Channel.TELEMETRY, DeviceEvent: Channel.EVENTS,
                                  ImuWindow: Channel.IMU, StatusReport: Channel.STATUS}  # fmt: skip


def stored_refusal(accepted: Accepted, detail: str) -> Refusal | None:
    """What the alert engine hears of a valid message the database refused (now a dead
    letter): as for decode's refusals (:func:`_refusal`), only a paired band's, and a
    redelivery only if it holds an emergency. An SOS or band fall goes in it (without
    its ``data``, which is what the database refuses): until 2026-12-04 salvage ran
    for decode's refusals only, and a press refused by the database was never raised.
    """
    message = accepted.message
    if accepted.resident_id is None:
        return None
    event = None
    if isinstance(message, DeviceEvent) and message.type in EMERGENCIES:
        event = without_data(message)
    if accepted.raw is not None and accepted.raw.dup and event is None:
        return None
    return Refusal(message.device_id, accepted.resident_id, _CHANNELS[type(message)],
                   RejectReason.INVALID, detail[:MAX_REFUSAL_DETAIL], event,
                   accepted.raw)  # fmt: skip


def without_data(event: DeviceEvent) -> DeviceEvent:
    """The event without its free-form ``data``: what is left when the database refuses
    that (a string holding NUL, which jsonb cannot store)."""
    return msgspec.structs.replace(event, data=None)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


TELEMETRY_COLUMNS = (
    "time", "device_id", "seq", "resident_id", "hr", "spo2", "bp_sys", "bp_dia", "skin_temp_c",
    "steps", "battery_pct", "worn", "lat", "lon", "loc_acc_m", "loc_src", "extra",
)  # fmt: skip
TELEMETRY_TYPES = (
    "timestamptz", "text", "int8", "int8", "int2", "int2", "int2", "int2", "float4",
    "int4", "int2", "bool", "float8", "float8", "float4", "text", "jsonb",
)  # fmt: skip


def _loc(loc: Location | None) -> tuple[float | None, float | None, float | None, str | None]:
    if loc is None:
        return None, None, None, None
    return loc.lat, loc.lon, loc.acc_m, loc.src.value


def telemetry_row(a: Accepted) -> tuple[object, ...]:
    t = a.message
    if not isinstance(t, Telemetry):
        raise TypeError(f"telemetry_row needs a Telemetry, got {type(t).__name__}")
    return (
        ms_to_datetime(t.ts), t.device_id, t.seq, a.resident_id, t.hr, t.spo2, t.bp_sys,
        t.bp_dia, t.skin_temp_c, t.steps, t.battery_pct, t.worn, *_loc(t.loc),
        Jsonb(t.extra) if t.extra is not None else None,
    )  # fmt: skip


EVENT_COLUMNS = (
    "time", "device_id", "seq", "resident_id", "type", "lat", "lon", "loc_acc_m", "loc_src",
    "data",
)  # fmt: skip
EVENT_TYPES = (
    "timestamptz", "text", "int8", "int8", "text", "float8", "float8", "float4", "text", "jsonb",
)  # fmt: skip


def event_row(a: Accepted) -> tuple[object, ...]:
    e = a.message
    if not isinstance(e, DeviceEvent):
        raise TypeError(f"event_row needs a DeviceEvent, got {type(e).__name__}")
    return (
        ms_to_datetime(e.ts), e.device_id, e.seq, a.resident_id, e.type.value, *_loc(e.loc),
        Jsonb(e.data) if e.data is not None else None,
    )  # fmt: skip


IMU_COLUMNS = ("time", "device_id", "seq", "resident_id", "trigger", "t_ms", "ax", "ay", "az")
IMU_TYPES = ("timestamptz", "text", "int8", "int8", "text", "int4[]", "float4[]", "float4[]",
             "float4[]")  # fmt: skip


def imu_row(a: Accepted) -> tuple[object, ...]:
    w = a.message
    if not isinstance(w, ImuWindow):
        raise TypeError(f"imu_row needs an ImuWindow, got {type(w).__name__}")
    return (ms_to_datetime(w.ts), w.device_id, w.seq, a.resident_id, w.trigger, w.t_ms, w.ax,
            w.ay, w.az)  # fmt: skip


# device_id, resident_id, last_seen, status_at, online, interval_s, firmware
StatusRow = tuple[str, int | None, datetime, datetime, bool, int | None, str | None]


def status_row(a: Accepted, *, now_ms: int) -> StatusRow:
    s = a.message
    if not isinstance(s, StatusReport):
        raise TypeError(f"status_row needs a StatusReport, got {type(s).__name__}")
    # Online/offline are ordered by arrival, not by the band's clock: a last will
    # carries no time, and a band whose clock runs ahead must still go offline.
    at = ms_to_datetime(now_ms)
    return (s.device_id, a.resident_id, at, at, s.state == "online", s.interval_s, s.firmware)
