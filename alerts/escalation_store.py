"""Escalation of unacknowledged alerts in the database: which are due a step
(:func:`unacknowledged`, for :func:`alerts.lifecycle.due_escalations`) and the
steps taken (:func:`record_escalations`), on the alert's detail and as a
transition (actor ``escalation``, state unchanged). A detector's later update of
the alert keeps the escalation (:mod:`alerts.store`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from psycopg.types.json import Jsonb

from alerts.lifecycle import AlertState, Escalation, Unacknowledged
from alerts.store import COLUMNS, AlertChange, Conn, one, record

ESCALATION = "escalation"

# the level reached so far: detail.escalation.level (record_escalations), else 0
_UNACKNOWLEDGED = """
SELECT resident_id, id, severity, state, opened_at,
       CASE WHEN jsonb_typeof(detail -> 'escalation' -> 'level') = 'number'
            THEN (detail -> 'escalation' ->> 'level')::numeric::integer ELSE 0 END
FROM alerts
WHERE closed_at IS NULL AND state = 'open' AND severity = ANY(%s)
"""


async def unacknowledged(conn: Conn, severities: Iterable[str]) -> list[tuple[int, Unacknowledged]]:
    """(resident, escalation view) of each alert of ``severities`` nobody acknowledged."""
    cur = await conn.execute(_UNACKNOWLEDGED, (sorted(severities),))
    return [(int(r[0]), Unacknowledged(int(r[1]), str(r[2]), AlertState(r[3]), r[4], int(r[5])))
            for r in await cur.fetchall()]  # fmt: skip


async def record_escalations(
    conn: Conn, escalations: list[Escalation], *, at: datetime, actor: str = ESCALATION
) -> list[AlertChange]:
    """Record due escalations in one transaction; skips alerts acknowledged meanwhile."""
    changes: list[AlertChange] = []
    if not escalations:
        return changes
    async with conn.transaction():
        for esc in escalations:
            step = {"level": esc.level, "target": esc.target, "at": at.isoformat()}
            alert = await one(
                conn,
                f"UPDATE alerts SET detail = detail || %s, updated_at = %s"
                f" WHERE id = %s AND state = 'open'"
                f" AND COALESCE((detail -> 'escalation' ->> 'level')::int, 0) < %s"
                f" RETURNING {COLUMNS}",
                (Jsonb({"escalation": step}), at, esc.alert_id, esc.level),
            )
            if alert is None:  # acknowledged, closed or escalated by another engine
                continue
            note = esc.note
            await record(conn, alert.id, at=at, from_state=alert.state, to_state=alert.state,
                          actor=actor, note=note)  # fmt: skip
            changes.append(AlertChange("escalated", alert, actor, at, note))
    return changes
