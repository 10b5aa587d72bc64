"""The fast path: screen a short impact window for a suspected fall within a second.

Two screens: :func:`screen_early` scores the window with the early-window
model (:mod:`alerts.falls.early`, ``early_model.json``; what the engine runs
with the packaged model), and :func:`screen_impact` is the rule screen below,
kept as the fallback for a model file that comes without an early model.

The model (:func:`alerts.falls.detect_fall`) judges what happens for several
seconds after an impact (lying still, a posture that stays), so it can only
decide once the band has uploaded the window's end, ~8 s after the impact. To
raise a *suspected* fall within 2 s of the impact, the band uploads the first
part of its impact window at once (see docs/protocol.md, "impact windows"),
and this screen decides on it alone. The full window then confirms or
retracts the suspicion (:mod:`alerts.detectors.falls`).

The screen is the classic threshold detector of the fall literature, on the
wrist: a descent whose acceleration magnitude drops towards free fall (lower
fall threshold ``FREE_FALL_G``), then within a second an impact above
``IMPACT_G`` (upper fall threshold), after which the forearm's gravity
direction has turned by at least ``TURN_DEG`` (the body ended up elsewhere),
and no repeated impacts around it (clapping, knocking, jogging). Every test is
on the magnitude or on angles between acceleration vectors: the band's axis
orientation does not matter. It is deliberately conservative (a false suspicion
is a critical alarm shown to an operator for the seconds until the full window
retracts it); the falls it lets through are still found by the model on the
full window, only later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from alerts.falls.early import EARLY_FEATURE_NAMES, early_features
from alerts.falls.model import FallModel
from alerts.falls.signal import resample

FREE_FALL_G: Final = 1.1  # no dip required: filtered wrist data shows none (HIFD median 0.96 g)
IMPACT_G: Final = 2.0  # upper fall threshold
DESCENT_S: Final = 1.0  # the free-fall dip must lie this long before the impact or less
TURN_DEG: Final = 45.0  # posture change between before (-2.0..-0.7 s) and after (+0.4 s..)
BEFORE_S: Final = (-2.0, -0.7)
AFTER_FROM_S: Final = 0.4
MIN_AFTER_S: Final = 0.3  # at least this much of "after" must be in the window
REPEAT_FRACTION: Final = 0.6  # another peak this tall (relative to the impact)...
REPEAT_AWAY_S: Final = 0.4  # ...this far from it means a repeated movement
SCREEN_RATE_HZ: Final = 50.0  # same 0.2 s smoothing as the model, a finer grid for the peak


@dataclass(frozen=True, slots=True)
class Screen:
    """The screen's verdict on one short window; ``t_s`` is the impact time if suspected."""

    suspected: bool
    t_s: float | None
    peak_g: float
    min_before_g: float
    turn_deg: float
    score: float | None = None  # the early-window model's score (None: the rule screen)


def _angle_deg(u: npt.NDArray[np.float64], v: npt.NDArray[np.float64]) -> float:
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu < 1e-6 or nv < 1e-6:
        return 0.0
    return float(np.degrees(np.arccos(np.clip(float(np.dot(u, v)) / (nu * nv), -1.0, 1.0))))


def screen_impact(t_s: npt.ArrayLike, acc_g: npt.ArrayLike) -> Screen:
    """Screen a window ending shortly after its impact. Pure; raises FallInputError on bad input."""
    sig = resample(t_s, acc_g, rate_hz=SCREEN_RATE_HZ)
    mag, acc, rate, n = sig.mag_g, sig.acc_g, sig.rate_hz, sig.n
    after = round(AFTER_FROM_S * rate)
    last = n - 1 - after - round(MIN_AFTER_S * rate)  # room for the "after" posture
    if last < 1:
        return Screen(False, None, 0.0, 1.0, 0.0)
    peak_i = int(np.argmax(mag[: last + 1]))
    peak = float(mag[peak_i])
    lo = max(0, peak_i - round(DESCENT_S * rate))
    min_before = float(np.min(mag[lo:peak_i])) if peak_i > lo else 1.0
    b0 = max(0, peak_i + round(BEFORE_S[0] * rate))
    b1 = max(b0 + 1, peak_i + round(BEFORE_S[1] * rate))
    before = np.mean(acc[b0:b1], axis=0)
    turn = _angle_deg(before, np.mean(acc[peak_i + after :], axis=0))
    away = np.abs(np.arange(n) - peak_i) > round(REPEAT_AWAY_S * rate)
    inner = np.zeros(n, dtype=bool)
    inner[1:-1] = (mag[1:-1] >= mag[:-2]) & (mag[1:-1] > mag[2:])
    repeated = bool(np.any(inner & away & (mag >= max(IMPACT_G * 0.9, REPEAT_FRACTION * peak))))
    suspected = (
        peak >= IMPACT_G
        and min_before <= FREE_FALL_G
        and turn >= TURN_DEG
        and not repeated
        and peak_i - round(BEFORE_S[1] * rate) > 0
    )
    t = float(sig.t0_s + peak_i / rate)
    return Screen(suspected, t if suspected else None, peak, min_before, turn)


def screen_early(t_s: npt.ArrayLike, acc_g: npt.ArrayLike, early: FallModel) -> Screen:
    """Score an early impact window with the early-window model (alerts/falls/early.py).

    Tuned for sensitivity: it catches ~97 % of real falls within a second of the
    upload, at the price of more suspicions for the full window to retract
    (docs/falls.md). Pure; raises FallInputError on bad input.
    """
    feats = early_features(t_s, acc_g)
    if feats is None:
        return Screen(False, None, 0.0, 1.0, 0.0)
    score = float(early.score(feats.row)[0])
    suspected = score >= early.threshold
    pre_min = float(feats.row[EARLY_FEATURE_NAMES.index("early_pre_min_g")])
    turn = float(feats.row[EARLY_FEATURE_NAMES.index("early_turn_deg")])
    t = feats.t_s if suspected else None
    return Screen(suspected, t, feats.peak_g, pre_min, turn, score)
