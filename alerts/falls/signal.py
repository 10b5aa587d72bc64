"""Reading and resampling wristband accelerometer windows.

Input windows arrive at any rate (8-200 Hz), with irregular or bursty
timestamps, duplicates and gaps. A band that sends its samples in batches may
stamp them with the batch's time (a few ms apart, then a gap): such samples are
spread evenly over the time between batches (:func:`retime_batches`), because
a sensor samples at a steady rate. Everything downstream works on one
:class:`UniformSignal`: a uniform grid at :data:`INTERNAL_RATE_HZ` where each
sample is the box average of the (linearly interpolated) input over
:data:`SMOOTHING_S` seconds. The box average is computed exactly from the
cumulative integral of the input, so an 8 Hz and a 200 Hz recording of the
same motion give nearly the same resampled signal and the same features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from eldercare.protocol import (
    COUNTS_HINT,
    IMU_MAX_MEDIAN_G,
    IMU_MIN_MEDIAN_G,
    NO_GRAVITY_HINT,
    units_hint,
)

FloatArray = npt.NDArray[np.float64]

INTERNAL_RATE_HZ: Final = 25.0
SMOOTHING_S: Final = 0.2
MIN_SAMPLES: Final = 8
MIN_SPAN_S: Final = 2.0
MAX_SPAN_S: Final = 600.0
MAX_ABS_G: Final = 64.0
# The full-window model sees every band as a +-4 g band (see window_signal in
# features.py): above that, what a band records of an impact depends on its range
# (UMAFall's saturates at 8 g, HIFD's reaches 16 g), its rate and its filter.
COMMON_RANGE_G: Final = 4.0
MAX_MEDIAN_G: Final = IMU_MAX_MEDIAN_G  # m/s^2 is refused, not scored as a 10 g impact
MIN_MEDIAN_G: Final = IMU_MIN_MEDIAN_G  # gravity removed: refused, not scored as no fall
# A window is batch-stamped when at least BATCH_SHARE of its samples are closer to
# a neighbour than BATCH_TINY_FRACTION of the mean interval (no sensor sampling at
# a steady rate does that; random instants: under half); a new batch starts after
# an interval of at least BATCH_GAP_FRACTION of the mean.
BATCH_SHARE: Final = 0.75
BATCH_TINY_FRACTION: Final = 0.25
BATCH_GAP_FRACTION: Final = 0.5


class FallInputError(ValueError):
    """An accelerometer window that cannot be scored, with the reason."""


class Samples(NamedTuple):
    """A window's samples as :func:`clean_samples` leaves them: valid, in g, sorted
    by time and re-timed, so code that needs them twice cleans them once."""

    t_s: FloatArray
    acc_g: FloatArray


@dataclass(frozen=True, slots=True)
class UniformSignal:
    """Acceleration on a uniform grid: ``t_s[i] = t0_s + i / rate_hz``.

    ``acc_g`` is the smoothed 3-axis vector (n, 3) in g with gravity;
    ``mag_g`` is the smoothed magnitude of the raw vector (n,).
    """

    t0_s: float
    rate_hz: float
    acc_g: FloatArray
    mag_g: FloatArray

    def __post_init__(self) -> None:
        if self.acc_g.ndim != 2 or self.acc_g.shape[1] != 3:
            raise FallInputError("acc_g must have shape (n, 3)")
        if self.mag_g.shape != (self.acc_g.shape[0],):
            raise FallInputError("mag_g must have one value per sample")

    @property
    def n(self) -> int:
        return int(self.mag_g.shape[0])

    @property
    def t_s(self) -> FloatArray:
        return self.t0_s + np.arange(self.n, dtype=np.float64) / self.rate_hz


def clean_samples(t_s: npt.ArrayLike, acc_g: npt.ArrayLike) -> Samples:
    """Validate, sort by time, re-time batch stamps, drop NaN rows, glitches and duplicates.

    A row with a component beyond ``MAX_ABS_G`` is a transmission glitch (real
    wrist sensors saturate at 8-16 g) and is dropped; if most rows are like
    that, or the median magnitude is far above 1 g (m/s^2), the file is not in
    g at all and is refused.
    """
    t = np.asarray(t_s, dtype=np.float64)
    a = np.asarray(acc_g, dtype=np.float64)
    if t.ndim != 1:
        raise FallInputError(f"t_s must be one-dimensional, got shape {t.shape}")
    if a.ndim != 2 or a.shape[1] != 3:
        raise FallInputError(f"acc_g must have shape (n, 3), got {a.shape}")
    if a.shape[0] != t.shape[0]:
        raise FallInputError(f"t_s has {t.shape[0]} samples but acc_g has {a.shape[0]}")
    finite = np.isfinite(t) & np.all(np.isfinite(a), axis=1)
    plausible = finite & np.all(np.abs(np.where(finite[:, None], a, 0.0)) <= MAX_ABS_G, axis=1)
    if np.count_nonzero(finite) >= MIN_SAMPLES and np.count_nonzero(
        plausible
    ) * 2 < np.count_nonzero(finite):
        raise FallInputError(
            f"most samples beyond {MAX_ABS_G:.0f} g: not in g units ({COUNTS_HINT})"
        )
    t, a = t[plausible], a[plausible]
    order = np.argsort(t, kind="stable")  # samples sharing a stamp stay in arrival order
    t, a = t[order], a[order]
    if t.size:
        if np.any(np.diff(t) == 0.0):  # a row sent twice counts once
            _, once = np.unique(np.column_stack((t, a)), axis=0, return_index=True)
            once.sort()
            t, a = t[once], a[once]
        t = retime_batches(t)  # batch stamps, equal or a few ms apart, are spread out
        first = np.concatenate(([True], np.diff(t) > 0.0))
        t, a = t[first], a[first]  # other samples sharing a stamp: the first is kept
    if t.size < MIN_SAMPLES:
        raise FallInputError(f"too few valid samples: {t.size} (need {MIN_SAMPLES})")
    span = float(t[-1] - t[0])
    if span < MIN_SPAN_S:
        raise FallInputError(f"window too short: {span:.2f} s (need {MIN_SPAN_S} s)")
    if span > MAX_SPAN_S:
        hint = " (t_s in milliseconds? it must be seconds)" if span / 1000 <= MAX_SPAN_S else ""
        raise FallInputError(f"window too long: {span:.0f} s (max {MAX_SPAN_S:.0f} s){hint}")
    median = float(np.median(np.linalg.norm(a, axis=1)))
    if median > MAX_MEDIAN_G:
        raise FallInputError(
            f"median |a| is {median:.1f}, expected about 1 g: not in g units ({units_hint(median)})"
        )
    if median < MIN_MEDIAN_G:
        raise FallInputError(
            f"median |a| is {median:.2f} g, expected about 1 g: the detector needs acceleration"
            f" including gravity ({NO_GRAVITY_HINT})"
        )
    return Samples(t, a)


def retime_batches(t: FloatArray) -> FloatArray:
    """Sample times for a window whose timestamps are batch stamps; else ``t`` itself.

    ``t`` is sorted (equal stamps allowed). Some bands (Fitbit's SDK, BLE
    links that buffer) stamp each batch of samples with the time it was
    handed over, so a 50 Hz window reads as bursts of samples 0-3 ms apart
    every ~0.1 s. Taken at face value, linear interpolation gives the samples
    inside a burst almost no weight and the window looks like a ~10 Hz
    recording that misses most peaks. When three quarters of the samples have
    a neighbour that close (batches of two included), each batch's last
    sample keeps its stamp and the samples in between are spread evenly from
    one such anchor to the next (the first batch at the spacing of the
    second): a sensor samples at a steady rate.
    Regular, jittered and randomly timed recordings are returned unchanged.
    """
    n = t.size
    if n < 3:
        return t
    dt = np.diff(t)
    mean = float(t[-1] - t[0]) / (n - 1)
    tiny = dt < BATCH_TINY_FRACTION * mean
    in_burst = np.concatenate((tiny, [False])) | np.concatenate(([False], tiny))
    if np.count_nonzero(in_burst) < BATCH_SHARE * n:
        return t
    anchors = np.append(np.flatnonzero(dt >= BATCH_GAP_FRACTION * mean), n - 1)
    if anchors.size < 2:
        return t
    index = np.arange(n, dtype=np.float64)
    out: FloatArray = np.interp(index, anchors, t[anchors])
    head = index < anchors[0]
    step = float(t[anchors[1]] - t[anchors[0]]) / float(anchors[1] - anchors[0])
    out[head] = t[anchors[0]] - (anchors[0] - index[head]) * step
    return out


def _box_average(t: FloatArray, y: FloatArray, grid: FloatArray, width: float) -> FloatArray:
    """Average of the piecewise-linear ``y(t)`` over ``[g - width/2, g + width/2]``.

    ``y`` is (n, k). Outside the sampled span the signal is held constant.
    """
    dt = np.diff(t)[:, None]
    cum = np.concatenate((np.zeros((1, y.shape[1])), np.cumsum(0.5 * dt * (y[1:] + y[:-1]), 0)))
    lo = np.clip(grid - width / 2.0, t[0], t[-1])
    hi = np.clip(grid + width / 2.0, t[0], t[-1])

    def integral(x: FloatArray) -> FloatArray:
        idx = np.clip(np.searchsorted(t, x, side="right") - 1, 0, t.size - 2)
        frac = (x - t[idx])[:, None]
        seg = dt[idx]
        slope = (y[idx + 1] - y[idx]) / seg
        return cum[idx] + frac * y[idx] + 0.5 * frac**2 * slope

    inner = integral(hi) - integral(lo)
    # Parts of the window outside the span: hold the end values.
    before = np.maximum(t[0] - (grid - width / 2.0), 0.0)[:, None] * y[0]
    after = np.maximum((grid + width / 2.0) - t[-1], 0.0)[:, None] * y[-1]
    out: FloatArray = (inner + before + after) / width
    return out


def resample(
    t_s: npt.ArrayLike,
    acc_g: npt.ArrayLike,
    *,
    rate_hz: float = INTERNAL_RATE_HZ,
    smoothing_s: float = SMOOTHING_S,
    range_g: float | None = None,
) -> UniformSignal:
    """Clean the samples and put them on a uniform, smoothed grid (:func:`on_grid`)."""
    return on_grid(
        clean_samples(t_s, acc_g), rate_hz=rate_hz, smoothing_s=smoothing_s, range_g=range_g
    )


def on_grid(
    samples: Samples,
    *,
    rate_hz: float = INTERNAL_RATE_HZ,
    smoothing_s: float = SMOOTHING_S,
    range_g: float | None = None,
) -> UniformSignal:
    """Cleaned samples on a uniform, smoothed grid; with ``range_g``, each axis is
    first clipped to +-``range_g`` as a band of that range would record it."""
    t, a = samples
    if range_g is not None:
        a = np.clip(a, -range_g, range_g)
    n = int(np.floor((t[-1] - t[0]) * rate_hz)) + 1
    grid = t[0] + np.arange(n, dtype=np.float64) / rate_hz
    raw_mag = np.linalg.norm(a, axis=1)[:, None]
    both = _box_average(t, np.hstack((a, raw_mag)), grid, smoothing_s)
    return UniformSignal(
        t0_s=float(t[0]),
        rate_hz=rate_hz,
        acc_g=np.ascontiguousarray(both[:, :3]),
        mag_g=np.ascontiguousarray(both[:, 3]),
    )
