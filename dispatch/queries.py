"""The read side of dispatch for the API: the catalogue, order lists, an order's history,
and the progress of the help sent for an alert."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from psycopg.rows import TupleRow, class_row

from dispatch.assign import catalogue_from_db
from dispatch.model import Mode
from dispatch.records import COLUMNS, StoredOrder
from dispatch.recurring import DEFAULT_TIMEZONE
from dispatch.travel import HaversineTravel, TravelModel

Conn = psycopg.AsyncConnection[TupleRow]
DEFAULT_ZONE: Final = ZoneInfo(DEFAULT_TIMEZONE)


async def list_service_types(conn: Conn) -> list[dict[str, Any]]:
    catalogue = await catalogue_from_db(conn)
    return [s.to_json() for s in sorted(catalogue.services.values(), key=lambda s: s.code)]


async def list_orders(
    conn: Conn,
    *,
    worker_id: str | None = None,
    resident_id: int | None = None,
    day: date | None = None,
    state: str | None = None,
    district: str | None = None,
    limit: int = 50,
    cursor: int | None = None,
    zone: ZoneInfo = DEFAULT_ZONE,
) -> tuple[list[StoredOrder], int | None]:
    """Newest first; ``cursor`` is the last id of the previous page (``next_cursor``).

    ``day``: the orders whose window meets that local day in ``zone`` (the city's, as day
    planning uses it; before 2026-12-04 the UTC day, so in Shanghai a visit before 08:00
    was listed the day before). Midnights are taken in SQL: no overflow at 9999-12-31.
    """
    limit = max(1, min(limit, 500))
    async with conn.cursor(row_factory=class_row(StoredOrder)) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM work_orders WHERE (%(w)s::text IS NULL OR worker_id = %(w)s)"
            " AND (%(r)s::bigint IS NULL OR resident_id = %(r)s)"
            " AND (%(s)s::text IS NULL OR state = %(s)s)"
            " AND (%(d)s::text IS NULL OR district = %(d)s)"
            " AND (%(day)s::date IS NULL OR ("
            "      window_start < ((%(day)s::date + 1)::timestamp AT TIME ZONE %(tz)s)"
            "      AND window_end >= (%(day)s::date::timestamp AT TIME ZONE %(tz)s)))"
            " AND (%(c)s::bigint IS NULL OR id < %(c)s) ORDER BY id DESC LIMIT %(n)s",
            {
                "w": worker_id,
                "r": resident_id,
                "s": state,
                "d": district,
                "day": day,
                "tz": zone.key,
                "c": cursor,
                "n": limit + 1,
            },
        )
        rows = await cur.fetchall()
    await conn.commit()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


async def order_events(conn: Conn, order_id: int) -> list[dict[str, Any]]:
    """The order's history: every change with who and when."""
    cur = await conn.execute(
        "SELECT id, at, kind, from_state, to_state, worker_id, actor, detail"
        " FROM work_order_events WHERE order_id = %s ORDER BY id",
        (order_id,),
    )
    rows = await cur.fetchall()
    await conn.commit()
    keys = ("id", "at", "kind", "from_state", "to_state", "worker_id", "actor", "detail")
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(keys, r, strict=True)}
        for r in rows
    ]


async def alert_progress(
    conn: Conn, alert_id: int, *, travel: TravelModel | None = None, now: datetime | None = None
) -> dict[str, Any] | None:
    """Who is coming for an alert and when: ``{order_id, worker_id, worker_name, eta_s,
    status}`` (the state of its order, or of the order it joined: :mod:`dispatch.joins`),
    None when no worker is on it. ``eta_s`` is recomputed
    from the worker's last reported location (0 once on site), plus, until they set off,
    the wait before they can leave (booked from the end of a bath: :func:`wait_to_leave_s`)."""
    model = travel or HaversineTravel()
    t = now or datetime.now(UTC)
    cur = await conn.execute(
        "SELECT o.id, o.state, o.worker_id, o.booked_from, w.name, coalesce(w.lat, w.home_lat),"
        " coalesce(w.lon, w.home_lon), w.mode, r.home_lat, r.home_lon"
        " FROM work_orders o JOIN residents r USING (resident_id)"
        " LEFT JOIN service_workers w ON w.worker_id = o.worker_id"
        " WHERE o.id IN (SELECT order_id FROM alert_orders WHERE alert_id = %s)"
        " AND o.state NOT IN ('cancelled', 'failed') AND"
        " o.worker_id IS NOT NULL ORDER BY o.id DESC LIMIT 1",
        (alert_id,),
    )
    row = await cur.fetchone()
    await conn.commit()
    if row is None:
        return None
    order_id, state, worker_id, booked_from, name, lat, lon, mode, hlat, hlon = row
    eta: float | None = 0.0
    if state in ("offered", "accepted", "en_route"):
        if None in (lat, lon, hlat, hlon):
            eta = None
        else:
            km = float(
                model.distance_km(
                    np.float64(lat), np.float64(lon), np.float64(hlat), np.float64(hlon)
                )
            )
            eta = km / model.speed_kmh(Mode(mode)) * 3600.0 + wait_to_leave_s(
                state, booked_from, now=t
            )
    return {
        "order_id": int(order_id),
        "worker_id": worker_id,
        "worker_name": name,
        "eta_s": None if eta is None else round(eta),
        "status": state,
    }


def wait_to_leave_s(state: str, booked_from: datetime | None, *, now: datetime) -> float:
    """Seconds before the worker can set off: an offer or acceptance is booked from when
    they can leave (now, or the end of work that may not be left); en route, none. Before
    2026-12-04 the family was shown the travel time alone: "2 minutes" for a worker who
    would leave after an hour's bath."""
    if state not in ("offered", "accepted") or booked_from is None:
        return 0.0
    return max(0.0, (booked_from - now).total_seconds())
