"""Shared set-up for the dispatch integration tests: residents, workers, an open alert."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from dispatch.model import Mode, Point, WorkerStatus, load_catalogue
from dispatch.roster import NewWorker, add_workers, set_location, set_status, sync_catalogue
from eldercare.registry import NewResident, add_residents
from eldercare.settings import Settings
from tests.conftest import Broker

HOME = Point(32.0000, 120.8600)


def east(km: float, of: Point = HOME) -> Point:
    """A point ``km`` east of ``of`` (straight line)."""
    return Point(of.lat, of.lon + km / 94.4)  # ~94.4 km per degree of longitude at 32 N


def settings_for(db_url: str, broker: Broker, **options: Any) -> Settings:
    """The dispatch service's settings on ``db_url`` and ``broker``, under a client id of
    their own (one broker session per test), with ``options``."""
    return Settings(environment="test", database_url=db_url, mqtt_url=broker.url,
                    dispatch_client_id=f"dispatch-{uuid.uuid4().hex[:6]}", **options)  # fmt: skip


async def seed(
    db_url: str,
    *,
    residents: Sequence[Point] = (HOME,),
    workers: Sequence[tuple[str, Point, frozenset[str]]] = (),
    now: datetime,
) -> list[int]:
    """Residents at the given homes (district D1), and workers on shift at their places."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await sync_catalogue(conn, load_catalogue())
        ids = await add_residents(
            conn,
            [
                NewResident(
                    name=f"R{i}",
                    birth_year=1940,
                    district="D1",
                    home_lat=p.lat,
                    home_lon=p.lon,
                    living_alone=True,
                )
                for i, p in enumerate(residents)
            ],
        )
        await conn.commit()
        await add_workers(
            conn,
            [
                NewWorker(wid, f"Worker {wid}", "D1", skills, where, mode=Mode.EBIKE)
                for wid, where, skills in workers
            ],
        )
        for wid, where, _ in workers:
            await set_status(conn, wid, WorkerStatus.AVAILABLE, now=now)
            await set_location(conn, wid, where, now=now)
    return ids


async def open_alert(db_url: str, resident_id: int, *, at: datetime, type_: str = "fall") -> int:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "INSERT INTO alerts (resident_id, type, severity, state, opened_at, updated_at)"
            " VALUES (%s, %s, 'critical', 'open', %s, %s) RETURNING id",
            (resident_id, type_, at, at),
        )
        row = await cur.fetchone()
        assert row is not None
        await conn.execute(
            "INSERT INTO alert_transitions (alert_id, at, to_state, actor) VALUES (%s, %s,"
            " 'open', 'engine')",
            (row[0], at),
        )
        await conn.commit()
        return int(row[0])
