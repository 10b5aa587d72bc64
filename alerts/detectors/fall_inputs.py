"""What starts or answers a fall: a band's events and the accelerometer windows.

:func:`step_event` takes a band's ``fall`` and ``im_ok`` events; :func:`step_imu`
runs the platform's own fall detection (the early-window screen, then the full
window's model) on an ``imu`` window. Both hand over to the episode
(:mod:`alerts.detectors.fall_episode`); the timeline is in
:mod:`alerts.detectors.falls`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final

import numpy as np

from alerts.detectors.fall_episode import SAME_FALL, FallsState, FallStage, retract, suspect
from alerts.detectors.fall_evidence import im_ok
from alerts.detectors.types import AlertEvent, Profile, ms_to_utc
from alerts.falls import FallInputError, FallModel, detect_fall
from alerts.falls.screen import screen_early, screen_impact
from eldercare.protocol import DeviceEvent, EventType, ImuWindow

MODEL_AFTER: Final = timedelta(seconds=4)  # the model needs this much window after the impact


def band_score(data: Mapping[str, object] | None) -> float | None:
    """The band's own fall score (``data.score``, a number 0..1), if it sent a usable one.

    ``data`` is whatever the band put there, unchecked by ingest: JSON ``true`` is a
    Python int, so bool is refused by name.
    """
    raw = (data or {}).get("score")
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 1:
        return None
    return float(raw)


def step_event(
    state: FallsState, profile: Profile, event: DeviceEvent, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    if event.type is EventType.FALL:
        return suspect(
            state,
            profile,
            device_id=event.device_id,
            source="band",
            impact_at=ms_to_utc(event.ts),
            score=band_score(event.data),
            now=now,
        )
    if event.type is EventType.IM_OK:
        return im_ok(state, profile, now, pressed_at=ms_to_utc(event.ts))
    return state, []


def _impact_and_after(t_s: np.ndarray, acc: np.ndarray) -> tuple[float, float]:
    """The strongest sample's time and how much window follows it (raw samples)."""
    if t_s.size == 0 or acc.shape[0] != t_s.size:
        return 0.0, 0.0
    peak = int(np.argmax(np.einsum("ij,ij->i", acc, acc)))
    return float(t_s[peak]), float(t_s[-1] - t_s[peak])


def step_imu(
    state: FallsState, profile: Profile, window: ImuWindow, model: FallModel, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    """Run the platform's fall detection on one accelerometer window.

    A window with less than ``MODEL_AFTER`` after its strongest impact is an
    early impact upload: the early-window model (``model.early``, via
    :func:`alerts.falls.screen.screen_early`; the rule screen
    :func:`alerts.falls.screen.screen_impact` when the model has none) decides
    on it, and a pass raises ``fall`` (source ``screen``) at once.
    A longer window goes to the model; when the model finds no fall around
    the impact of a suspicion that only the screen raised, the suspicion is
    retracted (``not_confirmed``: closed as a false alarm) and watched for a long
    lie (:func:`retract`).
    """
    t_s = np.asarray(window.t_ms, dtype=np.float64) / 1000.0
    acc = np.column_stack((window.ax, window.ay, window.az)).astype(np.float64)
    start = ms_to_utc(window.ts)
    peak_s, after_s = _impact_and_after(t_s, acc)
    try:
        if after_s < MODEL_AFTER.total_seconds():
            early = model.early
            screen = screen_impact(t_s, acc) if early is None else screen_early(t_s, acc, early)
            if not screen.suspected or screen.t_s is None:
                return state, []
            impact_at = start + timedelta(seconds=screen.t_s)
            return suspect(state, profile, device_id=window.device_id, source="screen",
                           impact_at=impact_at, score=screen.score, now=now)  # fmt: skip
        decision = detect_fall(t_s, acc, model, judge_tail=False)
    except FallInputError:
        return state, []  # too short or malformed to score: not evidence either way
    if not decision.fall or decision.t_s is None:
        ep = state.episode
        covered = start + timedelta(seconds=peak_s)
        if (
            ep is not None
            and ep.sources == {"screen"}
            and ep.abnormal_hr is None
            and ep.stage is FallStage.SUSPECTED
            and abs(covered - ep.impact_at) <= SAME_FALL
        ):
            return retract(state, profile, now)
        return state, []
    return suspect(
        state,
        profile,
        device_id=window.device_id,
        source="platform",
        impact_at=start + timedelta(seconds=decision.t_s),
        score=decision.score,
        now=now,
    )
