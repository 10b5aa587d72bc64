"""Personal baselines (median / MAD) and drift from them -> ``baseline_deviation``.

The shell (:mod:`alerts.baselines`) computes each baseline over the
resident's recent days in the database, separately for waking hours
(``Profile.baselines``) and the night (``Profile.night_baselines``; the
night-time heart rate is the resting baseline). A reading z = (value - median) / scale with
|z| >= 3 is level 1 (low), >= 5 level 2 (medium); it must persist under
:data:`BASELINE_PERSISTENCE` and clears once |z| < 2 for a while. Heart rate is
compared at night only (the resting baseline), so its drift ends with the night:
the first reading of waking hours drops the heart rate's track, and clears the
alert if nothing else drifts. Before 2026-12-04 daytime heart rates never
reached the track, and a deviation raised at 03:30 stayed open all day (SpO2
readings refreshing it) until enough usual heart rates the next night. SpO2
only downwards. One alert covers all drifting parameters; its severity is the
worst of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import numpy as np

from alerts.detectors.lifecycle import OpenAlerts, Want, reconcile
from alerts.detectors.news2 import Direction, VitalParam
from alerts.detectors.persistence import GradedTrack, observe
from alerts.detectors.types import (
    AlertEvent,
    AlertType,
    Baseline,
    ClearReason,
    Persistence,
    Profile,
    Severity,
)
from alerts.detectors.waking import vitals_night

MAD_TO_SD: Final = 1.4826
Z_LEVELS: Final = (3.0, 5.0)
Z_CLEAR: Final = 2.0
SCALE_FLOOR: Final = {VitalParam.HR: 3.0, VitalParam.SPO2: 1.0}
BASELINE_PERSISTENCE: Final = Persistence(
    min_readings=5,
    min_duration=timedelta(minutes=30),
    clear_readings=5,
    clear_duration=timedelta(minutes=30),
    max_gap=timedelta(minutes=30),
)
SEVERITY: Final = {1: Severity.LOW, 2: Severity.MEDIUM}
CHECKED: Final = (VitalParam.HR, VitalParam.SPO2)


def compute_baseline(
    values: Sequence[float], *, scale_floor: float = 1.0, min_samples: int = 50
) -> Baseline | None:
    """Median and 1.4826 x MAD of a series (NaNs dropped); None if too short."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size < min_samples:
        return None
    median = float(np.median(arr))
    mad = float(np.median(np.abs(arr - median)))
    return Baseline(median, max(MAD_TO_SD * mad, scale_floor), int(arr.size))


@dataclass(frozen=True, slots=True)
class BaselineState:
    tracks: Mapping[VitalParam, GradedTrack] = field(default_factory=dict)
    open: OpenAlerts = field(default_factory=dict)


def _level(z: float, param: VitalParam) -> tuple[int, Direction | None]:
    side = Direction.HIGH if z > 0 else Direction.LOW
    if param is VitalParam.SPO2 and side is Direction.HIGH:
        return 0, None
    level = sum(1 for limit in Z_LEVELS if abs(z) >= limit)
    return level, side if level else None


def _night_running(track: GradedTrack | None, observed_at: datetime) -> bool:
    """A heart-rate track with a run or an alert before ``observed_at``: a night's drift
    that a waking-hours reading then ends (an older one, arriving late, does not)."""
    return (
        track is not None
        and (track.active > 0 or track.side is not None)
        and (track.last_at is None or observed_at > track.last_at)
    )


def _night_over(
    state: BaselineState, profile: Profile, observed_at: datetime, now: datetime
) -> tuple[BaselineState, list[AlertEvent]]:
    """A reading of waking hours at ``observed_at``: the heart rate's night track ends (a
    resting heart rate is not judged by day; the next night starts afresh, and a night
    reading from before ``observed_at`` arriving late is ignored as late). The alert is
    cleared if no other parameter drifts; otherwise the next reading of one updates it
    without the heart rate (the rest of the same message, as a rule)."""
    tracks = {**state.tracks, VitalParam.HR: GradedTrack(last_at=observed_at)}
    if any(t.active for t in tracks.values()):
        return BaselineState(tracks, state.open), []
    opened, events = reconcile(
        state.open,
        AlertType.BASELINE_DEVIATION,
        None,
        resident_id=profile.resident_id,
        at=now,
        clear_reason=ClearReason.RESOLVED,
    )
    return BaselineState(tracks, opened), events


def step_value(
    state: BaselineState,
    profile: Profile,
    *,
    param: VitalParam,
    value: float,
    observed_at: datetime,
    device_id: str | None,
    now: datetime,
    night: bool | None = None,
) -> tuple[BaselineState, list[AlertEvent]]:
    """One reading; ``night`` (outside waking hours) is computed from ``observed_at`` if None."""
    if param not in CHECKED:
        return state, []
    if night is None:
        night = vitals_night(observed_at, profile)
    ended: list[AlertEvent] = []
    if not night and _night_running(state.tracks.get(VitalParam.HR), observed_at):
        state, ended = _night_over(state, profile, observed_at, now)
    if param is VitalParam.HR:
        if not night:
            return state, ended  # resting heart rate: compared at night only
        baseline = profile.night_baselines.get(param)
    else:
        baseline = profile.baseline(param, night=night)
    if baseline is None:
        return state, ended
    z = baseline.z(value)
    level, side = _level(z, param)
    track = state.tracks.get(param, GradedTrack())
    new = observe(
        track,
        at=observed_at,
        side=side,
        level=level,
        clear_ok=abs(z) < Z_CLEAR,
        min_level=1,
        rules=BASELINE_PERSISTENCE,
    )
    tracks = {**state.tracks, param: new}
    drifting = {p: t for p, t in sorted(tracks.items()) if t.active}
    want = None
    if drifting:
        worst = max(t.active for t in drifting.values())
        detail = {
            "parameters": {
                p.value: {"direction": str(t.active_side), "level": t.active}
                for p, t in drifting.items()
            },
            "parameter": param.value,  # of value, z and baseline_median: the latest reading
            "value": value,
            "z": round(z, 2),
            "baseline_median": baseline.median,
        }
        key = ",".join(f"{p}:{t.active_side}:{t.active}" for p, t in drifting.items())
        want = Want(SEVERITY[min(worst, 2)], device_id, detail, key)
    opened, events = reconcile(
        state.open,
        AlertType.BASELINE_DEVIATION,
        want,
        resident_id=profile.resident_id,
        at=now,
        clear_reason=ClearReason.RESOLVED,
    )
    return BaselineState(tracks, opened), ended + events
