"""Bad input never crashes or stalls ingest: each kind lands in dead_letters with its
reason, and the good readings around it are stored."""

from __future__ import annotations

import psycopg

from eldercare.protocol import (
    DeviceEvent,
    EventType,
    RejectReason,
    StatusReport,
    Telemetry,
    encode,
)
from eldercare.topics import Channel, device_topic
from ingest.handoff import IngestedBatch
from tests.conftest import Broker
from tests.support import (
    NOW_MS,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    rows,
    running_ingest,
    scalar,
)


async def test_each_kind_of_bad_input_is_dead_lettered_and_good_input_flows(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev, other = f"{topic_prefix}-a", f"{topic_prefix}-b"
    unknown = f"{topic_prefix}-ghost"
    await register_bands(db_url, [dev, other])
    now = NOW_MS()
    topic = device_topic(dev, Channel.TELEMETRY)

    def good(seq: int) -> tuple[str, bytes]:
        return topic, encode(Telemetry(device_id=dev, seq=seq, ts=now - 10_000 + seq, hr=70))

    bad: list[tuple[str, bytes, str]] = [
        (topic, b"{not json", "malformed"),
        (topic, b"\xff\xfe\x00garbage", "malformed"),
        (topic, b'{"device_id": "%s", "seq": "one", "ts": %d}' % (dev.encode(), now), "invalid"),
        (topic, b'{"device_id": "%s", "seq": 9, "ts": %d, "hr": 400}' % (dev.encode(), now),
         "invalid"),
        (topic, b'{"device_id": "%s", "seq": 9, "ts": %d}' % (dev.encode(), now + 86_400_000),
         "future_timestamp"),
        (topic, b'{"device_id": "%s", "seq": 9, "ts": %d}' % (dev.encode(), now - 400 * 86_400_000),
         "stale_timestamp"),
        (topic, b'{"device_id": "%s", "seq": 9, "ts": %d}' % (other.encode(), now),
         "device_mismatch"),
        (device_topic(unknown, Channel.TELEMETRY),
         b'{"device_id": "%s", "seq": 1, "ts": %d}' % (unknown.encode(), now), "unknown_device"),
        (topic, b'{"device_id": "%s", "seq": 9, "ts": %d, "extra": {"pad": "%s"}}'
         % (dev.encode(), now, b"x" * 20_000), "oversized"),
        (topic, b'{"device_id": "%s", "seq": 9, "ts": %d, "bp_sys": 80, "bp_dia": 120}'
         % (dev.encode(), now), "invalid"),
        (topic, b'{"device_id": "%s", "seq": 9, "ts": %d, "extra": {"k": "a\\u0000b"}}'
         % (dev.encode(), now), "invalid"),  # valid JSON PostgreSQL's jsonb refuses
        (device_topic(dev, Channel.IMU),  # a band reporting m/s^2: ~9.8 at rest
         b'{"device_id": "%s", "seq": 9, "ts": %d, "t_ms": [0, 40, 80, 120],'
         b' "ax": [0.1, 0.2, 0.1, 0.0], "ay": [0.3, 0.2, 0.4, 0.3], "az": [9.8, 9.7, 9.9, 9.8]}'
         % (dev.encode(), now), "invalid"),
        (f"eldercare/v1/devices/{dev}/bogus", b"{}", "bad_topic"),
        # nested too deep to read, or to store as JSON (each crashed ingest, and again
        # after every restart on the redelivery, until found by fuzzing on 2026-12-03)
        (topic, b'{"device_id": "%s", "seq": 9, "ts": %d, "extra": {"a": %s%s}}'
         % (dev.encode(), now, b"[" * 2000, b"]" * 2000), "malformed"),
        (topic, b'{"device_id": "%s", "seq": 9, "ts": %d, "extra": {"a": %s%s}}'
         % (dev.encode(), now, b"[" * 500, b"]" * 500), "invalid"),
        (device_topic(dev, Channel.EVENTS),
         b'{"device_id": "%s", "seq": 9, "ts": %d, "type": "sos", "data": {"a": %s%s}}'
         % (dev.encode(), now, b"[" * 17, b"]" * 17), "invalid"),
    ]  # fmt: skip
    stream = [good(1), *[(t, p) for t, p, _ in bad], good(2)]
    async with running_ingest(ingest_settings(db_url, broker.url)) as service:
        # a bad topic is not subscribed to; publish it anyway to prove it changes nothing
        publish_all(broker.url, stream)

        async def settled() -> bool:
            return service.stats.committed >= len(stream) - 1

        await eventually(settled)
        assert service.stats.stored == 2

    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT seq FROM telemetry ORDER BY seq")
        assert [r[0] for r in await cur.fetchall()] == [1, 2]
        cur = await conn.execute("SELECT reason, detail, payload FROM dead_letters ORDER BY id")
        letters = await cur.fetchall()
    expected = [r for t, _, r in bad if not t.endswith("/bogus")]
    assert sorted(r[0] for r in letters) == sorted(expected)
    assert all(r[1] for r in letters), "every dead letter says why"
    assert {bytes(r[2]) for r in letters} == {p for t, p, _ in bad if not t.endswith("/bogus")}
    assert sum(service.stats.dead_letters.values()) == len(expected)


async def test_redelivered_readings_are_stored_once(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-d"
    await register_bands(db_url, [dev])
    now = NOW_MS()
    readings = [
        (device_topic(dev, Channel.TELEMETRY),
         encode(Telemetry(device_id=dev, seq=s, ts=now - 60_000 + s * 1000, hr=60 + s)))
        for s in range(50)
    ]  # fmt: skip
    async with running_ingest(ingest_settings(db_url, broker.url)) as service:
        publish_all(broker.url, readings)
        publish_all(broker.url, readings[10:30])  # a band resending after a reconnect
        publish_all(broker.url, readings[:5] * 3)  # repeats within one batch

        async def settled() -> bool:
            return service.stats.committed >= 50 + 20 + 15

        await eventually(settled)
        assert service.stats.stored == 50
        assert service.stats.duplicates == 35
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT count(*), count(DISTINCT seq) FROM telemetry")
        assert await cur.fetchone() == (50, 50)
        cur = await conn.execute("SELECT sum(readings), sum(hr_sum) FROM vitals_hourly")
        assert await cur.fetchone() == (50, sum(60 + s for s in range(50)))
        # the latest state moved forward across batches and did not move back on redelivery
        cur = await conn.execute(
            "SELECT last_seq, hr FROM device_state WHERE device_id = %s", (dev,)
        )
        assert await cur.fetchone() == (49, 60 + 49)


async def test_a_band_that_restarted_its_sequence_is_not_mistaken_for_a_redelivery(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """The key is (device, ts, seq): after a reboot a band may reuse seq numbers."""
    dev = f"{topic_prefix}-r"
    await register_bands(db_url, [dev])
    now = NOW_MS()
    topic = device_topic(dev, Channel.TELEMETRY)
    before = encode(Telemetry(device_id=dev, seq=1, ts=now - 60_000, hr=70))
    after_reboot = encode(Telemetry(device_id=dev, seq=1, ts=now - 1_000, hr=72))
    handed_on: list[tuple[int, int]] = []

    def collect(batch: IngestedBatch) -> None:
        handed_on.extend((a.message.ts, a.message.seq) for a in batch.telemetry)  # type: ignore[union-attr]

    async with running_ingest(ingest_settings(db_url, broker.url), handlers=[collect]) as service:
        publish_all(broker.url, [(topic, before), (topic, after_reboot), (topic, before)])

        async def settled() -> bool:
            return service.stats.committed >= 3

        await eventually(settled)
    assert sorted(handed_on) == [(now - 60_000, 1), (now - 1_000, 1)]
    assert await scalar(db_url, "SELECT count(*) FROM telemetry") == 2


async def test_an_sos_whose_data_the_database_refuses_is_stored_without_it_and_raised(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """jsonb refuses a string holding NUL; decode does not. Such an SOS is stored without
    its ``data`` (the dead letter keeps the payload) and handed on like any other press.
    A reading the database refuses reaches the engine as a refusal. Before 2026-12-04
    the press was dead-lettered whole and, salvage running only for decode's refusals,
    never raised."""
    dev = f"{topic_prefix}-nul"
    [resident] = await register_bands(db_url, [dev])
    now = NOW_MS()
    sos = (device_topic(dev, Channel.EVENTS),
           b'{"device_id": "%s", "seq": 7, "ts": %d, "type": "sos", "data": {"note": "a\\u0000b"}}'
           % (dev.encode(), now - 1000))  # fmt: skip
    reading = (device_topic(dev, Channel.TELEMETRY),
               b'{"device_id": "%s", "seq": 8, "ts": %d, "extra": {"k": "a\\u0000b"}}'
               % (dev.encode(), now))  # fmt: skip
    handed_on: list[IngestedBatch] = []
    async with running_ingest(ingest_settings(db_url, broker.url),
                              handlers=[handed_on.append]) as service:  # fmt: skip
        publish_all(broker.url, [sos, reading])

        async def settled() -> bool:
            return service.stats.committed >= 2

        await eventually(settled)
    press = DeviceEvent(device_id=dev, seq=7, ts=now - 1000, type=EventType.SOS)
    assert [(a.message, a.resident_id) for b in handed_on for a in b.events] == [(press, resident)]
    assert [(r.channel, r.reason, r.event) for b in handed_on for r in b.refused] == [
        (Channel.TELEMETRY, RejectReason.INVALID, None)
    ]
    assert await rows(db_url, "SELECT seq, type, data FROM device_events") == [(7, "sos", None)]
    letters = await rows(db_url, "SELECT detail, payload FROM dead_letters ORDER BY detail")
    assert [(d.split(";")[0], bytes(p)) for d, p in letters] == [
        ("database refused it: unsupported Unicode escape sequence", reading[1]),
        ("stored without its data", sos[1]),
    ]
    assert (service.stats.stored, service.stats.duplicates) == (1, 0)
    assert service.stats.dead_letters == {"invalid": 2}


async def test_a_status_the_database_refuses_is_not_handed_on_nor_counted_a_duplicate(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """Before 2026-12-04 a status report the database refused (a NUL in ``firmware``) was
    dead-lettered and still handed on as accepted, and took the duplicates count down."""
    dev = f"{topic_prefix}-fw"
    await register_bands(db_url, [dev])
    now = NOW_MS()
    status = device_topic(dev, Channel.STATUS)
    messages = [
        (status, b'{"device_id": "%s", "state": "online", "firmware": "1.0\\u0000"}'
         % dev.encode()),
        (device_topic(dev, Channel.TELEMETRY),
         encode(Telemetry(device_id=dev, seq=1, ts=now, hr=70))),
        (status, encode(StatusReport(device_id=dev, state="offline"))),
    ]  # fmt: skip
    handed_on: list[IngestedBatch] = []
    async with running_ingest(ingest_settings(db_url, broker.url),
                              handlers=[handed_on.append]) as service:  # fmt: skip
        publish_all(broker.url, messages)

        async def settled() -> bool:
            return service.stats.committed >= len(messages)

        await eventually(settled)
    shown = [a.message for b in handed_on for a in b.status]
    assert [(s.state, s.firmware) for s in shown] == [("offline", None)]  # type: ignore[union-attr]
    assert [(r.channel, r.reason) for b in handed_on for r in b.refused] == [
        (Channel.STATUS, RejectReason.INVALID)
    ]
    assert (service.stats.stored, service.stats.duplicates) == (1, 0)
    assert await scalar(db_url, "SELECT count(*) FROM dead_letters") == 1
    assert await rows(db_url, "SELECT online FROM device_state") == [(False,)]
