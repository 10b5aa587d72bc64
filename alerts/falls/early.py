"""The fast path's model: score the early part of an impact window within a second.

On an impact the band uploads at once the early part of its IMU window, from
``EARLY_BEFORE_S`` before to ``EARLY_AFTER_S`` after the impact
(docs/protocol.md); the whole window follows ~8 s later. The full-window model
(:mod:`alerts.falls.model`) needs the seconds after the impact, so it cannot
decide on the early part. This module computes features that the early part
does hold (the impact, the arm's movement before it, the posture it ends in)
and scores them with a second logistic model trained for high sensitivity:
it raises a *suspected* fall, and the full window confirms or retracts it.

Every feature depends only on the acceleration magnitude or on angles between
acceleration vectors, so it does not care how the band's axes are oriented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from alerts.falls.signal import FallInputError, FloatArray, Samples, clean_samples, resample

EARLY_BEFORE_S: Final = 2.5  # the band's early upload: this long before the impact...
EARLY_AFTER_S: Final = 0.8  # ...to this long after it
EARLY_TRIGGER_G: Final = 2.0  # a band uploads an impact window when raw |a| reaches this
EARLY_RATE_HZ: Final = 50.0  # same 0.2 s smoothing as the model, a finer grid for the peak
AFTER_FROM_S: Final = 0.4  # the posture "after" is judged from here to the window's end
MIN_AFTER_S: Final = 0.3  # at least this much of "after" must be in the window
PEAK_CLIP_G: Final = 8.0
STILL_FLOOR_G: Final = 0.03  # as in features.py: below this a spread is noise
TURN_FULL_DEG: Final = 45.0
TURN_CAP_DEG: Final = 90.0
# The full-window model judges no impact closer than this to a window's end (it
# needs the seconds after it: features.MIN_POST_S); a window that ends sooner after
# its impact is judged on the early part, as the live engine judges an early upload.
TAIL_S: Final = 1.0
# Smoothing can move the early model's peak by up to about half the 0.2 s box.
PEAK_SHIFT_S: Final = 0.25

EARLY_FEATURE_NAMES: Final = (
    "early_log_peak",
    "early_turn_deg",
    "early_turned_log_peak",
    "early_pre_min_g",
    "early_pre_activity_std_g",
    "early_pre_dev_g",
    "early_pre_rotation_deg",
    "early_repeat_peaks",
    "early_jerk_g_per_s",
    "early_turned_energy_gs",
    "early_after_dev_g",
)


@dataclass(frozen=True, slots=True)
class EarlyFeatures:
    """The impact of an early window (time in the input's time base) and its feature row."""

    t_s: float
    peak_g: float
    row: FloatArray  # (len(EARLY_FEATURE_NAMES),)


def _angle_deg(u: FloatArray, v: FloatArray) -> float:
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu < 1e-6 or nv < 1e-6:
        return 0.0
    return float(np.degrees(np.arccos(np.clip(float(np.dot(u, v)) / (nu * nv), -1.0, 1.0))))


def _path_angle_deg(acc: FloatArray) -> float:
    if acc.shape[0] < 2:
        return 0.0
    unit = acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-6)
    cos = np.clip(np.sum(unit[1:] * unit[:-1], axis=1), -1.0, 1.0)
    return float(np.degrees(np.sum(np.arccos(cos))))


