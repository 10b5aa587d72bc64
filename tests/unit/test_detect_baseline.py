"""A heart-rate baseline_deviation is a night's: it ends with the night (defect found in
review on 2026-12-04: it stayed open all day)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.detectors import ResidentState, step
from alerts.detectors.news2 import VitalParam
from alerts.detectors.types import (
    AlertCleared,
    AlertEvent,
    AlertRaised,
    AlertType,
    AlertUpdated,
    Baseline,
    ClearReason,
    Profile,
)
from eldercare.protocol import Telemetry
from ingest.rows import Accepted

M = timedelta(minutes=1)
START = datetime(2025, 3, 1, 19, 0, tzinfo=UTC)  # 03:00 in Asia/Shanghai
WAKING = datetime(2025, 3, 1, 23, 0, tzinfo=UTC)  # 07:00: the fixed split's waking start
BASE = {VitalParam.HR: Baseline(60, 3, 500, 54, 70), VitalParam.SPO2: Baseline(96, 1, 500, 93, 99)}
PROFILE = Profile(resident_id=9, baselines=BASE, night_baselines=BASE)
Sent = list[tuple[datetime, datetime, int, int]]  # arrival, band time, hr, spo2


def reading(at: datetime, hr: int, spo2: int) -> Accepted:
    ts = int(at.timestamp() * 1000)
    return Accepted(Telemetry(device_id="wb-9", seq=0, ts=ts, worn=True, hr=hr, spo2=spo2), 9)


def deviations(
    readings: Sent, state: ResidentState | None = None
) -> tuple[ResidentState, list[AlertEvent]]:
    """(arrival, band time, hr, spo2) readings -> the baseline_deviation events."""
    state, out = state or ResidentState(), []
    for now, at, hr, spo2 in readings:
        state, events = step(PROFILE, state, reading(at, hr, spo2), now=now)
        out += [e for e in events if e.type is AlertType.BASELINE_DEVIATION]
    return state, out


def night_then_day(until: datetime, hr: int, spo2: int = 96) -> Sent:
    """A reading a minute from 03:00 to ``until``: heart rate z = +6 to 06:45, usual after."""
    minutes = int((until - START) / M)
    return [(START + i * M, START + i * M, hr if i < 225 else 60, spo2) for i in range(minutes)]


def test_a_night_heart_rate_deviation_clears_with_the_first_waking_hours_reading() -> None:
    """Raised at 03:30, the heart rate usual again from 06:45: cleared at 07:00, where it
    stayed open until the next night's usual readings."""
    _, events = deviations(night_then_day(WAKING + 3 * 60 * M, 78))
    assert [(type(e), e.at) for e in events] == [
        (AlertRaised, START + 30 * M),
        (AlertCleared, WAKING),
    ]
    assert isinstance(events[-1], AlertCleared)
    assert events[-1].reason is ClearReason.RESOLVED


def test_with_spo2_still_low_the_alert_stays_open_without_the_heart_rate() -> None:
    """SpO2 drifting by day too: the night's end drops the heart rate from the alert (an
    update), it does not clear what SpO2 still shows."""
    _, events = deviations(night_then_day(WAKING + 10 * M, 78, spo2=90))
    last = events[-1]
    assert isinstance(last, AlertUpdated)
    assert last.at == WAKING
    assert set(last.detail["parameters"]) == {VitalParam.SPO2.value}


def test_night_readings_arriving_after_a_waking_hours_one_do_not_raise_it_again() -> None:
    """A band's backlog of the night's last hour, sent after its 07:00 reading: late, not a
    new night's drift."""
    state, events = deviations(night_then_day(WAKING + M, 78))
    assert isinstance(events[-1], AlertCleared)
    backlog = [(WAKING + 2 * M + i * M, WAKING - 40 * M + i * M, 80, 96) for i in range(40)]
    _, events = deviations(backlog, state)
    assert events == []
