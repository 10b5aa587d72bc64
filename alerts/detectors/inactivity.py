"""Inactivity for residents living alone: no movement for longer than their routine allows.

Only waking-hours time counts (``Profile.waking_start``..``waking_end``, local,
default 07:00-22:00 Asia/Shanghai), so a night's sleep never adds up. Movement
is new steps, a motion-triggered accelerometer window, or a deliberate press on
the band. The rule is silent while no band is usable (offline or off the wrist:
those have their own alerts) and for residents who do not live alone.

How long is too long is the resident's own (``Profile.inactivity_threshold``):
a clinician's setting if there is one, else what their routine allows
(:func:`learn_threshold` over their recent days' longest still stretches, from
the daily summaries, alerts/daily_summary.py), else 3 h.
"""

from __future__ import annotations

import math
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
    daily_longest: Sequence[timedelta],
    *,
    factor: float = 1.5,
    quantile: float = 0.75,
    floor: timedelta = timedelta(hours=2),
    ceiling: timedelta = timedelta(hours=6),
    min_days: int = 3,
) -> timedelta | None:
    """What the resident's routine allows: ``factor`` x the ``quantile`` (nearest rank)
    of their longest waking-hours still stretch per day, clamped to [floor, ceiling];
    None until ``min_days`` days are known.

    The quantile rather than the maximum: one unusual day in the window (an
    illness, a band left on the bedside table while reported worn) should not
    stretch the allowance for the week after it. With 7 days the 0.75 quantile
    is the second-longest day.
    """
    if len(daily_longest) < min_days:
        return None
    ordered = sorted(daily_longest)
    rank = max(1, math.ceil(quantile * len(ordered)))
    return min(ceiling, max(floor, ordered[rank - 1] * factor))


def _evaluate(
    state: InactivityState, profile: Profile, now: datetime, *, usable: bool
) -> tuple[InactivityState, list[AlertEvent]]:
    want = None
    last = state.last_movement_at
    if profile.lives_alone and last is not None:
        still = time_in_window(last, now, profile.waking_start, profile.waking_end, profile.tz)
        waking = in_window(now, profile.waking_start, profile.waking_end, profile.tz)
        already = AlertType.INACTIVITY in state.open
        threshold, source = profile.inactivity_threshold_from
        if still >= threshold and (already or (waking and usable)):
            detail = {
                "last_movement_at": iso(last),
                "still_waking_s": still.total_seconds(),
                "threshold_s": threshold.total_seconds(),
                "threshold_from": source,
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
    last = state.last_movement_at
    if not state.open and (last is None or now - last < profile.inactivity_threshold):
        # the common case: nothing open, and not even the whole time since the last
        # movement is as long as the threshold, so its waking-hours part is not either
        return state, []
    return _evaluate(state, profile, now, usable=usable)
