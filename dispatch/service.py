"""The dispatch service layer: what the API (and the dispatch service) call.

Every function takes an open ``psycopg.AsyncConnection`` and the acting user
as a plain ``actor`` string (``"operator:7"``, ``"worker:W001"``,
``"family:12"``); authorization is the API's job, not this module's. Each
commits its own work; each change is a ``work_order_events`` row that the
dispatch service publishes (the database is the outbox, see
:mod:`dispatch.outbox`). Errors are :class:`~dispatch.store.DispatchError`
subclasses (``UnknownOrder`` / ``UnknownWorker`` -> 404, ``WorkerBusy`` /
``InvalidTransition`` -> 409, ``TooFarFromHome`` / ``DispatchError`` -> 422).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from dispatch import reports
from dispatch.alert_follows import alert_follows, alert_moved_by
from dispatch.assign import (
    Assignment,
    AssignSettings,
    catalogue_from_db,
    offer_best,
    rank_for,
)
from dispatch.assign import (
    dispatch_alert as _dispatch_alert,
)
from dispatch.lifecycle import Action
from dispatch.model import CatalogueError, OrderKind, Point, WorkerStatus, qualified
from dispatch.queries import alert_progress, list_orders, list_service_types, order_events
from dispatch.roster import StoredWorker, get_worker, list_workers, set_location, set_status
from dispatch.store import (
    DispatchError,
    StoredOrder,
    act,
    create_order,
    get_order,
    offer,
)

Conn = psycopg.AsyncConnection[TupleRow]
DEFAULT = AssignSettings()
# a booking's window: at most this far ahead and this long (a window at the end of year
# 9999 was booked, and every assignment of it then failed on the date arithmetic)
BOOKING_HORIZON = timedelta(days=366)
LONGEST_WINDOW = timedelta(days=31)
EARLIEST_WINDOW = datetime(2000, 1, 1, tzinfo=UTC)

__all__ = [
    "accept",
    "alert_moved_by",
    "alert_progress",
    "assign_order",
    "book_order",
    "cancel_order",
    "candidates_for_alert",
    "check_in",
    "check_out",
    "dispatch_alert",
    "en_route",
    "fail_order",
    "get_order",
    "get_worker",
    "list_orders",
    "list_service_types",
    "list_workers",
    "order_events",
    "reject",
    "reports_summary",
    "worker_location",
    "worker_status",
]


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


async def book_order(
    conn: Conn,
    *,
    resident_id: int,
    service_type: str,
    window_start: datetime,
    window_end: datetime,
    actor: str,
    notes: str = "",
    priority: int = 3,
    idempotency_key: str | None = None,
    recurrence: str | None = None,
    now: datetime | None = None,
) -> tuple[StoredOrder, bool]:
    """A booked (or recurring) order; the same ``idempotency_key`` returns the first one
    (``created`` False) instead of booking twice."""
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise DispatchError("window times must carry a time zone")
    if window_start > _now(now) + BOOKING_HORIZON:
        raise DispatchError(f"window_start is more than {BOOKING_HORIZON.days} days ahead")
    if window_start < EARLIEST_WINDOW:
        raise DispatchError("window_start is before 2000")
    if window_end - window_start > LONGEST_WINDOW:
        raise DispatchError(f"the window is longer than {LONGEST_WINDOW.days} days")
    catalogue = await catalogue_from_db(conn)
    try:
        service = catalogue[service_type]
    except CatalogueError as exc:
        raise DispatchError(str(exc)) from None
    if service.emergency:
        raise DispatchError("emergency orders come from alerts (dispatch_alert)")
    kind = OrderKind.RECURRING if recurrence else OrderKind.BOOKED
    return await create_order(
        conn,
        kind=kind,
        resident_id=resident_id,
        service=service,
        window_start=window_start,
        window_end=window_end,
        actor=actor,
        now=_now(now),
        priority=priority,
        notes=notes,
        idempotency_key=idempotency_key,
        recurrence=recurrence,
    )


async def cancel_order(
    conn: Conn, order_id: int, *, actor: str, reason: str = "", now: datetime | None = None
) -> StoredOrder:
    change = await act(conn, order_id, Action.CANCEL, actor=actor, now=_now(now), notes=reason)
    return change.order


async def fail_order(
    conn: Conn, order_id: int, *, actor: str, reason: str, now: datetime | None = None
) -> StoredOrder:
    """The visit could not be done (nobody home, refused, the worker fell ill)."""
    change = await act(
        conn, order_id, Action.FAIL, actor=actor, now=_now(now), notes=reason, outcome="failed"
    )
    return change.order


async def assign_order(
    conn: Conn,
    order_id: int,
    worker_id: str,
    *,
    actor: str,
    now: datetime | None = None,
    settings: AssignSettings = DEFAULT,
) -> StoredOrder:
    """Offer a routine order to this worker for its window (an operator's choice).

    An emergency goes the emergency's way (:func:`~dispatch.assign.offer_best` with
    ``worker_id``): the worker must be able to go now, and the offer times out as an
    emergency's does. Before 2026-12-03 an operator could offer one to an off-shift
    worker without the skills, for the routine 15 minutes: the whole SLA.
    """
    t = _now(now)
    o = await get_order(conn, order_id)
    if o.kind == OrderKind.EMERGENCY:
        assignment = await offer_best(
            conn, order_id, now=t, settings=settings, worker_id=worker_id, actor=actor
        )
        return assignment.order
    # the skills the service needs, as the planner and the emergency path require them;
    # before 2026-12-03 an operator could offer a bath to a worker trained for cleaning
    skills = frozenset((await get_worker(conn, worker_id)).skills)
    needed = (await catalogue_from_db(conn))[o.service_type].skills
    if not qualified(skills, needed):
        lacks = ", ".join(sorted(needed - skills))
        raise DispatchError(f"worker {worker_id!r} lacks {lacks} for {o.service_type}")
    start = max(o.window_start.astimezone(UTC), t)  # UTC: no wall-clock sum across DST
    changes = await offer(
        conn,
        order_id,
        worker_id,
        actor=actor,
        now=t,
        booked_from=start,
        booked_until=start + timedelta(minutes=o.duration_min),
        expires_at=t + timedelta(seconds=settings.routine_offer_timeout_s),
    )
    return changes[-1].order


async def _worker_act(
    conn: Conn,
    order_id: int,
    action: Action,
    *,
    worker_id: str,
    actor: str,
    now: datetime | None,
    **kw: Any,
) -> StoredOrder:
    async with conn.transaction():  # the order and its alert move together, or neither
        change = await act(
            conn, order_id, action, actor=actor, now=_now(now), worker_id=worker_id, **kw
        )
        await alert_follows(conn, change, actor=actor)
    return change.order


async def accept(
    conn: Conn, order_id: int, *, worker_id: str, actor: str, now: datetime | None = None
) -> StoredOrder:
    return await _worker_act(
        conn, order_id, Action.ACCEPT, worker_id=worker_id, actor=actor, now=now
    )


async def reject(
    conn: Conn,
    order_id: int,
    *,
    worker_id: str,
    actor: str,
    reason: str = "",
    now: datetime | None = None,
    settings: AssignSettings = DEFAULT,
) -> StoredOrder:
    """Decline an offer; an emergency is offered to the next candidate at once."""
    order = await _worker_act(
        conn, order_id, Action.REJECT, worker_id=worker_id, actor=actor, now=now, notes=reason
    )
    if order.kind == OrderKind.EMERGENCY:
        return (await offer_best(conn, order_id, now=_now(now), settings=settings)).order
    return order


async def en_route(
    conn: Conn, order_id: int, *, worker_id: str, actor: str, now: datetime | None = None
) -> StoredOrder:
    return await _worker_act(
        conn, order_id, Action.EN_ROUTE, worker_id=worker_id, actor=actor, now=now
    )


async def check_in(
    conn: Conn,
    order_id: int,
    *,
    worker_id: str,
    lat: float,
    lon: float,
    actor: str,
    radius_m: float = 150.0,
    now: datetime | None = None,
) -> StoredOrder:
    """Arrival, accepted only within ``radius_m`` of the resident's home."""
    return await _worker_act(
        conn,
        order_id,
        Action.CHECK_IN,
        worker_id=worker_id,
        actor=actor,
        now=now,
        at=Point(lat, lon),
        check_in_radius_m=radius_m,
    )


