"""An emergency order moves its alert on: accepted dispatches it, completed resolves
it, in the order's own transaction (:func:`alert_follows`); and which alert change an
order event made, for the outbox to publish (:func:`alert_moved_by`)."""

from __future__ import annotations

import contextlib
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from alerts import store as alert_store
from alerts.lifecycle import AlertState, Outcome
from alerts.lifecycle import InvalidTransition as AlertInvalidTransition
from dispatch.model import OrderKind
from dispatch.store import OrderChange, StoredOrder

Conn = psycopg.AsyncConnection[TupleRow]


# An emergency order's event that moves its alert on, and the state the alert takes.
ALERT_FOLLOWS: dict[str, AlertState] = {
    "accepted": AlertState.DISPATCHED,
    "completed": AlertState.RESOLVED,
}


def _alert_target(order: StoredOrder, kind: str) -> tuple[int, AlertState] | None:
    """The alert that an event of ``kind`` on ``order`` moves on, and the state it takes."""
    target = ALERT_FOLLOWS.get(kind)
    if target is None or order.alert_id is None or order.kind != OrderKind.EMERGENCY:
        return None
    return order.alert_id, target


async def alert_moved_by(
    conn: Conn, order: StoredOrder, *, kind: str, actor: str, at: datetime
) -> alert_store.AlertChange | None:
    """The alert change that an order event made, if it made one."""
    found = _alert_target(order, kind)
    if found is None:
        return None
    alert_id, target = found
    return await alert_store.recorded_change(
        conn, alert_id, to_state=target.value, actor=actor, at=at
    )


async def alert_follows(conn: Conn, change: OrderChange, *, actor: str) -> None:
    """An accepted emergency dispatches its alert; a completed one resolves it.

    Runs inside the caller's transaction and never commits: the order's event and
    the alert's transition become visible together (the outbox publishes both), so
    nobody who hears "accepted" can read an alert that is not yet dispatched. An
    alert that cannot move (already dispatched, closed, gone) stays as it is.
    """
    o = change.order
    found = _alert_target(o, change.kind)
    if found is None:
        return
    alert_id, target = found
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
