"""Service workers in the database: the roster, shifts, live status and location, the
catalogue table, and the fleet as the emergency decision sees it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import TupleRow, class_row

from dispatch.emergency import Commitment
from dispatch.model import LIVE, Catalogue, Mode, Point, Shift, Worker, WorkerStatus
from dispatch.store import DispatchError, UnknownWorker

Conn = psycopg.AsyncConnection[TupleRow]
_COLUMNS = (
    "worker_id, name, district, skills, certificates, mode, home_lat, home_lon,"
    " max_orders_per_day, status, lat, lon, location_at, status_at, active, status_note"
)


@dataclass(frozen=True, slots=True)
class StoredWorker:
    worker_id: str
    name: str
    district: str
    skills: list[str]
    certificates: list[str]
    mode: str
    home_lat: float
    home_lon: float
    max_orders_per_day: int
    status: str
    lat: float | None
    lon: float | None
    location_at: datetime | None
    status_at: datetime
    active: bool
    status_note: str = ""  # why the platform set the status ('missed_offers'); '' otherwise

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def to_worker(self, shifts: tuple[Shift, ...] = ()) -> Worker:
        here = Point(self.lat, self.lon) if self.lat is not None and self.lon is not None else None
        return Worker(
            self.worker_id,
            self.district,
            frozenset(self.skills),
            Point(self.home_lat, self.home_lon),
            mode=Mode(self.mode),
            max_orders_per_day=self.max_orders_per_day,
            status=WorkerStatus(self.status),
            location=here,
            shifts=shifts,
        )


@dataclass(frozen=True, slots=True)
class NewWorker:
    worker_id: str
    name: str
    district: str
    skills: frozenset[str]
    home: Point
    mode: Mode = Mode.EBIKE
    certificates: tuple[str, ...] = ()
    max_orders_per_day: int = 10


async def sync_catalogue(conn: Conn, catalogue: Catalogue) -> None:
    """Write the catalogue to ``service_types`` (insert or update; never deletes a code)."""
    async with conn.transaction():
        for s in catalogue.services.values():
            await conn.execute(
                "INSERT INTO service_types (code, name, duration_min, skills, interruptible,"
                " emergency) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (code) DO UPDATE SET"
                " name = EXCLUDED.name, duration_min = EXCLUDED.duration_min,"
                " skills = EXCLUDED.skills, interruptible = EXCLUDED.interruptible,"
                " emergency = EXCLUDED.emergency",
                (s.code, s.name, s.duration_min, sorted(s.skills), s.interruptible, s.emergency),
            )


async def add_workers(conn: Conn, workers: Iterable[NewWorker]) -> None:
    async with conn.transaction():
        for w in workers:
            await conn.execute(
                "INSERT INTO service_workers (worker_id, name, district, skills, certificates,"
                " mode, home_lat, home_lon, max_orders_per_day) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (worker_id) DO UPDATE SET"
                " name = EXCLUDED.name, district = EXCLUDED.district, skills = EXCLUDED.skills,"
                " certificates = EXCLUDED.certificates, mode = EXCLUDED.mode,"
                " home_lat = EXCLUDED.home_lat, home_lon = EXCLUDED.home_lon,"
                " max_orders_per_day = EXCLUDED.max_orders_per_day, active = true",
                (
                    w.worker_id,
                    w.name,
                    w.district,
                    sorted(w.skills),
                    list(w.certificates),
                    w.mode.value,
                    w.home.lat,
                    w.home.lon,
                    w.max_orders_per_day,
                ),
            )


async def add_shift(conn: Conn, worker_id: str, starts_at: datetime, ends_at: datetime) -> bool:
    """Add a shift; False if the worker already has one overlapping it (kept as it was)."""
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO worker_shifts (worker_id, starts_at, ends_at) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (worker_id, starts_at, ends_at),
        )
        return cur.rowcount == 1


async def list_shifts(
    conn: Conn, worker_id: str, *, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The worker's shifts that overlap [start, end), in order."""
    cur = await conn.execute(
        "SELECT starts_at, ends_at FROM worker_shifts WHERE worker_id = %s"
        " AND starts_at < %s AND ends_at > %s ORDER BY starts_at",
        (worker_id, end, start),
    )
    return [(a, b) for a, b in await cur.fetchall()]


class HoldsVisits(DispatchError):  # noqa: N818  (as the other dispatch errors)
    """The worker holds visits that the change would orphan; the message names them."""


async def _refuse_if_holding(
    conn: Conn, worker_id: str, *, within: tuple[datetime, datetime] | None = None
) -> None:
    """:class:`HoldsVisits` naming the visits the worker holds (``model.LIVE``: offered,
    accepted or under way), those booked within the span ``within`` if one is given."""
    start, end = within or (None, None)  # an unbounded range: every visit
    cur = await conn.execute(
        "SELECT id FROM work_orders WHERE worker_id = %s AND state = ANY(%s)"
        " AND tstzrange(booked_from, booked_until) && tstzrange(%s, %s) ORDER BY id",
        (worker_id, sorted(s.value for s in LIVE), start, end),
    )
    held = ", ".join(str(r[0]) for r in await cur.fetchall())
    if held:
        where = " in this shift" if within else ""
        raise HoldsVisits(f"worker {worker_id} holds order {held}{where}:"
                          " give it to someone else first")  # fmt: skip