async def check_out(
    conn: Conn,
    order_id: int,
    *,
    worker_id: str,
    actor: str,
    notes: str = "",
    outcome: str = "done",
    now: datetime | None = None,
) -> StoredOrder:
    return await _worker_act(
        conn,
        order_id,
        Action.CHECK_OUT,
        worker_id=worker_id,
        actor=actor,
        now=now,
        notes=notes,
        outcome=outcome,
    )


async def candidates_for_alert(
    conn: Conn,
    alert_id: int,
    *,
    limit: int = 10,
    now: datetime | None = None,
    settings: AssignSettings = DEFAULT,
) -> list[dict[str, Any]]:
    """Best first: ``{worker_id, name, eta_s, distance_km, status, preempts_order_id}``.
    Read only: no order is made (workers who declined this alert's order are left out)."""
    t = _now(now)
    # the alert's live order: its own, or the one it joined (dispatch.joins)
    cur = await conn.execute(
        "SELECT a.resident_id, o.service_type, coalesce(o.declined_by, '{}') FROM alerts a"
        " LEFT JOIN work_orders o ON o.id IN (SELECT ao.order_id FROM alert_orders ao"
        "  WHERE ao.alert_id = a.id) AND o.state NOT IN ('completed', 'cancelled', 'failed')"
        " WHERE a.id = %s ORDER BY o.id DESC NULLS LAST LIMIT 1",
        (alert_id,),
    )
    row = await cur.fetchone()
    await conn.commit()
    if row is None:
        raise DispatchError(f"no alert {alert_id}")
    ranked = await rank_for(
        conn,
        int(row[0]),
        row[1],
        emergency=True,
        exclude=list(row[2]),
        now=t,
        settings=settings,
        limit=limit,
    )
    roster = {w.worker_id: w for w in await list_workers(conn)}
    return [
        {
            "worker_id": c.worker_id,
            "name": roster[c.worker_id].name,
            "eta_s": round(c.eta_s),
            "distance_km": round(c.distance_km, 2),
            "status": roster[c.worker_id].status,
            "preempts_order_id": c.preempts_order_id,
        }
        for c in ranked
        if c.worker_id in roster
    ]


