"""Hypertensive crisis, fever from a wrist band, and inactivity by the resident's routine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import inactivity, vitals
from alerts.detectors.news2 import VitalParam
from alerts.detectors.types import (
    CORE_REFERENCE_C,
    AlertCleared,
    AlertRaised,
    AlertType,
    Baseline,
    Profile,
    Severity,
)
from alerts.thresholds import parse_overrides
from eldercare.protocol import Telemetry

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai: waking hours
PROFILE = Profile(resident_id=7)
RULES = PROFILE.thresholds.persistence
M = timedelta(minutes=1)


def tele(at: datetime, **vitals_: object) -> Telemetry:
    return Telemetry(device_id="wb-1", seq=0, ts=int(at.timestamp() * 1000), **vitals_)  # type: ignore[arg-type]


def run(
    profile: Profile, seq: list[tuple[datetime, dict[str, object]]]
) -> tuple[vitals.VitalsState, list[tuple[int, object]]]:
    state, out = vitals.VitalsState(), []
    for i, (at, v) in enumerate(seq):
        state, events = vitals.step(state, profile, tele(at, **v), at)
        out.extend((i, e) for e in events)
    return state, out


def raised(events: list[tuple[int, object]], kind: AlertType) -> list[int]:
    return [i for i, e in events if isinstance(e, AlertRaised) and e.type is kind]


def cleared(events: list[tuple[int, object]], kind: AlertType) -> list[int]:
    return [i for i, e in events if isinstance(e, AlertCleared) and e.type is kind]


# --- hypertensive crisis ------------------------------------------------------


def test_a_crisis_below_news2s_220_is_a_medium_blood_pressure_alert() -> None:
    seq = [(T0 + 2 * i * M, {"bp_sys": 192, "bp_dia": 104}) for i in range(4)]
    _, events = run(PROFILE, seq)
    assert raised(events, AlertType.VITAL_SBP_HIGH) == [3]  # 3 readings over 6 min
    alert = next(e for _, e in events if isinstance(e, AlertRaised))
    assert alert.severity is Severity.MEDIUM
    assert alert.detail["bp_dia"] == 104.0


def test_a_diastolic_crisis_alone_raises_the_blood_pressure_alert() -> None:
    seq = [(T0 + 2 * i * M, {"bp_sys": 170, "bp_dia": 124}) for i in range(4)]
    assert raised(run(PROFILE, seq)[1], AlertType.VITAL_SBP_HIGH) == [3]


def test_news2s_red_systolic_still_escalates_to_high() -> None:
    seq = [(T0 + 2 * i * M, {"bp_sys": 225, "bp_dia": 110}) for i in range(4)]
    _, events = run(PROFILE, seq)
    alert = next(e for _, e in events if isinstance(e, AlertRaised))
    assert alert.severity is Severity.HIGH


def test_a_clinician_can_turn_the_crisis_band_off_or_move_it() -> None:
    seq = [(T0 + 2 * i * M, {"bp_sys": 195, "bp_dia": 125}) for i in range(5)]
    news2_only = parse_overrides({"sbp": {"high": [[220, 3]]}, "dbp": {"high": []}}, PROFILE)
    assert raised(run(news2_only, seq)[1], AlertType.VITAL_SBP_HIGH) == []
    lower = parse_overrides({"sbp": {"high": [[220, 3], [170, 2]]}}, PROFILE)
    seq = [(T0 + 2 * i * M, {"bp_sys": 175, "bp_dia": 90}) for i in range(4)]
    assert raised(run(lower, seq)[1], AlertType.VITAL_SBP_HIGH) == [3]
    assert raised(run(PROFILE, seq)[1], AlertType.VITAL_SBP_HIGH) == []


bp = st.sampled_from([(130, 80), (176, 100), (179, 119), (180, 90), (150, 120), (205, 126)])
gap_s = st.integers(min_value=30, max_value=600)  # below max_gap (15 min)


def _crisis(s: int, d: int) -> bool:
    return s >= 180 or d >= 120


def _oracle_first(readings: list[tuple[int, int]], times: list[datetime]) -> int | None:
    start = None
    for j, (s, d) in enumerate(readings):
        if not _crisis(s, d):
            start = None
            continue
        start = j if start is None else start
        if j - start + 1 >= RULES.min_readings and times[j] - times[start] >= RULES.min_duration:
            return j
    return None


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(bp, gap_s), min_size=1, max_size=25))
def test_the_crisis_rule_fires_iff_the_crisis_persists(
    items: list[tuple[tuple[int, int], int]],
) -> None:
    times, at = [], T0
    for _, gap in items:
        at += timedelta(seconds=gap)
        times.append(at)
    readings = [r for r, _ in items]
    seq = [(t, {"bp_sys": s, "bp_dia": d}) for t, (s, d) in zip(times, readings, strict=True)]
    got = raised(run(PROFILE, seq)[1], AlertType.VITAL_SBP_HIGH)
    want = _oracle_first(readings, times)
    assert (got[0] if got else None) == want


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(bp, gap_s), min_size=1, max_size=30))
def test_the_crisis_clears_only_after_a_run_inside_the_narrower_band(
    items: list[tuple[tuple[int, int], int]],
) -> None:
    seq = [(T0 + 2 * i * M, {"bp_sys": 200, "bp_dia": 110}) for i in range(4)]  # open it
    at = seq[-1][0]
    for (s, d), gap in items:
        at += timedelta(seconds=gap)
        seq.append((at, {"bp_sys": s, "bp_dia": d}))
    _, events = run(PROFILE, seq)
    assert raised(events, AlertType.VITAL_SBP_HIGH)[0] == 3
    margin = int(PROFILE.thresholds.margin(VitalParam.SBP))

    def inside(k: int) -> bool:  # inside the narrower band: a crisis even a margin higher?
        v = seq[k][1]
        return not _crisis(int(v["bp_sys"]) + margin, int(v["bp_dia"]) + margin)  # type: ignore[call-overload]

    raises = raised(events, AlertType.VITAL_SBP_HIGH)
    for j in cleared(events, AlertType.VITAL_SBP_HIGH):
        # the clearing run: the consecutive readings inside the narrower band ending at j,
        # counted from the reading after the alert was (last) raised
        start = j
        while start - 1 > max(r for r in raises if r < j) and inside(start - 1):
            start -= 1
        assert all(inside(k) for k in range(start, j + 1))
        assert j - start + 1 >= RULES.clear_readings
        assert seq[j][0] - seq[start][0] >= RULES.clear_duration


# --- temperature ----------------------------------------------------------------


def with_temp_baseline(profile: Profile, median: float, *, night: float | None = None) -> Profile:
    day = {VitalParam.TEMP: Baseline(median, 0.3, 500)}
    nights = {VitalParam.TEMP: Baseline(night, 0.3, 500)} if night is not None else {}
    return replace(profile, baselines=day, night_baselines=nights)


def temps(
    values: list[float], *, start: datetime = T0, every: timedelta = 3 * M
) -> list[tuple[datetime, dict[str, object]]]:
    return [(start + i * every, {"skin_temp_c": v}) for i, v in enumerate(values)]


def test_without_a_baseline_the_population_offset_applies_and_needs_30_minutes() -> None:
    _, events = run(PROFILE, temps([35.4] * 11))  # 35.4 + 4.0 = 39.4: NEWS2 2
    assert raised(events, AlertType.VITAL_TEMP_HIGH) == [10]  # at 30 min, not 6


def test_a_rise_over_the_personal_baseline_is_a_fever_below_news2s_39_1() -> None:
    p = with_temp_baseline(PROFILE, 32.5)
    _, events = run(p, temps([32.5 + 1.1] * 11))  # core estimate 37.9
    assert raised(events, AlertType.VITAL_TEMP_HIGH) == [10]
    alert = next(e for _, e in events if isinstance(e, AlertRaised))
    assert (alert.severity, alert.detail["value"]) == (Severity.MEDIUM, 37.9)
    assert raised(run(p, temps([32.5 + 1.0] * 20))[1], AlertType.VITAL_TEMP_HIGH) == []


def test_a_warm_skinned_resident_is_judged_against_their_own_temperature() -> None:
    warm = [35.3] * 20  # 39.3 by the population offset, a fever; their own normal here
    assert raised(run(PROFILE, temps(warm))[1], AlertType.VITAL_TEMP_HIGH) == [10]
    assert (
        raised(run(with_temp_baseline(PROFILE, 35.2), temps(warm))[1], AlertType.VITAL_TEMP_HIGH)
        == []
    )


def test_the_night_reading_is_judged_against_the_night_baseline() -> None:
    night = datetime(2025, 3, 1, 17, 0, tzinfo=UTC)  # 01:00 local
    p = with_temp_baseline(PROFILE, 32.5, night=33.4)  # distal warming in sleep
    assert raised(run(p, temps([34.0] * 20, start=night))[1], AlertType.VITAL_TEMP_HIGH) == []
    assert raised(run(p, temps([34.6] * 20, start=night))[1], AlertType.VITAL_TEMP_HIGH) == [10]


def test_a_clinician_can_set_the_fever_rise() -> None:
    p = parse_overrides({"fever_rise_c": 1.5}, with_temp_baseline(PROFILE, 32.5))
    assert raised(run(p, temps([33.8] * 20))[1], AlertType.VITAL_TEMP_HIGH) == []
    assert raised(run(p, temps([34.0] * 20))[1], AlertType.VITAL_TEMP_HIGH) == [10]


rises = st.sampled_from([0.0, 0.5, 0.9, 1.0, 1.1, 1.4, 2.0])


def _oracle_fever(
    values: list[float], times: list[datetime], need: float, span: timedelta
) -> int | None:
    start = None
    for j, r in enumerate(values):
        if r < need:
            start = None
            continue
        start = j if start is None else start
        if j - start + 1 >= RULES.min_readings and times[j] - times[start] >= span:
            return j
    return None


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(rises, gap_s), min_size=1, max_size=30))
def test_the_fever_rule_fires_iff_the_rise_persists_30_minutes(
    items: list[tuple[float, int]],
) -> None:
    p = with_temp_baseline(PROFILE, 32.5)
    times, at = [], T0
    for _, gap in items:
        at += timedelta(seconds=gap)
        times.append(at)
    values = [r for r, _ in items]
    seq = [(t, {"skin_temp_c": round(32.5 + r, 1)}) for t, r in zip(times, values, strict=True)]
    got = raised(run(p, seq)[1], AlertType.VITAL_TEMP_HIGH)
    span = p.thresholds.persistence_of(VitalParam.TEMP).min_duration
    assert span == timedelta(minutes=30)
    assert (got[0] if got else None) == _oracle_fever(values, times, 1.1, span)


def test_a_fever_clears_with_hysteresis() -> None:
    p = with_temp_baseline(PROFILE, 32.5)
    seq = temps([33.8] * 11 + [33.45] * 15 + [33.2] * 11)  # +1.3, then +0.95, then +0.7
    _, events = run(p, seq)
    assert raised(events, AlertType.VITAL_TEMP_HIGH) == [10]
    assert cleared(events, AlertType.VITAL_TEMP_HIGH) == [36]  # +0.95 + 0.2 margin >= 1.1
    assert CORE_REFERENCE_C == 36.8


# --- inactivity by the resident's routine -------------------------------------------


def still_until(profile: Profile, minutes: int) -> list[int]:
    state = inactivity.InactivityState()
    fired = []
    for i in range(minutes + 1):
        now = T0 + i * M
        state, events = inactivity.step(state, profile, moved=False, usable=True, now=now)
        fired += [i for e in events if isinstance(e, AlertRaised)]
    return fired


def test_inactivity_follows_the_routine_and_a_clinician_overrides_it() -> None:
    alone = Profile(resident_id=3, lives_alone=True)
    assert still_until(alone, 400) == [180]  # no routine known: 3 h
    routine = replace(alone, inactivity_routine=timedelta(hours=2))
    assert still_until(routine, 400) == [120]
    clinician = parse_overrides({"inactivity_after_s": 4 * 3600}, routine)
    assert still_until(clinician, 400) == [240]
    assert still_until(replace(routine, lives_alone=False), 400) == []


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=30, max_value=360), st.integers(min_value=1, max_value=400))
def test_inactivity_fires_iff_stillness_reaches_the_routine(
    threshold_min: int, still_min: int
) -> None:
    p = Profile(resident_id=3, lives_alone=True, inactivity_routine=threshold_min * M)
    fired = still_until(p, still_min)  # 10:00-16:40 local: all waking hours
    assert fired == ([threshold_min] if still_min >= threshold_min else [])


def test_blood_pressure_while_walking_is_not_a_crisis() -> None:
    # a morning walk: 90 steps/min, systolic 188; then 5 min sitting down
    walk = [(T0 + i * M, {"bp_sys": 188, "bp_dia": 95, "steps": 90 * i}) for i in range(30)]
    _, events = run(PROFILE, walk)
    assert raised(events, AlertType.VITAL_SBP_HIGH) == []
    rest = [
        (T0 + (30 + i) * M, {"bp_sys": 188, "bp_dia": 95, "steps": 2610 + i}) for i in range(12)
    ]
    _, events = run(PROFILE, walk + rest)
    # judged again 5 min after the last brisk minute (index 34), then 3 readings / 5 min
    assert raised(events, AlertType.VITAL_SBP_HIGH) == [29 + 5 + 5]
    # the same pressure at rest from the start raises after 5 min
    sitting = [(T0 + i * M, {"bp_sys": 188, "bp_dia": 95, "steps": i}) for i in range(12)]
    assert raised(run(PROFILE, sitting)[1], AlertType.VITAL_SBP_HIGH) == [5]


def test_an_open_crisis_is_neither_cleared_nor_escalated_by_readings_while_walking() -> None:
    sitting = [(T0 + i * M, {"bp_sys": 195, "bp_dia": 100, "steps": 0}) for i in range(6)]
    walk = [
        (T0 + (6 + i) * M, {"bp_sys": 120, "bp_dia": 80, "steps": 90 * (i + 1)}) for i in range(20)
    ]
    state, events = run(PROFILE, sitting + walk)
    assert raised(events, AlertType.VITAL_SBP_HIGH) == [5]
    assert cleared(events, AlertType.VITAL_SBP_HIGH) == []
    assert AlertType.VITAL_SBP_HIGH in state.open


def test_a_pressure_the_resident_routinely_reaches_is_not_a_crisis_for_them() -> None:
    chronic = replace(
        PROFILE, baselines={VitalParam.SBP: Baseline(166.0, 9.0, 400, low=140.0, high=192.0)}
    )
    usual = [(T0 + 2 * i * M, {"bp_sys": 188, "bp_dia": 96}) for i in range(6)]
    assert raised(run(chronic, usual)[1], AlertType.VITAL_SBP_HIGH) == []
    beyond = [(T0 + 2 * i * M, {"bp_sys": 200, "bp_dia": 96}) for i in range(6)]
    assert raised(run(chronic, beyond)[1], AlertType.VITAL_SBP_HIGH) == [3]
    red = [(T0 + 2 * i * M, {"bp_sys": 222, "bp_dia": 96}) for i in range(6)]
    chronic_red = replace(
        chronic, baselines={VitalParam.SBP: Baseline(190.0, 9.0, 400, low=160.0, high=230.0)}
    )
    assert raised(run(chronic_red, red)[1], AlertType.VITAL_SBP_HIGH) == [3]  # NEWS2 red: always
    diastolic = [(T0 + 2 * i * M, {"bp_sys": 188, "bp_dia": 122}) for i in range(6)]
    assert raised(run(chronic, diastolic)[1], AlertType.VITAL_SBP_HIGH) == [3]


# --- heart rate of exertion ------------------------------------------------------


def test_a_high_heart_rate_while_walking_is_not_alarmed_but_at_rest_it_is() -> None:
    # 30 min brisk walk at 118/min (NEWS2 2): the heart rate of exertion
    walk = [(T0 + i * M, {"hr": 118, "steps": 90 * i}) for i in range(30)]
    _, events = run(PROFILE, walk)
    assert raised(events, AlertType.VITAL_HR_HIGH) == []
    # the same 118/min sitting still is tachycardia at rest
    sitting = [(T0 + i * M, {"hr": 118, "steps": 5}) for i in range(30)]
    _, events = run(PROFILE, sitting)
    assert raised(events, AlertType.VITAL_HR_HIGH) != []
    # and it still counts 5 min after the walk ended
    rest = [(T0 + (30 + i) * M, {"hr": 118, "steps": 2610}) for i in range(20)]
    _, events = run(PROFILE, walk + rest)
    first = raised(events, AlertType.VITAL_HR_HIGH)
    assert first
    assert first[0] >= 30 + 5


def test_a_red_heart_rate_is_alarmed_even_while_walking() -> None:
    walk = [(T0 + i * M, {"hr": 140, "steps": 90 * i}) for i in range(30)]
    _, events = run(PROFILE, walk)
    alerts = [e for _, e in events if isinstance(e, AlertRaised)]
    assert [a.type for a in alerts] == [AlertType.VITAL_HR_HIGH]
    assert alerts[0].severity is Severity.HIGH


def test_a_low_heart_rate_while_walking_is_still_judged() -> None:
    walk = [(T0 + i * M, {"hr": 38, "steps": 90 * i}) for i in range(30)]
    _, events = run(PROFILE, walk)
    assert raised(events, AlertType.VITAL_HR_LOW) != []
