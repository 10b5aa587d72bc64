"""Work orders, workers, the service catalogue, alert dispatch and reports, over the
dispatch service layer (``dispatch.service``: it decides and commits; this module
decides who may ask and maps its errors to HTTP).

Scope (:mod:`api.dispatch_scope`): the centre sees its district's orders and
workers; a family its residents' orders; a worker their own orders and record. Out
of scope answers 404. What a family or a worker sees of an order in scope:
:mod:`api.order_view`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response
from pydantic import Field

from api.deps import Ctx, Tx, require, utcnow
from api.dispatch_scope import (
    ERRORS,
    actor_of,
    dispatch_problem,
    dispatch_settings,
    scoped_order,
    scoped_worker,
)
from api.order_view import history_for, order_for
from api.pagination import MAX_LIMIT, decode_id_cursor, encode_cursor
from api.principal import Perm, Principal, Role
from api.problems import Problem, forbidden, not_found
from api.routes.alerts import scoped_alert
from api.schemas import MAX_ID, AlertId, Lat, Lon, RowId
from api.scoping import ensure_resident, json_response
from dispatch import service
from dispatch.queries import DEFAULT_ZONE
from dispatch.recurring import local_zone
from dispatch.store import StoredOrder
from eldercare.json_files import Strict

router = APIRouter(tags=["orders"])
Reader = Annotated[Principal, Depends(require(Perm.READ_ORDERS))]
Manager = Annotated[Principal, Depends(require(Perm.MANAGE_ORDERS))]
Booker = Annotated[Principal, Depends(require(Perm.BOOK_ORDERS))]
Worker = Annotated[Principal, Depends(require(Perm.WORK_ORDERS))]
AlertActor = Annotated[Principal, Depends(require(Perm.ACT_ALERTS))]
WorkerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


class BookIn(Strict):
    resident_id: int = Field(ge=1, le=MAX_ID)
    service_type: str = Field(min_length=1, max_length=40)
    window_start: datetime
    window_end: datetime
    notes: str = Field(default="", max_length=2000)


class AssignIn(Strict):
    worker_id: WorkerId


class DispatchIn(Strict):
    worker_id: WorkerId | None = None


class ReasonIn(Strict):
    reason: str = Field(default="", max_length=2000)


class PointIn(Strict):
    lat: Lat
    lon: Lon


class CheckOutIn(Strict):
    notes: str = Field(default="", max_length=2000)
    outcome: str = Field(default="done", max_length=40)


class StatusIn(Strict):
    status: Literal["available", "en_route", "on_site", "off_shift"]


@router.get("/orders")
async def list_orders(
    *,
    me: Reader,
    ctx: Ctx,
    db: Tx,
    worker_id: Annotated[str | None, Query(max_length=64)] = None,
    resident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    date: date | None = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
    district: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> Response:
    """Newest first, in the caller's scope. ``date``: a local day (the catalogue's time
    zone, Asia/Shanghai by default), as day planning counts days."""
    if me.role is Role.WORKER:
        worker_id = me.worker_id
    elif me.role is Role.FAMILY:
        if resident_id is None and len(me.resident_ids) == 1:
            resident_id = me.resident_ids[0]
        if resident_id is None:
            raise Problem(400, "give resident_id: you are linked to several residents")
        if resident_id not in me.resident_ids:
            raise not_found(f"resident {resident_id}")
    elif me.role is not Role.ADMIN and me.district is not None:
        if district is not None and district != me.district:
            return json_response({"items": [], "next_cursor": None})
        district = me.district
    zone = DEFAULT_ZONE
    if date is not None:  # the catalogue's zone: read for a date only
        try:
            zone = local_zone(ctx.settings.dispatch_catalogue)
        except ERRORS as exc:
            raise dispatch_problem(exc) from exc
    orders, nxt = await service.list_orders(
        db,
        worker_id=worker_id,
        resident_id=resident_id,
        day=date,
        state=state,
        district=district,
        limit=limit,
        cursor=decode_id_cursor(cursor),
        zone=zone,
    )
    return json_response(
        {
            "items": [order_for(me, o.to_json()) for o in orders],
            "next_cursor": encode_cursor([nxt]) if nxt is not None else None,
        }
    )


@router.get("/orders/{order_id}")
async def get_order(order_id: RowId, me: Reader, db: Tx) -> Response:
    """The order and its history (every change, who and when)."""
    order = await scoped_order(db, me, order_id)
    events = await service.order_events(db, order_id)
    return json_response(history_for(me, order.to_json(), events))


@router.post("/orders", status_code=201)
async def book(
    body: BookIn,
    me: Booker,
    ctx: Ctx,
    db: Tx,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Book a service. With an ``Idempotency-Key`` a retry returns the same order."""
    if me.role is Role.FAMILY:
        if body.resident_id not in me.resident_ids:
            raise not_found(f"resident {body.resident_id}")
    else:
        await ensure_resident(db, me, body.resident_id)
    key = f"{me.actor}:{idempotency_key}" if idempotency_key else None
    try:
        order, created = await service.book_order(
            db,
            resident_id=body.resident_id,
            service_type=body.service_type,
            window_start=body.window_start,
            window_end=body.window_end,
            actor=actor_of(me),
            notes=body.notes,
            idempotency_key=key,
        )
    except ERRORS as exc:
        raise dispatch_problem(exc) from exc
    if not created and (
        order.resident_id,
        order.service_type,
        order.window_start,
        order.window_end,
    ) != (body.resident_id, body.service_type, body.window_start, body.window_end):
        raise Problem(422, "this Idempotency-Key was used with a different request")
    ctx.audit.record(
        me, "book_order", f"order:{order.id}", at=utcnow(), resident_id=order.resident_id
    )
    return json_response(order_for(me, order.to_json()), status=201)


