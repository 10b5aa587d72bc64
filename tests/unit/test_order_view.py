"""What a family member or a worker sees of an order (api/order_view.py): no other
worker who was offered it, no staff ids; the centre sees it whole."""

from __future__ import annotations

from typing import Any

from api.order_view import event_for, history_for, order_for
from api.principal import Principal, Role

FAMILY = Principal.build(actor="user:12", role=Role.FAMILY, user_id=12, resident_ids=(3,))
WORKER = Principal.build(actor="user:40", role=Role.WORKER, user_id=40, worker_id="W1")
OPERATOR = Principal.build(actor="user:7", role=Role.OPERATOR, user_id=7, district="D1")
ORDER = {"id": 5, "resident_id": 3, "worker_id": "W1", "declined_by": ["W2", "W3"],
         "created_by": "family:12", "notes": "the kitchen"}  # fmt: skip
EVENTS: list[dict[str, Any]] = [
    {"kind": "created", "worker_id": None, "actor": "family:12", "detail": {}},
    {"kind": "offered", "worker_id": "W2", "actor": "dispatcher",
     "detail": {"eta_s": 300, "distance_km": 1.2, "preempts_order_id": 9}},
    {"kind": "rejected", "worker_id": "W2", "actor": "worker:W2",
     "detail": {"worker_id": "W2", "reason": "too far"}},
    {"kind": "offered", "worker_id": "W1", "actor": "operator:7",
     "detail": {"eta_s": 200, "distance_km": 0.9, "preempts_order_id": None}},
    {"kind": "completed", "worker_id": "W1", "actor": "worker:W1",
     "detail": {"worker_id": "W1", "outcome": "done"}},
]  # fmt: skip


def test_the_centre_sees_the_order_whole() -> None:
    assert history_for(OPERATOR, ORDER, EVENTS) == {**ORDER, "events": EVENTS}


def test_a_family_sees_who_does_the_job_and_nobody_who_turned_it_down() -> None:
    seen = history_for(FAMILY, ORDER, EVENTS)
    assert "declined_by" not in seen
    assert seen["created_by"] == "family:12"  # their own booking
    assert "W2" not in repr(seen)
    assert "W3" not in repr(seen)
    assert [(e["worker_id"], e["actor"]) for e in seen["events"]] == [
        (None, "family:12"), (None, "dispatcher"), (None, "worker"), ("W1", "operator"),
        ("W1", "worker:W1"),
    ]  # fmt: skip
    assert [e["detail"] for e in seen["events"]] == [
        {},
        {},
        {},
        {"eta_s": 200, "distance_km": 0.9},
        {"outcome": "done"},
    ]


def test_another_family_member_and_a_worker_see_roles_not_ids() -> None:
    other = Principal.build(actor="user:13", role=Role.FAMILY, user_id=13, resident_ids=(3,))
    assert order_for(other, ORDER)["created_by"] == "family"
    before = {**ORDER, "worker_id": None}  # an offer that lapsed: nobody's job yet
    assert order_for(WORKER, before)["created_by"] == "family"
    lapsed = {"kind": "timed_out", "worker_id": "W2", "actor": "dispatcher", "order": before}
    assert event_for(WORKER, None, lapsed)["worker_id"] is None
    mine = {"kind": "offered", "worker_id": "W1", "actor": "dispatcher",
            "detail": {"eta_s": 200}, "order": before}  # fmt: skip
    assert event_for(WORKER, None, mine) == {
        **mine, "order": {k: v for k, v in before.items() if k != "declined_by"} | {
            "created_by": "family"}}  # fmt: skip
