"""Alerts: the scoped list with filters, one alert with its history, operator actions.

Actions go through ``alerts.store`` (the pure transition table decides; an
invalid move answers 409). Each change is published on the internal alerts
topic by the live hub when a broker is configured, as the engine does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from psycopg.rows import dict_row

from alerts import store
from alerts.escalation_store import record_escalations
from alerts.lifecycle import Escalation, InvalidTransition, Outcome
from api.alert_view import transition_for, user_ids
from api.deps import Ctx, Db, require, utcnow
from api.family_view import coarsen
from api.identity import user_roles
from api.order_view import WHOLE
from api.pagination import MAX_LIMIT, decode_id_cursor, page
from api.principal import CENTRE_ROLES, Perm, Principal
from api.problems import Problem, not_found
from api.routes.status import ALERT_PROGRESS_SQL
from api.schemas import MAX_ID, AlertDetail, AlertId, AlertOut, NoteIn, Page, ResolveIn
from api.scoping import json_response

router = APIRouter(tags=["alerts"])
Reader = Annotated[Principal, Depends(require(Perm.READ_ALERTS))]
Actor = Annotated[Principal, Depends(require(Perm.ACT_ALERTS))]
_COLUMNS = (
    "a.id, a.resident_id, a.device_id, a.type, a.severity, a.state, a.outcome, a.opened_at,"
    " a.updated_at, a.closed_at, a.repeat_count, r.name AS resident_name, r.district"
)


@router.get("/alerts", response_model=Page[AlertOut])
async def list_alerts(
    *,
    me: Reader,
    db: Db,
    state: Literal["open", "closed", "all"] = "open",
    severity: Literal["critical", "high", "medium", "low"] | None = None,
    resident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    district: Annotated[str | None, Query(max_length=100)] = None,
    type: Annotated[str | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: str | None = None,
) -> Response:
    """Newest first. ``state=open`` means not closed (open, acknowledged, dispatched).
    Each row carries ``progress``, who is coming and when, as the status view has it
    (until 2026-12-04 the console's queue showed it only after the next order event)."""
    scope, params = me.resident_scope("a.resident_id", "r.district")
    where, args = [scope], list(params)
    if state == "open":
        where.append("a.closed_at IS NULL")
    elif state == "closed":
        where.append("a.closed_at IS NOT NULL")
    for column, value in (
        ("a.severity", severity),
        ("a.resident_id", resident_id),
        ("r.district", district),
        ("a.type", type),
    ):
        if value is not None:
            where.append(f"{column} = %s")
            args.append(value)
    before = decode_id_cursor(cursor)
    if before is not None:
        where.append("a.id < %s")
        args.append(before)
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS}, {ALERT_PROGRESS_SQL} AS progress FROM alerts a"
            " JOIN residents r ON r.resident_id = a.resident_id"
            f" WHERE {' AND '.join(where)} ORDER BY a.id DESC LIMIT %s",
            [*args, limit + 1],
        )
        rows = await cur.fetchall()
    return json_response(page(rows, limit=limit, key=["id"]))


async def scoped_alert(db: Db, me: Principal, alert_id: int) -> dict[str, Any]:
    scope, params = me.resident_scope("a.resident_id", "r.district")
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS}, a.detail, r.birth_year, r.address, r.home_lat, r.home_lon,"
            " r.conditions FROM alerts a JOIN residents r ON r.resident_id = a.resident_id"
            f" WHERE a.id = %s AND {scope}",
            [alert_id, *params],
        )
        row = await cur.fetchone()
    if row is None:
        raise not_found(f"alert {alert_id}")
    return row


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertDetail,
    responses={404: {"description": "no such alert in your scope"}},
)
async def get_alert(alert_id: AlertId, me: Reader, ctx: Ctx, db: Db) -> Response:
    row = await scoped_alert(db, me, alert_id)
    if not me.full_precision:  # a family: the fix coarsened as in their status view
        row["detail"] = coarsen(row["detail"], ctx.settings.api_family_location_decimals)
    row["resident"] = {
        "id": row["resident_id"],
        "name": row["resident_name"],
        "district": row["district"],
        "birth_year": row.pop("birth_year"),
        "address": row.pop("address"),
        "home": {"lat": row.pop("home_lat"), "lon": row.pop("home_lon")},
        "conditions": row.pop("conditions"),
    }
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT at, from_state, to_state, actor, note FROM alert_transitions"
            " WHERE alert_id = %s ORDER BY at, id",
            (alert_id,),
        )
        transitions = await cur.fetchall()
    if me.role not in WHOLE:  # a family: roles for staff ids, the platform's notes only
        roles = await user_roles(db, user_ids(t["actor"] for t in transitions))
        transitions = [{**transition_for(me, t, roles), "actor_name": None} for t in transitions]
    else:  # the centre's staff: who, by name (an API key gets ids only)
        names = {}
        if me.role in CENTRE_ROLES:  # staff see staff names
            names = await _actor_names(db, {t["actor"] for t in transitions})
        for t in transitions:
            t["actor_name"] = names.get(t["actor"])
    row["transitions"] = transitions
    ctx.audit.record(
        me, "read_alert", f"alert:{alert_id}", at=utcnow(), resident_id=row["resident_id"]
    )
    return json_response(row)


