"""What ingest hands on about the messages it refuses: whose they are, why, and the SOS
or band fall a refused message still holds (``protocol.salvage_emergency``)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eldercare.protocol import (
    DeviceEvent,
    EventType,
    Limits,
    Location,
    LocationSource,
    RejectReason,
    StatusReport,
    Telemetry,
    encode,
    salvage_emergency,
)
from eldercare.topics import Channel, device_topic
from ingest.handoff import IngestedBatch, decode_batch, encode_batch, encode_batches
from ingest.rows import (
    MAX_REFUSAL_DETAIL,
    Accepted,
    DeviceInfo,
    RawMessage,
    Refusal,
    sort_batch,
    stored_refusal,
)

NOW = 1_740_000_000_000
LIMITS = Limits()
EVENTS = device_topic("wb-1", Channel.EVENTS)
BANDS = {"wb-1": DeviceInfo(7, revoked=False), "wb-2": DeviceInfo(None, revoked=False),
         "wb-3": DeviceInfo(8, revoked=True)}  # fmt: skip


def salvage(payload: object, topic: str = EVENTS) -> DeviceEvent | None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return salvage_emergency(topic, data, now_ms=NOW, limits=LIMITS)


def test_an_sos_refused_for_its_fix_keeps_the_bands_seq_and_time() -> None:
    press = {"v": 1, "device_id": "wb-1", "seq": 5, "ts": NOW - 2000, "type": "sos",
             "loc": {"lat": 200.0, "lon": 1.0, "acc_m": 5.0, "src": "gps"}}  # fmt: skip
    assert salvage(press) == DeviceEvent(device_id="wb-1", seq=5, ts=NOW - 2000,
                                         type=EventType.SOS)  # fmt: skip


def test_a_clock_far_off_or_a_bad_seq_gives_the_arrival_and_zero() -> None:
    for ts in (NOW + 3_600_000, NOW - 40 * 86_400_000, "soon", True, None):
        got = salvage({"type": "fall", "ts": ts, "seq": -1})
        assert got == DeviceEvent(device_id="wb-1", seq=0, ts=NOW, type=EventType.FALL), ts
    # the device is the topic's, whatever the payload says (a band publishes only its own)
    assert salvage({"type": "sos", "device_id": "someone-else"}).device_id == "wb-1"  # type: ignore[union-attr]


def test_a_valid_fix_is_kept_when_something_else_was_refused() -> None:
    fix = {"lat": 32.38, "lon": 120.56, "acc_m": 12.0, "src": "gps"}
    got = salvage({"type": "sos", "ts": NOW + 3_600_000, "seq": 1, "loc": fix})
    assert got is not None
    assert got.loc == Location(32.38, 120.56, 12.0, LocationSource.GPS)
    assert got.ts == NOW  # the clock was the fault
    for bad in ({**fix, "lat": 200.0}, {"lat": 1.0}, "here", [1, 2]):
        assert salvage({"type": "sos", "loc": bad}).loc is None  # type: ignore[union-attr]


def test_only_an_sos_or_fall_on_an_events_topic_is_salvaged() -> None:
    assert salvage({"type": "im_ok"}) is None
    assert salvage({"type": 3}) is None
    assert salvage({"seq": 1}) is None
    assert salvage(b"not json") is None
    assert salvage(b"[" * 10_000) is None
    assert salvage({"type": "sos"}, device_topic("wb-1", Channel.TELEMETRY)) is None
    assert salvage({"type": "sos"}, "elsewhere/wb-1/events") is None
    # an event past its own limit (16 KiB) is still read, up to an IMU window's (512 KiB)
    big = b'{"type":"sos","data":{"pad":"' + b"x" * LIMITS.max_payload_bytes + b'"}}'
    assert salvage(big) == DeviceEvent(device_id="wb-1", seq=0, ts=NOW, type=EventType.SOS)
    huge = b'{"type":"sos","pad":"' + b"x" * LIMITS.max_imu_payload_bytes + b'"}'
    assert salvage(huge) is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner) | st.dictionaries(st.sampled_from(["type", "ts", "seq"]), inner),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()))
def test_salvage_never_raises_and_returns_only_emergencies(payload: bytes) -> None:
    got = salvage(payload)
    assert got is None or (got.type in (EventType.SOS, EventType.FALL) and got.device_id == "wb-1")


def raw(topic: str, payload: bytes, *, dup: bool = False) -> RawMessage:
    return RawMessage(mid=1, qos=1, topic=topic, payload=payload, dup=dup)


def test_a_paired_bands_refused_messages_are_handed_on_with_the_salvaged_emergency() -> None:
    bad_fix = json.dumps({"v": 1, "device_id": "wb-1", "seq": 2, "ts": NOW, "type": "sos",
                          "loc": {"lat": 200.0, "lon": 1.0}}).encode()  # fmt: skip
    messages = [
        raw(EVENTS, bad_fix),
        raw(device_topic("wb-1", Channel.IMU), b'{"oops": ' + b"x" * 1000 + b"}"),
        raw(device_topic("wb-2", Channel.EVENTS), bad_fix),  # unpaired: nobody to alert about
        raw(device_topic("wb-3", Channel.EVENTS), bad_fix),  # revoked
        raw(device_topic("wb-4", Channel.EVENTS), bad_fix),  # not registered
        raw(device_topic("wb-1", Channel.TELEMETRY), b"{}", dup=True),  # counted the first time
        raw(EVENTS, bad_fix, dup=True),  # may never have been handed on: at least once
    ]
    batch = sort_batch(messages, lookup=BANDS.get, now_ms=NOW, limits=LIMITS)
    assert len(batch.dead) == 7
    press = DeviceEvent(device_id="wb-1", seq=2, ts=NOW, type=EventType.SOS)
    assert [(r.device_id, r.resident_id, r.channel, r.reason, r.event) for r in batch.refused] == [
        ("wb-1", 7, Channel.EVENTS, RejectReason.INVALID, press),
        ("wb-1", 7, Channel.IMU, RejectReason.MALFORMED, None),
        ("wb-1", 7, Channel.EVENTS, RejectReason.INVALID, press),
    ]
    assert all(len(r.detail) <= MAX_REFUSAL_DETAIL for r in batch.refused)


def test_refusals_cross_the_internal_topic_unchanged() -> None:
    press = DeviceEvent(device_id="wb-1", seq=2, ts=NOW, type=EventType.SOS)
    batch = IngestedBatch(refused=[
        Refusal("wb-1", 7, Channel.EVENTS, RejectReason.INVALID, "at $.loc.lat", press),
        Refusal("wb-1", 7, Channel.IMU, RejectReason.FUTURE_TIMESTAMP, "ahead", None),
    ])  # fmt: skip
    assert batch
    assert decode_batch(encode_batch(batch)) == batch
    (chunk,) = encode_batches(batch)
    assert decode_batch(chunk) == batch


def test_an_item_of_an_unknown_channel_is_skipped_not_the_batch() -> None:
    press = DeviceEvent(device_id="wb-1", seq=2, ts=NOW, type=EventType.SOS)
    data = json.dumps([
        {"channel": "from_the_future", "resident_id": 7, "message": {"x": 1}},
        {"channel": "events", "resident_id": 7, "message": json.loads(encode(press))},
    ]).encode()  # fmt: skip
    assert decode_batch(data) == IngestedBatch(events=[Accepted(press, 7)])


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize("levels", [1_000, 5_000, 100_000])
def test_an_sos_with_data_nested_however_deep_is_salvaged_whole(levels: int) -> None:
    """Before 2026-12-04, from ~1,000 levels on, decode refused it as malformed and
    salvage failed the same way (msgspec recurses to skip a value): the press was lost."""
    fix = b'{"lat": 32.38, "lon": 120.56, "acc_m": 12.0, "src": "gps"}'
    payload = (b'{"v": 1, "device_id": "wb-1", "seq": 5, "ts": %d, "type": "sos",'
               b' "data": {"log": %s}, "loc": %s}' % (NOW - 2000, deep(levels), fix))  # fmt: skip
    assert salvage(payload) == DeviceEvent(
        device_id="wb-1", seq=5, ts=NOW - 2000, type=EventType.SOS,
        loc=Location(32.38, 120.56, 12.0, LocationSource.GPS),
    )  # fmt: skip
    # a fix nested too deep is no fix; the press stands
    assert salvage(b'{"type": "fall", "loc": %s, "x": %s}' % (deep(3000), deep(3000))) == (
        DeviceEvent(device_id="wb-1", seq=0, ts=NOW, type=EventType.FALL)
    )
    # not JSON is still nothing, however deep
    for broken in (b'{"type": "sos", "data": ' + b"[" * 3000,
                   b'{"type": "sos", "data": %s} trailing' % deep(3000),
                   b'{"type": "sos" "data": %s}' % deep(3000),
                   b'{"type": "im_ok", "data": %s}' % deep(3000)):  # fmt: skip
        assert salvage(broken) is None, broken[:40]


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_a_member_nested_too_deep_to_parse_changes_nothing_else(value: object) -> None:
    """The reader that skips deep values finds what msgspec finds beside them."""
    if not isinstance(value, dict):
        value = {"type": "sos", "seq": 1, "other": value}
    plain = json.dumps(value).encode()
    nested = b'{"deep": %s, ' % deep(2000) + plain[1:] if value else plain
    assert salvage(nested) == salvage(plain)


def test_a_valid_message_the_database_refuses_is_handed_on_with_its_emergency() -> None:
    """Before 2026-12-04 only decode's refusals were salvaged: an SOS the database
    refused (a NUL in its data) was kept as a dead letter and never raised."""
    press = DeviceEvent(device_id="wb-1", seq=3, ts=NOW, type=EventType.SOS, data={"k": "\0"})
    got = stored_refusal(Accepted(press, 7, raw(EVENTS, encode(press))), "refused")
    assert got is not None
    assert (got.channel, got.reason, got.event) == (
        Channel.EVENTS, RejectReason.INVALID, DeviceEvent(device_id="wb-1", seq=3, ts=NOW,
                                                          type=EventType.SOS),
    )  # fmt: skip
    reading = Telemetry(device_id="wb-1", seq=4, ts=NOW, extra={"k": "\0"})
    got = stored_refusal(Accepted(reading, 7), "x" * 1000)
    assert got is not None
    assert (got.channel, got.event, len(got.detail)) == (Channel.TELEMETRY, None,
                                                         MAX_REFUSAL_DETAIL)  # fmt: skip
    assert stored_refusal(Accepted(reading, None), "unpaired") is None
    redelivered = raw(device_topic("wb-1", Channel.TELEMETRY), b"{}", dup=True)
    assert stored_refusal(Accepted(reading, 7, redelivered), "counted before") is None


def test_a_retained_reading_is_refused_whole_and_nothing_salvaged_from_it() -> None:
    """The broker's retained copy comes again on every subscription: before 2026-12-04
    a retained SOS refused for its clock was salvaged at every ingest restart, stamped
    with that arrival, and raised each time."""
    ahead = json.dumps({"device_id": "wb-1", "seq": 5, "ts": NOW + 3_600_000,
                        "type": "sos"}).encode()  # fmt: skip
    fine = encode(Telemetry(device_id="wb-1", seq=6, ts=NOW, hr=70))
    online = encode(StatusReport(device_id="wb-1", state="online"))
    messages = [
        RawMessage(1, 1, EVENTS, ahead, retain=True),
        RawMessage(2, 1, device_topic("wb-1", Channel.TELEMETRY), fine, retain=True),
        RawMessage(3, 1, device_topic("wb-1", Channel.STATUS), online, retain=True),
        RawMessage(4, 1, EVENTS, ahead),  # the live publish: salvaged as before
    ]
    batch = sort_batch(messages, lookup=BANDS.get, now_ms=NOW, limits=LIMITS)
    assert [(d.reason, d.payload) for d in batch.dead] == [
        (RejectReason.INVALID, ahead), (RejectReason.INVALID, fine),
        (RejectReason.FUTURE_TIMESTAMP, ahead),
    ]  # fmt: skip
    assert "retained" in batch.dead[0].detail
    assert [r.event for r in batch.refused] == [
        DeviceEvent(device_id="wb-1", seq=5, ts=NOW, type=EventType.SOS)
    ]
    assert [a.message for a in batch.status] == [StatusReport(device_id="wb-1", state="online")]


def test_a_retained_status_of_a_revoked_or_unknown_band_is_counted_not_dead_lettered() -> None:
    """The broker replays a gone band's last retained status on every subscription:
    before 2026-12-04 each ingest restart wrote a dead letter per revoked band."""

    def status(band: str, *, retain: bool) -> RawMessage:
        payload = encode(StatusReport(device_id=band, state="offline"))
        return RawMessage(1, 1, device_topic(band, Channel.STATUS), payload, retain=retain)

    replayed = [status("wb-3", retain=True), status("wb-9", retain=True)]  # revoked, unknown
    batch = sort_batch(replayed, lookup=BANDS.get, now_ms=NOW, limits=LIMITS)
    assert (batch.dead, batch.status, batch.stale_statuses) == ([], [], 2)
    live = [status("wb-3", retain=False), status("wb-9", retain=False)]  # as they happen
    batch = sort_batch(live, lookup=BANDS.get, now_ms=NOW, limits=LIMITS)
    assert [d.reason for d in batch.dead] == [RejectReason.REVOKED_DEVICE,
                                              RejectReason.UNKNOWN_DEVICE]  # fmt: skip
    assert batch.stale_statuses == 0
    # a registered band's retained status is its status, as before
    mine = sort_batch([status("wb-1", retain=True)], lookup=BANDS.get, now_ms=NOW, limits=LIMITS)
    assert len(mine.status) == 1
