"""SOS: a deliberate call for help, raised at once as critical.

An SOS is never cancelled by the band: the wearer pressed the button on
purpose, and a later "I'm OK" may come from a confused or coerced wearer or a
fumbled press. The ``im_ok`` is recorded on the open alert (``AlertUpdated``
with ``wearer_says_ok``) so the operator can call back first; only an operator
closes an SOS. Repeated presses update the one open alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from alerts.detectors.lifecycle import OpenAlerts, Want, reconcile
from alerts.detectors.types import (
    AlertEvent,
    AlertType,
    ClearReason,
    Profile,
    Severity,
    iso,
    location_detail,
    ms_to_utc,
)
from eldercare.protocol import DeviceEvent, EventType


@dataclass(frozen=True, slots=True)
class SosState:
    presses: int = 0
    first_pressed_at: datetime | None = None
    wearer_ok_at: datetime | None = None
    open: OpenAlerts = field(default_factory=dict)


def step(
    state: SosState, profile: Profile, event: DeviceEvent, now: datetime
) -> tuple[SosState, list[AlertEvent]]:
    if event.type is EventType.SOS:
        pressed_at = ms_to_utc(event.ts)
        first = state.first_pressed_at or pressed_at
        state = SosState(state.presses + 1, first, None, state.open)
        detail_extra = {"location": location_detail(event.loc)}
    elif event.type is EventType.IM_OK and state.presses > 0:
        state = SosState(state.presses, state.first_pressed_at, ms_to_utc(event.ts), state.open)
        detail_extra = {}
    else:
        return state, []
    detail = {
        "presses": state.presses,
        "first_pressed_at": iso(state.first_pressed_at) if state.first_pressed_at else None,
        "wearer_says_ok": state.wearer_ok_at is not None,
        "wearer_ok_at": iso(state.wearer_ok_at) if state.wearer_ok_at else None,
        **detail_extra,
    }
    want = Want(
        Severity.CRITICAL,
        event.device_id,
        detail,
        key=f"{state.presses}:{state.wearer_ok_at is not None}",
    )
    opened, events = reconcile(
        state.open,
        AlertType.SOS,
        want,
        resident_id=profile.resident_id,
        at=now,
        clear_reason=ClearReason.RESOLVED,
    )
    return SosState(state.presses, state.first_pressed_at, state.wearer_ok_at, opened), events
