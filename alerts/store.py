"""Persist alert events and operator actions (the database half of the lifecycle).

* :func:`apply_events` writes one batch of detector events in ONE transaction:
  ``AlertRaised`` inserts an open alert; if one of that resident and type is
  already open (the partial unique index ``alerts_one_open``), the raise is an
  update of it instead (``ON CONFLICT``), so a restarted engine or a second
  process can never pile up duplicates. ``AlertUpdated`` updates severity,
  detail and ``repeat_count`` (raise = 1, each report after it + 1); the
  escalation recorded on the detail is kept. A raised fall or long lie meeting
  one not dispatched is a new episode (:func:`_supersede`).
  ``AlertCleared`` closes it as ``auto_cleared`` or, cancelled by the wearer,
  ``false_alarm`` (see :mod:`alerts.lifecycle`). Each state change writes an
  ``alert_transitions`` row with the actor and the time.
* :func:`acknowledge`, :func:`dispatch`, :func:`resolve`, :func:`false_alarm`:
  operator actions, validated by the pure transition table; an invalid one
  raises :class:`~alerts.lifecycle.InvalidTransition` and changes nothing.
* Escalations are written by :mod:`alerts.escalation_store`.

Functions take an open ``AsyncConnection`` and commit their own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow, class_row
from psycopg.types.json import Jsonb

from alerts.detectors.types import AlertCleared, AlertEvent, AlertRaised, AlertType, AlertUpdated
from alerts.lifecycle import (
    Action,
    AlertState,
    Outcome,
    engine_clear,
    next_state,
    outcome_for,
)

ENGINE = "engine"
COLUMNS = (
    "id, resident_id, device_id, type, severity, state, outcome, opened_at, updated_at,"
    " closed_at, detail, repeat_count"
)


class AlertStoreError(Exception):
    """An alert operation that cannot be done."""


class UnknownAlert(AlertStoreError):  # noqa: N818 - reads as the domain's word
    def __init__(self, alert_id: int) -> None:
        self.alert_id = alert_id
        super().__init__(f"no alert {alert_id}")


@dataclass(frozen=True, slots=True)
class StoredAlert:
    id: int
    resident_id: int
    device_id: str | None
    type: str
    severity: str
    state: str
    outcome: str | None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    detail: dict[str, Any]
    repeat_count: int


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One persisted change, as published: what happened and the alert after it."""

    kind: str  # raised | updated | cleared | acknowledged | dispatched | resolved | ...
    alert: StoredAlert
    actor: str
    at: datetime
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        a = self.alert
        return {
            "kind": self.kind,
            "alert_id": a.id,
            "resident_id": a.resident_id,
            "device_id": a.device_id,
            "type": a.type,
            "severity": a.severity,
            "state": a.state,
            "outcome": a.outcome,
            "opened_at": a.opened_at.isoformat(),
            "closed_at": a.closed_at.isoformat() if a.closed_at else None,
            "repeat_count": a.repeat_count,
            "detail": a.detail,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "note": self.note,
        }


Conn = psycopg.AsyncConnection[TupleRow]


async def one(conn: Conn, query: str, params: tuple[object, ...]) -> StoredAlert | None:
    async with conn.cursor(row_factory=class_row(StoredAlert)) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


async def record(conn: Conn, alert_id: int, *, at: datetime, from_state: str | None,
                  to_state: str, actor: str, note: str) -> None:  # fmt: skip
    await conn.execute(
        "INSERT INTO alert_transitions (alert_id, at, from_state, to_state, actor, note)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (alert_id, at, from_state, to_state, actor, note),
    )


# A detector's detail replaces the stored one, but for who has been paged already
# (record_escalations): wiping it paged the supervisor again after a second SOS press.
_KEPT = (
    "CASE WHEN alerts.detail ? 'escalation'"
    " THEN jsonb_build_object('escalation', alerts.detail -> 'escalation') ELSE '{}' END"
)
# Alert types whose detector ends an episode when an operator closes it (or its sibling)
_EPISODES = frozenset({AlertType.FALL, AlertType.LONG_LIE})
SUPERSEDED = "superseded"


