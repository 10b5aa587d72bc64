"""One open alert per resident and type: turn a detector's wish into events.

A detector says what it wants for an alert type right now (:class:`Want`, or
None for "nothing wrong"); :func:`reconcile` compares that with what is open
and returns the events: raise when nothing was open, update when the severity
or the evidence ``key`` changed, clear when the wish is gone. Detectors never
build events by hand, so a repeat can never become a second ``AlertRaised``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from alerts.detectors.types import (
    AlertCleared,
    AlertEvent,
    AlertRaised,
    AlertType,
    AlertUpdated,
    ClearReason,
    Detail,
    Severity,
)


@dataclass(frozen=True, slots=True)
class OpenAlert:
    severity: Severity
    device_id: str | None
    key: str
    raised_at: datetime


OpenAlerts = Mapping[AlertType, OpenAlert]


@dataclass(frozen=True, slots=True)
class Want:
    """The alert a detector wants open; a change of ``key`` is news worth an update."""

    severity: Severity
    device_id: str | None
    detail: Detail = field(default_factory=dict)
    key: str = ""


def reconcile(
    open_alerts: OpenAlerts,
    alert_type: AlertType,
    want: Want | None,
    *,
    resident_id: int,
    at: datetime,
    clear_reason: ClearReason,
) -> tuple[OpenAlerts, list[AlertEvent]]:
    current = open_alerts.get(alert_type)
    if want is None:
        if current is None:
            return open_alerts, []
        rest = {t: a for t, a in open_alerts.items() if t is not alert_type}
        return rest, [AlertCleared(resident_id, alert_type, at, clear_reason)]
    if current is None:
        opened = OpenAlert(want.severity, want.device_id, want.key, at)
        event: AlertEvent = AlertRaised(
            resident_id, want.device_id, alert_type, want.severity, at, dict(want.detail)
        )
        return {**open_alerts, alert_type: opened}, [event]
    if current.severity is want.severity and current.key == want.key:
        return open_alerts, []
    device_id = want.device_id if want.device_id is not None else current.device_id
    updated = OpenAlert(want.severity, device_id, want.key, current.raised_at)
    event = AlertUpdated(resident_id, device_id, alert_type, want.severity, at, dict(want.detail))
    return {**open_alerts, alert_type: updated}, [event]


def forget(open_alerts: OpenAlerts, alert_type: AlertType) -> OpenAlerts:
    """Drop an alert the operator closed; the detector may raise it afresh later."""
    return {t: a for t, a in open_alerts.items() if t is not alert_type}
