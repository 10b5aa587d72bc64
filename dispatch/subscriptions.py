"""A resident's standing services in the database (``resident_services``, migration 022).

Meals on weekdays at 11:00-12:30, a bath every Wednesday afternoon: the recurring run
(:func:`dispatch.day.make_recurring`) books each day's visits from them, as from the
catalogue's rules (:mod:`dispatch.recurring`, pure). Ending one stops it from today and
cancels its visits not begun yet. Functions take the caller's connection; no commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow

from dispatch.assign import catalogue_from_db
from dispatch.model import NOT_BEGUN, CatalogueError
from dispatch.records import DispatchError
from dispatch.recurring import WEEKDAYS, Subscription
from dispatch.service import cancel_order

Conn = psycopg.AsyncConnection[TupleRow]
MAX_PER_RESIDENT: Final = 20  # standing services in force at once
_COLUMNS = (
    "id, resident_id, service_type, weekdays, window_start, window_end, starts_on, ends_on,"
    " notes, created_by, created_at"
)
# in force or ahead on the day given: a day still to run (ending one sets ends_on before it)
_IN_FORCE: Final = "(ends_on IS NULL OR ends_on >= GREATEST(starts_on, %s))"


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    id: int
    resident_id: int
    service_type: str
    weekdays: list[int]
    window_start: time
    window_end: time
    starts_on: date
    ends_on: date | None
    notes: str
    created_by: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resident_id": self.resident_id,
            "service_type": self.service_type,
            "weekdays": [WEEKDAYS[d] for d in sorted(self.weekdays)],
            "start": self.window_start.strftime("%H:%M"),
            "end": self.window_end.strftime("%H:%M"),
            "starts_on": self.starts_on.isoformat(),
            "ends_on": self.ends_on.isoformat() if self.ends_on else None,
            "notes": self.notes,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }

    def to_subscription(self) -> Subscription:
        return Subscription(self.id, self.resident_id, self.service_type,
                            frozenset(self.weekdays), self.window_start, self.window_end,
                            self.starts_on, self.ends_on)  # fmt: skip


def _row(r: tuple[Any, ...]) -> StoredSubscription:
    return StoredSubscription(int(r[0]), int(r[1]), str(r[2]), [int(d) for d in r[3]], r[4],
                              r[5], r[6], r[7], str(r[8]), str(r[9]), r[10])  # fmt: skip


async def add_subscription(
    conn: Conn,
    resident_id: int,
    *,
    service_type: str,
    weekdays: frozenset[int],
    start: time,
    end: time,
    starts_on: date,
    ends_on: date | None,
    notes: str,
    actor: str,
    now: datetime,
) -> StoredSubscription:
    """A new standing service (``DispatchError`` saying why it cannot be: an unknown or
    emergency service, a window that does not end after it starts, no weekday, an end
    before the start, more than :data:`MAX_PER_RESIDENT` in force)."""
    try:
        Subscription(0, resident_id, service_type, weekdays, start, end, starts_on, ends_on)
        service = (await catalogue_from_db(conn))[service_type]
    except CatalogueError as exc:
        raise DispatchError(str(exc)) from None
    if service.emergency:
        raise DispatchError("emergency visits come from alerts, not from a standing service")
    if ends_on is not None and ends_on < starts_on:
        raise DispatchError("ends_on is before starts_on")
    cur = await conn.execute(
        f"SELECT count(*) FROM resident_services WHERE resident_id = %s AND {_IN_FORCE}",
        (resident_id, now.date()),
    )
    row = await cur.fetchone()
    if row is not None and row[0] >= MAX_PER_RESIDENT:
        raise DispatchError(f"the resident has {MAX_PER_RESIDENT} standing services already")
    cur = await conn.execute(
        "INSERT INTO resident_services (resident_id, service_type, weekdays, window_start,"
        " window_end, starts_on, ends_on, notes, created_by, created_at)"
        f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (resident_id, service_type, sorted(weekdays), start, end, starts_on, ends_on, notes,
         actor, now),
    )  # fmt: skip
    added = await cur.fetchone()
    if added is None:
        raise RuntimeError("INSERT ... RETURNING gave no row for a standing service")
    return _row(added)


async def list_subscriptions(
    conn: Conn, resident_id: int, *, today: date, ended: bool = False
) -> list[StoredSubscription]:
    """The resident's standing services in force or ahead (``ended``: every one)."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM resident_services WHERE resident_id = %s"
        f" AND (%s OR {_IN_FORCE}) ORDER BY id",
        (resident_id, ended, today),
    )
    return [_row(r) for r in await cur.fetchall()]


async def end_subscription(
    conn: Conn, resident_id: int, subscription_id: int, *, today: date, actor: str, now: datetime
) -> tuple[int, ...] | None:
    """End it from ``today`` (local): no visit is made from it any more, and its visits not
    begun yet are cancelled (returned). None: no such standing service of the resident's
    in force or ahead."""
    cur = await conn.execute(
        "UPDATE resident_services SET ends_on = GREATEST(starts_on, %s) - 1"
        f" WHERE id = %s AND resident_id = %s AND {_IN_FORCE}"
        " RETURNING id",
        (today, subscription_id, resident_id, today),
    )
    if await cur.fetchone() is None:
        return None
    cur = await conn.execute(
        "SELECT id FROM work_orders WHERE resident_id = %s AND recurrence = %s"
        " AND state = ANY(%s) AND window_end > %s ORDER BY id",
        (
            resident_id,
            Subscription.rule_of(subscription_id),
            sorted(s.value for s in NOT_BEGUN),
            now,
        ),
    )
    cancelled = tuple(int(r[0]) for r in await cur.fetchall())
    for order_id in cancelled:
        await cancel_order(conn, order_id, actor=actor, reason="the standing service ended",
                           now=now)  # fmt: skip
    return cancelled


async def due_subscriptions(conn: Conn, day: date) -> list[Subscription]:
    """The standing services in force on ``day`` of residents still in the service."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM resident_services WHERE starts_on <= %s AND {_IN_FORCE}"
        " AND resident_id IN (SELECT resident_id FROM residents WHERE left_at IS NULL)"
        " ORDER BY id",
        (day, day),
    )
    return [_row(r).to_subscription() for r in await cur.fetchall()]