async def dispatch_alert(
    conn: Conn,
    alert_id: int,
    worker_id: str | None = None,
    *,
    actor: str,
    now: datetime | None = None,
    settings: AssignSettings = DEFAULT,
) -> Assignment:
    """The alert's emergency order (made if needed) offered to ``worker_id`` or the best
    candidate; ``Assignment.escalated`` when nobody can arrive within the SLA."""
    return await _dispatch_alert(
        conn, alert_id, now=_now(now), actor=actor, settings=settings, worker_id=worker_id
    )


async def reports_summary(
    conn: Conn, *, start: datetime, end: datetime, district: str | None = None
) -> dict[str, Any]:
    """The centre's figures for a period and district: see :mod:`dispatch.reports`."""
    return await reports.summary(conn, start=start, end=end, district=district)


async def worker_status(
    conn: Conn, worker_id: str, status: str, *, actor: str, now: datetime | None = None
) -> StoredWorker:
    del actor  # the status change is the worker's own record (status_at)
    try:
        value = WorkerStatus(status)
    except ValueError:
        raise DispatchError(f"unknown worker status {status!r}") from None
    return await set_status(conn, worker_id, value, now=_now(now))


async def worker_location(
    conn: Conn, worker_id: str, lat: float, lon: float, *, actor: str, now: datetime | None = None
) -> None:
    del actor
    try:
        at = Point(lat, lon)
    except ValueError as exc:
        raise DispatchError(str(exc)) from None
    await set_location(conn, worker_id, at, now=_now(now))
