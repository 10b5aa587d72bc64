"""A resident away from home for a while: what is held back, and what is raised on return.

A hospital stay, a week at a daughter's, a respite bed: the centre records it
(``PUT /residents/{id}/away``, :mod:`eldercare.absence`) and the profile carries it
(:class:`~alerts.detectors.types.Away`). While it lasts, the alerts that are about the
home routine or the band's upkeep are held back (:data:`QUIET_WHILE_AWAY`): nobody
walks about the flat, the band lies in a drawer or goes flat, the resident is outside
every safe zone and keeps other hours. Each would be a false alarm every day of the
stay, answered by a visit to an empty home. The alerts about the person stay as
they are, wherever they are: SOS, falls, long lies and vital signs.

The detectors go on deciding as usual; only their events are held. A held alert the
detector clears during the absence is never shown. One it still holds open when the
absence ends (or is ended early) is raised then, with ``held_while_away_since``: the
band still silent or the resident still not moving when they were due back is news.
An alert already open when the absence began is the centre's already: its updates and
clear go through.

Held alerts live in the engine's memory (``ResidentState.away_held``); after a restart
the detectors re-derive them from new readings, as every condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from alerts.detectors.types import (
    AlertCleared,
    AlertEvent,
    AlertRaised,
    AlertType,
    AlertUpdated,
    Away,
    iso,
)

QUIET_WHILE_AWAY: Final = frozenset(
    {
        AlertType.INACTIVITY,
        AlertType.GEOFENCE_EXIT,
        AlertType.NIGHT_ACTIVITY,
        AlertType.BASELINE_DEVIATION,
        AlertType.DEVICE_OFFLINE,
        AlertType.BATTERY_LOW,
        AlertType.BAND_NOT_WORN,
        AlertType.IMU_REFUSED,
    }
)

Held = Mapping[AlertType, AlertRaised]


def _as_raise(e: AlertRaised | AlertUpdated, first: AlertRaised | None) -> AlertRaised:
    """The raise to show for ``e`` (a raise or an update), dated from the first one held."""
    at = first.at if first is not None else e.at
    return AlertRaised(e.resident_id, e.device_id, e.type, e.severity, at, e.detail)


def hold_while_away(
    away: Away | None, held: Held, events: list[AlertEvent], now: datetime
) -> tuple[Held, list[AlertEvent]]:
    """Pure: ``(held, events)`` after the absence rule (module doc). ``held``: the raises
    held back so far, by type (each the latest state of its alert). Nothing to change
    (the usual case, on every reading): the same ``held`` and ``events`` back."""
    if away is not None and away.covers(now):
        if not any(e.type in QUIET_WHILE_AWAY for e in events):
            return held, events
        return _hold(held, events)
    if not held:
        return held, events
    return {}, _release(held, events, now)


def _hold(held: Held, events: list[AlertEvent]) -> tuple[Held, list[AlertEvent]]:
    kept = dict(held)
    out: list[AlertEvent] = []
    for e in events:
        if e.type not in QUIET_WHILE_AWAY:
            out.append(e)
        elif isinstance(e, AlertCleared):
            if kept.pop(e.type, None) is None:  # open before the absence: the centre's
                out.append(e)
        elif isinstance(e, AlertRaised) or e.type in kept:
            kept[e.type] = _as_raise(e, kept.get(e.type))
        else:  # an update of an alert open before the absence
            out.append(e)
    return kept, out


def _release(held: Held, events: list[AlertEvent], now: datetime) -> list[AlertEvent]:
    kept = dict(held)
    out: list[AlertEvent] = []
    for e in events:
        if e.type not in kept:
            out.append(e)
        elif isinstance(e, AlertCleared):
            del kept[e.type]  # it ended as the absence did: nothing to show
        else:
            kept[e.type] = _as_raise(e, kept[e.type])
    for alert_type, e in kept.items():
        detail = {**e.detail, "held_while_away_since": iso(e.at)}
        out.append(AlertRaised(e.resident_id, e.device_id, alert_type, e.severity, now, detail))
    return out