async def _supersede(conn: Conn, e: AlertRaised, actor: str) -> AlertChange | None:
    """Close an open fall (or long lie) that a newly raised one meets, unless dispatched.

    The detector raises only what it holds no alert for: its episode ended (an operator
    closed the fall's long lie, or the long lie's fall), while this one stayed open,
    acknowledged perhaps days ago. Folded into it, as before 2026-12-04, the new fall
    was an update of an old alert: not escalated, not offered to dispatch. A dispatched
    one keeps it (someone is on the way to that home)."""
    old = await one(
        conn,
        f"SELECT {COLUMNS} FROM alerts WHERE resident_id = %s AND type = %s"
        " AND closed_at IS NULL FOR UPDATE",
        (e.resident_id, e.type.value),
    )
    if old is None or old.state == AlertState.DISPATCHED:
        return None
    target = next_state(AlertState(old.state), Action.AUTO_CLEAR, alert_id=old.id)
    closed = await one(
        conn,
        f"UPDATE alerts SET state = %s, closed_at = %s, updated_at = %s, detail = detail || %s"
        f" WHERE id = %s RETURNING {COLUMNS}",
        (target.value, e.at, e.at,
         Jsonb({"cleared": {"reason": SUPERSEDED, "at": e.at.isoformat()}}), old.id),
    )  # fmt: skip
    if closed is None:
        raise UnknownAlert(old.id)
    await record(conn, old.id, at=e.at, from_state=old.state, to_state=target, actor=actor,
                  note=SUPERSEDED)  # fmt: skip
    return AlertChange("cleared", closed, actor, e.at, SUPERSEDED)


async def _raise(conn: Conn, e: AlertRaised | AlertUpdated, actor: str) -> AlertChange:
    async with conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO alerts (resident_id, device_id, type, severity, state, opened_at,"
            " updated_at, detail) VALUES (%s, %s, %s, %s, 'open', %s, %s, %s)"
            " ON CONFLICT (resident_id, type) WHERE closed_at IS NULL DO UPDATE SET"
            " severity = EXCLUDED.severity,"
            " device_id = COALESCE(EXCLUDED.device_id, alerts.device_id),"
            f" detail = EXCLUDED.detail || {_KEPT}, updated_at = EXCLUDED.updated_at,"
            " repeat_count = alerts.repeat_count + 1"
            " RETURNING id, (xmax = 0) AS inserted",
            (
                e.resident_id,
                e.device_id,
                e.type.value,
                e.severity.value,
                e.at,
                e.at,
                Jsonb(dict(e.detail)),
            ),
        )
        row = await cur.fetchone()
    if row is None:
        raise RuntimeError("INSERT ... RETURNING gave no row for an alert")
    alert_id, inserted = int(row[0]), bool(row[1])
    if inserted:
        await record(conn, alert_id, at=e.at, from_state=None, to_state=AlertState.OPEN,
                      actor=actor, note="raised")  # fmt: skip
    alert = await _get(conn, alert_id)
    return AlertChange("raised" if inserted else "updated", alert, actor, e.at)


async def _update(conn: Conn, e: AlertUpdated, actor: str) -> AlertChange:
    alert = await one(
        conn,
        f"UPDATE alerts SET severity = %s, device_id = COALESCE(%s, device_id),"
        f" detail = %s || {_KEPT},"
        f" updated_at = %s, repeat_count = repeat_count + 1"
        f" WHERE resident_id = %s AND type = %s AND closed_at IS NULL RETURNING {COLUMNS}",
        (
            e.severity.value,
            e.device_id,
            Jsonb(dict(e.detail)),
            e.at,
            e.resident_id,
            e.type.value,
        ),
    )
    if alert is None:  # closed meanwhile (an operator), or never stored: open it afresh
        return await _raise(conn, e, actor)
    return AlertChange("updated", alert, actor, e.at)


