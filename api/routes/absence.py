"""A resident away from home for a while (eldercare/absence.py): record it, end it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import AwareDatetime, Field

from api.deps import Ctx, Tx, require, utcnow
from api.principal import Perm, Principal
from api.problems import Problem
from api.routes.residents import resident_detail
from api.schemas import ResidentDetail, ResidentId
from api.scoping import ensure_resident, json_response
from eldercare.absence import AwaySpanError, CannotBeAwayError, end_away, set_away
from eldercare.json_files import Strict

router = APIRouter(tags=["residents"])
Writer = Annotated[Principal, Depends(require(Perm.WRITE_RESIDENTS))]


class AwayIn(Strict):
    starts_at: AwareDatetime | None = None  # default: now
    ends_at: AwareDatetime  # when they are due back
    reason: str = Field(min_length=1, max_length=200)


@router.put(
    "/residents/{resident_id}/away",
    responses={
        404: {"description": "no such resident in your scope"},
        409: {"description": "the resident left the service"},
        422: {"description": "times that cannot be taken (ended, before the start, too long)"},
    },
)
async def record_away(
    resident_id: ResidentId, body: AwayIn, me: Writer, ctx: Ctx, db: Tx
) -> Response:
    """The resident is away from home (a hospital stay, a week with family) from
    ``starts_at`` (default now) until ``ends_at``; replaces any absence recorded before.

    While it lasts the alert engine holds back the alerts about the home routine and
    the band's upkeep (inactivity, geofence, night activity, baseline, device health)
    and raises those that still hold when it ends; SOS, falls and vital signs are
    raised as always. No routine visit is booked in it, and those booked and not
    begun are cancelled (listed in ``cancelled_orders``)."""
    await ensure_resident(db, me, resident_id)
    now = utcnow()
    try:
        done = await set_away(db, resident_id, starts_at=body.starts_at or now,
                              ends_at=body.ends_at, reason=body.reason, actor=me.actor,
                              now=now)  # fmt: skip
    except AwaySpanError as exc:
        raise Problem(422, str(exc)) from exc
    except CannotBeAwayError as exc:
        raise Problem(409, str(exc)) from exc
    ctx.audit.record(me, "resident_away", f"resident:{resident_id}", at=now,
                     resident_id=resident_id,
                     cancelled_orders=list(done.cancelled_orders))  # fmt: skip
    detail = await resident_detail(db, resident_id)
    return json_response({**detail, "cancelled_orders": list(done.cancelled_orders)})


@router.delete(
    "/residents/{resident_id}/away",
    response_model=ResidentDetail,
    responses={404: {"description": "no such resident in your scope, or no absence ahead"}},
)
async def end_resident_away(resident_id: ResidentId, me: Writer, ctx: Ctx, db: Tx) -> Response:
    """The resident is back early (or a planned absence is off): the held-back alerts
    that still hold are raised within the engine's profile refresh (30 s). The visits
    cancelled for the absence stay cancelled."""
    await ensure_resident(db, me, resident_id)
    now = utcnow()
    if not await end_away(db, resident_id, now=now):
        raise Problem(404, f"resident {resident_id} has no absence recorded that is not over")
    ctx.audit.record(me, "resident_back", f"resident:{resident_id}", at=now,
                     resident_id=resident_id)  # fmt: skip
    return json_response(await resident_detail(db, resident_id))
