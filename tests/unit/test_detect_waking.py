"""The personal waking window (alerts/detectors/waking.py): each day's wake-up and bedtime,
the learning rule, and the live rules that use the window."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from alerts.daily_summary import daily_longest_still
from alerts.detectors import device_health, inactivity
from alerts.detectors.types import AlertRaised, AlertType, Profile
from alerts.detectors.waking import (
    DAY_FROM,
    SUSTAINED_MOVES,
    SUSTAINED_WITHIN,
    learn_waking_window,
    wake_and_bed,
)

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
DAY = date(2025, 3, 4)


def at(h: int, m: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(h, m), ZONE).astimezone(UTC)


def burst(h: int, m: int, n: int = 6, every: int = 2) -> list[datetime]:
    return [at(h, m) + timedelta(minutes=every * i) for i in range(n)]


def test_the_window_is_the_median_rounded_outwards_to_15_minutes() -> None:
    wakes = [time(9, 37), time(9, 50), time(9, 31), time(9, 44), time(9, 40)]
    beds = [time(21, 5), time(20, 50), time(21, 2), time(21, 20), time(21, 1)]
    # medians 09:40 and 21:02: down to 09:30, up to 21:15
    assert learn_waking_window(wakes, beds) == (time(9, 30), time(21, 15))
    # a median on a quarter hour stays there
    assert learn_waking_window([time(8, 0)] * 5, [time(22, 0)] * 5) == (time(8, 0), time(22, 0))


def test_the_window_is_clamped() -> None:
    assert learn_waking_window([time(4, 10)] * 5, [time(18, 0)] * 5) == (time(5, 0), time(19, 0))
    assert learn_waking_window([time(11, 30)] * 6, [time(23, 55)] * 6) == (
        time(10, 0),
        time(23, 45),
    )


def test_too_few_days_keep_the_default_end() -> None:
    four = [time(9, 30)] * 4
    assert learn_waking_window(four, four) is None
    assert learn_waking_window([], []) is None
    # each end needs its own 5 days; the other keeps 07:00 or 22:00
    assert learn_waking_window([time(9, 30)] * 5, [time(20, 0)] * 4) == (time(9, 30), time(22, 0))
    assert learn_waking_window([time(9, 30)] * 4, [time(20, 0)] * 5) == (time(7, 0), time(20, 0))


def test_a_toilet_trip_before_more_sleep_is_not_a_wake_up() -> None:
    trip = [at(4, 30), at(4, 32), at(4, 34)]
    night = [at(2, 0) + timedelta(minutes=2 * i) for i in range(8)]  # before 04:00
    day = burst(9, 35, n=40)
    wake, bed = wake_and_bed(sorted(night + trip + day), tz=TZ)
    assert wake == at(9, 35)
    assert bed == day[-1]


def test_bedtime_ends_sustained_activity_not_a_late_toilet_trip() -> None:
    day = burst(8, 0, n=300)  # 08:00 to 17:58
    evening = burst(19, 0, n=20)  # to 19:38
    trip = [at(23, 10), at(23, 12)]
    assert wake_and_bed(day + evening + trip, tz=TZ) == (at(8, 0), at(19, 38))
    assert wake_and_bed(trip, tz=TZ) == (None, None)


@given(st.lists(st.integers(0, 24 * 60 - 1), max_size=60))
def test_wake_and_bed_hold_iff_movement_is_sustained_for_the_hour(minutes: list[int]) -> None:
    """The wake-up is the first movement from 04:00 with 5 movements in the next 60 min,
    the bedtime the last with 5 in the 60 min before; none iff no such movement."""
    moves = sorted(at(0) + timedelta(minutes=m) for m in minutes)

    def local(t: datetime) -> time:
        return t.astimezone(ZONE).time()

    def after(t: datetime) -> int:
        return sum(1 for m in moves if t <= m <= t + SUSTAINED_WITHIN)

    def before(t: datetime) -> int:
        return sum(1 for m in moves if t - SUSTAINED_WITHIN <= m <= t)

    candidates = [t for t in moves if local(t) >= DAY_FROM]
    starts = [t for t in candidates if after(t) >= SUSTAINED_MOVES]
    ends = [t for t in candidates if before(t) >= SUSTAINED_MOVES]
    wake, bed = wake_and_bed(moves, tz=TZ)
    assert wake == (starts[0] if starts else None)
    assert bed == (ends[-1] if ends else None)
    if wake is not None:
        assert local(wake) >= DAY_FROM


@given(st.lists(st.times(), min_size=0, max_size=7), st.lists(st.times(), min_size=0, max_size=7))
def test_a_learned_window_is_on_the_quarter_hour_within_its_bounds(
    wakes: list[time], beds: list[time]
) -> None:
    window = learn_waking_window(wakes, beds)
    if len(wakes) < 5 and len(beds) < 5:
        assert window is None
        return
    assert window is not None
    start, end = window
    assert time(5, 0) <= start <= time(10, 0) or (len(wakes) < 5 and start == time(7, 0))
    assert time(19, 0) <= end <= time(23, 45) or (len(beds) < 5 and end == time(22, 0))
    assert start.minute % 15 == 0
    assert end.minute % 15 == 0
    assert start < end


LATE = Profile(1, lives_alone=True, tz=TZ, waking_start=time(9, 30), waking_end=time(22, 0))


def test_inactivity_does_not_count_a_late_sleepers_morning_sleep() -> None:
    state = inactivity.InactivityState()
    state, _ = inactivity.step(state, LATE, moved=True, usable=True, now=at(21, 50, DAY))
    morning = at(10, 30, DAY + timedelta(days=1))  # 40 min awake and still
    _, events = inactivity.step(state, LATE, moved=False, usable=True, now=morning)
    assert events == []
    # the fixed 07-22 window counted 3 h 40 min of stillness by then: raised
    default = Profile(1, lives_alone=True, tz=TZ)
    _, events = inactivity.step(state, default, moved=False, usable=True, now=morning)
    assert [e.type for e in events if isinstance(e, AlertRaised)] == [AlertType.INACTIVITY]
    # the late sleeper's own day still raises: 3 h of their waking hours
    _, events = inactivity.step(
        state, LATE, moved=False, usable=True, now=morning + timedelta(hours=2, minutes=21)
    )
    assert [e.type for e in events if isinstance(e, AlertRaised)] == [AlertType.INACTIVITY]


def test_the_routines_still_stretches_count_only_the_personal_waking_hours() -> None:
    """A late sleeper's morning sleep is not stillness: neither across the night nor from
    the day's start to its first movement (the within-day stretches are kept unclipped)."""
    tomorrow = DAY + timedelta(days=1)
    days = {
        DAY: (at(9, 40), at(21, 50), [(at(0, 0), at(9, 40)), (at(13, 0), at(13, 30))]),
        tomorrow: (at(9, 35, tomorrow), at(21, 40, tomorrow),
                   [(at(0, 0, tomorrow), at(9, 35, tomorrow)),
                    (at(14, 0, tomorrow), at(14, 45, tomorrow))]),
    }  # fmt: skip
    fixed = daily_longest_still(days, tz=TZ)
    personal = daily_longest_still(days, tz=TZ, window=(time(9, 30), time(22, 0)))
    # 07:00-09:40 (sleep); then 21:50-22:00 and 07:00-09:35 across the night
    assert fixed == [timedelta(hours=2, minutes=40), timedelta(hours=2, minutes=45)]
    # the afternoon stretches (the night: 15 min, the first morning: 10 min)
    assert personal == [timedelta(minutes=30), timedelta(minutes=45)]
    assert daily_longest_still({DAY: (at(9, 40), at(21, 50), [])}, tz=TZ) == [timedelta(0)]


def test_band_not_worn_counts_only_the_personal_waking_time() -> None:
    off = at(6, 0)
    track = device_health.DeviceTrack(last_seen=at(9, 55), interval_s=60, not_worn_since=off)
    state = device_health.DeviceHealthState({"wb-1": track})
    late = Profile(1, tz=TZ, waking_start=time(9, 30))
    # at 09:55: 2 h 55 min of the fixed window, 25 min of the late sleeper's
    _, events = device_health.evaluate(state, late, at(9, 55))
    assert not [e for e in events if isinstance(e, AlertRaised)]
    _, events = device_health.evaluate(state, Profile(1, tz=TZ), at(9, 55))
    assert [e.type for e in events if isinstance(e, AlertRaised)] == [AlertType.BAND_NOT_WORN]
    later = device_health.DeviceHealthState({"wb-1": replace(track, last_seen=at(10, 5))})
    _, events = device_health.evaluate(later, late, at(10, 5))
    assert [e.type for e in events if isinstance(e, AlertRaised)] == [AlertType.BAND_NOT_WORN]