@router.post("/orders/{order_id}/cancel")
async def cancel(
    order_id: RowId, me: Booker, ctx: Ctx, db: Tx, body: ReasonIn | None = None
) -> Response:
    """The centre cancels any order of its district; a family its residents' bookings."""
    order = await scoped_order(db, me, order_id)
    if me.role is Role.FAMILY and order.kind == "emergency":
        raise forbidden("an emergency visit is cancelled by the centre")
    return await _do(
        ctx,
        me,
        order,
        "cancel_order",
        service.cancel_order(db, order_id, actor=actor_of(me), reason=(body or ReasonIn()).reason),
    )


@router.post("/orders/{order_id}/assign")
async def assign(order_id: RowId, body: AssignIn, me: Manager, ctx: Ctx, db: Tx) -> Response:
    """Override the assignment: offer the order to this worker. Routine work goes to a
    worker of the caller's district (before 2026-12-03 to any worker id in the city);
    an emergency to whoever can go, as its candidates are drawn city-wide."""
    order = await scoped_order(db, me, order_id)
    if order.kind != "emergency":
        await scoped_worker(db, me, body.worker_id)
    return await _do(
        ctx,
        me,
        order,
        "assign_order",
        service.assign_order(
            db, order_id, body.worker_id, actor=actor_of(me), settings=dispatch_settings(ctx)
        ),
    )


async def _do(ctx: Ctx, me: Principal, order: StoredOrder, action: str, call: Any) -> Response:
    try:
        new: StoredOrder = await call
    except ERRORS as exc:
        raise dispatch_problem(exc) from exc
    ctx.audit.record(me, action, f"order:{order.id}", at=utcnow(), resident_id=order.resident_id)
    return json_response(order_for(me, new.to_json()))


async def _own(db: Tx, me: Principal, order_id: int) -> StoredOrder:
    order = await scoped_order(db, me, order_id)  # a worker's scope: their own orders
    if me.worker_id is None:
        raise forbidden("only a service worker acts on their orders")
    return order


@router.post("/orders/{order_id}/accept")
async def accept(order_id: RowId, me: Worker, ctx: Ctx, db: Tx) -> Response:
    order = await _own(db, me, order_id)
    return await _do(
        ctx,
        me,
        order,
        "accept",
        service.accept(db, order_id, worker_id=str(me.worker_id), actor=actor_of(me)),
    )


