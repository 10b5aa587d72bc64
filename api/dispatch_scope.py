"""Who may act on which work order and worker, and how dispatch's errors answer over
HTTP: shared by the orders and workers routes.

Scope: the centre sees its district's orders and workers (an admin, and an API key
without a district, all of them); a family its residents' orders; a worker their own
orders and record. Out of scope answers 404 (the id's existence is not revealed).
"""

from __future__ import annotations

from alerts.lifecycle import InvalidTransition as AlertInvalidTransition
from api.deps import Ctx, Tx
from api.principal import Principal, Role
from api.problems import Problem, not_found
from dispatch import service
from dispatch.assign import AssignSettings, assign_settings
from dispatch.lifecycle import InvalidTransition
from dispatch.model import CatalogueError
from dispatch.roster import StoredWorker
from dispatch.store import (
    AlertAlreadyClosed,
    DispatchError,
    NotYourOrder,
    StoredOrder,
    UnknownOrder,
    UnknownWorker,
    WorkerBusy,
)


def actor_of(me: Principal) -> str:
    """The dispatch service's actor convention: ``operator:7``, ``worker:W001``, ``family:12``."""
    if me.role is Role.WORKER and me.worker_id:
        return f"worker:{me.worker_id}"
    return f"{me.role.value}:{me.user_id}" if me.user_id is not None else me.actor


def dispatch_problem(exc: Exception) -> Problem:
    if isinstance(exc, CatalogueError):  # the catalogue was never loaded: not the caller's fault
        return Problem(503, f"dispatch is not configured: {exc}", headers={"Retry-After": "60"})
    if isinstance(exc, (UnknownOrder, UnknownWorker, NotYourOrder)):
        return not_found(str(exc).removeprefix("no "))
    if isinstance(exc, (WorkerBusy, InvalidTransition, AlertInvalidTransition, AlertAlreadyClosed)):
        return Problem(409, str(exc))
    return Problem(422, str(exc))


ERRORS = (DispatchError, InvalidTransition, AlertInvalidTransition, CatalogueError)


def dispatch_settings(ctx: Ctx) -> AssignSettings:
    """The deployment's SLA and emergency offer time-out, as the dispatch service uses
    them (before 2026-12-03 the API used the defaults whatever was configured)."""
    return assign_settings(ctx.settings)


def city_wide(me: Principal) -> bool:
    """An admin, or an API key bound to no district ("its district or all", docs/api.md):
    before 2026-12-04 such a key listed every order but got 404 opening one."""
    return me.role is Role.ADMIN or (me.role is Role.INTEGRATION and me.district is None)


def in_scope(me: Principal, order: StoredOrder) -> bool:
    if city_wide(me):
        return True
    if me.role is Role.FAMILY:
        return order.resident_id in me.resident_ids
    if me.role is Role.WORKER:
        return me.worker_id is not None and order.worker_id == me.worker_id
    return me.district is not None and order.district == me.district


async def scoped_order(db: Tx, me: Principal, order_id: int) -> StoredOrder:
    try:
        order = await service.get_order(db, order_id)
    except UnknownOrder as exc:
        raise not_found(f"order {order_id}") from exc
    if not in_scope(me, order):
        raise not_found(f"order {order_id}")
    return order


def worker_visible(me: Principal, worker: StoredWorker) -> bool:
    if city_wide(me):
        return True
    if me.role is Role.WORKER:
        return worker.worker_id == me.worker_id
    return me.district is not None and worker.district == me.district


async def scoped_worker(db: Tx, me: Principal, worker_id: str) -> StoredWorker:
    try:
        worker = await service.get_worker(db, worker_id)
    except UnknownWorker as exc:
        raise not_found(f"worker {worker_id}") from exc
    if not worker_visible(me, worker):
        raise not_found(f"worker {worker_id}")
    return worker
