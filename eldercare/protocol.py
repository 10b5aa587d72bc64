"""Device protocol v1: the wire messages, their validation, and pure decoding.

The same Struct types are the platform's domain values for what a wristband
said: ingest decodes each MQTT payload once, here, and nothing paho- or
JSON-shaped travels further. docs/protocol.md is the prose of this module and
docs/asyncapi.yaml its machine-readable twin (a test keeps them equal).

Units are fixed: heart rate in beats/min, SpO2 in %, blood pressure in mmHg,
skin temperature in degrees Celsius, steps as today's cumulative count,
battery in %, acceleration in g with gravity, timestamps in integer
milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from eldercare.topics import DEVICE_ID_PATTERN, Channel, parse_device_topic

PROTOCOL_VERSION = 1

DeviceId = Annotated[str, Meta(pattern=f"^{DEVICE_ID_PATTERN}$")]
EpochMs = Annotated[int, Meta(ge=946_684_800_000, le=4_102_444_800_000)]  # 2000..2100
Seq = Annotated[int, Meta(ge=0, le=4_294_967_295)]
HeartRate = Annotated[int, Meta(ge=20, le=250)]
SpO2 = Annotated[int, Meta(ge=50, le=100)]
Systolic = Annotated[int, Meta(ge=50, le=280)]
Diastolic = Annotated[int, Meta(ge=20, le=180)]
SkinTemp = Annotated[float, Meta(ge=20.0, le=45.0)]
Steps = Annotated[int, Meta(ge=0, le=200_000)]
Percent = Annotated[int, Meta(ge=0, le=100)]
Latitude = Annotated[float, Meta(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Meta(ge=-180.0, le=180.0)]
AccuracyM = Annotated[float, Meta(ge=0.0, le=100_000.0)]
AccelG = Annotated[float, Meta(ge=-64.0, le=64.0)]
# A wrist window in g has a median |a| near 1 (0.39-1.63 over the 1,095 real recordings of
# docs/falls.md); one in m/s^2 has ~9.8 and would look like a violent impact throughout;
# one with gravity removed (linear acceleration) has ~0.02-0.1 and would hide every fall.
IMU_MAX_MEDIAN_G: Final = 4.0
IMU_MIN_MEDIAN_G: Final = 0.2
STANDARD_GRAVITY: Final = 9.80665  # m/s^2 in 1 g
COUNTS_HINT: Final = "raw sensor counts? divide by the sensor's counts per g"
NO_GRAVITY_HINT: Final = "linear acceleration, gravity removed?"


def units_hint(median_g: float) -> str:
    """The likely cause of a window whose median |a| is far above 1 g: m/s^2 (~9.8 at
    rest) or, further up, a sensor's raw counts."""
    if median_g < 2 * STANDARD_GRAVITY:
        return f"m/s^2? divide by {STANDARD_GRAVITY}"
    return COUNTS_HINT


IntervalS = Annotated[int, Meta(ge=1, le=86_400)]
MAX_IMU_SAMPLES = 12_000  # 60 s at 200 Hz


class LocationSource(StrEnum):
    GPS = "gps"
    LBS = "lbs"  # cell towers
    WIFI = "wifi"
    BEACON = "beacon"  # indoor Bluetooth beacon


class EventType(StrEnum):
    SOS = "sos"
    FALL = "fall"  # detected by the band itself
    IM_OK = "im_ok"  # the wearer cancels an alarm on the band
    POWER_ON = "power_on"
    POWER_OFF = "power_off"
    CHARGING_START = "charging_start"
    CHARGING_STOP = "charging_stop"
    LOW_BATTERY = "low_battery"
    REMOVED = "removed"  # band taken off the wrist
    WORN = "worn"  # band put back on


class CommandType(StrEnum):
    LOCATE = "locate"  # report location now
    SET_INTERVAL = "set_interval"  # args: {"interval_s": int}
    MESSAGE = "message"  # show/speak a message; args: {"text": str}
    ALERT_ACK = "alert_ack"  # tell the wearer help is coming; args: {"alert_id": int}
    REBOOT = "reboot"


class _Wire(msgspec.Struct, frozen=True, omit_defaults=True, kw_only=True):
    """Base of the wire messages: immutable, compact on encode."""


class Location(_Wire, frozen=True):  # frozen restated for mypy; fields stay positional
    lat: Latitude
    lon: Longitude
    acc_m: AccuracyM
    src: LocationSource


class Telemetry(_Wire, frozen=True, kw_only=True):
    """A periodic reading: every vital is optional, a band sends what it measured."""

    v: Literal[1] = 1
    device_id: DeviceId
    seq: Seq
    ts: EpochMs
    hr: HeartRate | None = None
    spo2: SpO2 | None = None
    bp_sys: Systolic | None = None
    bp_dia: Diastolic | None = None
    skin_temp_c: SkinTemp | None = None
    steps: Steps | None = None
    battery_pct: Percent | None = None
    worn: bool | None = None
    loc: Location | None = None
    extra: dict[str, Any] | None = None


