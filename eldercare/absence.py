"""A resident away from home for a while: a hospital stay, a week with family, respite care.

:func:`set_away` records one absence, current or planned (``residents.away_from``,
``away_until``, ``away_reason``; migration 021), replacing any recorded before, in the
caller's transaction. From then on:

* the alert engine holds back, within its profile refresh (30 s), the alerts about the
  home routine and the band's upkeep while the absence lasts, and raises what still
  holds when it ends (:mod:`alerts.detectors.away`). SOS, falls and vital signs are
  raised as always;
* dispatch books no routine visit whose window meets the absence
  (:func:`dispatch.store.create_order` refuses it; the recurring rules skip it), and
  the visits already booked in it, not begun yet, are cancelled here (the worker holding
  one is told through the order's event). Emergencies are never refused.

:func:`end_away` ends it early (back from hospital sooner) or drops a planned one; the
visits it cancelled stay cancelled (the centre books again what is still wanted). An
absence longer than :data:`MAX_AWAY` is refused: a resident gone that long has left the
service (:mod:`eldercare.leaving`). Before 2026-12-04 the only way to record an absence
was to mark the resident as left, which unpaired their band; otherwise every day of a
hospital stay raised inactivity and band alerts and sent workers to an empty home.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from dispatch.model import NOT_BEGUN, OrderKind
from dispatch.service import cancel_order
from eldercare.leaving import lock_if_present
from eldercare.registry import RegistryError

Conn = psycopg.AsyncConnection[TupleRow]
MAX_AWAY: Final = timedelta(days=366)


class AwaySpanError(ValueError):
    """The absence's times cannot be taken (it ends before it starts, has ended, too long)."""


class CannotBeAwayError(RegistryError):
    """The resident cannot be recorded as away now (they left the service)."""


@dataclass(frozen=True, slots=True)
class AwayRecorded:
    resident_id: int
    starts_at: datetime
    ends_at: datetime
    cancelled_orders: tuple[int, ...]


def check_span(starts_at: datetime, ends_at: datetime, *, now: datetime) -> None:
    """Pure: :class:`AwaySpanError` unless ``starts_at < ends_at``, ``ends_at`` is still
    ahead and the absence is at most :data:`MAX_AWAY` long."""
    if ends_at <= now:
        raise AwaySpanError("the absence has ended already")
    if ends_at <= starts_at:
        raise AwaySpanError("the absence must end after it starts")
    if ends_at - starts_at > MAX_AWAY:
        raise AwaySpanError(
            f"an absence of more than {MAX_AWAY.days} days: mark the resident as left instead"
        )


async def set_away(
    conn: Conn,
    resident_id: int,
    *,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    actor: str,
    now: datetime,
) -> AwayRecorded:
    """Record the absence (module doc). RegistryError if the resident is unknown,
    :class:`CannotBeAwayError` if they left the service, :class:`AwaySpanError` for times
    that cannot be taken. No commit."""
    check_span(starts_at, ends_at, now=now)
    await lock_if_present(conn, resident_id, refuse=CannotBeAwayError)
    cur = await conn.execute(
        "SELECT id FROM work_orders WHERE resident_id = %s AND kind <> %s"
        " AND state = ANY(%s) AND window_start < %s AND window_end > %s ORDER BY id",
        (
            resident_id,
            OrderKind.EMERGENCY.value,
            sorted(s.value for s in NOT_BEGUN),
            ends_at,
            starts_at,
        ),
    )
    cancelled = [int(r[0]) for r in await cur.fetchall()]
    for order_id in cancelled:
        await cancel_order(conn, order_id, actor=actor, reason="the resident is away from home",
                           now=now)  # fmt: skip
    await conn.execute(
        "UPDATE residents SET away_from = %s, away_until = %s, away_reason = %s, updated_at = %s"
        " WHERE resident_id = %s",
        (starts_at, ends_at, reason, now, resident_id),
    )
    return AwayRecorded(resident_id, starts_at, ends_at, tuple(cancelled))


async def end_away(conn: Conn, resident_id: int, *, now: datetime) -> bool:
    """End the resident's absence now, or drop a planned one: True if one was recorded
    and not over yet; False if none was (nothing changes). RegistryError if unknown."""
    cur = await conn.execute(
        "UPDATE residents SET away_from = NULL, away_until = NULL, away_reason = NULL,"
        " updated_at = %s WHERE resident_id = %s AND away_until > %s RETURNING 1",
        (now, resident_id, now),
    )
    if await cur.fetchone() is not None:
        return True
    found = await conn.execute("SELECT 1 FROM residents WHERE resident_id = %s", (resident_id,))
    if await found.fetchone() is None:
        raise RegistryError(f"no resident {resident_id}")
    return False
