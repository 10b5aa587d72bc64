"""Restart: the mutes of condition alerts closed by people, rebuilt from stored alerts.

Pure (stored rows in, states out). A condition alert (anything but SOS, fall, long lie
and night activity: what :mod:`alerts.detectors.engine` mutes when it is closed) that
anyone but the engine closed while its condition held (an operator; a worker whose
completed order resolved it) is muted in the running engine at the severity
it had, until the detector clears it. The mute lives in memory; before 2026-12-04 each
restart re-derived the condition from fresh data and raised it as a new alert.

:func:`with_restored_mutes` mutes it again when, within ``MUTE_LOOKBACK``, it was closed
by anyone but the engine (its last transition's actor), the engine had not cleared it (no
``cleared`` or ``detector_cleared`` in its detail) and no later alert of the resident
and type was opened. The detectors hold nothing open after a restart, so no clear would
end such a mute: it carries a deadline (``RESTORED_MUTE_FOR``, ``mute_until``) by which
the detector must raise the type again to keep it muted (see ``_mute`` there).
The rows are read by :func:`alerts.evidence.load_closed_conditions`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from alerts.detectors import AlertType, ResidentState, Severity
from alerts.restart import cleared_reason
from alerts.store import ENGINE, StoredAlert

# How far back a close counts. The database does not know whether the
# condition ended after the close (a muted type's clear is dropped, nothing is written),
# so an old close says little about now; a day bounds the read, and a condition that
# still holds is shown again at most once a day: a low battery nobody charged is news.
MUTE_LOOKBACK: Final = timedelta(hours=24)
# How long after the restart the detector has to raise a restored type again to keep
# it muted. Long enough for the conditions re-derived within minutes (vitals persistence
# 5-30 min, offline, battery, refused windows, not worn 30 min; a geofence exit is
# replayed at the start); short enough that a new episode of a condition that ended
# unrecorded is not silenced for long. Slower ones (inactivity after 3 h or the
# resident's routine) are raised once more after a restart, as before: the safer error.
RESTORED_MUTE_FOR: Final = timedelta(hours=2)
# the types AlertClosed mutes; the others end an episode (alerts.detectors.engine._close)
CONDITIONS: Final = frozenset(AlertType) - {
    AlertType.SOS, AlertType.FALL, AlertType.LONG_LIE, AlertType.NIGHT_ACTIVITY,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ClosedAlert(StoredAlert):
    """A closed alert and who closed it (the actor of its last transition)."""

    closed_by: str


def restored_mutes(
    closed: Iterable[ClosedAlert], open_alerts: Iterable[StoredAlert]
) -> dict[int, dict[AlertType, Severity]]:
    """resident -> condition type -> the severity it was closed at, for each
    (resident, type) whose newest alert (``closed`` and ``open_alerts`` together) is a
    condition closed by anyone but the engine, which had not cleared it."""
    newest: dict[tuple[int, str], StoredAlert] = {}
    for a in (*closed, *open_alerts):
        got = newest.get((a.resident_id, a.type))
        if got is None or (a.opened_at, a.id) > (got.opened_at, got.id):
            newest[(a.resident_id, a.type)] = a
    out: dict[int, dict[AlertType, Severity]] = {}
    for (resident_id, alert_type), a in newest.items():
        if (alert_type in CONDITIONS and isinstance(a, ClosedAlert)
                and a.closed_by != ENGINE and cleared_reason(a) is None):  # fmt: skip
            out.setdefault(resident_id, {})[AlertType(alert_type)] = Severity(a.severity)
    return out


def with_restored_mutes(
    states: dict[int, ResidentState],
    closed: Iterable[ClosedAlert],
    open_alerts: Iterable[StoredAlert],
    *,
    now: datetime,
) -> dict[int, ResidentState]:
    """``states`` with the restored mutes (:func:`restored_mutes`), each lifted at ``now``
    plus ``RESTORED_MUTE_FOR`` unless raised before; one a detector already holds open
    (a geofence exit replayed at the start) is an ordinary mute at once."""
    out = dict(states)
    for resident_id, mutes in restored_mutes(closed, open_alerts).items():
        state = out.get(resident_id) or ResidentState()
        held = state.open_alerts()
        until = {t: now + RESTORED_MUTE_FOR for t in mutes if t not in held}
        out[resident_id] = replace(state, muted={**state.muted, **mutes},
                                   mute_until={**state.mute_until, **until})  # fmt: skip
    return out