class DeviceEvent(_Wire, frozen=True, kw_only=True):
    v: Literal[1] = 1
    device_id: DeviceId
    seq: Seq
    ts: EpochMs
    type: EventType
    loc: Location | None = None
    data: dict[str, Any] | None = None


class ImuWindow(_Wire, frozen=True, kw_only=True):
    """An accelerometer window: sample i was taken at ``ts + t_ms[i]``."""

    v: Literal[1] = 1
    device_id: DeviceId
    seq: Seq
    ts: EpochMs
    t_ms: Annotated[list[Annotated[int, Meta(ge=0, le=600_000)]], Meta(max_length=MAX_IMU_SAMPLES)]
    ax: Annotated[list[AccelG], Meta(max_length=MAX_IMU_SAMPLES)]
    ay: Annotated[list[AccelG], Meta(max_length=MAX_IMU_SAMPLES)]
    az: Annotated[list[AccelG], Meta(max_length=MAX_IMU_SAMPLES)]
    trigger: Literal["impact", "motion", "periodic", "manual"] | None = None


class StatusReport(_Wire, frozen=True, kw_only=True):
    """Online/offline, published retained; the offline one is the MQTT last will."""

    # The last will is fixed at connect time, so it carries no timestamp or sequence
    # number. (One line of docstring: msgspec 0.23 dedents continuation lines in the
    # schema's description, older releases did not, and docs/asyncapi.yaml holds it.)

    v: Literal[1] = 1
    device_id: DeviceId
    state: Literal["online", "offline"]
    ts: EpochMs | None = None
    interval_s: IntervalS | None = None  # the band's telemetry interval, announced when online
    firmware: Annotated[str, Meta(max_length=64)] | None = None
    reason: Annotated[str, Meta(max_length=200)] | None = None


class Command(_Wire, frozen=True, kw_only=True):
    """Downlink on ``.../cmd``: platform to band."""

    v: Literal[1] = 1
    cmd_id: Annotated[str, Meta(min_length=1, max_length=64)]
    ts: EpochMs
    type: CommandType
    args: dict[str, Any] | None = None


Uplink = Telemetry | DeviceEvent | ImuWindow | StatusReport

_DECODERS: dict[Channel, msgspec.json.Decoder[Any]] = {
    Channel.TELEMETRY: msgspec.json.Decoder(Telemetry),
    Channel.EVENTS: msgspec.json.Decoder(DeviceEvent),
    Channel.IMU: msgspec.json.Decoder(ImuWindow),
    Channel.STATUS: msgspec.json.Decoder(StatusReport),
}
_ENCODER = msgspec.json.Encoder()


class RejectReason(StrEnum):
    """Why a message went to the dead-letter table instead of telemetry."""

    BAD_TOPIC = "bad_topic"
    OVERSIZED = "oversized"
    MALFORMED = "malformed"  # not UTF-8 JSON
    INVALID = "invalid"  # JSON, but not protocol v1 (wrong type, out of range, missing field)
    DEVICE_MISMATCH = "device_mismatch"  # payload device_id differs from the topic
    FUTURE_TIMESTAMP = "future_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    UNKNOWN_DEVICE = "unknown_device"
    REVOKED_DEVICE = "revoked_device"


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: RejectReason
    detail: str


MAX_FREE_DEPTH: Final = 16  # levels of lists/objects in a telemetry's extra or an event's data


@dataclass(frozen=True, slots=True)
class Limits:
    """What ingest accepts; see Settings for the configured values."""

    max_payload_bytes: int = 16_384
    max_imu_payload_bytes: int = 524_288
    max_future_ms: int = 300_000  # band clocks drift; five minutes ahead is tolerated
    max_age_ms: int = 30 * 86_400_000  # older than this is beyond raw retention