async def _clear(conn: Conn, e: AlertCleared, actor: str) -> AlertChange | None:
    alert = await one(
        conn,
        f"SELECT {COLUMNS} FROM alerts WHERE resident_id = %s AND type = %s"
        " AND closed_at IS NULL FOR UPDATE",
        (e.resident_id, e.type.value),
    )
    if alert is None:
        return None  # an operator closed it first
    closing = engine_clear(AlertState(alert.state), e.reason)
    cleared = {"reason": e.reason.value, "at": e.at.isoformat()}
    if closing is None:  # dispatched: keep it, say so on the alert
        kept = await one(
            conn,
            f"UPDATE alerts SET detail = detail || %s, updated_at = %s WHERE id = %s"
            f" RETURNING {COLUMNS}",
            (Jsonb({"detector_cleared": cleared}), e.at, alert.id),
        )
        if kept is None:
            raise UnknownAlert(alert.id)
        return AlertChange("updated", kept, actor, e.at, e.reason.value)
    closed = await one(
        conn,
        f"UPDATE alerts SET state = %s, outcome = %s, closed_at = %s, updated_at = %s,"
        f" detail = detail || %s WHERE id = %s RETURNING {COLUMNS}",
        (
            closing.state.value,
            closing.outcome.value if closing.outcome else None,
            e.at,
            e.at,
            Jsonb({"cleared": cleared}),
            alert.id,
        ),
    )
    if closed is None:
        raise UnknownAlert(alert.id)
    await record(conn, alert.id, at=e.at, from_state=alert.state, to_state=closing.state,
                  actor=actor, note=e.reason.value)  # fmt: skip
    return AlertChange("cleared", closed, actor, e.at, e.reason.value)


async def apply_events(
    conn: Conn, events: list[AlertEvent], *, actor: str = ENGINE
) -> list[AlertChange]:
    """Persist one batch of detector events in one transaction; returns what changed."""
    changes: list[AlertChange] = []
    if not events:
        return changes
    async with conn.transaction():
        for e in events:
            if isinstance(e, AlertRaised):
                if e.type in _EPISODES and (old := await _supersede(conn, e, actor)):
                    changes.append(old)
                changes.append(await _raise(conn, e, actor))
            elif isinstance(e, AlertUpdated):
                changes.append(await _update(conn, e, actor))
            else:
                change = await _clear(conn, e, actor)
                if change is not None:
                    changes.append(change)
    return changes


async def _get(conn: Conn, alert_id: int, *, lock: bool = False) -> StoredAlert:
    suffix = " FOR UPDATE" if lock else ""
    alert = await one(conn, f"SELECT {COLUMNS} FROM alerts WHERE id = %s{suffix}", (alert_id,))
    if alert is None:
        raise UnknownAlert(alert_id)
    return alert


async def get_alert(conn: Conn, alert_id: int) -> StoredAlert:
    alert = await _get(conn, alert_id)
    await conn.commit()
    return alert


async def recorded_change(
    conn: Conn, alert_id: int, *, to_state: str, actor: str, at: datetime
) -> AlertChange | None:
    """The alert's recorded move to ``to_state`` by ``actor`` at ``at``, with the alert
    as it is now; None if there is no such move. For publishing a move that another
    service made in its own transaction (dispatch's outbox). Does not commit."""
    cur = await conn.execute(
        "SELECT note FROM alert_transitions WHERE alert_id = %s AND to_state = %s"
        " AND actor = %s AND at = %s ORDER BY id DESC LIMIT 1",
        (alert_id, to_state, actor, at),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    alert = await one(conn, f"SELECT {COLUMNS} FROM alerts WHERE id = %s", (alert_id,))
    return None if alert is None else AlertChange(to_state, alert, actor, at, str(row[0]))


async def open_alerts(conn: Conn) -> list[StoredAlert]:
    """Every alert not closed (open, acknowledged, dispatched), oldest first."""
    async with conn.cursor(row_factory=class_row(StoredAlert)) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM alerts WHERE closed_at IS NULL ORDER BY opened_at, id"
        )
        rows = await cur.fetchall()
    await conn.commit()
    return rows


