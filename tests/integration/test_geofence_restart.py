"""A restart reads back the recent fixes of residents who may be out (alerts.evidence):
through ingest into the real database, then the restart's own queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from alerts.detectors import ResidentState
from alerts.evidence import load_fixes, restore_states
from alerts.profiles import load_profiles
from alerts.restart_geofence import Fix
from eldercare.protocol import DeviceEvent, EventType, Location, LocationSource, Telemetry, encode
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

HOME_LAT, HOME_LON = 32.38, 120.56  # where tests.support registers every resident
METRES_PER_DEGREE = 111_195.0


def north(metres: float) -> Location:
    return Location(HOME_LAT + metres / METRES_PER_DEGREE, HOME_LON, 8.0, LocationSource.GPS)


def fix(dev: str, seq: int, ts: int, north_m: float) -> tuple[str, bytes]:
    msg = Telemetry(device_id=dev, seq=seq, ts=ts, loc=north(north_m), worn=True)
    return device_topic(dev, Channel.TELEMETRY), encode(msg)


def sos(dev: str, seq: int, ts: int, north_m: float) -> tuple[str, bytes]:
    msg = DeviceEvent(device_id=dev, seq=seq, ts=ts, type=EventType.SOS, loc=north(north_m))
    return device_topic(dev, Channel.EVENTS), encode(msg)


async def restart(
    db_url: str, now_ms: int
) -> tuple[datetime, dict[int, list[Fix]], dict[int, ResidentState]]:
    """What a restart at ``now_ms`` reads back: the fixes, and the states they give."""
    at = datetime.fromtimestamp(now_ms / 1000, UTC)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        profiles = await load_profiles(conn)
        fixes = await load_fixes(conn, profiles, now=at)
        states, _ = await restore_states(conn, profiles, now=at)
    return at, fixes, states


async def test_the_fixes_of_a_resident_out_are_read_back_and_of_one_at_home_not(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    out, home = f"{topic_prefix}-out", f"{topic_prefix}-home"
    out_id, home_id = await register_bands(db_url, [out, home])
    now = NOW_MS()
    minute = 60_000
    reports = [
        fix(out, 1, now - 300 * minute, 900),  # 5 h ago: before any clock of theirs
        fix(out, 2, now - 30 * minute, 500),
        fix(out, 3, now - 20 * minute, 900),
        fix(out, 4, now - 10 * minute, 1300),
        fix(home, 1, now - 40 * minute, 900),  # out earlier, home now
        fix(home, 2, now - 10 * minute, 10),
    ]
    async with running_ingest(ingest_settings(db_url, broker.url), handlers=[]):
        publish_all(broker.url, reports)

        async def stored() -> bool:
            n = await scalar(db_url, "SELECT count(*) FROM telemetry WHERE device_id = ANY(%s)",
                             [out, home])  # fmt: skip
            return n == len(reports)

        await eventually(stored)
    at, fixes, states = await restart(db_url, now)
    assert list(fixes) == [out_id]
    got = [(when, dev, round((loc.lat - HOME_LAT) * METRES_PER_DEGREE)) for when, dev, loc in
           fixes[out_id]]  # fmt: skip
    assert got == [(at - timedelta(minutes=m), out, north)
                   for m, north in ((30, 500), (20, 900), (10, 1300))]  # fmt: skip
    geo = states[out_id].geofence
    assert geo.outside_fixes == 3
    assert geo.left_at == at - timedelta(minutes=30)
    assert geo.walk is not None
    assert geo.walk.farthest_at == at - timedelta(minutes=10)
    assert home_id not in states or states[home_id].geofence.outside_fixes == 0


async def test_a_fix_carried_by_a_device_event_counts_as_the_bands_last_and_is_replayed(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """The band's last telemetry fix is at home, but it pressed SOS 900 m away since:
    the resident may be out, and the press's fix is replayed among the others."""
    dev = f"{topic_prefix}-sos"
    (rid,) = await register_bands(db_url, [dev])
    now = NOW_MS()
    minute = 60_000
    async with running_ingest(ingest_settings(db_url, broker.url), handlers=[]):
        publish_all(
            broker.url,
            [
                fix(dev, 1, now - 40 * minute, 10),
                fix(dev, 2, now - 30 * minute, 600),
                fix(dev, 3, now - 25 * minute, 5),
                sos(dev, 4, now - 10 * minute, 900),
            ],
        )

        async def stored() -> bool:
            rows = await scalar(db_url, "SELECT count(*) FROM telemetry WHERE device_id = %s", dev)
            events = await scalar(db_url, "SELECT count(*) FROM device_events WHERE device_id = %s",
                                  dev)  # fmt: skip
            return (rows, events) == (3, 1)

        await eventually(stored)
    at, fixes, states = await restart(db_url, now)
    got = [(when, round((loc.lat - HOME_LAT) * METRES_PER_DEGREE)) for when, _, loc in fixes[rid]]
    assert got == [(at - timedelta(minutes=m), n) for m, n in ((40, 10), (30, 600), (25, 5),
                                                              (10, 900))]  # fmt: skip
    geo = states[rid].geofence
    assert geo.left_at == at - timedelta(minutes=10)  # back home at 25 min, out again since
    assert geo.outside_fixes == 1
