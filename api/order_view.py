"""What a family member or a service worker sees of a work order (pure).

The centre (admin, supervisor, operator) and machine clients see an order and its
history whole. A family sees who is (or was) doing the job, its states and times,
and the outcome; a worker the same of their own orders. Neither sees which other
workers were offered the job and declined or let the offer lapse (the order's
``declined_by``, those events' worker, actor and reason), the centre's staff ids
(``operator:7`` becomes ``operator``), nor which other resident's order an
emergency pre-empted. Before 2026-12-03 both saw all of it: a family read the ids of
every worker who had turned their parent's job down.
"""

from __future__ import annotations

from typing import Any, Final

from api.principal import CENTRE_ROLES, Principal, Role

WHOLE: Final = CENTRE_ROLES | {Role.INTEGRATION}  # the centre's staff and machine clients
# what an event's detail may show, and only when the event's worker may be shown
_DETAIL_SHOWN: Final = frozenset({"outcome", "planned_start", "on_time", "eta_s", "distance_km"})


def _shown(me: Principal, order_worker: object) -> frozenset[str]:
    """The worker ids ``me`` may read: the order's own worker, and oneself."""
    return frozenset(str(w) for w in (order_worker, me.worker_id) if w)


def _actor(me: Principal, actor: object, shown: frozenset[str]) -> object:
    """``worker:W1`` and ``family:12`` kept when they are shown or oneself; anyone
    else's id dropped, the role kept (``dispatcher``, ``planner`` have none)."""
    if not isinstance(actor, str) or ":" not in actor:
        return actor
    role, who = actor.split(":", 1)
    if role == "worker" and who in shown:
        return actor
    if role == "family" and me.user_id is not None and who == str(me.user_id):
        return actor
    return role


def order_for(me: Principal, order: dict[str, Any]) -> dict[str, Any]:
    """The order as ``me`` may see it (its JSON, as ``StoredOrder.to_json`` makes it)."""
    if me.role in WHOLE:
        return order
    out = {k: v for k, v in order.items() if k != "declined_by"}
    if "created_by" in out:
        out["created_by"] = _actor(me, out["created_by"], _shown(me, order.get("worker_id")))
    return out


def event_for(me: Principal, order_worker: object, event: dict[str, Any]) -> dict[str, Any]:
    """One change of the order (from its history, or as published live) as ``me`` may
    see it; ``order_worker``: the order's worker now."""
    if me.role in WHOLE:
        return event
    shown = _shown(me, order_worker)
    out = dict(event)
    worker = out.get("worker_id")
    visible = worker is None or str(worker) in shown
    if not visible:
        out["worker_id"] = None
    if "actor" in out:
        out["actor"] = _actor(me, out["actor"], shown)
    detail = out.get("detail")
    if isinstance(detail, dict):
        kept = {k: v for k, v in detail.items() if k in _DETAIL_SHOWN}
        if not visible:
            kept.pop("eta_s", None)
            kept.pop("distance_km", None)
        out["detail"] = kept
    if isinstance(out.get("order"), dict):
        out["order"] = order_for(me, out["order"])
    return out


def history_for(
    me: Principal, order: dict[str, Any], events: list[dict[str, Any]]
) -> dict[str, Any]:
    """``GET /orders/{id}``: the order and its history, as ``me`` may see them."""
    worker = order.get("worker_id")
    return {**order_for(me, order), "events": [event_for(me, worker, e) for e in events]}