async def recently_closed(
    conn: Conn, *, types: tuple[str, ...], since: datetime
) -> list[StoredAlert]:
    """Alerts of ``types`` closed at or after ``since``, oldest first (restart: an
    unconfirmed fall's watch, the nights already raised; :func:`alerts.restart.seed_states`)."""
    async with conn.cursor(row_factory=class_row(StoredAlert)) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM alerts WHERE type = ANY(%s)"
            " AND closed_at >= %s ORDER BY opened_at, id",
            (list(types), since),
        )
        rows = await cur.fetchall()
    await conn.commit()
    return rows


async def recently_closed_falls(conn: Conn, *, since: datetime) -> list[StoredAlert]:
    """Fall and long-lie alerts closed at or after ``since``, oldest first."""
    return await recently_closed(conn, types=("fall", "long_lie"), since=since)


async def _operator(conn: Conn, alert_id: int, action: Action, *, actor: str, at: datetime,
                    note: str, outcome: Outcome | None = None) -> AlertChange:  # fmt: skip
    checked = outcome_for(action, outcome)
    async with conn.transaction():
        alert = await _get(conn, alert_id, lock=True)
        target = next_state(AlertState(alert.state), action, alert_id=alert_id)
        closed_at = at if target.closed else None
        new = await one(
            conn,
            f"UPDATE alerts SET state = %s, outcome = COALESCE(%s, outcome), updated_at = %s,"
            f" closed_at = %s WHERE id = %s RETURNING {COLUMNS}",
            (target.value, checked.value if checked else None, at, closed_at, alert_id),
        )
        if new is None:
            raise UnknownAlert(alert_id)
        await record(conn, alert_id, at=at, from_state=alert.state, to_state=target,
                      actor=actor, note=note)  # fmt: skip
    return AlertChange(target.value, new, actor, at, note)


async def acknowledge(conn: Conn, alert_id: int, *, actor: str, at: datetime,
                      note: str = "") -> AlertChange:  # fmt: skip
    return await _operator(conn, alert_id, Action.ACKNOWLEDGE, actor=actor, at=at, note=note)


async def dispatch(conn: Conn, alert_id: int, *, actor: str, at: datetime,
                   note: str = "") -> AlertChange:  # fmt: skip
    return await _operator(conn, alert_id, Action.DISPATCH, actor=actor, at=at, note=note)


async def resolve(conn: Conn, alert_id: int, *, outcome: Outcome, actor: str, at: datetime,
                  note: str = "") -> AlertChange:  # fmt: skip
    return await _operator(conn, alert_id, Action.RESOLVE, actor=actor, at=at, note=note,
                           outcome=outcome)  # fmt: skip


async def false_alarm(conn: Conn, alert_id: int, *, actor: str, at: datetime,
                      note: str = "") -> AlertChange:  # fmt: skip
    return await _operator(conn, alert_id, Action.FALSE_ALARM, actor=actor, at=at, note=note)


async def open_alert_keys(conn: Conn) -> list[tuple[int, str]]:
    """(resident, type) of every alert not closed: what the detectors may still hold.

    Narrow on purpose: the engine asks every 5 s, and decoding each open alert's
    ``detail`` took ~0.1 s at 5,000 open alerts (``bench/tick.py``)."""
    cur = await conn.execute("SELECT resident_id, type FROM alerts WHERE closed_at IS NULL")
    return [(int(r[0]), str(r[1])) for r in await cur.fetchall()]
