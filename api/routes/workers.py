"""Service workers (status, location), the service catalogue and the centre's reports,
over the dispatch service layer. The centre sees its district's workers; a worker
only their own record; families none. Out of scope answers 404."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.deps import Me, Tx, require
from api.dispatch_scope import ERRORS, actor_of, dispatch_problem, scoped_worker
from api.principal import Perm, Principal, Role
from api.problems import Problem, forbidden
from api.routes.orders import PointIn, StatusIn
from api.scoping import json_response
from dispatch import service

router = APIRouter(tags=["workers"])
WorkerReader = Annotated[Principal, Depends(require(Perm.READ_WORKERS))]
Worker = Annotated[Principal, Depends(require(Perm.WORK_ORDERS))]
Reporter = Annotated[Principal, Depends(require(Perm.READ_REPORTS))]


@router.get("/service-types")
async def service_types(_me: Me, db: Tx) -> Response:
    """The catalogue: code, name, duration, skills, interruptible, emergency."""
    return json_response(await service.list_service_types(db))


# -- workers -----------------------------------------------------------------------------


@router.get("/workers")
async def list_workers(
    me: WorkerReader, db: Tx, district: Annotated[str | None, Query(max_length=100)] = None
) -> Response:
    if me.role is Role.WORKER:
        workers = [await scoped_worker(db, me, str(me.worker_id))]
    else:
        if me.role is not Role.ADMIN:
            district = me.district
        workers = await service.list_workers(db, district=district)
    return json_response([w.to_json() for w in workers])


@router.get("/workers/{worker_id}")
async def get_worker(worker_id: str, me: WorkerReader, db: Tx) -> Response:
    return json_response((await scoped_worker(db, me, worker_id)).to_json())


@router.post("/workers/{worker_id}/status")
async def worker_status(worker_id: str, body: StatusIn, me: Me, db: Tx) -> Response:
    """The worker themselves, or the centre of their district."""
    if not (me.can(Perm.MANAGE_WORKERS) or (me.role is Role.WORKER)):
        raise forbidden()
    await scoped_worker(db, me, worker_id)
    try:
        worker = await service.worker_status(db, worker_id, body.status, actor=actor_of(me))
    except ERRORS as exc:
        raise dispatch_problem(exc) from exc
    return json_response(worker.to_json())


@router.post("/workers/{worker_id}/location", status_code=204)
async def worker_location(worker_id: str, body: PointIn, me: Worker, db: Tx) -> None:
    """The worker's own phone reports where they are."""
    await scoped_worker(db, me, worker_id)
    try:
        await service.worker_location(db, worker_id, body.lat, body.lon, actor=actor_of(me))
    except ERRORS as exc:
        raise dispatch_problem(exc) from exc


# -- reports -----------------------------------------------------------------------------


@router.get("/reports/summary")
async def reports_summary(
    me: Reporter,
    db: Tx,
    start: datetime,
    end: datetime,
    district: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The centre's figures over [start, end): orders by type, service hours, visits,
    response times, share within 15 minutes, utilisation."""
    if start.tzinfo is None or end.tzinfo is None or not start < end:
        raise Problem(400, "start and end need a time zone, start before end")
    if me.role is not Role.ADMIN:
        district = me.district
    return json_response(await service.reports_summary(db, start=start, end=end, district=district))
