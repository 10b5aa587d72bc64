"""One visit for one emergency: an alert joins its resident's live emergency order.

A fall is followed by its long lie ten minutes later, and often by an SOS press in
between: three critical alerts of one person in one home. Before 2026-12-04 each got an
emergency order of its own, so a fall the person could not get up from took two or three
workers, each from another resident's emergency. Now an alert dispatched without a chosen
worker, whose resident already has a live emergency order (created, offered, accepted,
en route or on site) for another alert, **joins** that order (``emergency_joins``; a
``joined`` event on the order, published on the dispatch topic for the centre):

* its state follows the order as the order's own alert does (accepted: dispatched at
  once if the worker has already accepted; completed: resolved);
* the order's notes gain a line ``alert N: long_lie``, which the worker page shows;
* the order is cancelled for closed alerts only when every alert on it is closed (a
  fall the wearer cancelled with "I'm OK" does not call off the worker their SOS needs);
* if the order fails or is dropped by anyone but an operator, the joined alert is
  dispatched again like the order's own (:mod:`dispatch.timers`), and may join the new
  order of the other alert;
* who is coming and when (:func:`dispatch.queries.alert_progress`) is the order's.

An operator who dispatches an alert to a chosen worker makes an order of its own: a
second pair of hands is their call. ``alert_orders`` (a view) lists every order of an
alert, its own and the one it joined, for the queries that need both.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from alerts import store as alert_store
from alerts.lifecycle import InvalidTransition as AlertInvalidTransition
from dispatch.model import OrderState
from dispatch.records import COLUMNS, OrderChange, StoredOrder
from dispatch.store import APPEND_NOTES, fetch_order, record_event

Conn = psycopg.AsyncConnection[TupleRow]

# the states of an order someone may still be sent on: waiting for a worker, or held
NOT_FINAL: Final = "(" + ", ".join(sorted(f"'{s.value}'" for s in OrderState if not s.final)) + ")"
# SQL, on an order aliased ``o``: every alert the order answers (its own, those joined)
# is closed, so nobody needs to go any more; OTHER_ALERTS_CLOSED: every one but the
# alert given as its parameter (whose closing message is being handled)
_OPEN_ALERT_ON_O: Final = (
    "SELECT 1 FROM alert_orders ao JOIN alerts x ON x.id = ao.alert_id"
    " WHERE ao.order_id = o.id AND x.closed_at IS NULL"
)
ALL_ITS_ALERTS_CLOSED: Final = f"NOT EXISTS ({_OPEN_ALERT_ON_O})"
OTHER_ALERTS_CLOSED: Final = f"NOT EXISTS ({_OPEN_ALERT_ON_O} AND x.id <> %s)"
# order states in which its worker has said yes: a joining alert is dispatched at once
_ACCEPTED: Final = frozenset({OrderState.ACCEPTED, OrderState.EN_ROUTE, OrderState.ON_SITE})


async def joined_order(conn: Conn, alert_id: int) -> StoredOrder | None:
    """The live order this alert joined, if any. Does not commit."""
    return await fetch_order(
        conn,
        f"SELECT {COLUMNS} FROM work_orders WHERE id ="
        " (SELECT order_id FROM emergency_joins WHERE alert_id = %s)"
        f" AND state IN {NOT_FINAL}",
        (alert_id,),
    )


async def joined_alerts(conn: Conn, order_id: int) -> list[int]:
    """The alerts that joined this order, oldest join first. Does not commit."""
    cur = await conn.execute(
        "SELECT alert_id FROM emergency_joins WHERE order_id = %s ORDER BY joined_at, alert_id",
        (order_id,),
    )
    return [int(r[0]) for r in await cur.fetchall()]


async def join_live_order(
    conn: Conn, alert_id: int, resident_id: int, alert_type: str, *, now: datetime, actor: str
) -> StoredOrder | None:
    """Join the alert to its resident's live emergency order for another alert (the
    oldest), or None if there is none. Runs in the caller's transaction, which must hold
    the resident's emergency lock (:func:`lock_resident`)."""
    order = await fetch_order(
        conn,
        f"SELECT {COLUMNS} FROM work_orders WHERE resident_id = %s AND kind = 'emergency'"
        f" AND state IN {NOT_FINAL} AND alert_id IS DISTINCT FROM %s"
        " ORDER BY id LIMIT 1 FOR UPDATE",
        (resident_id, alert_id),
    )
    if order is None:
        return None
    await conn.execute(
        "INSERT INTO emergency_joins (alert_id, order_id, joined_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (alert_id) DO UPDATE SET order_id = EXCLUDED.order_id,"
        " joined_at = EXCLUDED.joined_at",
        (alert_id, order.id, now),
    )
    # the worker reads the order's notes (the worker page): a long lie or an SOS on the
    # way changes what they bring and whom they call
    line = f"alert {alert_id}: {alert_type}"
    await conn.execute(
        f"UPDATE work_orders SET {APPEND_NOTES}, updated_at = %s WHERE id = %s",
        (line, line, now, order.id),
    )
    detail = {"alert_id": alert_id, "type": alert_type}
    await record_event(conn, OrderChange("joined", order, actor, now, detail), order.state)
    if OrderState(order.state) in _ACCEPTED:
        # dispatched already (an operator), or closed meanwhile: it stays as it is
        with contextlib.suppress(AlertInvalidTransition, alert_store.UnknownAlert):
            note = f"joined work order {order.id}, accepted by {order.worker_id}"
            await alert_store.dispatch(conn, alert_id, actor=actor, at=now, note=note)
    return order


async def lock_resident(conn: Conn, resident_id: int) -> None:
    """Serialise the emergency orders of one resident to the end of the transaction: two
    alerts dispatched at once must not each find no live order and make one each."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"emergency:{resident_id}",)
    )
