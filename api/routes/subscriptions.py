"""A resident's standing services (dispatch/subscriptions.py): list, add, end."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from api.deps import Ctx, Tx, require, utcnow
from api.principal import Perm, Principal
from api.problems import Problem, not_found
from api.schemas import ResidentId, RowId
from api.scoping import ensure_resident, json_response
from dispatch.records import DispatchError
from dispatch.recurring import WEEKDAYS, local_zone
from dispatch.subscriptions import add_subscription, end_subscription, list_subscriptions
from eldercare.json_files import Strict

router = APIRouter(tags=["orders"])
Reader = Annotated[Principal, Depends(require(Perm.READ_ORDERS))]
Booker = Annotated[Principal, Depends(require(Perm.BOOK_ORDERS))]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class ServiceIn(Strict):
    service_type: str = Field(min_length=1, max_length=40)
    weekdays: list[Weekday] = Field(min_length=1, max_length=7)
    start: time  # local time, the city's zone
    end: time
    starts_on: date | None = None  # default: today (local)
    ends_on: date | None = None  # the last day; default: until ended
    notes: str = Field(default="", max_length=2000)


def _today(ctx: Ctx, now: datetime) -> date:
    return now.astimezone(local_zone(ctx.settings.dispatch_catalogue)).date()


@router.get("/residents/{resident_id}/services")
async def standing_services(
    resident_id: ResidentId,
    me: Reader,
    ctx: Ctx,
    db: Tx,
    ended: Annotated[bool, Query()] = False,
) -> Response:
    """The resident's standing services in force or ahead (``ended=true``: every one)."""
    await ensure_resident(db, me, resident_id)
    rows = await list_subscriptions(db, resident_id, today=_today(ctx, utcnow()), ended=ended)
    return json_response([r.to_json() for r in rows])


@router.post(
    "/residents/{resident_id}/services",
    status_code=201,
    responses={
        404: {"description": "no such resident in your scope"},
        422: {"description": "a service, days or times that cannot be booked (says why)"},
    },
)
async def add_standing_service(
    resident_id: ResidentId, body: ServiceIn, me: Booker, ctx: Ctx, db: Tx
) -> Response:
    """A standing service: ``service_type`` on ``weekdays`` from ``start`` to ``end``
    (the city's local time), from ``starts_on`` (default today) until ``ends_on`` or
    until ended. The day's recurring run books each visit from it, as from the
    catalogue's rules; none while the resident is away from home."""
    await ensure_resident(db, me, resident_id)
    now = utcnow()
    try:
        added = await add_subscription(
            db, resident_id, service_type=body.service_type,
            weekdays=frozenset(WEEKDAYS.index(d) for d in body.weekdays), start=body.start,
            end=body.end, starts_on=body.starts_on or _today(ctx, now), ends_on=body.ends_on,
            notes=body.notes, actor=me.actor, now=now,
        )  # fmt: skip
    except DispatchError as exc:
        raise Problem(422, str(exc)) from exc
    ctx.audit.record(me, "add_standing_service", f"resident:{resident_id}", at=now,
                     resident_id=resident_id, subscription=added.id)  # fmt: skip
    return json_response(added.to_json(), status=201)


@router.delete(
    "/residents/{resident_id}/services/{subscription_id}",
    responses={404: {"description": "no such standing service in force, in your scope"}},
)
async def end_standing_service(
    resident_id: ResidentId, subscription_id: RowId, me: Booker, ctx: Ctx, db: Tx
) -> Response:
    """End a standing service from today: no more visits are booked from it, and its
    visits not begun yet are cancelled (listed in ``cancelled_orders``)."""
    await ensure_resident(db, me, resident_id)
    now = utcnow()
    cancelled = await end_subscription(db, resident_id, subscription_id,
                                       today=_today(ctx, now), actor=me.actor,
                                       now=now)  # fmt: skip
    if cancelled is None:
        raise not_found(f"standing service {subscription_id}")
    ctx.audit.record(me, "end_standing_service", f"resident:{resident_id}", at=now,
                     resident_id=resident_id, subscription=subscription_id,
                     cancelled_orders=list(cancelled))  # fmt: skip
    return json_response({"id": subscription_id, "cancelled_orders": list(cancelled)})
