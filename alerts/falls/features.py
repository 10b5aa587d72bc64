"""Candidate impacts and rotation-invariant fall features.

A fall at the wrist is a short story: a dip in magnitude (falling), one
impact, then little movement (lying) with the forearm in a new orientation.
Clapping, jogging and hopping also reach 3-9 g, but they repeat and keep
moving; a knock on the band or a swing-and-hit returns to the posture it
started from, while a fall leaves the forearm turned. Every feature here
depends only on the acceleration magnitude or on angles between acceleration
vectors, so it does not care how the band's axes are oriented or signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from alerts.falls.signal import (
    COMMON_RANGE_G,
    FloatArray,
    Samples,
    UniformSignal,
    clean_samples,
    on_grid,
)

IntArray = npt.NDArray[np.intp]

CANDIDATE_MIN_G: Final = 1.3
CANDIDATE_SEPARATION_S: Final = 1.0
MAX_CANDIDATES: Final = 6
# Longer windows hold more movement: one candidate per 2.5 s beyond 15 s, so that a soft
# fall at the end of a minute of jogging or clapping is still among the candidates.
CANDIDATES_PER_S: Final = 0.4
MIN_POST_S: Final = 1.0
PEAK_CLIP_G: Final = 8.0
ACTIVE_DEVIATION_G: Final = 0.3
# Below this, a magnitude spread is sensor noise or tremor, not movement: one
# device's filtered "perfectly still" (HIFD, ~0 g) and another's noisy still
# (UMAFall, ~0.02 g) must look the same to the model.
STILL_FLOOR_G: Final = 0.03
# A sustained turn of the wrist's gravity direction this large or larger counts
# as a full change of posture; smaller turns scale the impact evidence down.
TURN_FULL_DEG: Final = 45.0
# A falling wrist is unloaded before it lands (|a| dips below 1 g); this far below
# 1 g in the last second counts as full unloading, less scales the jerk down.
UNLOADING_FULL_G: Final = 0.25

FEATURE_NAMES: Final = (
    "pre_min_g",
    "pre_activity_std_g",
    "pre_dev_g",
    "pre_rotation_deg",
    "post_std_g",
    "post_mean_dev_g",
    "post_long_std_g",
    "active_fraction",
    "repeat_peaks",
    "unloaded_jerk_g_per_s",
    "turned_log_peak",
    "turned_energy_gs",
    "sustained_turn_deg",
)


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidate impacts of one window and their feature rows."""

    index: IntArray
    t_s: FloatArray
    features: FloatArray  # (k, len(FEATURE_NAMES))


def unloading(pre_min_g: float) -> float:
    """How far the wrist was unloaded before an impact, 0 to 1 (full at
    ``UNLOADING_FULL_G`` below 1 g). A knock on the band or the hit at the end of a
    swing is as sharp as a fall's impact, but nothing carried the wrist down before it."""
    return min(max((1.0 - pre_min_g) / UNLOADING_FULL_G, 0.0), 1.0)


def window_signal(t_s: npt.ArrayLike, acc_g: npt.ArrayLike) -> UniformSignal:
    """The signal the features are defined on (:func:`samples_signal`) of raw samples."""
    return samples_signal(clean_samples(t_s, acc_g))


def samples_signal(samples: Samples) -> UniformSignal:
    """The signal the features are defined on: cleaned samples, each axis clipped to
    ``COMMON_RANGE_G`` (every band with at least that range looks the same), on the
    smoothed uniform grid."""
    return on_grid(samples, range_g=COMMON_RANGE_G)


def find_candidates(signal: UniformSignal) -> IntArray:
    """Indices of the strongest separated magnitude peaks with room after them.

    Local maxima above ``CANDIDATE_MIN_G``, strongest first, at least
    ``CANDIDATE_SEPARATION_S`` apart, ``MAX_CANDIDATES`` of them or one per
    ``1 / CANDIDATES_PER_S`` seconds of window if that is more, leaving
    ``MIN_POST_S`` of signal after them so that the lying-still features can be
    judged. If nothing clears the
    bar, the strongest sample with room after it is the only candidate.
    """
    mag = signal.mag_g
    last = signal.n - 1 - round(MIN_POST_S * signal.rate_hz)
    if last < 0:
        return np.zeros(0, dtype=np.intp)
    inner = mag[1:-1]
    peaks = np.flatnonzero((inner >= mag[:-2]) & (inner > mag[2:]) & (inner >= CANDIDATE_MIN_G))
    peaks = peaks + 1
    peaks = peaks[peaks <= last]
    order = peaks[np.argsort(-mag[peaks], kind="stable")]
    separation = round(CANDIDATE_SEPARATION_S * signal.rate_hz)
    limit = max(MAX_CANDIDATES, round(CANDIDATES_PER_S * signal.n / signal.rate_hz))
    chosen: list[int] = []
    for idx in order:
        if all(abs(int(idx) - c) >= separation for c in chosen):
            chosen.append(int(idx))
            if len(chosen) == limit:
                break
    if not chosen:
        chosen = [int(np.argmax(mag[: last + 1]))]
    return np.asarray(chosen, dtype=np.intp)