def early_features(t_s: npt.ArrayLike, acc_g: npt.ArrayLike) -> EarlyFeatures | None:
    """Features of the strongest impact of a short window; None if it leaves no room after.

    Pure; raises :class:`~alerts.falls.signal.FallInputError` on bad input.
    """
    sig = resample(t_s, acc_g, rate_hz=EARLY_RATE_HZ)
    mag, acc, rate, n = sig.mag_g, sig.acc_g, sig.rate_hz, sig.n
    after = round(AFTER_FROM_S * rate)
    last = n - 1 - after - round(MIN_AFTER_S * rate)
    if last < 1:
        return None
    c = int(np.argmax(mag[: last + 1]))

    def span(start_s: float, stop_s: float) -> slice:
        lo = min(max(c + round(start_s * rate), 0), n - 1)
        return slice(lo, min(max(c + round(stop_s * rate), lo + 1), n))

    peak = float(mag[c])
    before = np.mean(acc[span(-2.0, -0.7)], axis=0)
    after_acc = acc[c + after :]
    turn = min(_angle_deg(before, np.mean(after_acc, axis=0)), TURN_CAP_DEG)
    turned = min(turn / TURN_FULL_DEG, 1.0)
    log_peak = float(np.log(max(min(peak, PEAK_CLIP_G), 1e-3)))
    seg = mag
    local_max = np.zeros(n, dtype=bool)
    local_max[1:-1] = (seg[1:-1] >= seg[:-2]) & (seg[1:-1] > seg[2:])
    far = np.abs(np.arange(n) - c) > round(0.4 * rate)
    tall = seg >= max(1.5, 1.0 + 0.5 * (peak - 1.0))
    burst = acc[span(-0.5, 0.5)]
    jerk = (
        float(np.max(np.linalg.norm(np.diff(burst, axis=0), axis=1)) * rate)
        if burst.shape[0] > 1
        else 0.0
    )
    energy = float(np.sum(np.abs(mag[span(-1.0, EARLY_AFTER_S)] - 1.0)) / rate)
    row = np.array(
        [
            log_peak,
            turn,
            log_peak * turned,
            float(np.min(mag[span(-1.0, 0.0)])),
            max(float(np.std(mag[span(-2.5, -1.0)])), STILL_FLOOR_G),
            float(np.mean(np.abs(mag[span(-1.2, -0.2)] - 1.0))),
            _path_angle_deg(acc[span(-1.5, -0.2)]),
            float(np.count_nonzero(local_max & far & tall)),
            jerk,
            energy * turned,
            max(float(np.mean(np.abs(mag[c + after :] - 1.0))), STILL_FLOOR_G),
        ],
        dtype=np.float64,
    )
    return EarlyFeatures(t_s=float(sig.t0_s + c / rate), peak_g=peak, row=row)


def _cut_at_strongest(
    samples: Samples, where: npt.NDArray[np.bool_]
) -> tuple[FloatArray, FloatArray, int] | None:
    """The early part (``EARLY_BEFORE_S`` before to ``EARLY_AFTER_S`` after) around the
    strongest raw sample among ``where``, and that sample's index; None if none is."""
    t, a = samples
    if not np.any(where):
        return None
    peak = int(np.argmax(np.where(where, np.linalg.norm(a, axis=1), -1.0)))
    keep = (t >= t[peak] - EARLY_BEFORE_S) & (t <= t[peak] + EARLY_AFTER_S)
    return t[keep], a[keep], peak


def cut_early(
    t_s: npt.ArrayLike, acc_g: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, float] | None:
    """What the band would upload at once for a recording: the early part around its
    strongest raw sample, and that sample's raw magnitude (the band's trigger)."""
    samples = clean_samples(t_s, acc_g)
    t = samples.t_s
    # the band needs the window's early part to be complete
    cut = _cut_at_strongest(samples, t <= t[-1] - EARLY_AFTER_S)
    if cut is None:
        return None
    return cut[0], cut[1], float(np.linalg.norm(samples.acc_g[cut[2]]))


def tail_cut(samples: Samples) -> tuple[FloatArray, FloatArray, float] | None:
    """The early part around a window's last impact, and its time, if the full model
    cannot judge it.

    That is the strongest raw sample in the window's last ``TAIL_S`` seconds, if
    it reaches the band's trigger and leaves the early model its room after it
    (``AFTER_FROM_S + MIN_AFTER_S``); the cut runs from ``EARLY_BEFORE_S`` before
    it to ``EARLY_AFTER_S`` after it (or the window's end). None otherwise.
    """
    t = samples.t_s
    cut = _cut_at_strongest(
        samples, (t > t[-1] - TAIL_S) & (t <= t[-1] - (AFTER_FROM_S + MIN_AFTER_S))
    )
    if cut is None or np.linalg.norm(samples.acc_g[cut[2]]) < EARLY_TRIGGER_G:
        return None
    return cut[0], cut[1], float(t[cut[2]])


def tail_features(samples: Samples) -> EarlyFeatures | None:
    """Early-window features of the impact :func:`tail_cut` finds; None if there is
    none, or if the early part's strongest impact is an earlier one (which the full
    model judged). Pure."""
    cut = tail_cut(samples)
    if cut is None:
        return None
    try:
        feats = early_features(cut[0], cut[1])
    except FallInputError:  # the impact too close to the window's start to cut around
        return None
    if feats is None or feats.t_s < cut[2] - PEAK_SHIFT_S:
        return None
    return feats