async def _actor_names(db: Db, actors: set[str]) -> dict[str, str]:
    """``user:7`` and ``worker:W1`` -> the person's name, for the centre's history."""
    workers = sorted(a.removeprefix("worker:") for a in actors if a.startswith("worker:"))
    users = user_ids(actors)
    if not workers and not users:
        return {}
    cur = await db.execute(
        "SELECT 'user:' || id, COALESCE(NULLIF(display_name, ''), username) FROM users"
        " WHERE id = ANY(%s) UNION ALL"
        " SELECT 'worker:' || worker_id, name FROM service_workers WHERE worker_id = ANY(%s)",
        (users, workers),
    )
    return {str(a): str(n) for a, n in await cur.fetchall()}


async def _act(
    ctx: Ctx, db: Db, me: Principal, alert_id: int, *, kind: str, body: NoteIn | ResolveIn
) -> Response:
    await scoped_alert(db, me, alert_id)
    await db.commit()  # the store runs its own transaction
    now = utcnow()
    try:
        if kind == "acknowledge":
            change = await store.acknowledge(db, alert_id, actor=me.actor, at=now, note=body.note)
        elif kind == "resolve":
            if not isinstance(body, ResolveIn):
                raise Problem(422, "resolving needs an outcome")
            change = await store.resolve(
                db, alert_id, outcome=Outcome(body.outcome), actor=me.actor, at=now, note=body.note
            )
        elif kind == "false_alarm":
            change = await store.false_alarm(db, alert_id, actor=me.actor, at=now, note=body.note)
        else:
            change = await store.dispatch(db, alert_id, actor=me.actor, at=now, note=body.note)
    except InvalidTransition as exc:
        raise Problem(409, str(exc)) from exc
    except store.UnknownAlert as exc:
        raise not_found(f"alert {alert_id}") from exc
    ctx.audit.record(me, kind, f"alert:{alert_id}", at=now, resident_id=change.alert.resident_id)
    await publish_alert_change(ctx, change)
    return json_response(change.to_json())


async def publish_alert_change(ctx: Ctx, change: store.AlertChange) -> None:
    hub = ctx.hub
    if hub is not None:
        await hub.publish_alert(change.to_json())  # type: ignore[attr-defined]


_ACTION_DOC: dict[int | str, dict[str, Any]] = {
    409: {"description": "not a valid move from the alert's state"},
    404: {"description": "no such alert in your scope"},
}


@router.post("/alerts/{alert_id}/acknowledge", responses=_ACTION_DOC)
async def acknowledge(
    alert_id: AlertId, me: Actor, ctx: Ctx, db: Db, body: NoteIn | None = None
) -> Response:
    return await _act(ctx, db, me, alert_id, kind="acknowledge", body=body or NoteIn())


@router.post("/alerts/{alert_id}/resolve", responses=_ACTION_DOC)
async def resolve(alert_id: AlertId, body: ResolveIn, me: Actor, ctx: Ctx, db: Db) -> Response:
    """Close with an outcome; ``false`` closes it as a false alarm."""
    kind = "false_alarm" if body.outcome == "false" else "resolve"
    return await _act(ctx, db, me, alert_id, kind=kind, body=body)


@router.post("/alerts/{alert_id}/escalate", responses=_ACTION_DOC)
async def escalate(
    alert_id: AlertId, me: Actor, ctx: Ctx, db: Db, body: NoteIn | None = None
) -> Response:
    """Hand the alert to the supervisor now (the next escalation level), state unchanged."""
    row = await scoped_alert(db, me, alert_id)
    if row["state"] != "open":
        raise Problem(
            409, f"alert {alert_id} is {row['state']}: only an unacknowledged alert is escalated"
        )
    level = int((row["detail"].get("escalation") or {}).get("level", 0)) + 1
    await db.commit()
    now = utcnow()
    target = "supervisor" if level == 1 else "family_contact"
    changes = await _escalate(
        db,
        alert_id,
        level=level,
        target=target,
        now=now,
        actor=me.actor,
        note=(body or NoteIn()).note,
    )
    if not changes:
        raise Problem(409, f"alert {alert_id} changed meanwhile; reload it")
    ctx.audit.record(me, "escalate", f"alert:{alert_id}", at=now, resident_id=row["resident_id"])
    await publish_alert_change(ctx, changes[0])
    return json_response(changes[0].to_json())


async def _escalate(
    db: Db, alert_id: int, *, level: int, target: str, now: datetime, actor: str, note: str
) -> list[store.AlertChange]:
    del note  # the store writes its own note ("escalated to ... (level n)")
    return await record_escalations(
        db, [Escalation(alert_id, level, target, now)], at=now, actor=actor
    )
