"""Work order records and the dispatch errors: the values the store returns and raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

COLUMNS = (
    "id, kind, resident_id, service_type, district, priority, state, worker_id, alert_id,"
    " window_start, window_end, duration_min, sla_due_at, booked_from, booked_until,"
    " offer_expires_at, declined_by, idempotency_key, recurrence, notes, outcome, created_by,"
    " created_at, updated_at, accepted_at, arrived_at, completed_at"
)


class DispatchError(Exception):
    """A dispatch operation that cannot be done."""


class UnknownOrder(DispatchError):  # noqa: N818 - reads as the domain's word
    def __init__(self, order_id: int) -> None:
        self.order_id = order_id
        super().__init__(f"no work order {order_id}")


class UnknownWorker(DispatchError):  # noqa: N818
    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        super().__init__(f"no service worker {worker_id!r}")


class WorkerBusy(DispatchError):  # noqa: N818
    def __init__(self, worker_id: str, order_id: int) -> None:
        self.worker_id, self.order_id = worker_id, order_id
        super().__init__(f"worker {worker_id!r} is booked at that time (order {order_id})")


class NotYourOrder(DispatchError):  # noqa: N818
    def __init__(self, worker_id: str, order_id: int) -> None:
        self.worker_id, self.order_id = worker_id, order_id
        super().__init__(f"order {order_id} is not worker {worker_id!r}'s")


class AlertAlreadyClosed(DispatchError):  # noqa: N818
    def __init__(self, alert_id: int, state: str) -> None:
        self.alert_id, self.state = alert_id, state
        super().__init__(f"alert {alert_id} is closed ({state}): nobody is sent")


class TooFarFromHome(DispatchError):  # noqa: N818
    def __init__(self, order_id: int, radius_m: float) -> None:
        self.order_id, self.radius_m = order_id, radius_m
        super().__init__(f"order {order_id}: check-in must be within {radius_m:.0f} m of the home")


class ResidentAway(DispatchError):  # noqa: N818
    """A routine visit whose window meets the resident's absence from home
    (eldercare.absence): nobody is home to let the worker in."""


class NoHomeOnRecord(DispatchError):  # noqa: N818
    """Check-in is proven by being near the home: without one there is nothing to prove
    it against, so it is refused rather than accepted from anywhere."""

    def __init__(self, order_id: int, resident_id: int) -> None:
        self.order_id, self.resident_id = order_id, resident_id
        super().__init__(
            f"order {order_id}: resident {resident_id} has no home on record to check in at"
        )


@dataclass(frozen=True, slots=True)
class StoredOrder:
    id: int
    kind: str
    resident_id: int
    service_type: str
    district: str
    priority: int
    state: str
    worker_id: str | None
    alert_id: int | None
    window_start: datetime
    window_end: datetime
    duration_min: int
    sla_due_at: datetime | None
    booked_from: datetime | None
    booked_until: datetime | None
    offer_expires_at: datetime | None
    declined_by: list[str]
    idempotency_key: str | None
    recurrence: str | None
    notes: str
    outcome: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    accepted_at: datetime | None
    arrived_at: datetime | None
    completed_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        out.pop("idempotency_key", None)
        on_site = (
            (self.completed_at - self.arrived_at) if self.completed_at and self.arrived_at else None
        )
        out["service_min"] = round(on_site.total_seconds() / 60, 1) if on_site else None
        return out


@dataclass(frozen=True, slots=True)
class OrderChange:
    """One persisted change: what happened, the order after it, who and when."""

    kind: str
    order: StoredOrder
    actor: str
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)