def decode(topic: str, payload: bytes, *, now_ms: int, limits: Limits) -> Uplink | Rejected:
    """Decode and validate one uplink message. Pure: the clock comes in as ``now_ms``."""
    parsed = parse_device_topic(topic)
    if parsed is None or parsed.channel is Channel.CMD:
        return Rejected(RejectReason.BAD_TOPIC, f"not a protocol v1 uplink topic: {topic[:200]!r}")
    cap = (
        limits.max_imu_payload_bytes if parsed.channel is Channel.IMU else limits.max_payload_bytes
    )
    if len(payload) > cap:
        return Rejected(
            RejectReason.OVERSIZED, f"{len(payload)} bytes exceeds the {cap}-byte limit"
        )
    try:
        message: Uplink = _DECODERS[parsed.channel].decode(payload)
    except msgspec.ValidationError as exc:
        return Rejected(RejectReason.INVALID, str(exc))
    except msgspec.DecodeError as exc:
        return Rejected(RejectReason.MALFORMED, str(exc))
    except RecursionError:  # ~1,000 nested arrays in a 4 KB payload: crashed ingest for good
        return Rejected(RejectReason.MALFORMED, "JSON nested too deep to read")
    if message.device_id != parsed.device_id:
        return Rejected(
            RejectReason.DEVICE_MISMATCH,
            f"payload device_id {message.device_id!r} != topic device {parsed.device_id!r}",
        )
    if isinstance(message, StatusReport) and not _in_window(message.ts, now_ms, limits):
        # status is ordered by arrival, and its ts only the band's own account: a clock
        # off does not refuse it (before 2026-12-04 a band whose clock ran fast that
        # powered off stayed "online"), the bad ts is dropped instead
        message = msgspec.structs.replace(message, ts=None)
    problem = _check(message, now_ms=now_ms, limits=limits)
    return problem if problem is not None else message


def _in_window(ts: int | None, now_ms: int, limits: Limits) -> bool:
    """Is ``ts`` (if any) neither too far ahead of the platform clock nor too old?"""
    return ts is None or now_ms - limits.max_age_ms <= ts <= now_ms + limits.max_future_ms


EMERGENCIES: Final = frozenset({EventType.SOS, EventType.FALL})
_SEQ_MAX: Final = 4_294_967_295


class _Kind(msgspec.Struct):
    """Only what an emergency needs; everything else in the payload is ignored."""

    type: str
    seq: Any = None
    ts: Any = None
    loc: Any = None


_kind_decoder = msgspec.json.Decoder(_Kind)


def salvage_emergency(
    topic: str, payload: bytes, *, now_ms: int, limits: Limits
) -> DeviceEvent | None:
    """The SOS press or band fall inside an events message that :func:`decode` refused.

    A press must not be lost to a field beside it: a GPS fix of latitude 200, a clock
    six minutes fast, a ``data`` nested too deep (however deep: :func:`_shallow_kind`) or
    too large. The topic names the band (the broker lets a band publish only its own
    topics); ``type`` must say ``sos`` or ``fall``.
    The band's ``seq`` and ``ts`` are kept when they are valid (so a redelivery is
    recognised), else 0 and ``now_ms``, the arrival; ``loc`` when it is valid by
    itself (where to send help), else none. ``data`` is not taken. ``None`` for
    anything else (not JSON, another type, larger than an IMU window may be).
    """
    parsed = parse_device_topic(topic)
    if parsed is None or parsed.channel is not Channel.EVENTS:
        return None
    if len(payload) > limits.max_imu_payload_bytes:  # an oversized event is read up to this
        return None
    try:
        kind: _Kind | None = _kind_decoder.decode(payload)
    except RecursionError:  # skipping a value nested ~1,000 deep: read it without msgspec
        kind = _shallow_kind(payload)
    except msgspec.DecodeError:  # ValidationError is a DecodeError
        return None
    if kind is None or kind.type not in EMERGENCIES:
        return None
    seq = kind.seq if type(kind.seq) is int and 0 <= kind.seq <= _SEQ_MAX else 0
    ts = kind.ts
    usable = type(ts) is int and _in_window(ts, now_ms, limits)
    try:
        loc = None if kind.loc is None else msgspec.convert(kind.loc, Location)
    except msgspec.ValidationError:
        loc = None  # the refused field, most likely
    return DeviceEvent(device_id=parsed.device_id, seq=seq, ts=ts if usable else now_ms,
                       type=EventType(kind.type), loc=loc)  # fmt: skip


# JSON a top-level member's value may be, read without recursing into it (bytes)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_SCALAR = re.compile(rb"[^\s,:\[\]{}\"]+")
_NESTING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]+|[\]}]+')  # strings skipped whole
_SPACE = re.compile(rb"[ \t\n\r]*")


def _shallow_kind(payload: bytes) -> _Kind | None:
    """:class:`_Kind` from the top level of a JSON object, each member's value found
    by counting brackets instead of parsing it (msgspec and ``json`` recurse, and give
    up near 1,000 levels). Until 2026-12-04 an SOS whose ``data`` nested that deep was
    lost: decode refused it as malformed, and salvage failed the same way."""
    members: dict[object, bytes] = {}
    pos = _skip_space(payload, 0)
    if payload[pos : pos + 1] != b"{":
        return None
    pos = _skip_space(payload, pos + 1)
    while payload[pos : pos + 1] != b"}":  # a member, then "," or "}"
        key = _STRING.match(payload, pos)
        pos = _skip_space(payload, key.end()) if key else pos
        if key is None or payload[pos : pos + 1] != b":":
            return None
        start = _skip_space(payload, pos + 1)
        end = _value_end(payload, start)
        if end is None:
            return None
        members[_loose(key.group())] = payload[start:end]
        pos = _skip_space(payload, end)
        if payload[pos : pos + 1] == b",":
            pos = _skip_space(payload, pos + 1)
        elif payload[pos : pos + 1] != b"}":
            return None
    if _skip_space(payload, pos + 1) != len(payload):
        return None  # something after the object: not JSON
    values = {name: _loose(members[name]) for name in ("seq", "ts", "loc") if name in members}
    kind = _loose(members.get("type", b"null"))
    return _Kind(type=kind, **values) if isinstance(kind, str) else None


