"""SOS: a deliberate call for help, raised at once as critical.

An SOS is never cancelled by the band: the wearer pressed the button on
purpose, and a later "I'm OK" may come from a confused or coerced wearer or a
fumbled press. The ``im_ok`` is recorded on the open alert (``AlertUpdated``
with ``wearer_says_ok``) so the operator can call back first; only an operator
closes an SOS. Repeated presses update the one open alert.

Times are the band's (``ts``), since a band's backlog arrives after its new
alarms (docs/protocol.md): an "I'm OK" pressed before the latest SOS press is
not about it and is ignored (a new press likewise clears an earlier "I'm OK").
A press handed over twice (at-least-once delivery: the same device, ``seq`` and
``ts``) is counted once; the last ``SEEN_PRESSES`` presses are remembered for
that, so the state stays bounded however often the button is pressed. Both the
latest press's time and the presses counted are kept in the alert's detail
(``last_pressed_at``, ``presses_seen``), so an engine restarted before its batch
was acknowledged knows them when the same presses come again (alerts/restart.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final

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

# A redelivery follows its original within seconds (an ingest crash between commit and
# acknowledgement), so a few recent presses are enough to recognise it.
SEEN_PRESSES: Final = 16

PressId = tuple[str, int, int]  # (device_id, seq, ts): one device event


def _press_id(item: object) -> PressId | None:
    if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)):
        return None
    seq, ts = item[1], item[2]
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (seq, ts)):
        return None
    return (item[0], seq, ts)


def press_ids(stored: object) -> tuple[PressId, ...]:
    """The ``presses_seen`` of a stored detail, as counted; anything malformed is left out."""
    if not isinstance(stored, list):
        return ()
    return tuple(p for p in map(_press_id, stored[-SEEN_PRESSES:]) if p is not None)


@dataclass(frozen=True, slots=True)
class SosState:
    presses: int = 0
    first_pressed_at: datetime | None = None
    wearer_ok_at: datetime | None = None
    open: OpenAlerts = field(default_factory=dict)
    # band time of the latest press; None after a restart from an alert recorded without
    # it (before 2026-12-03: first_pressed_at stands in)
    last_pressed_at: datetime | None = None
    counted: tuple[PressId, ...] = ()  # the latest presses counted, at most SEEN_PRESSES


def _press(state: SosState, event: DeviceEvent) -> SosState | None:
    """The state after an SOS press, or None when this very press was counted already."""
    press = (event.device_id, event.seq, event.ts)
    if press in state.counted:
        return None
    at = ms_to_utc(event.ts)
    first = min(state.first_pressed_at or at, at)
    last = max(state.last_pressed_at or at, at)
    ok_at = state.wearer_ok_at
    return replace(
        state,
        presses=state.presses + 1,
        first_pressed_at=first,
        wearer_ok_at=ok_at if ok_at is not None and ok_at >= last else None,
        last_pressed_at=last,
        counted=(*state.counted, press)[-SEEN_PRESSES:],
    )


def _wearer_ok(state: SosState, event: DeviceEvent) -> SosState | None:
    """The state after an "I'm OK", or None when there is no SOS it could be about."""
    latest = state.last_pressed_at or state.first_pressed_at
    at = ms_to_utc(event.ts)
    if state.presses == 0 or latest is None or at < latest:
        return None
    return replace(state, wearer_ok_at=max(at, state.wearer_ok_at or at))


def step(
    state: SosState, profile: Profile, event: DeviceEvent, now: datetime
) -> tuple[SosState, list[AlertEvent]]:
    if event.type is EventType.SOS:
        new = _press(state, event)
        detail_extra = {"location": location_detail(event.loc)}
    elif event.type is EventType.IM_OK:
        new = _wearer_ok(state, event)
        detail_extra = {}
    else:
        new = None
    if new is None:
        return state, []
    state = new
    detail = {
        "presses": state.presses,
        "first_pressed_at": iso(state.first_pressed_at) if state.first_pressed_at else None,
        "wearer_says_ok": state.wearer_ok_at is not None,
        "wearer_ok_at": iso(state.wearer_ok_at) if state.wearer_ok_at else None,
        "last_pressed_at": iso(state.last_pressed_at) if state.last_pressed_at else None,
        "presses_seen": [list(p) for p in state.counted],
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
    return replace(state, open=opened), events
