"""Vital-sign rules against what a review found on 2026-12-04: a clinician's whole
number sent as a float, a clinician's own blood-pressure limit, a hot day, a band
reported off the wrist, and bands that measure less often than every 15 minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.detectors import AlertType, Baseline, Profile, ResidentState, VitalParam, step, vitals
from alerts.thresholds import ThresholdError, parse_overrides
from eldercare.protocol import DeviceEvent, EventType, Telemetry
from ingest.rows import Accepted

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
M = timedelta(minutes=1)


def feed(profile: Profile, readings: list[tuple[datetime, dict[str, object]]],
         state: ResidentState | None = None) -> ResidentState:  # fmt: skip
    state = state or ResidentState()
    for seq, (at, values) in enumerate(readings):
        t = Telemetry(device_id="wb-5", seq=seq, ts=int(at.timestamp() * 1000), **values)  # type: ignore[arg-type]
        state, _ = step(profile, state, Accepted(t, profile.resident_id), now=at)
    return state


def test_a_whole_min_alert_score_sent_as_a_float_is_a_whole_number() -> None:
    """JSON's 2.0 (as PostgreSQL's jsonb may return it) is 2: a float kept there made
    the persistence rule raise on every abnormal reading, so nothing was ever raised."""
    out = parse_overrides({"min_alert_score": 2.0}, Profile(5))
    assert type(out.thresholds.min_alert_score) is int
    state = feed(out, [(T0 + i * M, {"spo2": 85, "worn": True}) for i in range(40)])
    assert AlertType.VITAL_SPO2_LOW in state.open_alerts()
    with pytest.raises(ThresholdError):
        parse_overrides({"min_alert_score": 2.5}, Profile(5))


@pytest.mark.parametrize("every_min", [16, 20, 30, 60])
def test_a_band_measuring_every_half_hour_or_hour_raises_a_sustained_danger(
    every_min: int,
) -> None:
    """SpO2 85 % and SBP 200 measured every ``every_min`` minutes for 8 hours: runs of
    readings that far apart were all broken by the 15 min gap, and nothing was raised."""
    readings = [(T0 + i * every_min * M, {"spo2": 85, "bp_sys": 200, "bp_dia": 95, "worn": True})
                for i in range(8 * 60 // every_min)]  # fmt: skip
    state = feed(Profile(5), readings)
    assert {AlertType.VITAL_SPO2_LOW, AlertType.VITAL_SBP_HIGH} <= set(state.open_alerts())


def test_a_reading_hours_old_joins_no_run_of_todays() -> None:
    """A band read once a day for two days (an interval of a day), then twice today: the
    sparse allowance is capped, so yesterday's low reading and today's two are no run."""
    day = timedelta(days=1)
    low, fine = {"spo2": 85, "worn": True}, {"spo2": 97, "worn": True}
    readings = [(T0 - 2 * day, fine), (T0 - day, low), (T0, low), (T0 + 6 * M, low)]
    state = feed(Profile(5), readings)
    assert AlertType.VITAL_SPO2_LOW not in state.open_alerts()


def test_a_hot_day_explains_a_warm_wrist_never_a_cold_one() -> None:
    """A common rise of 1.6-2 C taken off a wrist at (or a little under) its own median,
    in an air-conditioned home, read as hypothermia; a feverish wrist on the same day
    still has the shift taken off."""
    temp = {VitalParam.TEMP: Baseline(33.0, 0.4, 500, 32.2, 33.8)}
    p = Profile(5, baselines=temp, night_baselines=temp)
    for skin, shift in ((33.0, 2.0), (32.8, 1.6)):
        state = ResidentState()
        for i in range(60):
            t = Telemetry(device_id="wb-5", seq=i, ts=int((T0 + i * M).timestamp() * 1000),
                          skin_temp_c=skin, worn=True)  # fmt: skip
            state, _ = step(p, state, Accepted(t, 5), now=T0 + i * M, skin_shift_c=shift)
        assert AlertType.VITAL_TEMP_LOW not in state.open_alerts()
    assert vitals.core_estimate(33.0, p, night=False, skin_shift_c=2.0) == 36.8
    assert vitals.core_estimate(35.5, p, night=False, skin_shift_c=2.0) == 37.3
    assert vitals.core_estimate(33.5, p, night=False, skin_shift_c=2.0) == 36.8


def test_a_clinicians_lower_blood_pressure_limit_is_applied_as_set() -> None:
    """A hypertensive resident whose own 99th percentile is 192: the clinician's band
    from 170 applies; the routine allowance is for the default crisis band only."""
    sbp = {VitalParam.SBP: Baseline(160, 8, 500, 140, 192)}
    base = Profile(5, baselines=sbp, night_baselines=sbp)
    mine = parse_overrides({"sbp": {"high": [[220, 3], [170, 2]]}}, base)
    hour = [(T0 + i * 5 * M, {"bp_sys": 185, "bp_dia": 95, "worn": True}) for i in range(12)]
    assert AlertType.VITAL_SBP_HIGH in feed(mine, hour).open_alerts()
    assert AlertType.VITAL_SBP_HIGH not in feed(base, hour).open_alerts()  # routine for them


def test_a_band_that_said_removed_is_not_judged_on_what_it_reads_off_the_wrist() -> None:
    """Worn left out of telemetry (the band reports its wear state by events): after a
    ``removed`` event its readings are a bedside table's, until it says ``worn``."""
    p = Profile(5)
    off = DeviceEvent(device_id="wb-5", seq=900, ts=int(T0.timestamp() * 1000),
                      type=EventType.REMOVED)  # fmt: skip
    state, _ = step(p, ResidentState(), Accepted(off, 5), now=T0)
    state = feed(p, [(T0 + i * M, {"hr": 38, "spo2": 84}) for i in range(1, 40)], state)
    assert not {AlertType.VITAL_HR_LOW, AlertType.VITAL_SPO2_LOW} & set(state.open_alerts())
    back = DeviceEvent(device_id="wb-5", seq=901, ts=int((T0 + 40 * M).timestamp() * 1000),
                       type=EventType.WORN)  # fmt: skip
    state, _ = step(p, state, Accepted(back, 5), now=T0 + 40 * M)
    state = feed(p, [(T0 + i * M, {"hr": 38, "spo2": 84}) for i in range(41, 80)], state)
    assert {AlertType.VITAL_HR_LOW, AlertType.VITAL_SPO2_LOW} <= set(state.open_alerts())
