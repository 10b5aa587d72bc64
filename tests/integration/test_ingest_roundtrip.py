"""Every message type goes through the real broker into the real database."""

from __future__ import annotations

import msgspec
import psycopg

from eldercare.protocol import (
    DeviceEvent,
    EventType,
    ImuWindow,
    Location,
    LocationSource,
    StatusReport,
    Telemetry,
    encode,
)
from eldercare.topics import Channel, device_topic
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


async def test_every_message_type_round_trips(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-1"
    (resident,) = await register_bands(db_url, [dev])
    now = NOW_MS()
    loc = Location(lat=32.3841, lon=120.5612, acc_m=8.0, src=LocationSource.GPS)
    telemetry = [
        Telemetry(device_id=dev, seq=1, ts=now - 2000, hr=71, spo2=97, bp_sys=131, bp_dia=84,
                  skin_temp_c=33.2, steps=1200, battery_pct=80, worn=True, loc=loc,
                  extra={"fw_temp": 31}),
        Telemetry(device_id=dev, seq=2, ts=now - 1000, hr=74, steps=1250, battery_pct=79),
    ]  # fmt: skip
    event = DeviceEvent(device_id=dev, seq=3, ts=now - 500, type=EventType.SOS, loc=loc)
    imu = ImuWindow(device_id=dev, seq=4, ts=now - 400, t_ms=[0, 20, 40], ax=[0.0, 2.5, 0.1],
                    ay=[0.0, -1.0, 0.0], az=[1.0, 3.0, 1.0], trigger="impact")  # fmt: skip
    status = StatusReport(device_id=dev, state="online", ts=now - 3000, interval_s=30,
                          firmware="2.1.0")  # fmt: skip
    messages = [(device_topic(dev, Channel.TELEMETRY), encode(t)) for t in telemetry]
    messages += [(device_topic(dev, Channel.EVENTS), encode(event)),
                 (device_topic(dev, Channel.IMU), encode(imu)),
                 (device_topic(dev, Channel.STATUS), encode(status))]  # fmt: skip
    handed_on: list[object] = []
    async with running_ingest(ingest_settings(db_url, broker.url),
                              handlers=[handed_on.append]) as service:  # fmt: skip
        publish_all(broker.url, messages)

        async def all_stored() -> bool:
            return service.stats.committed >= len(messages)

        await eventually(all_stored)

    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT seq, resident_id, hr, spo2, bp_sys, bp_dia, skin_temp_c, steps, battery_pct,"
            " worn, lat, lon, loc_acc_m, loc_src, extra FROM telemetry ORDER BY seq"
        )
        rows = await cur.fetchall()
        assert rows[0] == (1, resident, 71, 97, 131, 84, 33.2, 1200, 80, True, 32.3841, 120.5612,
                           8.0, "gps", {"fw_temp": 31})  # fmt: skip
        assert rows[1][:9] == (2, resident, 74, None, None, None, None, 1250, 79)
        cur = await conn.execute("SELECT type, resident_id, lat FROM device_events")
        assert await cur.fetchall() == [("sos", resident, 32.3841)]
        cur = await conn.execute("SELECT trigger, t_ms, ax FROM imu_windows")
        assert await cur.fetchall() == [("impact", [0, 20, 40], [0.0, 2.5, 0.1])]
        cur = await conn.execute(
            "SELECT hr, spo2, bp_sys, steps, battery_pct, worn, lat, online, interval_s, firmware,"
            " last_seq FROM device_state WHERE device_id = %s",
            (dev,),
        )
        # latest values: hr/steps/battery from seq 2, spo2/bp kept from seq 1
        assert await cur.fetchone() == (74, 97, 131, 1250, 79, True, 32.3841, True, 30, "2.1.0", 2)
        cur = await conn.execute(
            "SELECT readings, hr_n, hr_sum, hr_min, hr_max, spo2_n FROM vitals_hourly"
            " WHERE resident_id = %s",
            (resident,),
        )
        hourly = await cur.fetchall()
        assert sum(r[0] for r in hourly) == 2
        assert sum(r[2] for r in hourly) == 71 + 74
    assert await scalar(db_url, "SELECT count(*) FROM dead_letters") == 0
    kinds = [(len(b.telemetry), len(b.events), len(b.imu), len(b.status)) for b in handed_on]  # type: ignore[attr-defined]
    assert tuple(map(sum, zip(*kinds, strict=True))) == (2, 1, 1, 1)
    assert msgspec.structs.asdict(handed_on[0].telemetry[0].message)["device_id"] == dev  # type: ignore[attr-defined]


async def test_a_device_events_fix_is_the_bands_location_when_it_is_the_newest(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """An SOS pressed out of doors moves the band's location (what the family and the
    restart read); an event older than the stored fix, arriving late, does not."""
    dev = f"{topic_prefix}-fix"
    await register_bands(db_url, [dev])
    now = NOW_MS()

    def at(lat: float) -> Location:
        return Location(lat=lat, lon=120.56, acc_m=8.0, src=LocationSource.GPS)

    async def location() -> tuple[object, ...] | None:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            cur = await conn.execute(
                "SELECT lat, loc_src, extract(epoch FROM loc_at) * 1000 FROM device_state"
                " WHERE device_id = %s",
                (dev,),
            )
            return await cur.fetchone()

    steps = [
        (Channel.TELEMETRY, Telemetry(device_id=dev, seq=1, ts=now - 60_000, loc=at(32.38))),
        (Channel.EVENTS, DeviceEvent(device_id=dev, seq=2, ts=now - 30_000, type=EventType.SOS,
                                     loc=at(32.39))),
        (Channel.EVENTS, DeviceEvent(device_id=dev, seq=3, ts=now - 50_000,
                                     type=EventType.LOW_BATTERY, loc=at(32.37))),
        (Channel.EVENTS, DeviceEvent(device_id=dev, seq=4, ts=now - 20_000, type=EventType.IM_OK)),
    ]  # fmt: skip
    expected = [32.38, 32.39, 32.39, 32.39]
    async with running_ingest(ingest_settings(db_url, broker.url), handlers=[]) as service:
        for n, ((channel, msg), lat) in enumerate(zip(steps, expected, strict=True), start=1):
            publish_all(broker.url, [(device_topic(dev, channel), encode(msg))])

            async def committed(n: int = n) -> bool:
                return service.stats.committed >= n

            await eventually(committed)
            row = await location()
            assert row is not None
            assert (row[0], row[1]) == (lat, "gps")
    assert row[2] == now - 30_000