def _skip_space(payload: bytes, pos: int) -> int:
    space = _SPACE.match(payload, pos)
    return space.end() if space else pos


def _value_end(payload: bytes, start: int) -> int | None:
    """Where the JSON value at ``start`` ends, without parsing what it holds."""
    first = payload[start : start + 1]
    if first == b'"':
        string = _STRING.match(payload, start)
        return string.end() if string else None
    if first not in (b"[", b"{"):
        scalar = _SCALAR.match(payload, start)
        return scalar.end() if scalar else None
    depth = 0
    for token in _NESTING.finditer(payload, start):
        text = token.group()
        if text[0] in b"[{":
            depth += len(text)
        elif text[0] in b"]}":
            if len(text) >= depth:  # closes the value within this run
                return token.start() + depth
            depth -= len(text)
    return None


def _loose(value: bytes) -> Any:
    """A member's value as JSON, or None if it cannot be read (too deep, or bad)."""
    try:
        return msgspec.json.decode(value)
    except (msgspec.DecodeError, RecursionError):
        return None


def _depth(value: object) -> int:
    """How deep ``value`` nests lists and objects (iterative: a deep value must not
    exhaust the stack here either)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((x, level + 1) for x in item)
    return deepest


def _check(message: Uplink, *, now_ms: int, limits: Limits) -> Rejected | None:
    ts = message.ts
    free = (message.extra if isinstance(message, Telemetry)
            else message.data if isinstance(message, DeviceEvent) else None)  # fmt: skip
    if free is not None and _depth(free) > MAX_FREE_DEPTH:
        # stored as JSON: psycopg's encoder recursed past the stack near 1,000 levels
        # and failed the whole batch (an error that is not the database's, so not split)
        what = "extra" if isinstance(message, Telemetry) else "data"
        return Rejected(RejectReason.INVALID, f"{what} nests deeper than {MAX_FREE_DEPTH} levels")
    if ts is not None:
        if ts > now_ms + limits.max_future_ms:
            return Rejected(
                RejectReason.FUTURE_TIMESTAMP,
                f"ts {ts} is {(ts - now_ms) / 1000:.0f} s ahead of the platform clock",
            )
        if ts < now_ms - limits.max_age_ms:
            return Rejected(
                RejectReason.STALE_TIMESTAMP,
                f"ts {ts} is {(now_ms - ts) / 86_400_000:.1f} days old, beyond raw retention",
            )
    if isinstance(message, Telemetry):
        if (
            message.bp_sys is not None
            and message.bp_dia is not None
            and message.bp_dia >= message.bp_sys
        ):
            return Rejected(RejectReason.INVALID, "bp_dia must be below bp_sys")
        if (message.bp_sys is None) != (message.bp_dia is None):
            return Rejected(RejectReason.INVALID, "bp_sys and bp_dia come together")
    elif isinstance(message, ImuWindow):
        n = len(message.t_ms)
        if not (len(message.ax) == len(message.ay) == len(message.az) == n):
            return Rejected(RejectReason.INVALID, "t_ms, ax, ay and az must have equal lengths")
        if n < 3:
            return Rejected(RejectReason.INVALID, "an imu window needs at least 3 samples")
        if any(b < a for a, b in zip(message.t_ms, message.t_ms[1:], strict=False)):
            return Rejected(RejectReason.INVALID, "t_ms must be non-decreasing")
        median = statistics.median(map(math.hypot, message.ax, message.ay, message.az))
        if median > IMU_MAX_MEDIAN_G:
            return Rejected(
                RejectReason.INVALID,
                f"median |a| is {median:.1f}, expected about 1 g: ax, ay, az must be in g"
                f" including gravity ({units_hint(median)})",
            )
        if median < IMU_MIN_MEDIAN_G:
            return Rejected(
                RejectReason.INVALID,
                f"median |a| is {median:.2f} g, expected about 1 g: ax, ay, az must include"
                f" gravity ({NO_GRAVITY_HINT})",
            )
    return None


def encode(message: Uplink | Command) -> bytes:
    """The wire bytes of a message."""
    return _ENCODER.encode(message)
