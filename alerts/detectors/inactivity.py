"""Inactivity for residents living alone: no movement for longer than their routine allows.

Only waking-hours time counts (``Profile.waking_start``..``waking_end``, local,
default 07:00-22:00 Asia/Shanghai), so a night's sleep never adds up. Movement
is new steps, a motion-triggered accelerometer window, or a deliberate press on
the band. The rule is silent while no band is usable (offline or off the wrist:
those have their own alerts) and for residents who do not live alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.detectors.lifecycle import OpenAlerts, Want, reconcile
from alerts.detectors.localtime import in_window, time_in_window
from alerts.detectors.types import AlertEvent, AlertType, ClearReason, Profile, Severity, iso


@dataclass(frozen=True, slots=True)
class InactivityState:
    last_movement_at: datetime | None = None
    open: OpenAlerts = field(default_factory=dict)


def learn_threshold(
    waking_gaps: Sequence[timedelta],
    *,
    factor: float = 1.5,
    floor: timedelta = timedelta(hours=2),
    ceiling: timedelta = timedelta(hours=6),
    min_samples: int = 14,
) -> timedelta | None:
    """A personal threshold from the resident's history of waking-hours still periods:
    ``factor`` x their 95th percentile, clamped; None until there is enough history."""
    if len(waking_gaps) < min_samples:
        return None
    ordered = sorted(waking_gaps)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return min(ceiling, max(floor, p95 * factor))


def _evaluate(
    state: InactivityState, profile: Profile, now: datetime, *, usable: bool
) -> tuple[InactivityState, list[AlertEvent]]:
    want = None
    last = state.last_movement_at
    if profile.lives_alone and last is not None:
        still = time_in_window(last, now, profile.waking_start, profile.waking_end, profile.tz)
        waking = in_window(now, profile.waking_start, profile.waking_end, profile.tz)
        already = AlertType.INACTIVITY in state.open
        if still >= profile.inactivity_after and (already or (waking and usable)):
            detail = {
                "last_movement_at": iso(last),
                "still_waking_s": still.total_seconds(),
                "threshold_s": profile.inactivity_after.total_seconds(),
            }
            want = Want(Severity.HIGH, None, detail)
    opened, events = reconcile(
        state.open,
        AlertType.INACTIVITY,
        want,
        resident_id=profile.resident_id,
        at=now,
        clear_reason=ClearReason.MOVEMENT_RESUMED,
    )
    return InactivityState(last, opened), events


def step(
    state: InactivityState, profile: Profile, *, moved: bool, usable: bool, now: datetime
) -> tuple[InactivityState, list[AlertEvent]]:
    """One observation (``moved``: it showed movement) or a tick (``moved=False``).

    The first observation starts the clock: no history is no evidence of stillness.
    """
    if moved or state.last_movement_at is None:
        state = InactivityState(now, state.open)
    return _evaluate(state, profile, now, usable=usable)