@router.post("/orders/{order_id}/reject")
async def reject(
    order_id: RowId, me: Worker, ctx: Ctx, db: Tx, body: ReasonIn | None = None
) -> Response:
    order = await _own(db, me, order_id)
    return await _do(
        ctx,
        me,
        order,
        "reject",
        service.reject(
            db,
            order_id,
            worker_id=str(me.worker_id),
            actor=actor_of(me),
            reason=(body or ReasonIn()).reason,
            settings=dispatch_settings(ctx),
        ),
    )


@router.post("/orders/{order_id}/en-route")
async def en_route(order_id: RowId, me: Worker, ctx: Ctx, db: Tx) -> Response:
    order = await _own(db, me, order_id)
    return await _do(
        ctx,
        me,
        order,
        "en_route",
        service.en_route(db, order_id, worker_id=str(me.worker_id), actor=actor_of(me)),
    )


@router.post("/orders/{order_id}/check-in")
async def check_in(order_id: RowId, body: PointIn, me: Worker, ctx: Ctx, db: Tx) -> Response:
    """On site: the position must be within the deployment's check-in radius of the
    resident's home (else 422, as when there is no home on record)."""
    order = await _own(db, me, order_id)
    return await _do(
        ctx,
        me,
        order,
        "check_in",
        service.check_in(
            db,
            order_id,
            worker_id=str(me.worker_id),
            lat=body.lat,
            lon=body.lon,
            actor=actor_of(me),
            # the radius the phones' check-ins get (dispatch.inbox); before 2026-12-04
            # the API used the 150 m default whatever was configured
            radius_m=ctx.settings.dispatch_check_in_radius_m,
        ),
    )


@router.post("/orders/{order_id}/check-out")
async def check_out(
    order_id: RowId, me: Worker, ctx: Ctx, db: Tx, body: CheckOutIn | None = None
) -> Response:
    order = await _own(db, me, order_id)
    out = body or CheckOutIn()
    return await _do(
        ctx,
        me,
        order,
        "check_out",
        service.check_out(
            db,
            order_id,
            worker_id=str(me.worker_id),
            actor=actor_of(me),
            notes=out.notes,
            outcome=out.outcome,
        ),
    )


# -- alerts: candidates and dispatch -----------------------------------------------------


@router.get("/alerts/{alert_id}/candidates")
async def candidates(alert_id: AlertId, me: AlertActor, ctx: Ctx, db: Tx) -> Response:
    """Who could go, best first: worker, name, ETA, distance, status, what they would leave."""
    await scoped_alert(db, me, alert_id)
    try:
        found = await service.candidates_for_alert(db, alert_id, settings=dispatch_settings(ctx))
    except ERRORS as exc:
        raise dispatch_problem(exc) from exc
    return json_response(found)


@router.post("/alerts/{alert_id}/dispatch")
async def dispatch_alert(
    alert_id: AlertId, me: AlertActor, ctx: Ctx, db: Tx, body: DispatchIn | None = None
) -> Response:
    """Send a worker (``worker_id`` null: the best candidate): an emergency order offered
    to them. An alert already being handled returns its order unchanged."""
    alert = await scoped_alert(db, me, alert_id)
    try:
        worker_id = (body or DispatchIn()).worker_id
        assignment = await service.dispatch_alert(
            db, alert_id, worker_id, actor=actor_of(me), settings=dispatch_settings(ctx)
        )
    except ERRORS as exc:
        raise dispatch_problem(exc) from exc
    ctx.audit.record(
        me, "dispatch_alert", f"alert:{alert_id}", at=utcnow(), resident_id=alert["resident_id"]
    )
    order = assignment.order
    cand = assignment.candidate
    return json_response(
        {
            **order.to_json(),
            "candidate": None
            if cand is None
            else {
                "worker_id": cand.worker_id,
                "eta_s": round(cand.eta_s),
                "distance_km": round(cand.distance_km, 2),
                "preempts_order_id": cand.preempts_order_id,
            },
            "escalated": assignment.escalated,
        }
    )
