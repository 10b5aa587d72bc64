"""Reading and resampling: any rate, any spacing, same signal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from alerts.falls.signal import (
    INTERNAL_RATE_HZ,
    MIN_MEDIAN_G,
    FallInputError,
    clean_samples,
    resample,
    retime_batches,
)


def motion(t: np.ndarray) -> np.ndarray:
    """A smooth arm movement: gravity swinging plus a 1.5 Hz wobble, in g."""
    angle = 0.8 * np.sin(2 * np.pi * 0.3 * t)
    wobble = 0.3 * np.sin(2 * np.pi * 1.5 * t)
    return np.stack((np.sin(angle) + wobble, 0.2 * wobble, np.cos(angle)), axis=1)


def grid(rate: float, span: float = 10.0) -> np.ndarray:
    return np.arange(0.0, span, 1.0 / rate)


def batch_stamped(t: np.ndarray, period: float, seed: int = 0, apart_ms: int = 1) -> np.ndarray:
    """Stamps of a band that hands its samples over in batches: the samples taken in
    each ``period`` are stamped ``apart_ms``-3 ms apart, the batch's last one at its
    own time."""
    rng = np.random.default_rng(seed)
    batch = np.floor((t - t[0]) / period + 1e-9).astype(int)
    stamps = t.copy()
    for b in np.unique(batch):
        idx = np.flatnonzero(batch == b)
        gaps = rng.integers(apart_ms, 4, idx.size - 1) / 1000.0
        stamps[idx[:-1]] = t[idx[-1]] - np.cumsum(gaps[::-1])[::-1]
    return stamps


@pytest.mark.parametrize("rate", [8.0, 20.0, 50.0, 200.0])
def test_resampled_signal_does_not_depend_on_input_rate(rate: float) -> None:
    reference = resample(grid(1000.0), motion(grid(1000.0)))
    t = grid(rate)
    sig = resample(t, motion(t))
    assert sig.rate_hz == INTERNAL_RATE_HZ
    n = min(sig.n, reference.n) - 3
    assert np.max(np.abs(sig.mag_g[3:n] - reference.mag_g[3:n])) < 0.05
    assert np.max(np.abs(sig.acc_g[3:n] - reference.acc_g[3:n])) < 0.05


def test_jittered_bursty_duplicated_timestamps_give_the_same_signal() -> None:
    rng = np.random.default_rng(7)
    t = np.sort(rng.uniform(0.0, 10.0, 600))
    t = np.concatenate((t, t[::7]))  # duplicates
    t = t[(t < 4.0) | (t > 4.4)]  # a gap
    acc = motion(t)
    acc[::50] = np.nan  # dropped rows
    order = rng.permutation(t.size)  # arrival order is not time order
    sig = resample(t[order], acc[order])
    fine = t.min() + grid(1000.0, span=t.max() - t.min())
    reference = resample(fine, motion(fine))
    n = min(sig.n, reference.n) - 3
    assert abs(sig.t0_s - t.min()) < 1e-12
    outside_gap = np.abs(sig.t_s[3:n] - 4.2) > 0.4
    assert np.max(np.abs(sig.mag_g[3:n] - reference.mag_g[3:n])[outside_gap]) < 0.05


@pytest.mark.parametrize(
    ("rate", "period", "apart_ms"),
    [
        (50.0, 0.1, 1),
        (40.0, 0.1, 1),
        (25.0, 0.2, 1),
        (100.0, 0.25, 1),
        (50.0, 0.1, 0),
        (20.0, 0.1, 0),
    ],
)
def test_batch_stamped_samples_give_the_signal_of_their_true_times(
    rate: float, period: float, apart_ms: int
) -> None:
    t = grid(rate)
    stamps = batch_stamped(t, period, apart_ms=apart_ms)
    assert np.count_nonzero(np.diff(stamps) < 0.004) * 2 >= t.size - 1  # bursts 0-3 ms apart
    reference = resample(t, motion(t))
    sig = resample(stamps, motion(t))
    n = min(sig.n, reference.n) - 3
    assert abs(sig.t0_s - reference.t0_s) < 0.1
    assert np.max(np.abs(sig.mag_g[3:n] - reference.mag_g[3:n])) < 0.05
    assert np.max(np.abs(sig.acc_g[3:n] - reference.acc_g[3:n])) < 0.05


def test_samples_sharing_their_batch_stamp_are_kept_and_spread() -> None:
    t = grid(50.0)
    stamps = np.floor(t / 0.1 + 1e-9) * 0.1 + 0.1  # every batch at one stamp
    ct, ca = clean_samples(stamps, motion(t))
    assert ct.size == t.size
    np.testing.assert_allclose(np.diff(ct), 0.02, atol=1e-9)
    np.testing.assert_array_equal(ca, motion(t))


def test_batch_stamps_are_spread_evenly_between_the_batches() -> None:
    stamps = np.array([0.100, 0.101, 0.103, 0.105, 0.201, 0.202, 0.204, 0.205, 0.304, 0.305])
    np.testing.assert_allclose(
        retime_batches(stamps),
        [0.030, 0.055, 0.080, 0.105, 0.130, 0.155, 0.180, 0.205, 0.255, 0.305],
    )


@settings(max_examples=50, deadline=None)
@given(
    rate=st.floats(8.0, 200.0),
    jitter=st.floats(0.0, 0.4),
    seed=st.integers(0, 2**16),
)
def test_regular_and_jittered_timestamps_are_not_retimed(
    rate: float, jitter: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    t = grid(rate) + rng.uniform(-jitter, jitter, grid(rate).size) / rate
    t = np.unique(t)
    np.testing.assert_array_equal(retime_batches(t), t)


def test_random_instants_are_not_retimed() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        t = np.unique(rng.uniform(0.0, 10.0, 500))
        np.testing.assert_array_equal(retime_batches(t), t)


def test_clean_samples_sorts_and_drops_duplicates_nan_and_glitches() -> None:
    t = np.array([3.0, 1.0, 2.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    acc = np.ones((t.size, 3))
    acc[5] = [200.0, 0.0, 0.0]
    ct, ca = clean_samples(t, acc)
    assert ct.tolist() == [1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert ca.shape == (9, 3)


@settings(max_examples=30, deadline=None)
@given(
    level=st.tuples(*(st.floats(-2.0, 2.0) for _ in range(3))),
    rate=st.floats(8.0, 200.0),
    span=st.floats(2.5, 30.0),
)
def test_a_constant_input_stays_constant(
    level: tuple[float, float, float], rate: float, span: float
) -> None:
    assume(np.linalg.norm(level) >= MIN_MEDIAN_G)  # below: no gravity, refused (below)
    t = np.arange(0.0, span, 1.0 / rate)
    sig = resample(t, np.tile(level, (t.size, 1)))
    np.testing.assert_allclose(sig.acc_g, np.tile(level, (sig.n, 1)), atol=1e-9)
    np.testing.assert_allclose(sig.mag_g, np.linalg.norm(level), atol=1e-9)
    assert sig.n == pytest.approx((t[-1] - t[0]) * INTERNAL_RATE_HZ + 1, abs=1.0)


@pytest.mark.parametrize(
    ("t", "acc", "message"),
    [
        (np.arange(10.0), np.ones((10, 2)), "shape"),
        (np.arange(10.0), np.ones((9, 3)), "samples"),
        (np.arange(5.0), np.ones((5, 3)), "too few"),
        (np.arange(20) * 0.01, np.ones((20, 3)), "too short"),
        (np.arange(20.0), np.full((20, 3), np.nan), "too few"),
        (np.arange(20.0), np.full((20, 3), 500.0), "not in g"),
        (np.arange(20.0).reshape(10, 2), np.ones((10, 3)), "one-dimensional"),
    ],
)
def test_invalid_input_is_refused_with_a_reason(
    t: np.ndarray, acc: np.ndarray, message: str
) -> None:
    with pytest.raises(FallInputError, match=message):
        resample(t, acc)


def test_a_window_in_metres_per_second_squared_is_refused_not_scored() -> None:
    t = grid(50.0)
    resample(t, motion(t))  # the same motion in g is fine
    with pytest.raises(
        FallInputError, match=r"median \|a\| is \d+\.\d, expected about 1 g: not in g units"
    ):
        resample(t, motion(t) * 9.80665)


def test_a_window_in_raw_sensor_counts_is_refused_with_that_hint() -> None:
    t = grid(50.0)
    with pytest.raises(FallInputError, match=r"beyond 64 g: not in g units \(raw sensor counts"):
        resample(t, motion(t) * 4096.0)  # a 16-bit sensor at +-8 g
    with pytest.raises(FallInputError, match=r"is 4\d\.\d, .*not in g units \(raw sensor counts"):
        resample(t, motion(t) * 40.0)  # counts of a coarser sensor, within 64 "g"


def test_a_window_with_gravity_removed_is_refused_not_scored() -> None:
    """Linear acceleration (what some bands and phone APIs report) has a median |a|
    near 0: scored, it hid most falls (19 of 51 UMAFall falls found). Refused."""
    t = grid(50.0)
    hand = 0.08 * np.sin(2 * np.pi * 1.5 * t)[:, None] * [1.0, 0.5, 0.3]  # small movements
    resample(t, hand + np.array([0.0, 0.0, 1.0]))  # with gravity: fine
    linear = hand  # the same wrist, gravity removed
    with pytest.raises(FallInputError, match=r"median \|a\| is 0\.\d\d g, .*gravity removed\?"):
        resample(t, linear)
    with pytest.raises(FallInputError, match="gravity removed"):
        resample(t, np.zeros((t.size, 3)))  # a sensor that reads nothing


def test_a_window_timed_in_milliseconds_is_refused_with_a_hint() -> None:
    t = grid(50.0)
    resample(t, motion(t))
    with pytest.raises(FallInputError, match=r"too long: .* \(t_s in milliseconds\?"):
        resample(t * 1000.0, motion(t))
    with pytest.raises(FallInputError, match=r"too long: \d+ s \(max 600 s\)$"):
        resample(t * 1000.0 * 100, motion(t))  # far too long for milliseconds too: no hint
