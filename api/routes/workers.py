"""Service workers (status, location), the service catalogue and the centre's reports,
over the dispatch service layer. The centre sees its district's workers; a worker
only their own record; families none. Out of scope answers 404."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from api.deps import Ctx, Me, Tx, require, utcnow
from api.dispatch_scope import ERRORS, actor_of, dispatch_problem, scoped_worker, worker_visible
from api.principal import Perm, Principal, Role
from api.problems import Problem, forbidden, not_found
from api.routes.orders import PointIn, StatusIn
from api.scoping import json_response
from dispatch import service
from dispatch.records import UnknownWorker
from dispatch.roster import HoldsVisits, list_shifts, remove_shift, retire_worker
from dispatch.roster_file import WORKER_ID, WorkerFields, roster, write_roster

router = APIRouter(tags=["workers"])
WorkerReader = Annotated[Principal, Depends(require(Perm.READ_WORKERS))]
Worker = Annotated[Principal, Depends(require(Perm.WORK_ORDERS))]
Manager = Annotated[Principal, Depends(require(Perm.MANAGE_WORKERS))]
SHIFTS_SHOWN: Final = timedelta(days=14)  # GET /workers/{id}/shifts without an end
SHIFTS_SPAN: Final = timedelta(days=92)  # the longest span one request reads
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


@router.put("/workers/{worker_id}")
async def put_worker(
    worker_id: Annotated[str, Path(pattern=WORKER_ID)],
    body: WorkerFields,
    me: Manager,
    ctx: Ctx,
    db: Tx,
) -> Response:
    """Register a service worker, or update one (name, district, skills, home, mode,
    capacity), and add the shifts given: one entry of ``eldercare workers add``'s file
    without its ``worker_id``. A shift already on record as it is stays as it is, so
    the same request may be sent again; one that overlaps a different shift of the
    worker's is refused (409) and nothing is written. The centre registers workers of
    its own district; an admin any."""
    if me.role is not Role.ADMIN and body.district != me.district:
        raise Problem(403, "you can only register workers in your own district")
    try:
        if not worker_visible(me, await service.get_worker(db, worker_id)):
            raise Problem(403, f"worker {worker_id} is another district's")
    except UnknownWorker:
        pass  # a new worker
    try:  # the roster file's own checks, on a file of this one worker
        doc = roster({"workers": [{**body.model_dump(mode="json"), "worker_id": worker_id}]})
    except ValueError as exc:
        raise Problem(422, str(exc)) from exc
    try:
        done = await write_roster(db, doc)
    except ValueError as exc:
        raise Problem(409, str(exc)) from exc
    ctx.audit.record(me, "put_worker", f"worker:{worker_id}", at=utcnow(),
                     shifts_added=done["shifts_added"])  # fmt: skip
    stored = await service.get_worker(db, worker_id)
    return json_response({"worker": stored.to_json(), "shifts_added": done["shifts_added"],
                          "shifts_kept": done["shifts_kept"]})  # fmt: skip


@router.get("/workers/{worker_id}/shifts")
async def worker_shifts(
    worker_id: str,
    me: WorkerReader,
    db: Tx,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Response:
    """The worker's shifts that overlap [start, end): by default the next 14 days. The
    worker themselves, or the centre of their district."""
    await scoped_worker(db, me, worker_id)
    start = start or utcnow()
    end = end or start + SHIFTS_SHOWN
    if start.tzinfo is None or end.tzinfo is None or not start < end:
        raise Problem(400, "start and end need a time zone, start before end")
    if end - start > SHIFTS_SPAN:
        raise Problem(400, f"at most {SHIFTS_SPAN.days} days at a time")
    shifts = await list_shifts(db, worker_id, start=start, end=end)
    return json_response([{"starts_at": a.isoformat(), "ends_at": b.isoformat()}
                          for a, b in shifts])  # fmt: skip


@router.delete("/workers/{worker_id}/shifts", status_code=204)
async def delete_shift(worker_id: str, starts_at: datetime, me: Manager, ctx: Ctx, db: Tx) -> None:
    """Remove the worker's shift that starts at ``starts_at`` (a worker off sick, a
    changed rota): the day planner no longer plans them in it. Refused (409) while they
    hold visits booked in it; give those to someone else first."""
    await scoped_worker(db, me, worker_id)
    if starts_at.tzinfo is None:
        raise Problem(400, "starts_at needs a time zone")
    try:
        found = await remove_shift(db, worker_id, starts_at)
    except HoldsVisits as exc:
        raise Problem(409, str(exc)) from exc
    if not found:
        raise not_found(f"shift of worker {worker_id} starting {starts_at.isoformat()}")
    ctx.audit.record(me, "delete_shift", f"worker:{worker_id}", at=utcnow(),
                     starts_at=starts_at.isoformat())  # fmt: skip


@router.post("/workers/{worker_id}/retire", status_code=204)
async def retire(worker_id: str, me: Manager, ctx: Ctx, db: Tx) -> None:
    """A worker who has left the centre: no longer offered work, planned or listed, and
    their shifts from now on are removed (``PUT /workers/{id}`` makes them active again).
    Refused (409) while they hold a visit: give it to someone else first. Their account
    is disabled apart (``POST /users/{id}/disable``). Before 2026-12-04 a worker could
    not be taken off the roster: emergencies were offered to them until their phone was
    found quiet."""
    await scoped_worker(db, me, worker_id)
    try:
        await retire_worker(db, worker_id, now=utcnow())
    except HoldsVisits as exc:
        raise Problem(409, str(exc)) from exc
    ctx.audit.record(me, "retire_worker", f"worker:{worker_id}", at=utcnow())


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
