"""The dispatch outbox: ``work_order_events`` rows published on MQTT, once each.

The ``work_order_events`` table is the outbox (the API writes there too); each
new row goes out on ``eldercare/v1/internal/dispatch`` and each offer (and each
cancellation, pre-emption or time-out of the worker's order) also on the
worker's own ``.../offers`` topic; an emergency's acceptance and completion also
publish the alert's move (dispatched, resolved) on ``eldercare/v1/internal/alerts``.
Rows are read by id with a look-back (``LOOK_BACK``), so one committed late
behind a higher id is not missed; how far it got is kept in ``dispatch_outbox``,
so a restart publishes what happened while the service was down.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import aiomqtt

from dispatch import service
from eldercare.topics import ALERTS, DISPATCH, worker_topic

LOOK_BACK = 200
_TELL_WORKER = frozenset({"cancelled", "preempted", "timed_out"})


class Outbox:
    """How far publishing got: the last event id, the start floor, the ids just sent."""

    def __init__(self) -> None:
        self.last_event = 0
        self.floor = 0  # published before this process started
        self._seen: deque[int] = deque(maxlen=4 * LOOK_BACK)

    async def resume(self, conn: Any) -> None:
        """Where to start: the first start publishes from now on; a restart resumes
        where it stopped."""
        await conn.execute(
            "INSERT INTO dispatch_outbox (name, last_event_id) SELECT 'dispatch',"
            " coalesce(max(id), 0) FROM work_order_events ON CONFLICT (name) DO NOTHING"
        )
        cur = await conn.execute(
            "SELECT last_event_id FROM dispatch_outbox WHERE name = 'dispatch'"
        )
        row = await cur.fetchone()
        await conn.commit()
        self.last_event = self.floor = int(row[0]) if row else 0

    async def publish_new(self, conn: Any, client: aiomqtt.Client) -> int:
        """Publish the events not yet sent; returns how many were."""
        cur = await conn.execute(
            "SELECT e.id, e.order_id, e.at, e.kind, e.from_state, e.to_state, e.worker_id,"
            " e.actor, e.detail, r.home_lat, r.home_lon FROM work_order_events e"
            " JOIN work_orders o ON o.id = e.order_id JOIN residents r USING (resident_id)"
            " WHERE e.id > %s ORDER BY e.id LIMIT 500",
            (max(self.floor, self.last_event - LOOK_BACK),),
        )
        rows = await cur.fetchall()
        await conn.commit()
        sent = 0
        for eid, oid, at, kind, frm, to, wid, actor, detail, lat, lon in rows:
            if eid in self._seen:
                continue
            stored = await service.get_order(conn, oid)
            order = stored.to_json()
            event = {
                "kind": kind,
                "event_id": eid,
                "order_id": oid,
                "at": at.isoformat(),
                "from_state": frm,
                "to_state": to,
                "worker_id": wid,
                "actor": actor,
                "detail": detail,
                "order": order,
            }
            await client.publish(DISPATCH, json.dumps(event).encode(), qos=1)
            if kind == "offered" and wid:
                offer = {**event, "home": {"lat": lat, "lon": lon}}
                await client.publish(worker_topic(wid, "offers"), json.dumps(offer).encode(), qos=1)
            elif kind in _TELL_WORKER and wid:  # the phone drops the job
                await client.publish(worker_topic(wid, "offers"), json.dumps(event).encode(), qos=1)
            moved = await service.alert_moved_by(conn, stored, kind=kind, actor=actor, at=at)
            if moved is not None:  # the alert's own subscribers hear of it too
                payload = json.dumps(moved.to_json(), default=str, separators=(",", ":"))
                await client.publish(ALERTS, payload.encode(), qos=1)
            self._seen.append(eid)
            self.last_event = max(self.last_event, eid)
            sent += 1
        if sent:
            await conn.execute(
                "UPDATE dispatch_outbox SET last_event_id = greatest(last_event_id, %s),"
                " updated_at = now() WHERE name = 'dispatch'",
                (self.last_event,),
            )
            await conn.commit()
        return sent
