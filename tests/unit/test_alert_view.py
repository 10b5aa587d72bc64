"""Who moved an alert, as a family sees it (api/alert_view.py): roles, not staff ids;
the platform's notes, not the ones the staff type. The centre sees it whole."""

from __future__ import annotations

from typing import Any

from api.alert_view import actor_for, transition_for, user_ids
from api.principal import Principal, Role

FAMILY = Principal.build(actor="user:12", role=Role.FAMILY, user_id=12, resident_ids=(3,))
WORKER = Principal.build(actor="user:40", role=Role.WORKER, user_id=40, worker_id="W1")
OPERATOR = Principal.build(actor="user:7", role=Role.OPERATOR, user_id=7, district="D1")
ROLES = {7: "operator", 8: "supervisor"}
HISTORY: list[dict[str, Any]] = [
    {"from_state": None, "to_state": "open", "actor": "engine", "note": "raised"},
    {"from_state": "open", "to_state": "open", "actor": "escalation",
     "note": "escalated to supervisor (level 1)"},
    {"from_state": "open", "to_state": "open", "actor": "user:8",
     "note": "escalated to family_contact (level 2)"},
    {"from_state": "open", "to_state": "acknowledged", "actor": "user:7",
     "note": "rang the daughter on 13800000000, neighbour Wang has a key"},
    {"from_state": "acknowledged", "to_state": "dispatched", "actor": "worker:W3",
     "note": "work order 12 accepted by W3"},
    {"from_state": "dispatched", "to_state": "resolved", "actor": "key:4", "note": "closed"},
    {"from_state": "resolved", "to_state": "resolved", "actor": "user:99", "note": ""},
]  # fmt: skip


def test_the_centre_sees_who_and_what_they_wrote() -> None:
    assert [transition_for(OPERATOR, t, {}) for t in HISTORY] == HISTORY


def test_a_family_sees_roles_and_the_platforms_notes_only() -> None:
    seen = [transition_for(FAMILY, t, ROLES) for t in HISTORY]
    assert [(t["actor"], t["note"]) for t in seen] == [
        ("engine", "raised"),
        ("escalation", "escalated to supervisor (level 1)"),
        ("supervisor", "escalated to family_contact (level 2)"),  # the store wrote it
        ("operator", ""),
        ("worker", ""),
        ("integration", ""),
        ("staff", ""),  # a user no longer found
    ]
    assert [(t["from_state"], t["to_state"]) for t in seen] == [
        (t["from_state"], t["to_state"]) for t in HISTORY
    ]
    assert "13800000000" not in repr(seen)
    assert "W3" not in repr(seen)


def test_a_live_change_is_shown_the_same_way() -> None:
    change = {"kind": "acknowledged", "alert_id": 5, "state": "acknowledged",
              "actor": "user:7", "note": "rang the daughter", "detail": {"presses": 1}}  # fmt: skip
    assert transition_for(FAMILY, change, ROLES) == {**change, "actor": "operator", "note": ""}
    escalated = {**change, "kind": "escalated", "state": "open", "note": "escalated to x"}
    assert transition_for(FAMILY, escalated, ROLES)["note"] == "escalated to x"


def test_oneself_and_odd_actors() -> None:
    assert actor_for(WORKER, "worker:W1", {}) == "worker:W1"
    assert actor_for(FAMILY, "family:12", {}) == "family:12"
    assert actor_for(FAMILY, "family:13", {}) == "family"
    assert actor_for(FAMILY, "operator:7", {}) == "operator"  # dispatch's naming
    assert actor_for(FAMILY, "user:x", ROLES) == "staff"
    assert actor_for(FAMILY, None, ROLES) is None
    mine = {"from_state": "open", "to_state": "acknowledged", "actor": "worker:W1", "note": "n"}
    assert transition_for(WORKER, mine, {})["note"] == "n"


def test_user_ids_are_read_from_actors() -> None:
    assert user_ids(["user:7", "engine", "user:7", "user:x", None, "key:3", "user:12"]) == [7, 12]


def test_a_worker_is_known_by_worker_id_only() -> None:
    """Found by review: a worker (user 40, worker W7) read another worker whose worker
    id is "40" as themself, with that worker's note."""
    w7 = Principal.build(actor="user:40", role=Role.WORKER, user_id=40, worker_id="W7")
    other = {"from_state": "open", "to_state": "dispatched", "actor": "worker:40",
             "note": "work order 3 accepted by 40"}  # fmt: skip
    assert transition_for(w7, other, {}) == {**other, "actor": "worker", "note": ""}


def test_a_note_without_a_change_of_state_is_shown_only_if_it_is_an_escalations() -> None:
    typed = {"from_state": "open", "to_state": "open", "actor": "user:7",
             "note": "neighbour Wang has a key"}  # fmt: skip
    assert transition_for(FAMILY, typed, ROLES)["note"] == ""
