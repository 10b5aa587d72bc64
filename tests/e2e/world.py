"""The browser tests' world: residents, bands, workers and users seeded in the test's
database, a day of ordinary readings, and the dispatch service running beside them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from eldercare.protocol import Location, LocationSource, Telemetry, encode
from eldercare.registry import EmergencyContact, NewResident, add_residents, provision_wristbands
from eldercare.topics import Channel, device_topic
from tests.support import NOW_MS, ingest_settings

PASSWORD = "e2e-password-1"
DISTRICT = "Rucheng"


@dataclass(frozen=True, slots=True)
class World:
    parent: int
    other: int
    parent_band: str
    other_band: str
    worker_id: str


PARENT_NAME = "王秀英"
CONTACT = EmergencyContact("王小明", "儿子", "13800000000")
OTHER_NAME = "李建国"
WORKER_NAME = "张师傅"


async def seed(db_url: str, prefix: str) -> World:
    """Two residents of one district (one the family's parent), two workers on shift, users."""
    from api.identity import create_user
    from api.principal import Role

    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        parent, other, third = await add_residents(
            conn,
            [
                NewResident(name=PARENT_NAME, birth_year=1941, sex="female", district=DISTRICT,
                            address="如城街道 海阳路 12 号", home_lat=32.3812, home_lon=120.5660,
                            living_alone=True, conditions=("hypertension", "diabetes"),
                            emergency_contacts=(CONTACT,)),
                NewResident(name=OTHER_NAME, birth_year=1938, sex="male", district=DISTRICT,
                            address="如城街道 中山路 88 号", home_lat=32.3721, home_lon=120.5812),
                NewResident(name="张桂兰", birth_year=1944, sex="female", district=DISTRICT,
                            address="如城街道 福前路 5 号", home_lat=32.3900, home_lon=120.5550),
            ],
        )  # fmt: skip
        bands = [f"{prefix}-p", f"{prefix}-o", f"{prefix}-t"]
        await provision_wristbands(conn, list(zip(bands, [parent, other, third], strict=True)))
        has_dispatch = await (
            await conn.execute("SELECT to_regclass('service_workers') IS NOT NULL")
        ).fetchone()
        for wid, name, lat, lon in (
            ()
            if not (has_dispatch and has_dispatch[0])
            else (
                ("W-E2E-1", WORKER_NAME, 32.3790, 120.5700),
                ("W-E2E-2", "孙阿姨", 32.3650, 120.5900),
            )
        ):
            await conn.execute(
                "INSERT INTO service_workers (worker_id, name, district, skills, home_lat,"
                " home_lon, status, lat, lon, location_at) VALUES"
                " (%s, %s, %s, %s, %s, %s, 'available', %s, %s, %s)",
                (wid, name, DISTRICT, ["caregiver", "nurse", "meal_delivery", "cleaning"],
                 lat, lon, lat, lon, now),
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO worker_shifts (worker_id, starts_at, ends_at) VALUES (%s, %s, %s)",
                (wid, now - timedelta(hours=4), now + timedelta(hours=6)),
            )
        await create_user(conn, username="op1", password=PASSWORD, role=Role.OPERATOR,
                          display_name="调度员 李", district=DISTRICT)  # fmt: skip
        await create_user(conn, username="sup1", password=PASSWORD, role=Role.SUPERVISOR,
                          display_name="主管 周", district=DISTRICT)  # fmt: skip
        await create_user(conn, username="worker1", password=PASSWORD, role=Role.WORKER,
                          display_name=WORKER_NAME, worker_id="W-E2E-1")  # fmt: skip
        await create_user(conn, username="family1", password=PASSWORD, role=Role.FAMILY,
                          display_name="王小明", resident_ids=[parent])  # fmt: skip
        await conn.commit()
    return World(parent, other, bands[0], bands[1], "W-E2E-1")


HOME = Location(32.3812, 120.5660, 15, LocationSource.GPS)


def vitals_history(band: str, *, hours: int = 24, every_min: int = 15) -> list[tuple[str, bytes]]:
    """A day of ordinary readings, so the detail has vitals and a 24 h chart."""
    now = NOW_MS()
    out = []
    n = hours * 60 // every_min
    for i in range(n):
        ts = now - (n - i) * every_min * 60_000
        msg = Telemetry(device_id=band, seq=i + 1, ts=ts, hr=68 + (i % 9), spo2=96 + (i % 3),
                        bp_sys=128 + (i % 7), bp_dia=78, skin_temp_c=33.5, steps=40 * i,
                        battery_pct=80, worn=True, loc=HOME)  # fmt: skip
        out.append((device_topic(band, Channel.TELEMETRY), encode(msg)))
    return out


@contextlib.asynccontextmanager
async def running_dispatch(db_url: str, broker_url: str) -> AsyncIterator[None]:
    """The dispatch service: it syncs the catalogue and publishes every order change (the
    outbox) for the live feed. Automatic dispatch is off: here the operator dispatches."""
    from dispatch.runner import DispatchRunner

    client_id = f"e2e-dispatch-{uuid.uuid4().hex[:8]}"  # the broker keeps its session
    settings = ingest_settings(
        db_url,
        broker_url,
        dispatch_auto_severities=[],
        dispatch_offer_timeout_s=600.0,
        dispatch_client_id=client_id,
    )
    runner = DispatchRunner(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    ready = asyncio.create_task(runner.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    assert ready in done, "the dispatch service did not start"
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
