"""The life of a work order (pure): which action moves which state where.

::

    created ──offer──► offered ──accept──► accepted ──en_route──► en_route ──check_in──► on_site
       ▲                 │                    │                       │                    │
       └─reject/time_out─┘◄──────── preempt (interruptible work, for an emergency) ───────┘
                                                                                check_out ▼
    cancel: from created, offered, accepted, en_route           completed | failed | cancelled

A rejected or timed-out offer, and pre-empted work, go back to ``created``
without a worker (the worker is remembered in ``declined_by`` for offers) so the
order can be offered again or re-slotted. Check-in must happen near the home
(:func:`near_home`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

import numpy as np

from dispatch.model import OrderState, Point
from dispatch.travel import haversine_km


class Action(StrEnum):
    OFFER = "offer"
    ACCEPT = "accept"
    REJECT = "reject"
    TIME_OUT = "time_out"
    EN_ROUTE = "en_route"
    CHECK_IN = "check_in"
    CHECK_OUT = "check_out"
    FAIL = "fail"
    CANCEL = "cancel"
    PREEMPT = "preempt"


_S = OrderState
_A = Action
TRANSITIONS: Final[Mapping[tuple[OrderState, Action], OrderState]] = {
    (_S.CREATED, _A.OFFER): _S.OFFERED,
    (_S.OFFERED, _A.ACCEPT): _S.ACCEPTED,
    (_S.OFFERED, _A.REJECT): _S.CREATED,
    (_S.OFFERED, _A.TIME_OUT): _S.CREATED,
    (_S.ACCEPTED, _A.EN_ROUTE): _S.EN_ROUTE,
    (_S.ACCEPTED, _A.CHECK_IN): _S.ON_SITE,
    (_S.EN_ROUTE, _A.CHECK_IN): _S.ON_SITE,
    (_S.ON_SITE, _A.CHECK_OUT): _S.COMPLETED,
    (_S.CREATED, _A.CANCEL): _S.CANCELLED,
    (_S.OFFERED, _A.CANCEL): _S.CANCELLED,
    (_S.ACCEPTED, _A.CANCEL): _S.CANCELLED,
    (_S.EN_ROUTE, _A.CANCEL): _S.CANCELLED,
    (_S.ACCEPTED, _A.FAIL): _S.FAILED,
    (_S.EN_ROUTE, _A.FAIL): _S.FAILED,
    (_S.ON_SITE, _A.FAIL): _S.FAILED,
    (_S.ACCEPTED, _A.PREEMPT): _S.CREATED,
    (_S.EN_ROUTE, _A.PREEMPT): _S.CREATED,
    (_S.ON_SITE, _A.PREEMPT): _S.CREATED,
}

# actions only the order's own worker may take
WORKER_ACTIONS: Final = frozenset({_A.ACCEPT, _A.REJECT, _A.EN_ROUTE, _A.CHECK_IN, _A.CHECK_OUT})
EVENT_KIND: Final[Mapping[Action, str]] = {
    _A.OFFER: "offered",
    _A.ACCEPT: "accepted",
    _A.REJECT: "rejected",
    _A.TIME_OUT: "timed_out",
    _A.EN_ROUTE: "en_route",
    _A.CHECK_IN: "arrived",
    _A.CHECK_OUT: "completed",
    _A.FAIL: "failed",
    _A.CANCEL: "cancelled",
    _A.PREEMPT: "preempted",
}


class InvalidTransition(ValueError):  # noqa: N818 - reads as the domain's word
    def __init__(self, current: OrderState, action: Action, *, order_id: int | None = None):
        self.current = current
        self.action = action
        self.order_id = order_id
        super().__init__(f"order {order_id}: cannot {action.value} when {current.value}")


def next_state(current: OrderState, action: Action, *, order_id: int | None = None) -> OrderState:
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        raise InvalidTransition(current, action, order_id=order_id) from None


def releases_worker(target: OrderState) -> bool:
    """After this the order no longer holds a worker."""
    return target is OrderState.CREATED or target.final


def near_home(at: Point, home: Point, *, radius_m: float) -> bool:
    d = haversine_km(
        np.float64(at.lat), np.float64(at.lon), np.float64(home.lat), np.float64(home.lon)
    )
    return float(d) * 1000.0 <= radius_m
