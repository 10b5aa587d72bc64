"""The dispatch outbox: ``work_order_events`` rows published on MQTT, once each.

The ``work_order_events`` table is the outbox (the API writes there too); each
new row goes out on ``eldercare/v1/internal/dispatch`` and each offer (and each
cancellation, pre-emption or time-out of the worker's order) also on the
worker's own ``.../offers`` topic; an emergency's acceptance and completion also
publish the alert's move (dispatched, resolved) on ``eldercare/v1/internal/alerts``.
Rows are read by id; the ids skipped because their transaction had not
committed yet are kept as gaps and read again until they are filled or can no
longer be (:mod:`dispatch.outbox_gaps`), so an event committed late is
published whenever it commits. How far it got, gaps included, is kept in
``dispatch_outbox``, so a restart publishes what happened while the service was
down. Before 2026-12-03 a look-back of 200 ids stood in for the gaps: an event
committed behind more than 200 others, or during a restart behind one already
published, was never published.
"""

from __future__ import annotations

import json
from typing import Any

import aiomqtt
from psycopg.types.json import Jsonb

from dispatch import service
from dispatch.outbox_gaps import Cursor, Gap
from eldercare.logs import get_logger
from eldercare.topics import ALERTS, DISPATCH, worker_topic

log = get_logger(__name__)
BATCH = 500  # rows per query, each poll
_TELL_WORKER = frozenset({"cancelled", "preempted", "timed_out"})
_COLUMNS = (
    "e.id, e.order_id, e.at, e.kind, e.from_state, e.to_state, e.worker_id, e.actor,"
    " e.detail, r.home_lat, r.home_lon"
)
_JOINS = " JOIN work_orders o ON o.id = e.order_id JOIN residents r USING (resident_id)"


class Outbox:
    """How far publishing got (:class:`dispatch.outbox_gaps.Cursor`), as stored."""

    def __init__(self) -> None:
        self.cursor = Cursor(last=0)

    async def resume(self, conn: Any) -> None:
        """Where to start: the first start publishes from now on; a restart resumes
        where it stopped, with the gaps it had."""
        await conn.execute(
            "INSERT INTO dispatch_outbox (name, last_event_id) SELECT 'dispatch',"
            " coalesce(max(id), 0) FROM work_order_events ON CONFLICT (name) DO NOTHING"
        )
        cur = await conn.execute(
            "SELECT last_event_id, gaps FROM dispatch_outbox WHERE name = 'dispatch'"
        )
        row = await cur.fetchone()
        await conn.commit()
        last, stored = (int(row[0]), row[1]) if row else (0, [])
        gaps: list[Gap] = []
        for value in stored if isinstance(stored, list) else []:
            try:
                gaps.append(Gap.from_json(value))
            except (TypeError, ValueError):  # not ours: read from the last id on
                log.warning("dispatch_outbox_gap_invalid", gap=str(value)[:80])
        self.cursor = Cursor(last=last, gaps=gaps)

    async def _read(self, conn: Any) -> tuple[list[Any], list[Any], tuple[int, int]]:
        """On one snapshot: the rows in the gaps, the rows past the last id, and the
        snapshot's (xmin, xmax). With no gaps (the usual case) one statement."""
        in_gaps: list[Any] = []
        if self.cursor.gaps:  # two statements: one snapshot for both
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            lows, highs = self.cursor.ranges()
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM unnest(%s::bigint[], %s::bigint[]) g (lo, hi)"
                f" JOIN work_order_events e ON e.id BETWEEN g.lo AND g.hi{_JOINS}"
                " ORDER BY e.id LIMIT %s",
                (lows, highs, BATCH),
            )
            in_gaps = await cur.fetchall()
        cur = await conn.execute(
            "SELECT pg_snapshot_xmin(s.snap)::text::bigint,"
            " pg_snapshot_xmax(s.snap)::text::bigint, n.*"
            " FROM (SELECT pg_current_snapshot() AS snap) s LEFT JOIN LATERAL"
            f" (SELECT {_COLUMNS} FROM work_order_events e{_JOINS}"
            " WHERE e.id > %s ORDER BY e.id LIMIT %s) n ON true",
            (self.cursor.last, BATCH),
        )
        rows = await cur.fetchall()
        await conn.commit()
        xmin, xmax = rows[0][0], rows[0][1]
        new = [r[2:] for r in rows if r[2] is not None]
        return in_gaps, new, (int(xmin), int(xmax))

    async def publish_new(self, conn: Any, client: aiomqtt.Client) -> int:
        """Publish the events not yet sent; returns how many were."""
        before = (self.cursor.last, list(self.cursor.gaps))
        in_gaps, new, (xmin, xmax) = await self._read(conn)
        try:
            sent = await self._publish(conn, client, in_gaps)
            if len(in_gaps) < BATCH:  # every row of the gaps in this snapshot was read
                self.cursor.settle(xmin=xmin, xmax=xmax)
            sent += await self._publish(conn, client, new)
        finally:
            if (self.cursor.last, self.cursor.gaps) != before:
                await conn.execute(
                    "UPDATE dispatch_outbox SET last_event_id = %s, gaps = %s,"
                    " updated_at = now() WHERE name = 'dispatch'",
                    (self.cursor.last, Jsonb([g.to_json() for g in self.cursor.gaps])),
                )
                await conn.commit()
        return sent

    async def _publish(self, conn: Any, client: aiomqtt.Client, rows: list[Any]) -> int:
        sent = 0
        for eid, oid, at, kind, frm, to, wid, actor, detail, lat, lon in rows:
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
            for moved in await service.alert_moved_by(
                conn, stored, kind=kind, actor=actor, at=at, detail=detail
            ):  # the alerts' own subscribers hear of it too
                payload = json.dumps(moved.to_json(), default=str, separators=(",", ":"))
                await client.publish(ALERTS, payload.encode(), qos=1)
            self.cursor.took(eid)
            sent += 1
        return sent
