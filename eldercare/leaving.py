"""A resident leaves the service: moved into a care home, moved away, died.

:func:`leave_service`, in the caller's transaction: refused while the resident has
an open alert (the centre closes it first, with its outcome) or a worker on the way
or on site; otherwise their bands go back to the admin's stock (unpaired: nothing
more is alerted for them, and the band can be handed to someone else with
:func:`eldercare.registry.pair_wristband`), the visits not begun yet are cancelled
(the worker holding one is told through the order's event, as for any cancellation),
and the resident is marked as left. From then on dispatch books nothing for them
(:func:`dispatch.store.create_order`), the recurring rules skip them and the alert
engine does not load them. The record and its history stay readable, and
:func:`return_to_service` undoes the mark (a mistake, a return from hospital care).
Until 2026-12-04 a resident could not be marked as gone: recurring visits went on
being booked for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from dispatch.model import FINAL, UNDER_WAY, OrderState
from dispatch.service import cancel_order
from eldercare.registry import RegistryError

Conn = psycopg.AsyncConnection[TupleRow]


class CannotLeaveError(RegistryError):
    """The resident cannot be marked as left now; the message says what to do first."""


@dataclass(frozen=True, slots=True)
class Left:
    resident_id: int
    unpaired_bands: tuple[str, ...]
    cancelled_orders: tuple[int, ...]


async def lock_if_present(conn: Conn, resident_id: int, *, refuse: type[RegistryError]) -> None:
    """Lock the resident's row for the caller's transaction; RegistryError if unknown,
    ``refuse`` (a RegistryError) if they have left the service."""
    cur = await conn.execute(
        "SELECT left_at FROM residents WHERE resident_id = %s FOR UPDATE", (resident_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise RegistryError(f"no resident {resident_id}")
    if row[0] is not None:
        raise refuse(f"resident {resident_id} left the service on {row[0]:%Y-%m-%d}")


async def leave_service(
    conn: Conn, resident_id: int, *, reason: str, actor: str, now: datetime
) -> Left:
    """Mark the resident as left (see the module doc); RegistryError if unknown,
    :class:`CannotLeaveError` if they have left already or something is still under way."""
    await lock_if_present(conn, resident_id, refuse=CannotLeaveError)
    cur = await conn.execute(
        "SELECT id FROM alerts WHERE resident_id = %s AND closed_at IS NULL ORDER BY id",
        (resident_id,),
    )
    open_alerts = [int(r[0]) for r in await cur.fetchall()]
    if open_alerts:
        raise CannotLeaveError(f"close the resident's open alerts first: {_ids(open_alerts)}")
    cur = await conn.execute(
        "SELECT id, state FROM work_orders WHERE resident_id = %s"
        " AND NOT (state = ANY(%s)) ORDER BY id",
        (resident_id, sorted(s.value for s in FINAL)),
    )
    live = [(int(i), OrderState(s)) for i, s in await cur.fetchall()]
    under_way = [i for i, s in live if s in UNDER_WAY]
    if under_way:
        raise CannotLeaveError(f"a worker is on the way or on site: finish or cancel order"
                          f" {_ids(under_way)} first")  # fmt: skip
    cancelled = []
    for order_id, _state in live:
        await cancel_order(conn, order_id, actor=actor, reason="the resident left the service",
                           now=now)  # fmt: skip
        cancelled.append(order_id)
    cur = await conn.execute(
        "UPDATE wristbands SET resident_id = NULL WHERE resident_id = %s AND revoked_at IS NULL"
        " RETURNING device_id",
        (resident_id,),
    )
    bands = sorted(str(r[0]) for r in await cur.fetchall())
    await conn.execute(
        "UPDATE residents SET left_at = %s, left_reason = %s, updated_at = %s"
        " WHERE resident_id = %s",
        (now, reason, now, resident_id),
    )
    return Left(resident_id, tuple(bands), tuple(cancelled))


async def return_to_service(conn: Conn, resident_id: int) -> None:
    """Undo :func:`leave_service`: the resident is watched and served again (pair a band
    with them for alerts). RegistryError if unknown, :class:`CannotLeaveError` if they
    have not left. The visits cancelled when they left stay cancelled."""
    cur = await conn.execute(
        "UPDATE residents SET left_at = NULL, left_reason = NULL, updated_at = now()"
        " WHERE resident_id = %s AND left_at IS NOT NULL RETURNING 1",
        (resident_id,),
    )
    if await cur.fetchone() is None:
        found = await conn.execute("SELECT 1 FROM residents WHERE resident_id = %s", (resident_id,))
        if await found.fetchone() is None:
            raise RegistryError(f"no resident {resident_id}")
        raise CannotLeaveError(f"resident {resident_id} has not left the service")


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
