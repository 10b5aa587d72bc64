"""NEWS2 bands, persistence and hysteresis of the vital-sign detector."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import vitals
from alerts.detectors.news2 import (
    HR_BANDS,
    SBP_BANDS,
    SPO2_SCALE_1,
    SPO2_SCALE_2,
    TEMP_BANDS,
    Direction,
    VitalParam,
)
from alerts.detectors.types import (
    AlertCleared,
    AlertRaised,
    AlertType,
    AlertUpdated,
    Baseline,
    Profile,
    Severity,
)
from alerts.detectors.vitals import ALWAYS_ALARM, BASELINE_TOLERANCE_Z
from eldercare.protocol import Telemetry

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
PROFILE = Profile(resident_id=7)
RULES = PROFILE.thresholds.persistence


@pytest.mark.parametrize(
    ("bands", "value", "score", "side"),
    [
        (HR_BANDS, 40, 3, Direction.LOW),
        (HR_BANDS, 41, 1, Direction.LOW),
        (HR_BANDS, 50, 1, Direction.LOW),
        (HR_BANDS, 51, 0, None),
        (HR_BANDS, 90, 0, None),
        (HR_BANDS, 91, 1, Direction.HIGH),
        (HR_BANDS, 111, 2, Direction.HIGH),
        (HR_BANDS, 130, 2, Direction.HIGH),
        (HR_BANDS, 131, 3, Direction.HIGH),
        (SPO2_SCALE_1, 91, 3, Direction.LOW),
        (SPO2_SCALE_1, 92, 2, Direction.LOW),
        (SPO2_SCALE_1, 95, 1, Direction.LOW),
        (SPO2_SCALE_1, 96, 0, None),
        (SPO2_SCALE_2, 83, 3, Direction.LOW),
        (SPO2_SCALE_2, 85, 2, Direction.LOW),
        (SPO2_SCALE_2, 87, 1, Direction.LOW),
        (SPO2_SCALE_2, 88, 0, None),
        (SPO2_SCALE_2, 99, 0, None),
        (SBP_BANDS, 90, 3, Direction.LOW),
        (SBP_BANDS, 100, 2, Direction.LOW),
        (SBP_BANDS, 110, 1, Direction.LOW),
        (SBP_BANDS, 111, 0, None),
        (SBP_BANDS, 219, 0, None),
        (SBP_BANDS, 220, 3, Direction.HIGH),
        (TEMP_BANDS, 35.0, 3, Direction.LOW),
        (TEMP_BANDS, 35.1, 1, Direction.LOW),
        (TEMP_BANDS, 36.0, 1, Direction.LOW),
        (TEMP_BANDS, 36.1, 0, None),
        (TEMP_BANDS, 38.0, 0, None),
        (TEMP_BANDS, 38.1, 1, Direction.HIGH),
        (TEMP_BANDS, 39.0, 1, Direction.HIGH),
        (TEMP_BANDS, 39.1, 2, Direction.HIGH),
    ],
)
def test_news2_sub_scores_follow_the_rcp_2017_chart(
    bands: object, value: float, score: int, side: Direction | None
) -> None:
    assert bands.score(value) == (score, side)  # type: ignore[attr-defined]


def tele(at: datetime, **vitals_: object) -> Telemetry:
    ms = int(at.timestamp() * 1000)
    return Telemetry(device_id="wb-1", seq=0, ts=ms, **vitals_)  # type: ignore[arg-type]


def feed(profile: Profile, values: list[tuple[datetime, dict[str, object]]]) -> list[object]:
    state, out = vitals.VitalsState(), []
    for at, v in values:
        state, events = vitals.step(state, profile, tele(at, **v), at)
        out.extend(events)
    return out


def test_a_high_heart_rate_alerts_only_after_it_persists() -> None:
    minute = timedelta(minutes=1)
    readings = [(T0 + i * 2 * minute, {"hr": 125}) for i in range(4)]  # 0, 2, 4, 6 min
    events = feed(PROFILE, readings[:3])
    assert events == []  # three readings but only 4 minutes
    events = feed(PROFILE, readings)
    assert len(events) == 1
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert raised.type is AlertType.VITAL_HR_HIGH
    assert raised.severity is Severity.MEDIUM
    assert raised.detail["news2_score"] == 2


def test_escalation_updates_the_open_alert_and_recovery_clears_it() -> None:
    m = timedelta(minutes=1)
    seq = [(T0 + i * 2 * m, {"hr": 125}) for i in range(4)]
    seq += [(T0 + (8 + i * 2) * m, {"hr": 140}) for i in range(4)]  # score 3 for 6 min
    seq += [(T0 + (16 + i * 5) * m, {"hr": 80}) for i in range(3)]  # 10 min in the clear
    events = feed(PROFILE, seq)
    kinds = [type(e) for e in events]
    assert kinds == [AlertRaised, AlertUpdated, AlertCleared]
    assert isinstance(events[1], AlertUpdated)
    assert events[1].severity is Severity.HIGH


def test_a_copd_hypercapnic_resident_is_graded_on_scale_2() -> None:
    copd = Profile(resident_id=7, conditions=frozenset({"copd_hypercapnic"}))
    seq = [(T0 + timedelta(minutes=3 * i), {"spo2": 89}) for i in range(6)]
    assert feed(copd, seq) == []
    assert len(feed(PROFILE, seq)) == 1  # scale 1: 89 scores 3


def test_a_chronically_low_but_stable_spo2_is_not_alarmed_all_day() -> None:
    known = Profile(resident_id=7, baselines={VitalParam.SPO2: Baseline(92.0, 1.0, 500)})
    seq = [(T0 + timedelta(minutes=3 * i), {"spo2": 93}) for i in range(20)]
    assert feed(known, seq) == []
    assert len(feed(PROFILE, seq)) == 1
    usual = [(T0 + timedelta(minutes=3 * i), {"spo2": 90}) for i in range(6)]
    assert feed(known, usual) == []  # z = -2: within the resident's own range
    worse = [(T0 + timedelta(minutes=3 * i), {"spo2": 88}) for i in range(6)]
    assert len(feed(known, worse)) == 1  # z = -4: a fall from the resident's own baseline
    floor = [(T0 + timedelta(minutes=3 * i), {"spo2": 80}) for i in range(6)]
    wide = Profile(resident_id=7, baselines={VitalParam.SPO2: Baseline(86.0, 3.0, 500, 78.0)})
    assert len(feed(wide, floor)) == 1  # at or below 80 % no baseline excuses it
    dips = Profile(resident_id=7, baselines={VitalParam.SPO2: Baseline(97.0, 1.0, 500, 89.0)})
    night_dips = [(T0 + timedelta(minutes=3 * i), {"spo2": 90}) for i in range(6)]
    assert feed(dips, night_dips) == []  # z = -7, but this resident reaches 89 % routinely
    lower = [(T0 + timedelta(minutes=3 * i), {"spo2": 87}) for i in range(6)]
    assert len(feed(dips, lower)) == 1  # 87 %: more than one scale under the usual low


def test_the_nocturnal_dip_of_a_low_normal_pressure_is_not_hypotension() -> None:
    asleep_base = Baseline(97.0, 6.0, 800)  # asleep: about 97 is this resident's normal
    known = Profile(resident_id=7, baselines={VitalParam.SBP: Baseline(112.0, 6.0, 900)},
                    night_baselines={VitalParam.SBP: asleep_base})  # fmt: skip
    night = T0 + timedelta(hours=16)  # 02:00 in Shanghai
    asleep = [(night + timedelta(minutes=3 * i), {"bp_sys": 96}) for i in range(6)]
    assert len(feed(PROFILE, asleep)) == 1  # NEWS2 alone: <= 100 scores 2
    assert feed(known, asleep) == []
    awake = [(T0 + timedelta(minutes=3 * i), {"bp_sys": 88}) for i in range(6)]  # 10:00
    assert len(feed(known, awake)) == 1  # z = -4 against the waking-hours baseline


def test_an_early_sleeper_is_judged_asleep_from_their_own_bedtime() -> None:
    """Sleep-onset desaturations at 21:15 local: a resident whose learned waking window
    ends at 21:00 is asleep then, and their night baseline (routine dips to 88 %) excuses
    them; with the default window (to 22:00) the waking baseline does not. Late risers
    likewise until their window opens."""
    day = Baseline(95.0, 1.0, 900, 93.0)  # awake: 95 %, rarely under 93
    asleep = Baseline(94.0, 1.5, 800, 88.0)  # asleep: dips to 88 % are routine
    usual = Profile(resident_id=7, baselines={VitalParam.SPO2: day},
                    night_baselines={VitalParam.SPO2: asleep})  # fmt: skip
    early = replace(usual, waking_start=time(8, 30), waking_end=time(21, 0))
    evening = T0 + timedelta(hours=11, minutes=15)  # 21:15 in Shanghai
    dips = [(evening + timedelta(minutes=3 * i), {"spo2": 88}) for i in range(6)]
    assert len(feed(usual, dips)) == 1
    assert feed(early, dips) == []
    morning = T0 - timedelta(hours=2)  # 08:00 in Shanghai: still asleep for ``early``
    dips = [(morning + timedelta(minutes=3 * i), {"spo2": 88}) for i in range(6)]
    assert len(feed(usual, dips)) == 1
    assert feed(early, dips) == []
    awake = T0 + timedelta(hours=10)  # 20:00: awake for both, the waking baseline judges
    dips = [(awake + timedelta(minutes=3 * i), {"spo2": 88}) for i in range(6)]
    assert len(feed(early, dips)) == 1


@given(
    median=st.floats(min_value=88.0, max_value=99.0),
    scale=st.floats(min_value=1.0, max_value=4.0),
    value=st.integers(min_value=70, max_value=100),
)
def test_a_low_spo2_alarms_iff_news2_and_the_baseline_both_say_so(
    median: float, scale: float, value: int
) -> None:
    base = Baseline(median, scale, 500)
    known = Profile(resident_id=7, baselines={VitalParam.SPO2: base},
                    night_baselines={VitalParam.SPO2: base})  # fmt: skip
    level, side = vitals.grade(VitalParam.SPO2, float(value), known)
    news2, _ = SPO2_SCALE_1.score(float(value))
    excused = value > ALWAYS_ALARM[VitalParam.SPO2] and base.z(value) >= -BASELINE_TOLERANCE_Z
    # (no low percentile in this baseline: the median and scale alone decide)
    assert level == (0 if excused else news2)
    assert (side is None) == (level == 0)


def test_skin_temperature_is_scored_as_a_core_estimate() -> None:
    seq = [(T0 + timedelta(minutes=3 * i), {"skin_temp_c": 35.4}) for i in range(11)]
    events = feed(PROFILE, seq)  # 35.4 + 4.0 = 39.4 core: NEWS2 2, for 30 min
    assert [e.type for e in events] == [AlertType.VITAL_TEMP_HIGH]  # type: ignore[attr-defined]


def test_readings_from_a_band_off_the_wrist_are_ignored() -> None:
    seq = [(T0 + timedelta(minutes=3 * i), {"hr": 150, "worn": False}) for i in range(6)]
    assert feed(PROFILE, seq) == []


# --- properties ---------------------------------------------------------------

hr_values = st.sampled_from([35, 45, 60, 80, 88, 95, 112, 125, 135, 150])
gaps_s = st.integers(min_value=30, max_value=600)  # always below max_gap (15 min)


def _oracle_first_fire(values: list[int], times: list[datetime]) -> int | None:
    """Index of the first reading that completes a run of >= min score, one side."""
    need = PROFILE.thresholds.min_alert_score
    for j in range(len(values)):
        i = j
        s_j, d_j = HR_BANDS.score(values[j])
        if s_j < need:
            continue
        while i > 0:
            s, d = HR_BANDS.score(values[i - 1])
            if s < need or d is not d_j:
                break
            i -= 1
        if j - i + 1 >= RULES.min_readings and times[j] - times[i] >= RULES.min_duration:
            return j
    return None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(hr_values, gaps_s), min_size=1, max_size=25))
def test_a_vital_rule_fires_iff_its_condition_holds_for_its_duration(
    readings: list[tuple[int, int]],
) -> None:
    times, at = [], T0
    for _, gap in readings:
        at += timedelta(seconds=gap)
        times.append(at)
    values = [v for v, _ in readings]
    state, first = vitals.VitalsState(), None
    for j, (v, t) in enumerate(zip(values, times, strict=True)):
        state, events = vitals.step(state, PROFILE, tele(t, hr=v), t)
        if any(isinstance(e, AlertRaised) for e in events):
            first = j
            break
    assert first == _oracle_first_fire(values, times)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(hr_values, gaps_s), min_size=1, max_size=30))
def test_hysteresis_never_clears_while_the_value_is_still_out_of_range(
    readings: list[tuple[int, int]],
) -> None:
    state, at = vitals.VitalsState(), T0
    need = PROFILE.thresholds.min_alert_score
    for _ in range(4):  # open a high heart-rate alert first
        at += timedelta(minutes=2)
        state, _ev = vitals.step(state, PROFILE, tele(at, hr=125), at)
    assert AlertType.VITAL_HR_HIGH in state.open
    for v, gap in readings:
        at += timedelta(seconds=gap)
        state, events = vitals.step(state, PROFILE, tele(at, hr=v), at)
        score, side = HR_BANDS.score(v)
        for e in events:
            if not isinstance(e, AlertCleared):
                continue
            cleared_side = Direction.HIGH if e.type is AlertType.VITAL_HR_HIGH else Direction.LOW
            assert not (score >= need and side is cleared_side)  # still out of range
            if side is not None and side is not cleared_side:
                continue  # swung to the other side: that side's alert is open instead
            margin = PROFILE.thresholds.margin(VitalParam.HR)
            shifted = v + margin if cleared_side is Direction.HIGH else v - margin
            assert HR_BANDS.score_towards(shifted, cleared_side) < need


# --- a cold wrist outdoors ------------------------------------------------------

COLD = replace(PROFILE, baselines={VitalParam.TEMP: Baseline(33.0, 0.5, 500)})


def _walk(
    minutes: int, *, steps_per_min: int, skin: float, start: int = 0
) -> list[tuple[datetime, dict[str, object]]]:
    return [(T0 + timedelta(minutes=m),
             {"skin_temp_c": skin, "steps": 1000 + steps_per_min * m})
            for m in range(start, start + minutes, 3)]  # fmt: skip


def test_a_cold_wrist_on_a_walk_in_winter_is_not_hypothermia() -> None:
    """28 C at a wrist whose usual is 33 C reads as a core of 31.8 C. Before 2026-12-04
    a walk of 40 minutes in the cold raised hypothermia, high."""
    walked = _walk(40, steps_per_min=80, skin=28.0)
    assert feed(COLD, walked) == []
    # back home and still, the hand warms up: 30 minutes are not judged ...
    home = _walk(27, steps_per_min=0, skin=28.0, start=42)
    assert feed(COLD, walked + home) == []
    # ... and a wrist still that cold afterwards is judged as usual
    later = _walk(40, steps_per_min=0, skin=28.0, start=72)
    events = feed(COLD, walked + home + later)
    assert [e.type for e in events] == [AlertType.VITAL_TEMP_LOW]  # type: ignore[attr-defined]


def test_a_cold_wrist_sitting_still_at_home_is_raised() -> None:
    still = _walk(40, steps_per_min=0, skin=28.0)
    events = feed(COLD, still)
    assert [e.type for e in events] == [AlertType.VITAL_TEMP_LOW]  # type: ignore[attr-defined]
    assert events[0].severity is Severity.HIGH  # type: ignore[attr-defined]


def test_a_cold_wrist_away_from_home_is_not_judged_a_fever_is() -> None:
    state, out = vitals.VitalsState(), []
    for at, v in _walk(40, steps_per_min=0, skin=28.0):
        state, events = vitals.step(state, COLD, tele(at, **v), at, away=True)
        out.extend(events)
    assert out == []
    for at, v in _walk(40, steps_per_min=0, skin=34.5, start=45):  # a rise of 1.5 C
        state, events = vitals.step(state, COLD, tele(at, **v), at, away=True)
        out.extend(events)
    assert [e.type for e in out] == [AlertType.VITAL_TEMP_HIGH]  # type: ignore[attr-defined]
