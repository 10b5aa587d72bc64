"""Work orders in the database: create, offer, act, expire; every change an event row.

Each function takes an open ``AsyncConnection`` and commits its own transaction.
Concurrency (two dispatchers, the API and the dispatch service at once):

* an order changes state only under ``SELECT ... FOR UPDATE`` of its row and by
  the pure transition table, so one order is never offered or accepted twice;
* a worker is taken under a lock of their ``service_workers`` row, and the
  exclusion constraint ``work_orders_no_double_booking`` refuses a second live
  order whose booked interval overlaps (raised here as :class:`WorkerBusy`);
* one live emergency order per alert (a partial unique index);
* offer time-outs are claimed with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import errors
from psycopg.rows import TupleRow, class_row
from psycopg.types.json import Jsonb

from dispatch.lifecycle import EVENT_KIND, WORKER_ACTIONS, Action, near_home, next_state
from dispatch.model import (
    FINAL,
    UNDER_WAY,
    OrderKind,
    OrderState,
    Point,
    ServiceType,
    meets_absence,
)
from dispatch.records import (
    COLUMNS,
    AlertAlreadyClosed,
    DispatchError,
    NoHomeOnRecord,
    NotYourOrder,
    OrderChange,
    ResidentAway,
    StoredOrder,
    TooFarFromHome,
    UnknownOrder,
    UnknownWorker,
    WorkerBusy,
)

__all__ = [
    "APPEND_NOTES",
    "COLUMNS",
    "AlertAlreadyClosed",
    "DispatchError",
    "NoHomeOnRecord",
    "NotYourOrder",
    "OrderChange",
    "ResidentAway",
    "StoredOrder",
    "TooFarFromHome",
    "UnknownOrder",
    "UnknownWorker",
    "WorkerBusy",
    "act",
    "create_order",
    "expire_offers",
    "fetch_order",
    "get_order",
    "offer",
    "record_escalation",
    "record_event",
]

Conn = psycopg.AsyncConnection[TupleRow]


# SQL: append the first of two equal parameters to an order's notes, on a line of its own
APPEND_NOTES = "notes = CASE WHEN notes = '' THEN %s ELSE notes || E'\\n' || %s END"


async def fetch_order(conn: Conn, query: str, params: tuple[object, ...]) -> StoredOrder | None:
    """The one order ``query`` selects (its columns: ``COLUMNS``), or None. No commit."""
    async with conn.cursor(row_factory=class_row(StoredOrder)) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


async def _locked(conn: Conn, order_id: int) -> StoredOrder:
    o = await fetch_order(
        conn, f"SELECT {COLUMNS} FROM work_orders WHERE id = %s FOR UPDATE", (order_id,)
    )
    if o is None:
        raise UnknownOrder(order_id)
    return o


async def record_event(conn: Conn, change: OrderChange, from_state: str | None) -> OrderChange:
    await conn.execute(
        "INSERT INTO work_order_events (order_id, at, kind, from_state, to_state, worker_id,"
        " actor, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            change.order.id,
            change.at,
            change.kind,
            from_state,
            change.order.state,
            change.order.worker_id or change.detail.get("worker_id"),
            change.actor,
            Jsonb(change.detail),
        ),
    )
    return change


async def get_order(conn: Conn, order_id: int) -> StoredOrder:
    o = await fetch_order(conn, f"SELECT {COLUMNS} FROM work_orders WHERE id = %s", (order_id,))
    await conn.commit()
    if o is None:
        raise UnknownOrder(order_id)
    return o


async def create_order(
    conn: Conn,
    *,
    kind: OrderKind,
    resident_id: int,
    service: ServiceType,
    window_start: datetime,
    window_end: datetime,
    actor: str,
    now: datetime,
    priority: int = 3,
    notes: str = "",
    idempotency_key: str | None = None,
    alert_id: int | None = None,
    sla_due_at: datetime | None = None,
    recurrence: str | None = None,
) -> tuple[StoredOrder, bool]:
    """A new order (``True``), or the one this idempotency key or alert already made."""
    if window_end < window_start:
        raise DispatchError("window_end is before window_start")
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT district, left_at, away_from, away_until FROM residents WHERE resident_id = %s",
            (resident_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise DispatchError(f"no resident {resident_id}")
        if row[1] is not None:  # eldercare.leaving
            raise DispatchError(f"resident {resident_id} left the service on {row[1]:%Y-%m-%d}")
        if kind is not OrderKind.EMERGENCY and meets_absence(window_start, window_end, *row[2:]):
            since, until = row[2].astimezone(UTC), row[3].astimezone(UTC)
            raise ResidentAway(
                f"resident {resident_id} is away from home from {since:%Y-%m-%d %H:%M} to"
                f" {until:%Y-%m-%d %H:%M} UTC: no visit can be booked in that time"
            )
        conflict = "ON CONFLICT DO NOTHING"
        new = await fetch_order(
            conn,
            "INSERT INTO work_orders (kind, resident_id, service_type, district, priority,"
            " alert_id, window_start, window_end, duration_min, sla_due_at, idempotency_key,"
            " recurrence, notes, created_by, created_at, updated_at) VALUES"
            f" (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) {conflict}"
            f" RETURNING {COLUMNS}",
            (
                kind.value,
                resident_id,
                service.code,
                row[0],
                priority,
                alert_id,
                window_start,
                window_end,
                service.duration_min,
                sla_due_at,
                idempotency_key,
                recurrence,
                notes,
                actor,
                now,
                now,
            ),
        )
        if new is not None:
            await record_event(conn, OrderChange("created", new, actor, now), None)
            return new, True
        existing = await fetch_order(
            conn,
            f"SELECT {COLUMNS} FROM work_orders WHERE idempotency_key = %s OR (alert_id = %s"
            " AND state NOT IN ('completed', 'cancelled', 'failed')) ORDER BY id LIMIT 1",
            (idempotency_key, alert_id),
        )
        if existing is None:
            raise DispatchError("order conflicted but the existing one is gone")
        return existing, False


async def offer(
    conn: Conn,
    order_id: int,
    worker_id: str,
    *,
    actor: str,
    now: datetime,
    booked_from: datetime,
    booked_until: datetime,
    expires_at: datetime | None,
    preempt: bool = False,
    detail: dict[str, Any] | None = None,
) -> list[OrderChange]:
    """Offer an order to a worker; with ``preempt``, first release the worker's overlapping
    work that is interruptible or not started yet (an emergency's right; a bath under way
    is never left). Raises :class:`WorkerBusy`."""
    changes: list[OrderChange] = []
    try:
        async with conn.transaction():
            o = await _locked(conn, order_id)
            target = next_state(OrderState(o.state), Action.OFFER, order_id=order_id)
            cur = await conn.execute(
                "SELECT 1 FROM service_workers WHERE worker_id = %s AND active FOR UPDATE",
                (worker_id,),
            )
            if await cur.fetchone() is None:
                raise UnknownWorker(worker_id)
            if preempt:
                changes.extend(
                    await _preempt_overlapping(
                        conn,
                        worker_id,
                        by_order=order_id,
                        actor=actor,
                        now=now,
                        start=booked_from,
                        end=booked_until,
                    )
                )
            new = await fetch_order(
                conn,
                "UPDATE work_orders SET state = %s, worker_id = %s, booked_from = %s,"
                " booked_until = %s, offer_expires_at = %s, updated_at = %s WHERE id = %s"
                f" RETURNING {COLUMNS}",
                (target.value, worker_id, booked_from, booked_until, expires_at, now, order_id),
            )
            if new is None:
                raise UnknownOrder(order_id)
            changes.append(
                await record_event(
                    conn, OrderChange("offered", new, actor, now, dict(detail or {})), o.state
                )
            )
    except errors.ExclusionViolation:
        raise WorkerBusy(worker_id, order_id) from None
    return changes


async def _preempt_overlapping(
    conn: Conn,
    worker_id: str,
    *,
    by_order: int,
    actor: str,
    now: datetime,
    start: datetime,
    end: datetime,
) -> list[OrderChange]:
    async with conn.cursor(row_factory=class_row(StoredOrder)) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM work_orders w WHERE worker_id = %s AND kind <> 'emergency'"
            " AND state IN ('offered', 'accepted', 'en_route', 'on_site')"
            " AND (state IN ('offered', 'accepted') OR EXISTS (SELECT 1 FROM service_types t"
            "      WHERE t.code = w.service_type AND t.interruptible))"
            " AND tstzrange(booked_from, booked_until) && tstzrange(%s, %s) FOR UPDATE",
            (worker_id, start, end),
        )
        displaced = await cur.fetchall()
    out = []
    for d in displaced:
        action = Action.TIME_OUT if d.state == OrderState.OFFERED else Action.PREEMPT
        target = next_state(OrderState(d.state), action, order_id=d.id)
        new = await fetch_order(
            conn,
            "UPDATE work_orders SET state = %s, worker_id = NULL, booked_from = NULL,"
            " booked_until = NULL, offer_expires_at = NULL, updated_at = %s WHERE id = %s"
            f" RETURNING {COLUMNS}",
            (target.value, now, d.id),
        )
        if new is None:
            raise UnknownOrder(d.id)
        info = {"worker_id": worker_id, "by_order": by_order, "notify": "family"}
        change = OrderChange("preempted", new, actor, now, info)
        out.append(await record_event(conn, change, d.state))
    return out


async def follow_resident_district(conn: Conn, resident_id: int, district: str) -> int:
    """The resident's orders not yet ended take the district the resident moved to, so
    that its centre sees and dispatches them; returns how many. No commit."""
    cur = await conn.execute(
        "UPDATE work_orders SET district = %s WHERE resident_id = %s AND district <> %s"
        " AND NOT (state = ANY(%s))",
        (district, resident_id, district, sorted(s.value for s in FINAL)),
    )
    return cur.rowcount


async def act(
    conn: Conn,
    order_id: int,
    action: Action,
    *,
    actor: str,
    now: datetime,
    worker_id: str | None = None,
    at: Point | None = None,
    check_in_radius_m: float = 150.0,
    notes: str = "",
    outcome: str | None = None,
) -> OrderChange:
    """Move an order by ``action``; ``worker_id``: the acting worker (must be the order's)."""
    async with conn.transaction():
        o = await _locked(conn, order_id)
        if worker_id is not None and o.worker_id != worker_id and action in WORKER_ACTIONS:
            raise NotYourOrder(worker_id, order_id)
        target = next_state(OrderState(o.state), action, order_id=order_id)
        if action is Action.TIME_OUT and (o.offer_expires_at is None or o.offer_expires_at > now):
            raise DispatchError(f"order {order_id}: the offer has not expired")  # re-offered
        sets = ["state = %s", "updated_at = %s"]
        params: list[object] = [target.value, now]
        if action is Action.CHECK_IN:
            await _check_near_home(conn, o, at, check_in_radius_m)
            sets.append("arrived_at = %s")
            params.append(now)
        elif action is Action.ACCEPT:
            sets += ["accepted_at = %s", "offer_expires_at = NULL"]
            params.append(now)
        elif action in (Action.REJECT, Action.TIME_OUT, Action.PREEMPT):
            sets += [
                "worker_id = NULL",
                "booked_from = NULL",
                "booked_until = NULL",
                "offer_expires_at = NULL",
            ]
            if action is not Action.PREEMPT and o.worker_id:  # once: they may be asked again
                sets.append("declined_by = CASE WHEN %s = ANY(declined_by) THEN declined_by"
                            " ELSE array_append(declined_by, %s) END")  # fmt: skip
                params += [o.worker_id, o.worker_id]
        elif action is Action.CHECK_OUT:
            sets += ["completed_at = %s", "outcome = %s"]
            params += [now, outcome or "done"]
        if notes and action is not Action.REJECT:  # a decline's reason: in its event only
            sets.append(APPEND_NOTES)
            params += [notes, notes]
        new = await fetch_order(
            conn,
            f"UPDATE work_orders SET {', '.join(sets)} WHERE id = %s RETURNING {COLUMNS}",
            (*params, order_id),
        )
        if new is None:
            raise UnknownOrder(order_id)
        await _worker_follows(conn, o.worker_id, OrderState(o.state), target, now)
        detail: dict[str, Any] = {"worker_id": o.worker_id} if o.worker_id else {}
        if outcome:
            detail["outcome"] = outcome
        if notes and action is Action.REJECT:  # for the centre; the family reads the notes
            detail["reason"] = notes
        change = OrderChange(EVENT_KIND[action], new, actor, now, detail)
        return await record_event(conn, change, o.state)


async def _check_near_home(conn: Conn, o: StoredOrder, at: Point | None, radius_m: float) -> None:
    cur = await conn.execute(
        "SELECT home_lat, home_lon FROM residents WHERE resident_id = %s", (o.resident_id,)
    )
    row = await cur.fetchone()
    if row is None or row[0] is None or row[1] is None:
        # before 2026-12-04 this let the check-in through from anywhere (found by review)
        raise NoHomeOnRecord(o.id, o.resident_id)
    if at is None or not near_home(at, Point(row[0], row[1]), radius_m=radius_m):
        raise TooFarFromHome(o.id, radius_m)


_WORKER_STATUS = {
    OrderState.EN_ROUTE: "en_route",
    OrderState.ON_SITE: "on_site",
    OrderState.COMPLETED: "available",
    OrderState.FAILED: "available",
    OrderState.CANCELLED: "available",
}


async def _worker_follows(
    conn: Conn, worker_id: str | None, source: OrderState, target: OrderState, now: datetime
) -> None:
    """The worker's status follows the order they are on. An order that ends without
    having been under way (a later booking cancelled) says nothing about where the
    worker is now: before 2026-12-03 it set a worker on site elsewhere ``available``."""
    status = _WORKER_STATUS.get(target)
    if worker_id is None or status is None:
        return
    if status == "available" and source not in UNDER_WAY:
        return
    await conn.execute(
        "UPDATE service_workers SET status = %s, status_at = %s WHERE worker_id = %s"
        " AND status <> 'off_shift'",
        (status, now, worker_id),
    )


async def record_escalation(
    conn: Conn, order_id: int, *, actor: str, now: datetime, detail: dict[str, Any]
) -> OrderChange | None:
    """Escalate an order once (under its row lock): None if it was escalated before."""
    async with conn.transaction():
        o = await _locked(conn, order_id)
        cur = await conn.execute(
            "SELECT 1 FROM work_order_events WHERE order_id = %s AND kind = 'escalated'",
            (order_id,),
        )
        if await cur.fetchone() is not None:
            return None
        return await record_event(conn, OrderChange("escalated", o, actor, now, detail), o.state)


async def expire_offers(
    conn: Conn, *, now: datetime, actor: str = "dispatcher"
) -> list[OrderChange]:
    """Time out the offers past their expiry. Two processes may pick the same order (the
    claim is committed at once); each time-out re-locks it and re-checks its state and
    expiry, so it is timed out once and the other process skips it."""
    out: list[OrderChange] = []
    cur = await conn.execute(
        "SELECT id FROM work_orders WHERE state = 'offered' AND offer_expires_at <= %s"
        " ORDER BY offer_expires_at LIMIT 200 FOR UPDATE SKIP LOCKED",
        (now,),
    )
    ids = [int(r[0]) for r in await cur.fetchall()]
    await conn.commit()
    for order_id in ids:
        try:
            out.append(await act(conn, order_id, Action.TIME_OUT, actor=actor, now=now))
        except (DispatchError, ValueError):
            continue  # answered meanwhile
    return out
