"""Who may see an order, the actor string dispatch records, and how its errors map to HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from api.dispatch_scope import actor_of, dispatch_problem, in_scope, worker_visible
from api.principal import Principal, Role
from dispatch.lifecycle import Action, InvalidTransition
from dispatch.model import CatalogueError, OrderState
from dispatch.roster import StoredWorker
from dispatch.store import (
    DispatchError,
    NoHomeOnRecord,
    NotYourOrder,
    StoredOrder,
    TooFarFromHome,
    UnknownOrder,
    WorkerBusy,
)

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
ORDER = StoredOrder(
    id=1, kind="booked", resident_id=3, service_type="cleaning", district="A", priority=3,
    state="offered", worker_id="W1", alert_id=None, window_start=NOW, window_end=NOW,
    duration_min=90, sla_due_at=None, booked_from=NOW, booked_until=NOW, offer_expires_at=None,
    declined_by=[], idempotency_key=None, recurrence=None, notes="", outcome=None,
    created_by="family:1", created_at=NOW, updated_at=NOW, accepted_at=None, arrived_at=None,
    completed_at=None,
)  # fmt: skip

WORKER = StoredWorker(
    worker_id="W1", name="Chen Jing", district="A", skills=["cleaning"], certificates=[],
    mode="ebike", home_lat=32.38, home_lon=120.56, max_orders_per_day=8, status="available",
    lat=None, lon=None, location_at=None, status_at=NOW, active=True,
)  # fmt: skip


def p(role: Role, **kw: object) -> Principal:
    return Principal.build(actor="user:9", role=role, user_id=9, **kw)


def test_order_scope_by_role() -> None:
    assert in_scope(p(Role.ADMIN), ORDER)
    assert in_scope(p(Role.OPERATOR, district="A"), ORDER)
    assert not in_scope(p(Role.OPERATOR, district="B"), ORDER)
    assert in_scope(p(Role.FAMILY, resident_ids=(3,)), ORDER)
    assert not in_scope(p(Role.FAMILY, resident_ids=(4,)), ORDER)
    assert in_scope(p(Role.WORKER, worker_id="W1"), ORDER)
    assert not in_scope(p(Role.WORKER, worker_id="W2"), ORDER)
    assert not in_scope(p(Role.WORKER, worker_id="W1"), replace(ORDER, worker_id=None))


def test_actor_strings() -> None:
    assert actor_of(p(Role.OPERATOR, district="A")) == "operator:9"
    assert actor_of(p(Role.WORKER, worker_id="W1")) == "worker:W1"
    assert actor_of(Principal.build(actor="key:2", role=Role.INTEGRATION)) == "key:2"


def test_dispatch_errors_map_to_statuses() -> None:
    assert dispatch_problem(UnknownOrder(1)).status == 404
    assert dispatch_problem(NotYourOrder("W1", 1)).status == 404
    assert dispatch_problem(WorkerBusy("W1", 1)).status == 409
    assert dispatch_problem(InvalidTransition(OrderState.COMPLETED, Action.ACCEPT)).status == 409
    assert dispatch_problem(TooFarFromHome(1, 150)).status == 422
    assert dispatch_problem(DispatchError("bad window")).status == 422
    assert dispatch_problem(CatalogueError("empty")).status == 503


def test_an_api_key_without_a_district_is_city_wide() -> None:
    """Found by review: a key without a district listed every order (the list routes
    take no district as all of them, as docs/api.md says: "its district or all") but
    got 404 opening one, since the single-order check wanted a district."""
    city = Principal.build(actor="key:1", role=Role.INTEGRATION, scopes=frozenset({"orders:read"}))
    district_a = replace(city, district="A")
    district_b = replace(city, district="B")
    assert in_scope(city, ORDER)
    assert in_scope(district_a, ORDER)
    assert not in_scope(district_b, ORDER)
    assert worker_visible(city, WORKER)
    assert worker_visible(district_a, WORKER)
    assert not worker_visible(district_b, WORKER)


def test_no_home_on_record_is_422() -> None:
    assert dispatch_problem(NoHomeOnRecord(1, 3)).status == 422
