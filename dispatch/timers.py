"""What the dispatch service does on a clock, each on one open connection.

Every second (:func:`expire_and_reoffer`): offers past their time-out go back
and emergencies are offered to the next candidate. Every ``dispatch_retry_s``
(:func:`retry_waiting`): emergencies whose alert has closed are cancelled;
emergencies still waiting for a worker, and routine orders displaced by one, are
offered again; open alerts of the configured kinds without an order (raised while
the service was down), and alerts still open whose emergency order failed or was
dropped (:func:`_dropped_alerts`), are dispatched. Each of these queues is
visited a bounded number at a time, its head and a page that moves on
(:class:`dispatch.rotation.Rotation`), so nothing waits behind what cannot be served.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from dispatch import service
from dispatch.assign import AssignSettings, offer_best
from dispatch.declines import MISSED_IN_A_ROW, MISSED_OFFERS, gone_quiet
from dispatch.joins import ALL_ITS_ALERTS_CLOSED
from dispatch.rotation import Rotation
from dispatch.store import DispatchError, expire_offers
from eldercare.logs import get_logger
from eldercare.settings import Settings

log = get_logger(__name__)
# the states of an emergency order that its alert's closing cancels: the worker is not
# at the door yet (on site, they finish the visit)
NOT_AT_THE_DOOR = "('created', 'offered', 'accepted', 'en_route')"
QUEUE_MAX = 10_000  # ids read per queue and retry: a day's emergencies, and far more


async def expire_and_reoffer(conn: Any, *, now: datetime, assign: AssignSettings) -> None:
    """Time out offers, re-offering emergencies; a worker who has gone quiet
    (:func:`dispatch.declines.gone_quiet`) is set off shift first."""
    for change in await expire_offers(conn, now=now):
        if change.order.kind == "emergency":
            if worker_id := change.detail.get("worker_id"):
                await _set_aside_if_quiet(conn, str(worker_id), now, assign)
            await _reoffer(conn, change.order.id, now, assign)


async def _set_aside_if_quiet(
    conn: Any, worker_id: str, now: datetime, assign: AssignSettings
) -> bool:
    """Set an available worker who has gone quiet off shift (True if done): no more
    emergencies wait a minute each on their phone. Their phone, or the centre, sets them
    available again; the worker page shows the status and why (``status_note``
    ``missed_offers``; until 2026-12-04 it showed "off shift" with no reason)."""
    cur = await conn.execute(
        "SELECT e.kind, e.at FROM work_order_events e JOIN work_orders o ON o.id = e.order_id"
        " WHERE e.worker_id = %s AND o.kind = 'emergency' AND e.kind IN"
        " ('timed_out', 'accepted', 'rejected') ORDER BY e.id DESC LIMIT %s",
        (worker_id, MISSED_IN_A_ROW),
    )
    outcomes = [(str(k), at) for k, at in await cur.fetchall()]
    # the worker's own last action on any order (their answers carry their id)
    cur = await conn.execute(
        "SELECT greatest(w.location_at, w.status_at, (SELECT e.at FROM work_order_events e"
        "  WHERE e.worker_id = w.worker_id AND e.actor = 'worker:' || w.worker_id"
        "  ORDER BY e.id DESC LIMIT 1)) FROM service_workers w WHERE w.worker_id = %s",
        (worker_id,),
    )
    row = await cur.fetchone()
    await conn.commit()
    if row is None or not gone_quiet(outcomes, row[0]):
        return False
    cur = await conn.execute(
        "UPDATE service_workers SET status = 'off_shift', status_at = %s, status_note = %s"
        " WHERE worker_id = %s AND status = 'available'",
        (now, MISSED_OFFERS, worker_id),
    )
    await conn.commit()
    if not cur.rowcount:
        return False
    if assign.fleet is not None:  # the next decision must not find them available
        assign.fleet.invalidate()
    log.warning("dispatch_worker_set_aside", worker_id=worker_id,
                missed_in_a_row=MISSED_IN_A_ROW)  # fmt: skip
    return True


async def retry_waiting(
    conn: Any,
    *,
    now: datetime,
    settings: Settings,
    assign: AssignSettings,
    rotation: Rotation | None = None,
) -> None:
    """Offer again what waits for a worker: emergencies (past their SLA too: someone
    must still go), displaced routine orders within their window; and dispatch open
    alerts that were missed (raised while this service was down). First, cancel the
    emergencies whose alert has closed unheard (:func:`_cancel_for_closed_alerts`).
    ``rotation``: where each queue's page ended last time (the caller keeps it between
    retries; without it, each retry visits the head and the first page)."""
    rotation = rotation if rotation is not None else Rotation()
    await _cancel_for_closed_alerts(conn, rotation)
    waiting = await _queue(
        conn,
        "SELECT priority, id FROM work_orders o WHERE state = 'created' AND ((kind = 'emergency'"
        "   AND created_at > %(now)s - interval '1 day')"
        " OR (window_end > %(now)s AND EXISTS (SELECT 1 FROM work_order_events e"
        "   WHERE e.order_id = o.id AND e.kind = 'preempted')))"
        " ORDER BY priority, id LIMIT %(max)s",
        {"now": now, "max": QUEUE_MAX},
    )
    for order_id in rotation.pick("waiting", waiting):
        await _reoffer(conn, order_id, now, assign)
    for alert_id in rotation.pick("missed", await _missed_alerts(conn, now, settings)):
        with contextlib.suppress(DispatchError, ValueError):
            await service.dispatch_alert(
                conn, alert_id, actor="dispatcher", now=now, settings=assign
            )
            log.info("dispatch_caught_up", alert_id=alert_id)
    for alert_id in rotation.pick("dropped", await _dropped_alerts(conn, now)):
        with contextlib.suppress(DispatchError, ValueError):
            await service.dispatch_alert(
                conn, alert_id, actor="dispatcher", now=now, settings=assign
            )
            log.info("dispatch_again", alert_id=alert_id)


async def _queue(conn: Any, sql: str, params: Any) -> list[tuple[tuple[int, ...], int]]:
    """(key, id) of each row of ``sql``, whose last column is the id and whose columns
    are its queue order."""
    cur = await conn.execute(sql, params)
    out = [(tuple(int(v) for v in r), int(r[-1])) for r in await cur.fetchall()]
    await conn.commit()
    return out


async def _cancel_for_closed_alerts(conn: Any, rotation: Rotation) -> None:
    """Emergency orders still under way whose alert is closed (a false alarm, resolved),
    cancelled as the closed alert's message would have (unless the worker is at the
    door): the message is lost when the alert closes while this service is down, or
    when it closes while its order is being made. Before 2026-12-03 such an order was
    offered again for a day, sending workers to false alarms."""
    cur = await conn.execute(
        "SELECT o.id, a.id, a.state FROM work_orders o JOIN alerts a ON a.id = o.alert_id"
        f" WHERE o.state IN {NOT_AT_THE_DOOR}"
        f" AND a.closed_at IS NOT NULL AND {ALL_ITS_ALERTS_CLOSED} ORDER BY o.id LIMIT %s",
        (QUEUE_MAX,),
    )
    rows = {int(r[0]): (int(r[1]), str(r[2])) for r in await cur.fetchall()}
    await conn.commit()
    for order_id in rotation.pick("closed", [((o,), o) for o in rows]):
        alert_id, state = rows[order_id]
        await cancel_for_closed_alert(conn, order_id, alert_id=alert_id, alert_state=state)


async def cancel_for_closed_alert(
    conn: Any, order_id: int, *, alert_id: int, alert_state: str
) -> None:
    """Cancel the emergency order of a closed alert, unless it has moved on meanwhile
    (the worker arrived, or it was cancelled already)."""
    with contextlib.suppress(DispatchError, ValueError):
        await service.cancel_order(conn, order_id, actor="dispatcher",
                                   reason=f"alert {alert_state}")  # fmt: skip
        log.info("dispatch_cancelled", order_id=order_id, alert_id=alert_id,
                 alert_state=alert_state)  # fmt: skip


async def _missed_alerts(
    conn: Any, now: datetime, s: Settings
) -> list[tuple[tuple[int, ...], int]]:
    return await _queue(
        conn,
        "SELECT a.id FROM alerts a WHERE a.closed_at IS NULL"
        " AND a.state IN ('open', 'acknowledged') AND a.severity = ANY(%s)"
        " AND (cardinality(%s::text[]) = 0 OR a.type = ANY(%s))"
        " AND a.opened_at > %s - interval '1 day'"
        " AND NOT EXISTS (SELECT 1 FROM alert_orders ao WHERE ao.alert_id = a.id)"
        " ORDER BY a.id LIMIT %s",
        (s.dispatch_auto_severities, s.dispatch_auto_types, s.dispatch_auto_types, now,
         QUEUE_MAX),
    )  # fmt: skip


async def _dropped_alerts(conn: Any, now: datetime) -> list[tuple[tuple[int, ...], int]]:
    """Alerts still open (any state short of closed: ``dispatched`` too) whose last
    emergency order failed (the worker fell ill on the way, could not get in) or was
    cancelled by anyone but an operator, with no live order: nobody is coming, so they
    are dispatched again (a new order; the worker who dropped it is asked last,
    :mod:`dispatch.declines`). An operator's cancel is a decision about who goes (they
    dispatch again themselves), and an alert closed is not dispatched at all. The alert
    stays ``dispatched`` meanwhile: the alert lifecycle has no way back, and help is
    being sent. Before 2026-12-04 such an alert stayed ``dispatched`` with nobody on
    it, and a new fall was folded into it as an update, not sent anyone."""
    return await _queue(
        conn,
        "SELECT a.id FROM alerts a JOIN LATERAL (SELECT o.id, o.state FROM alert_orders ao"
        "   JOIN work_orders o ON o.id = ao.order_id"
        "   WHERE ao.alert_id = a.id AND o.kind = 'emergency' ORDER BY o.id DESC LIMIT 1) last"
        " ON true WHERE a.closed_at IS NULL AND a.opened_at > %s - interval '1 day'"
        " AND (last.state = 'failed' OR (last.state = 'cancelled' AND NOT EXISTS"
        "   (SELECT 1 FROM work_order_events e WHERE e.order_id = last.id"
        "    AND e.kind = 'cancelled' AND e.actor LIKE 'operator:%%')))"
        " ORDER BY a.id LIMIT %s",
        (now, QUEUE_MAX),
    )


async def _reoffer(conn: Any, order_id: int, now: datetime, assign: AssignSettings) -> None:
    with contextlib.suppress(DispatchError, ValueError):
        await offer_best(conn, order_id, now=now, settings=assign)
