"""The alert engine and a database that goes away: what it decides meanwhile is
recorded once the database is back, and never held in memory without being recorded.

Before, the engine tried to record a decision six times (~6 s) and then gave up,
with the residents' detector states already moved on: a time-driven alert (a band
gone silent, a held fall report confirmed, a long lie) decided during a longer outage
was never recorded, and never raised again, since the detectors held it as open. The
in-process engine (``eldercare demo``) lost a batch's alerts the same way. Now the
engine tries again until the database answers; an engine that stops meanwhile keeps
none of the decisions it could not record, so they are made again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.engine import AlertEngine
from eldercare.migrate import migrate
from eldercare.protocol import DeviceEvent, EventType, Telemetry
from eldercare.settings import Settings
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
from tests.conftest import PrivatePostgres
from tests.support import Clock, eventually, register_bands, rows

NOW = datetime.now(UTC).replace(microsecond=0)
QUERY = "SELECT type, state FROM alerts WHERE resident_id = %s ORDER BY id"


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


async def _while_down(
    pg: PrivatePostgres, engine: AlertEngine, work: Awaitable[None]
) -> asyncio.Task[None]:
    """Start ``work`` with the database stopped; return once the engine has tried
    to record and failed at least once."""
    await asyncio.to_thread(pg.stop)
    task = asyncio.ensure_future(work)
    tries = engine.db_retries

    async def tried() -> bool:
        if task.done():
            task.result()  # surface what ended it
        return engine.db_retries > tries

    await eventually(tried, timeout=30)
    return task


async def test_alerts_decided_while_the_database_is_down_are_recorded_when_it_is_back(
    private_postgres: PrivatePostgres,
) -> None:
    url = private_postgres.admin_url
    migrate(url)
    silent, pressing = await register_bands(url, ["away-silent", "away-sos"])
    clock = Clock(NOW)
    engine = AlertEngine(Settings(database_url=url), fall_model=None, clock=clock)
    reading = Telemetry(device_id="away-silent", seq=1, ts=_ms(NOW), hr=70, worn=True)
    await engine.on_batch(IngestedBatch(telemetry=[Accepted(reading, silent)]))
    try:
        clock.at += timedelta(hours=2)  # the band has been silent far past its interval
        ticking = await _while_down(private_postgres, engine, engine.tick(everyone=True))
        await asyncio.to_thread(private_postgres.start)
        await asyncio.wait_for(ticking, 60)
        assert await rows(url, QUERY, silent) == [("device_offline", "open")]

        # an SOS handed in (as ingest does in process) while the database is down
        press = DeviceEvent(device_id="away-sos", seq=1, ts=_ms(clock.at), type=EventType.SOS)
        batch = IngestedBatch(events=[Accepted(press, pressing)])
        handing = await _while_down(private_postgres, engine, engine.on_batch(batch))
        await asyncio.to_thread(private_postgres.start)
        await asyncio.wait_for(handing, 60)
        assert await rows(url, QUERY, pressing) == [("sos", "open")]

        await engine.tick(everyone=True)  # recorded once, not again
        assert await rows(url, QUERY, silent) == [("device_offline", "open")]
    finally:
        await engine.close()


async def test_an_engine_stopped_during_the_outage_keeps_nothing_it_could_not_record(
    private_postgres: PrivatePostgres,
) -> None:
    url = private_postgres.admin_url
    migrate(url)
    (silent,) = await register_bands(url, ["away-stop"])
    clock = Clock(NOW)
    # no broker: the publisher keeps trying in the background, decisions go on
    settings = Settings(database_url=url, mqtt_url="mqtt://127.0.0.1:1")
    engine = AlertEngine(settings, fall_model=None, clock=clock, tick_s=3600)
    reading = Telemetry(device_id="away-stop", seq=1, ts=_ms(NOW), hr=70, worn=True)
    await engine.on_batch(IngestedBatch(telemetry=[Accepted(reading, silent)]))
    stop = asyncio.Event()
    running = asyncio.create_task(engine.run(stop))
    await asyncio.wait_for(engine.started.wait(), 20)

    clock.at += timedelta(hours=2)
    ticking = await _while_down(private_postgres, engine, engine.tick(everyone=True))
    stop.set()
    with pytest.raises(psycopg.OperationalError):
        await asyncio.wait_for(ticking, 30)  # gave up: the engine is stopping
    await asyncio.wait_for(running, 30)
    await asyncio.to_thread(private_postgres.start)

    # the detectors did not keep the alert they could not record, so it is decided again
    await engine.tick(everyone=True)
    assert await rows(url, QUERY, silent) == [("device_offline", "open")]
    await engine.close()


async def test_a_resident_registered_after_the_start_is_looked_up_when_the_database_is_back(
    private_postgres: PrivatePostgres,
) -> None:
    url = private_postgres.admin_url
    migrate(url)
    engine = AlertEngine(Settings(database_url=url), fall_model=None, clock=Clock(NOW))
    await engine.on_batch(IngestedBatch())  # loaded: nobody registered yet
    (late,) = await register_bands(url, ["away-late"])
    press = DeviceEvent(device_id="away-late", seq=1, ts=_ms(NOW), type=EventType.SOS)
    batch = IngestedBatch(events=[Accepted(press, late)])
    try:
        handing = await _while_down(private_postgres, engine, engine.on_batch(batch))
        await asyncio.to_thread(private_postgres.start)
        await asyncio.wait_for(handing, 60)
        assert await rows(url, QUERY, late) == [("sos", "open")]
    finally:
        await engine.close()
