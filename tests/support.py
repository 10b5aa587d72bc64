"""Helpers for integration tests: register bands, run ingest, publish, poll."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from alerts.detectors.inactivity import learn_threshold
from eldercare.registry import NewResident, add_residents, provision_wristbands
from eldercare.settings import Settings
from eldercare.storage import ensure_partitions
from ingest.service import IngestService


class Clock:
    """An injected clock for the alert engine: the test moves ``at``."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


NOW_MS = lambda: int(time.time() * 1000)  # noqa: E731


def routine_by_minutes(
    moves: Sequence[datetime], *, window: tuple[wall_time, wall_time], zone: ZoneInfo,
    days: tuple[date, date],
) -> timedelta | None:  # fmt: skip
    """Reference for the inactivity routine, independent of the daily summaries: each
    local day's longest stretch between two consecutive movements (the day of the later
    one, days in [days[0], days[1])), counted minute by minute inside the local
    ``window``, then learn_threshold."""
    per_day: dict[date, timedelta] = {}
    for a, b in itertools.pairwise(moves):
        day = b.astimezone(zone).date()
        if not days[0] <= day < days[1]:
            continue
        still, t = timedelta(0), a
        while t < b:
            if window[0] <= t.astimezone(zone).time() < window[1]:
                still += timedelta(minutes=1)
            t += timedelta(minutes=1)
        per_day[day] = max(per_day.get(day, timedelta(0)), still)
    return learn_threshold(list(per_day.values()))


STEP_COLUMNS = ("time", "device_id", "seq", "resident_id", "steps", "worn")


async def copy_telemetry(
    db_url: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Seed ``telemetry`` directly (history for baselines and summaries).

    ``columns`` must start with ``time``: each row's first value picks its
    partition.
    """
    assert columns[0] == "time", columns
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await ensure_partitions(conn, {r[0].date() for r in rows})
        async with (
            conn.cursor() as cur,
            cur.copy(f"COPY telemetry ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for r in rows:
                await copy.write_row(r)
        await conn.commit()


async def register_bands(
    db_url: str, device_ids: Sequence[str], *, paired: bool = True
) -> list[int]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        ids = await add_residents(
            conn,
            [NewResident(name=f"Resident {d}", birth_year=1940, home_lat=32.38, home_lon=120.56,
                         living_alone=True) for d in device_ids],
        )  # fmt: skip
        await provision_wristbands(
            conn, [(d, rid if paired else None) for d, rid in zip(device_ids, ids, strict=True)]
        )
        await conn.commit()
    return ids


def ingest_settings(db_url: str, broker_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": db_url,
        "mqtt_url": broker_url,
        "ingest_client_id": f"ingest-test-{uuid.uuid4().hex[:8]}",
        "alerts_client_id": f"alerts-test-{uuid.uuid4().hex[:8]}",
        "ingest_batch_max_age_ms": 20,
        "ingest_publish_internal": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_ingest(settings: Settings, **kwargs: object) -> AsyncIterator[IngestService]:
    service = IngestService(settings, **kwargs)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    ready = asyncio.create_task(service.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what stopped it
    if ready not in done:
        raise TimeoutError("ingest did not connect to the broker")
    await asyncio.sleep(0.2)  # the SUBACK follows CONNACK
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def publish_all(broker_url: str, messages: Sequence[tuple[str, bytes]], *, qos: int = 1,
                protocol: int = mqtt.MQTTv311) -> None:  # fmt: skip
    """Publish and wait until the broker has acknowledged every message."""
    host, port = broker_url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         client_id=f"pub-{uuid.uuid4().hex[:8]}", protocol=protocol)  # fmt: skip
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, int(port))
    client.loop_start()
    try:
        infos = [client.publish(t, p, qos=qos) for t, p in messages]
        for info in infos:
            info.wait_for_publish(timeout=30)
    finally:
        client.disconnect()
        client.loop_stop()


# the deadline is the point of this helper, and a miss fails as an AssertionError
async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 20.0,  # noqa: ASYNC109
) -> None:
    """Poll an async predicate until it holds, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.05)


async def rows(db_url: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(query, params)  # type: ignore[arg-type]
        return await cur.fetchall()


async def scalar(db_url: str, query: str, *params: object) -> object:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(query, params)  # type: ignore[arg-type]
        row = await cur.fetchone()
        return row[0] if row else None
