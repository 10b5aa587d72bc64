"""Accelerometer windows from a wrist: falls, and the daily activities that look like them.

Band frame: x along the forearm towards the hand, y across the wrist, z out of
the watch face. Readings are specific force in g *with* gravity: a band lying
face up on a table reads (0, 0, +1). A window is built from an orientation
trajectory (the unit "up" vector in the band frame, times the magnitude
profile) plus impulses (impacts, claps), periodic terms (gait) and sensor
noise, sampled at 50 Hz and saturating at +/-8 g.

A fall: normal movement, a descent whose last few hundred ms approach free
fall (|a| dips to 0.2-0.6 g), an impact spike of 3.5-12 g (2.5-7 g from a
chair or bed; real wrist recordings, docs/falls.md), a damped rebound, then
lying still with a different orientation; without a long lie the resident
moves and gets up within seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

HZ = 50
FULL_SCALE_G = 8.0
FallDirection = Literal["forward", "backward", "sideways"]
FallOrigin = Literal["standing", "chair", "bed"]
AdlKind = Literal["clapping", "sit_down_hard", "lie_on_bed", "band_on_table", "jogging", "stairs"]
ADL_KINDS: tuple[AdlKind, ...] = ("clapping", "sit_down_hard", "lie_on_bed", "band_on_table",
                                  "jogging", "stairs")  # fmt: skip
FALL_DIRECTIONS: tuple[FallDirection, ...] = ("forward", "backward", "sideways")
FALL_ORIGINS: tuple[FallOrigin, ...] = ("standing", "chair", "bed")

Vec = NDArray[np.float64]

_ARM_DOWN = np.array([-0.94, 0.12, 0.32])  # standing, arm hanging
_SEATED = np.array([0.25, 0.30, 0.92])  # forearm on lap, face up
_LYING_BACK = np.array([0.15, -0.25, 0.95])
_LYING_FRONT = np.array([0.30, 0.15, -0.94])
_LYING_SIDE = np.array([0.10, 0.96, 0.25])
_TABLE = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True, slots=True)
class Samples:
    """One window: ``t_ms`` from the window start; ``event_ms`` is the impact or key moment."""

    t_ms: list[int]
    ax: list[float]
    ay: list[float]
    az: list[float]
    event_ms: int


def _unit(v: Vec) -> Vec:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    out: Vec = v / np.maximum(n, 1e-9)
    return out


def _jitter(rng: np.random.Generator, v: Vec, deg: float) -> Vec:
    return _unit(v + rng.normal(0.0, np.radians(deg), 3))


def _orientation(t: Vec, keys: list[tuple[float, Vec]]) -> Vec:
    """Piecewise-linear (then normalised) interpolation of the up vector over time."""
    times = np.array([k for k, _ in keys])
    vecs = np.stack([v for _, v in keys])
    out = np.stack([np.interp(t, times, vecs[:, i]) for i in range(3)], axis=1)
    return _unit(out)


def _pulse(t: Vec, at: float, width_s: float) -> Vec:
    out: Vec = np.exp(-0.5 * ((t - at) / width_s) ** 2)
    return out


def _finish(rng: np.random.Generator, t: Vec, acc: Vec, event_s: float, noise_g: float) -> Samples:
    acc = acc + rng.normal(0.0, noise_g, acc.shape)
    acc = np.clip(np.round(acc, 3), -FULL_SCALE_G, FULL_SCALE_G)
    return Samples(
        t_ms=[int(x) for x in np.round(t * 1000)],
        ax=acc[:, 0].tolist(),
        ay=acc[:, 1].tolist(),
        az=acc[:, 2].tolist(),
        event_ms=round(event_s * 1000),
    )


def _impact(rng: np.random.Generator, t: Vec, at: float, peak_g: float, direction: Vec) -> Vec:
    """An impact spike along ``direction`` plus a damped rebound (ringing of the arm)."""
    width = rng.uniform(0.015, 0.035)
    spike = np.outer(_pulse(t, at, width) * peak_g, _unit(direction))
    after = np.clip(t - at, 0.0, None)
    ring = np.where(t > at, np.exp(-after / rng.uniform(0.08, 0.2)), 0.0)
    ring = ring * np.sin(2 * np.pi * rng.uniform(6, 12) * after) * peak_g * 0.25
    out: Vec = spike + np.outer(ring, _unit(rng.normal(0, 1, 3)))
    return out


def fall(
    rng: np.random.Generator,
    *,
    direction: FallDirection,
    origin: FallOrigin,
    long_lie: bool,
) -> Samples:
    pre, post = 2.0, 7.0
    descent = {"standing": rng.uniform(0.5, 0.8), "chair": rng.uniform(0.35, 0.5),
               "bed": rng.uniform(0.3, 0.45)}[origin]  # fmt: skip
    impact_at = round((pre + descent) * HZ) / HZ  # the peak lands on a sample
    t = np.arange(0.0, impact_at + post, 1 / HZ)
    start = _jitter(rng, {"standing": _ARM_DOWN, "chair": _SEATED, "bed": _LYING_BACK}[origin], 10)
    side = _LYING_SIDE * np.array([1.0, rng.choice([-1.0, 1.0]), 1.0])
    lying = {"forward": _LYING_FRONT, "backward": _LYING_BACK, "sideways": side}[direction]
    end = _jitter(rng, lying, 20)
    if np.dot(start, end) > 0.7:  # from a chair or bed backwards: the arm still turns
        end = _jitter(rng, _LYING_SIDE, 20)
    keys = [(0.0, start), (pre, start), (impact_at, end), (t[-1], end)]
    if not long_lie:  # moves, then pushes up to sitting
        move = impact_at + rng.uniform(2.0, 4.0)
        keys = [*keys[:3], (move, end), (min(move + 1.5, t[-1]), _jitter(rng, _SEATED, 15))]
        keys.append((t[-1] + 1, keys[-1][1]))
    up = _orientation(t, keys)
    mag = np.ones_like(t)
    dip_depth = {"standing": rng.uniform(0.2, 0.5), "chair": rng.uniform(0.4, 0.65),
                 "bed": rng.uniform(0.45, 0.7)}[origin]  # fmt: skip
    dip_len = min(descent, rng.uniform(0.25, 0.4))
    in_dip = (t >= impact_at - dip_len) & (t < impact_at)
    mag[in_dip] = 1 - (1 - dip_depth) * np.sin(np.pi * (t[in_dip] - impact_at + dip_len) / dip_len)
    acc = up * mag[:, None]
    if origin == "standing":  # gait before the fall
        gait = (t < pre) * 0.15 * np.sin(2 * np.pi * 1.8 * t)
        acc[:, 0] += gait
    # Raw wrist peaks of real falls from standing: UMAFall q10 3.5 g, median 6.7 g; HIFD q10
    # 4.9 g, median 13 g. From a chair or bed the drop is about half as high: impact speed
    # ~sqrt(height), so ~0.7x. (Before 2026-11 these were 2.5-6 / 2.0-3.5 / 2.0-3.0 g, weaker
    # than any real recording: see docs/falls.md.)
    peak = {"standing": rng.uniform(3.5, 12.0), "chair": rng.uniform(2.5, 7.0),
            "bed": rng.uniform(2.5, 6.0)}[origin]  # fmt: skip
    acc += _impact(rng, t, impact_at, peak - 1.0, end + rng.normal(0, 0.3, 3))
    if not long_lie:
        moving = t > impact_at + 2.0
        acc[moving] += rng.normal(0, 0.12, (int(moving.sum()), 3))
    return _finish(rng, t, acc, impact_at, 0.012)


def adl(rng: np.random.Generator, kind: AdlKind) -> Samples:
    """Activities of daily living that fool naive fall detectors."""
    if kind == "clapping":
        t = np.arange(0.0, 6.0, 1 / HZ)
        up = np.tile(_jitter(rng, np.array([0.1, 0.35, 0.93]), 10), (len(t), 1))
        acc = up.copy()
        start, rate = rng.uniform(1.0, 1.5), rng.uniform(2.0, 3.2)
        for k in range(int(rng.integers(6, 12))):
            acc += _impact(rng, t, start + k / rate, rng.uniform(1.5, 3.5), np.array([0, 1.0, 0.2]))
        return _finish(rng, t, acc, start, 0.02)
    if kind in ("sit_down_hard", "lie_on_bed"):
        hard = kind == "sit_down_hard"
        t = np.arange(0.0, 8.0, 1 / HZ)
        at = 2.0 + (rng.uniform(0.5, 0.8) if hard else rng.uniform(1.5, 2.5))
        end = _jitter(rng, _SEATED if hard else _LYING_BACK, 15)
        up = _orientation(t, [(0.0, _jitter(rng, _ARM_DOWN, 10)), (2.0, _ARM_DOWN), (at, end),
                              (8.0, end)])  # fmt: skip
        mag = 1 - (0.3 if hard else 0.12) * _pulse(t, at - 0.2, 0.12)
        acc = up * mag[:, None]
        acc += _impact(rng, t, at, rng.uniform(0.6, 1.6) if hard else rng.uniform(0.1, 0.5),
                       np.array([0.0, 0.0, 1.0]))  # fmt: skip
        return _finish(rng, t, acc, at, 0.015)
    if kind == "band_on_table":
        t = np.arange(0.0, 6.0, 1 / HZ)
        at = rng.uniform(1.8, 2.4)
        wobble = _unit(np.tile(_SEATED, (len(t), 1)) + rng.normal(0, 0.15, (len(t), 3)))
        up = np.where((t < at)[:, None], wobble, _TABLE)
        mag = np.where((t > at - 0.08) & (t < at), 0.15, 1.0)
        acc = up * mag[:, None] + _impact(rng, t, at, rng.uniform(1.0, 3.0), _TABLE)
        acc[t > at + 0.3] = _TABLE  # perfectly still: no pulse, no tremor
        return _finish(rng, t, acc, at, 0.004)
    # periodic: jogging or stairs
    t = np.arange(0.0, 6.0, 1 / HZ)
    f = rng.uniform(2.6, 3.0) if kind == "jogging" else rng.uniform(1.6, 2.0)
    amp = rng.uniform(0.8, 1.5) if kind == "jogging" else rng.uniform(0.3, 0.6)
    swing = 0.5 if kind == "jogging" else 0.15
    up = _unit(np.tile(_ARM_DOWN, (len(t), 1))
               + np.outer(np.sin(np.pi * f * t), [0.0, 0.0, swing]))  # fmt: skip
    bounce = np.maximum(0.0, np.sin(2 * np.pi * f * t)) ** 3 * amp
    acc = up * (1 + bounce)[:, None]
    return _finish(rng, t, acc, 0.0, 0.03)


def magnitude(s: Samples) -> Vec:
    """|a| per sample, for tests and quick checks."""
    out: Vec = np.sqrt(np.array(s.ax) ** 2 + np.array(s.ay) ** 2 + np.array(s.az) ** 2)
    return out
