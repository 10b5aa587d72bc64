"""An emergency order moves its alerts on: accepted dispatches them, completed resolves
them, in the order's own transaction (:func:`alert_follows`); and which alert changes an
order event made, for the outbox to publish (:func:`alert_moved_by`). An order's alerts
are its own and those that joined it (:mod:`dispatch.joins`)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from alerts import store as alert_store
from alerts.lifecycle import AlertState, Outcome
from alerts.lifecycle import InvalidTransition as AlertInvalidTransition
from dispatch.joins import joined_alerts
from dispatch.model import OrderKind
from dispatch.store import OrderChange, StoredOrder

Conn = psycopg.AsyncConnection[TupleRow]


# An emergency order's event that moves its alert on, and the state the alert takes.
ALERT_FOLLOWS: dict[str, AlertState] = {
    "accepted": AlertState.DISPATCHED,
    "completed": AlertState.RESOLVED,
}


async def _alert_targets(
    conn: Conn, order: StoredOrder, kind: str
) -> tuple[list[int], AlertState] | None:
    """The alerts an event of ``kind`` on ``order`` moves on (its own first, then those
    that joined it), and the state they take."""
    target = ALERT_FOLLOWS.get(kind)
    if target is None or order.alert_id is None or order.kind != OrderKind.EMERGENCY:
        return None
    return [order.alert_id, *await joined_alerts(conn, order.id)], target


async def alert_moved_by(
    conn: Conn,
    order: StoredOrder,
    *,
    kind: str,
    actor: str,
    at: datetime,
    detail: Mapping[str, Any] | None = None,
) -> list[alert_store.AlertChange]:
    """The alert changes that an order event made: an accepted or completed order's
    alerts; a ``joined`` event's alert (dispatched at once when the order was accepted)."""
    if kind == "joined" and detail is not None and isinstance(detail.get("alert_id"), int):
        found: tuple[list[int], AlertState] | None = (
            [int(detail["alert_id"])],
            AlertState.DISPATCHED,
        )
    else:
        found = await _alert_targets(conn, order, kind)
    if found is None:
        return []
    alert_ids, target = found
    out = []
    for alert_id in alert_ids:
        moved = await alert_store.recorded_change(
            conn, alert_id, to_state=target.value, actor=actor, at=at
        )
        if moved is not None:
            out.append(moved)
    return out


async def alert_follows(conn: Conn, change: OrderChange, *, actor: str) -> None:
    """An accepted emergency dispatches its alerts; a completed one resolves them.

    Runs inside the caller's transaction and never commits: the order's event and
    the alerts' transitions become visible together (the outbox publishes both), so
    nobody who hears "accepted" can read an alert that is not yet dispatched. An
    alert that cannot move (already dispatched, closed, gone) stays as it is.
    """
    o = change.order
    found = await _alert_targets(conn, o, change.kind)
    if found is None:
        return
    alert_ids, target = found
    for alert_id in alert_ids:
        with contextlib.suppress(AlertInvalidTransition, alert_store.UnknownAlert):
            if target is AlertState.DISPATCHED:
                await alert_store.dispatch(
                    conn,
                    alert_id,
                    actor=actor,
                    at=change.at,
                    note=f"work order {o.id} accepted by {o.worker_id}",
                )
            elif target is AlertState.RESOLVED:
                await alert_store.resolve(
                    conn,
                    alert_id,
                    outcome=Outcome.ACTIONABLE,
                    actor=actor,
                    at=change.at,
                    note=f"work order {o.id} completed",
                )
