"""Personal baselines from histograms, clinician overrides, and the early impact screen."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.baselines import (
    SCALE_FLOOR,
    ResidentBaselines,
    baselines_from_counts,
    baselines_from_histograms,
    histogram_baseline,
)
from alerts.detectors.news2 import ParamBands, VitalParam
from alerts.detectors.types import Profile
from alerts.falls.screen import screen_impact
from alerts.thresholds import ThresholdError, parse_overrides


@given(st.lists(st.integers(min_value=70, max_value=100), min_size=1, max_size=300))
def test_a_histogram_baseline_is_the_median_and_mad_of_the_readings(values: list[int]) -> None:
    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    b = histogram_baseline(counts.keys(), counts.values(), scale_floor=0.5, min_samples=1)
    assert b is not None
    arr = np.asarray(values, dtype=np.float64)
    assert b.median == float(np.median(arr))
    mad = float(np.median(np.abs(arr - np.median(arr))))
    assert b.scale == pytest.approx(max(1.4826 * mad, 0.5))
    assert b.n == len(values)


def test_baselines_split_day_and_night_and_need_enough_readings() -> None:
    rows = [
        (1, True, "spo2", 93.0, 40), (1, True, "spo2", 94.0, 30), (1, False, "spo2", 90.0, 60),
        (1, False, "sbp", 100.0, 10), (2, True, "hr", 70.0, 49), (2, True, "steps", 3.0, 99),
    ]  # fmt: skip
    got = baselines_from_counts(rows, min_samples=50)
    assert set(got) == {1}  # resident 2: 49 heart rates are too few; steps are no vital
    day, night = got[1].day, got[1].night
    assert day[VitalParam.SPO2].median == 93.0
    assert night[VitalParam.SPO2].median == 90.0
    assert VitalParam.SBP not in night
    profile = got[1].apply(Profile(1))
    assert profile.baseline(VitalParam.SPO2, night=True) == night[VitalParam.SPO2]
    assert profile.baseline(VitalParam.SBP, night=True) is None


@given(
    st.lists(
        st.lists(st.tuples(st.integers(85, 100), st.integers(1, 40)), min_size=1, max_size=20),
        min_size=1,
        max_size=7,
    )
)
def test_days_stored_apart_give_the_baseline_of_their_summed_histogram(
    days: list[list[tuple[int, int]]],
) -> None:
    summed: dict[float, int] = {}
    stored = []
    for day in days:
        bins: dict[float, int] = {}
        for value, n in day:
            bins[value + 0.1] = bins.get(value + 0.1, 0) + n  # 85.1 ... as a real comes back
            summed[round(value + 0.1, 1)] = summed.get(round(value + 0.1, 1), 0) + n
        ordered = sorted(bins)
        stored.append((7, True, "spo2", [float(np.float32(v)) for v in ordered],
                       [bins[v] for v in ordered]))  # fmt: skip
    got = baselines_from_histograms(stored, min_samples=1)
    want = baselines_from_counts([(7, True, "spo2", v, n) for v, n in summed.items()],
                                 min_samples=1)  # fmt: skip
    assert same_baselines(got, want)
    assert got[7].day[VitalParam.SPO2].n == sum(n for day in days for _, n in day)


def same_baselines(got: dict[int, ResidentBaselines], want: dict[int, ResidentBaselines]) -> bool:
    """Equal up to float noise: deviations that are equal in decimal (|36.1 - 36.25| and
    |36.4 - 36.25|) differ in their last bits, and which of them sorts first may differ."""
    if got.keys() != want.keys():
        return False
    for r, w in want.items():
        for part in ("day", "night"):
            g_part, w_part = getattr(got[r], part), getattr(w, part)
            if g_part.keys() != w_part.keys():
                return False
            for p, b in w_part.items():
                a = g_part[p]
                if a.n != b.n or not all(
                    math.isclose(getattr(a, f), getattr(b, f), abs_tol=1e-9)
                    for f in ("median", "scale", "low", "high")
                ):
                    return False
    return True


HISTOGRAM = st.dictionaries(
    st.integers(300, 1600).map(lambda x: x / 10), st.integers(1, 30), min_size=1, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 4),
            st.booleans(),
            st.sampled_from(["hr", "spo2", "sbp", "temp"]),
            HISTOGRAM,
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 60),
)
def test_all_histograms_at_once_give_each_histograms_own_baseline(
    rows: list[tuple[int, bool, str, dict[float, int]]], min_samples: int
) -> None:
    """The reload computes every histogram of a chunk in one pass; each must come out as
    histogram_baseline computes it alone, from its rows summed."""
    stored = [(r, day, p, [float(np.float32(v)) for v in h], list(h.values()))
              for r, day, p, h in rows]  # fmt: skip
    got = baselines_from_histograms(stored, min_samples=min_samples)
    summed: dict[tuple[int, bool, str], dict[float, int]] = {}
    for r, day, p, h in rows:
        into = summed.setdefault((r, day, p), {})
        for v, n in h.items():
            into[v] = into.get(v, 0) + n
    want: dict[int, ResidentBaselines] = {}
    for (r, day, p), h in summed.items():
        param = VitalParam(p)
        b = histogram_baseline(h.keys(), h.values(), scale_floor=SCALE_FLOOR[param],
                               min_samples=min_samples)  # fmt: skip
        if b is not None:
            have = want.setdefault(r, ResidentBaselines({}, {}))
            (have.day if day else have.night)[param] = b  # type: ignore[index]
    assert same_baselines(got, want)


def test_overrides_change_only_what_they_name() -> None:
    base = Profile(5, conditions=frozenset({"copd_hypercapnic"}))
    out = parse_overrides(
        {"hr": {"high": [[120, 3]]}, "min_alert_score": 3, "persistence_min_s": 600,
         "inactivity_after_s": 7200, "day_outside_allowed_s": 0, "day_range_m": 1500},
        base,
    )  # fmt: skip
    assert out.thresholds.hr == ParamBands(low=base.thresholds.hr.low, high=((120.0, 3),))
    assert out.thresholds.min_alert_score == 3
    assert out.thresholds.persistence.min_duration == timedelta(minutes=10)
    assert out.thresholds.persistence.min_readings == base.thresholds.persistence.min_readings
    assert (out.inactivity_after, out.day_outside_allowed) == (timedelta(hours=2), timedelta(0))
    assert out.day_range_m == 1500.0
    # SpO2 untouched: still NEWS2 scale 2 for this resident
    assert out.thresholds.bands(VitalParam.SPO2, out.conditions).low[0] == (83, 3)
    assert parse_overrides({}, base) == base


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ([], "overrides"),
        ({"colour": 1}, "overrides"),
        ({"hr": {"high": [[120, 4]]}}, "hr"),
        ({"hr": {"high": [[100, 1], [120, 3]]}}, "hr"),  # most severe first
        ({"hr": {"middle": []}}, "hr"),
        ({"spo2": {"low": [["90", 3]]}}, "spo2.low"),
        ({"sbp": {"low": [[230, 3]]}}, "sbp"),  # overlaps the high band
        ({"min_alert_score": True}, "min_alert_score"),
        ({"inactivity_after_s": 60}, "inactivity_after_s"),
        ({"day_range_m": "far"}, "day_range_m"),
    ],
)
def test_bad_overrides_are_refused_with_the_offending_key(raw: object, key: str) -> None:
    with pytest.raises(ThresholdError) as err:
        parse_overrides(raw, Profile(5))
    assert err.value.key == key


def _window(peak_g: float, turn: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """2.5 s of an arm hanging, an impact, 0.8 s after: turned or back where it was."""
    t = np.arange(0.0, 3.3, 1 / 50)
    before, after = np.array([-0.94, 0.12, 0.32]), np.array([0.15, -0.25, 0.95])
    acc = np.where((t < 2.5)[:, None], before, after if turn else before)
    acc = acc + (peak_g - 1.0) * np.exp(-0.5 * ((t - 2.5) / 0.05) ** 2)[:, None] * after
    return t, acc + rng.normal(0.0, 0.01, acc.shape)


@given(st.floats(min_value=1.2, max_value=8.0), st.booleans(), st.integers(0, 2**16))
def test_the_screen_suspects_iff_a_hard_impact_leaves_the_arm_turned(
    peak_g: float, turn: bool, seed: int
) -> None:
    t, acc = _window(peak_g, turn, np.random.default_rng(seed))
    got = screen_impact(t, acc)
    if got.suspected:
        assert turn
        assert got.peak_g >= 2.0
        assert got.t_s == pytest.approx(2.5, abs=0.05)
    if not turn or got.peak_g < 2.0:
        assert not got.suspected
    if turn and got.peak_g >= 2.2:
        assert got.suspected


def test_a_histogram_baseline_knows_the_value_the_resident_routinely_reaches_upwards() -> None:
    values = list(range(100)) * 3  # 300 readings 0..99
    counts = dict.fromkeys(range(100), 3)
    b = histogram_baseline(counts.keys(), counts.values(), scale_floor=1.0, min_samples=1)
    assert b is not None
    assert b.high == float(np.quantile(np.asarray(values), 0.99, method="inverted_cdf"))
    assert b.low == float(np.quantile(np.asarray(values), 0.01, method="inverted_cdf"))
