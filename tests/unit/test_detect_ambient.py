"""Hot weather: the rise every resident's wrist shares is taken off the fever rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alerts.detectors import ambient, engine, vitals
from alerts.detectors.ambient import MIN_RESIDENTS, WINDOW, SkinShift, common_shift
from alerts.detectors.news2 import VitalParam
from alerts.detectors.types import AlertRaised, AlertType, Baseline, Profile
from eldercare.protocol import Telemetry
from ingest.rows import Accepted

T0 = datetime(2025, 7, 20, 6, 0, tzinfo=UTC)  # 14:00 in Asia/Shanghai, a July afternoon
MEDIAN = 33.0
P = replace(Profile(resident_id=7), baselines={VitalParam.TEMP: Baseline(MEDIAN, 0.3, 500)})


def fevers(
    profile: Profile, skin_c: float, shift: float, minutes: int = 45
) -> list[tuple[int, object]]:
    """(minute, hot-weather shift on the alert) of each fever raised for a steady wrist
    temperature, read each minute."""
    state, out = engine.ResidentState(), []
    for i in range(minutes + 1):
        at = T0 + timedelta(minutes=i)
        msg = Telemetry(device_id="wb-7", seq=i, ts=int(at.timestamp() * 1000), worn=True,
                        skin_temp_c=skin_c)  # fmt: skip
        item = Accepted(message=msg, resident_id=profile.resident_id)
        state, events = engine.step(profile, state, item, now=at, skin_shift_c=shift)
        out += [(i, e.detail.get("hot_weather_shift_c")) for e in events
                if isinstance(e, AlertRaised) and e.type is AlertType.VITAL_TEMP_HIGH]  # fmt: skip
    return out


def test_the_shared_rise_of_a_hot_day_is_not_a_fever() -> None:
    assert fevers(P, MEDIAN + 1.6, shift=0.0) == [(30, None)]  # alone: a fever at 30 min
    assert fevers(P, MEDIAN + 1.6, shift=1.6) == []  # everyone's wrist is as warm
    # warmer than everyone else by a fever's rise (heat stroke in a hot flat): raised, and
    # the alert says what was taken off
    assert fevers(P, MEDIAN + 3.2, shift=1.6) == [(30, 1.6)]
    # without a personal baseline, the population offset: 35.4 + 4.0 = 39.4, less the shift
    assert fevers(Profile(resident_id=7), 35.4, shift=0.0) == [(30, None)]
    assert fevers(Profile(resident_id=7), 35.4, shift=1.0) == []


def test_the_common_shift_needs_enough_residents_and_a_rise() -> None:
    assert common_shift([1.5] * (MIN_RESIDENTS - 1)) == 0.0  # a handful is not the weather
    assert common_shift([1.5] * MIN_RESIDENTS) == 1.5
    assert common_shift([0.2] * MIN_RESIDENTS) == 0.0  # day-to-day noise
    assert common_shift([-2.0] * MIN_RESIDENTS) == 0.0  # a cold spell is never excused
    # a fever outbreak in a tenth of the city does not move the median
    assert common_shift([0.0] * 180 + [2.5] * 20) == 0.0


@given(st.lists(st.floats(-3.0, 3.0), min_size=0, max_size=400))
def test_the_shift_is_zero_or_the_median_rise(devs: list[float]) -> None:
    got = common_shift(devs)
    if len(devs) < MIN_RESIDENTS:
        assert got == 0.0
    else:
        below = sum(d < got for d in devs)
        assert got == 0.0 or (got >= 0.3 and below <= len(devs) / 2 + 1)


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def test_the_running_estimate_samples_and_forgets_residents_not_heard_from() -> None:
    skin = SkinShift(min_residents=3)
    for rid in (1, 2, 3):
        assert skin.due(rid, ms(T0))
        skin.observe(rid, ms(T0), 1.2)
    assert not skin.due(1, ms(T0 + timedelta(minutes=4)))  # one sample per 5 min
    assert skin.due(1, ms(T0 + timedelta(minutes=5)))
    skin.observe(4, ms(T0), None)  # no baseline: sampled, not counted
    assert skin.update(T0 + timedelta(minutes=1)) == 1.2
    assert not skin.due(4, ms(T0 + timedelta(minutes=1)))
    skin.observe(1, ms(T0 + WINDOW), 1.4)  # the others fall silent
    assert skin.update(T0 + WINDOW + timedelta(minutes=1)) == 0.0
    assert list(skin.latest) == [1]


def test_the_deviation_is_from_the_same_part_of_the_days_median() -> None:
    p = replace(P, night_baselines={VitalParam.TEMP: Baseline(34.0, 0.3, 500)})
    assert ambient.deviation(34.5, p, night=False) == 1.5
    assert ambient.deviation(34.5, p, night=True) == 0.5
    assert ambient.deviation(34.5, Profile(resident_id=7), night=False) is None
    assert vitals.core_estimate(34.5, p, night=False, skin_shift_c=1.0) == 37.3