def _span(center: int, start_s: float, stop_s: float, rate: float, n: int) -> slice:
    """Samples from ``center + start_s`` to ``center + stop_s``, at least one, clipped."""
    lo = min(max(center + round(start_s * rate), 0), n - 1)
    hi = min(max(center + round(stop_s * rate), lo + 1), n)
    return slice(lo, hi)


def _angle_deg(u: FloatArray, v: FloatArray) -> float:
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu < 1e-6 or nv < 1e-6:
        return 0.0
    cos = float(np.dot(u, v)) / (nu * nv)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _path_angle_deg(acc: FloatArray) -> float:
    """Total angle swept by the acceleration direction along a segment."""
    if acc.shape[0] < 2:
        return 0.0
    unit = acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-6)
    cos = np.clip(np.sum(unit[1:] * unit[:-1], axis=1), -1.0, 1.0)
    return float(np.degrees(np.sum(np.arccos(cos))))


def impact_features(signal: UniformSignal, center: int) -> FloatArray:
    """The feature row (order of ``FEATURE_NAMES``) for an impact at ``center``."""
    mag, acc, rate, n = signal.mag_g, signal.acc_g, signal.rate_hz, signal.n

    def span(start_s: float, stop_s: float) -> slice:
        return _span(center, start_s, stop_s, rate, n)

    peak = min(float(mag[center]), PEAK_CLIP_G)
    pre_min = float(np.min(mag[span(-1.0, 0.0)]))
    pre_activity = max(float(np.std(mag[span(-4.0, -1.5)])), STILL_FLOOR_G)
    pre_dev = float(np.mean(np.abs(mag[span(-1.2, -0.2)] - 1.0)))
    pre_rotation = _path_angle_deg(acc[span(-1.5, -0.2)])
    post = mag[span(1.0, 3.0)]
    post_std = max(float(np.std(post)), STILL_FLOOR_G)
    post_dev = max(float(np.mean(np.abs(post - 1.0))), STILL_FLOOR_G)
    post_long_std = max(float(np.std(mag[span(1.0, 6.0)])), STILL_FLOOR_G)
    # A fall ends with the forearm in a new posture that *stays*: the gravity
    # direction 1-3 s and 3-5 s after the impact both differ from before. A
    # knock or a swing-and-hit returns to where it started within a second.
    before = np.mean(acc[span(-2.5, -0.7)], axis=0)
    turn = min(
        _angle_deg(before, np.mean(acc[span(1.0, 3.0)], axis=0)),
        _angle_deg(before, np.mean(acc[span(3.0, 5.0)], axis=0)),
    )
    turned = min(turn / TURN_FULL_DEG, 1.0)

    around = span(-3.0, 3.0)
    offsets = np.arange(around.start, around.stop) - center
    outside = np.abs(offsets) > round(0.6 * rate)
    deviating = np.abs(mag[around] - 1.0) > ACTIVE_DEVIATION_G
    active_fraction = float(np.mean(deviating[outside])) if np.any(outside) else 0.0

    near = span(-4.0, 4.0)
    seg = mag[near]
    local_max = np.zeros(seg.shape, dtype=bool)
    local_max[1:-1] = (seg[1:-1] >= seg[:-2]) & (seg[1:-1] > seg[2:])
    far = np.abs(np.arange(near.start, near.stop) - center) > round(0.4 * rate)
    tall = seg >= max(1.5, 1.0 + 0.5 * (peak - 1.0))
    repeat_peaks = float(np.count_nonzero(local_max & far & tall))

    energy = float(np.sum(np.abs(mag[span(-1.0, 1.0)] - 1.0)) / rate)
    burst = acc[span(-0.5, 0.5)]
    jerk = (
        float(np.max(np.linalg.norm(np.diff(burst, axis=0), axis=1)) * rate)
        if burst.shape[0] > 1
        else 0.0
    )
    return np.array(
        [
            pre_min,
            pre_activity,
            pre_dev,
            pre_rotation,
            post_std,
            post_dev,
            post_long_std,
            active_fraction,
            repeat_peaks,
            jerk * unloading(pre_min),
            np.log(max(peak, 1e-3)) * turned,
            energy * turned,
            min(turn, TURN_FULL_DEG),
        ],
        dtype=np.float64,
    )


def candidate_features(signal: UniformSignal) -> Candidates:
    """Candidate impacts of a window with one feature row each."""
    index = find_candidates(signal)
    rows = [impact_features(signal, int(c)) for c in index]
    features = np.vstack(rows) if rows else np.zeros((0, len(FEATURE_NAMES)), dtype=np.float64)
    return Candidates(index=index, t_s=signal.t0_s + index / signal.rate_hz, features=features)