async def remove_shift(conn: Conn, worker_id: str, starts_at: datetime) -> bool:
    """Remove the worker's shift that starts at ``starts_at`` (False: there is none).
    :class:`HoldsVisits` while the worker holds visits booked in it (offered, accepted or
    under way): the centre gives them to someone else first. No commit."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT ends_at FROM worker_shifts WHERE worker_id = %s AND starts_at = %s FOR UPDATE",
            (worker_id, starts_at),
        )
        row = await cur.fetchone()
        if row is None:
            return False
        await _refuse_if_holding(conn, worker_id, within=(starts_at, row[0]))
        await conn.execute(
            "DELETE FROM worker_shifts WHERE worker_id = %s AND starts_at = %s",
            (worker_id, starts_at),
        )
    return True


async def retire_worker(conn: Conn, worker_id: str, *, now: datetime) -> None:
    """A worker who has left the centre: no longer offered work, planned or listed
    (``active`` false; registering them again makes them active), set off shift, and
    their shifts from now on removed. :class:`HoldsVisits` while they hold a visit
    (offered, accepted or under way): give it to someone else first. No commit."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT 1 FROM service_workers WHERE worker_id = %s FOR UPDATE", (worker_id,)
        )
        if await cur.fetchone() is None:
            raise UnknownWorker(worker_id)
        await _refuse_if_holding(conn, worker_id)
        await conn.execute(
            "UPDATE service_workers SET active = false, status = 'off_shift', status_at = %s,"
            " status_note = '' WHERE worker_id = %s",
            (now, worker_id),
        )
        await conn.execute(
            "DELETE FROM worker_shifts WHERE worker_id = %s AND starts_at >= %s",
            (worker_id, now),
        )


async def list_workers(conn: Conn, *, district: str | None = None) -> list[StoredWorker]:
    async with conn.cursor(row_factory=class_row(StoredWorker)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM service_workers WHERE active"
            " AND (%s::text IS NULL OR district = %s) ORDER BY worker_id",
            (district, district),
        )
        rows = await cur.fetchall()
    await conn.commit()
    return rows


async def get_worker(conn: Conn, worker_id: str) -> StoredWorker:
    async with conn.cursor(row_factory=class_row(StoredWorker)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM service_workers WHERE worker_id = %s", (worker_id,)
        )
        row = await cur.fetchone()
    await conn.commit()
    if row is None:
        raise UnknownWorker(worker_id)
    return row


async def set_status(
    conn: Conn, worker_id: str, status: WorkerStatus, *, now: datetime
) -> StoredWorker:
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE service_workers SET status = %s, status_at = %s, status_note = ''"
            " WHERE worker_id = %s",
            (status.value, now, worker_id),
        )
        if cur.rowcount == 0:
            raise UnknownWorker(worker_id)
    return await get_worker(conn, worker_id)


async def set_location(conn: Conn, worker_id: str, at: Point, *, now: datetime) -> None:
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE service_workers SET lat = %s, lon = %s, location_at = %s WHERE worker_id = %s",
            (at.lat, at.lon, now, worker_id),
        )
        if cur.rowcount == 0:
            raise UnknownWorker(worker_id)


async def load_fleet(
    conn: Conn, catalogue: Catalogue, *, now: datetime
) -> tuple[list[Worker], dict[str, Commitment]]:
    """Active workers (with today's shifts) and what each is committed to now."""
    async with conn.cursor(row_factory=class_row(StoredWorker)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM service_workers WHERE active")
        rows = await cur.fetchall()
    cur2 = await conn.execute(
        "SELECT worker_id, starts_at, ends_at FROM worker_shifts"
        " WHERE ends_at > %s AND starts_at < %s",
        (now - timedelta(days=1), now + timedelta(days=1)),
    )
    shifts: dict[str, list[Shift]] = {}
    for wid, a, b in await cur2.fetchall():
        shifts.setdefault(wid, []).append(Shift(a, b))
    # work under way whenever it was booked from; offered or accepted work from 5 minutes
    # ahead (it is not started, so an emergency releases it: Commitment.started)
    cur3 = await conn.execute(
        "SELECT worker_id, id, service_type, kind, booked_until, state FROM work_orders"
        " WHERE state IN ('accepted', 'en_route', 'on_site', 'offered')"
        " AND (booked_from <= %s OR state IN ('en_route', 'on_site')) ORDER BY booked_from",
        (now + timedelta(minutes=5),),
    )
    commitments: dict[str, Commitment] = {}
    for wid, oid, code, kind, until, state in await cur3.fetchall():
        service = catalogue.services.get(code)
        c = Commitment(
            int(oid),
            bool(service and service.interruptible),
            kind == "emergency",
            until,
            started=state in ("en_route", "on_site"),
        )
        prior = commitments.get(wid)
        if prior is None or _holds(c) > _holds(prior):
            commitments[wid] = c
    await conn.commit()
    return [r.to_worker(tuple(shifts.get(r.worker_id, ()))) for r in rows], commitments


def _holds(c: Commitment) -> int:
    """How firmly a commitment holds its worker; of several, the decision sees the firmest:
    an emergency, then work under way that may not be left, work under way, work not started.
    Before 2026-12-04 an offered or accepted bath not started counted as busy until its end."""
    if c.emergency:
        return 3
    if c.started:
        return 1 if c.interruptible else 2
    return 0
