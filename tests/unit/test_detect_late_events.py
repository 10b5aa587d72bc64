"""Device events late, twice or malformed: a band's backlog, at-least-once delivery, fuzzing.

A band sends new alarms first and its backlog after them (docs/protocol.md), so an
event can arrive long after newer ones; the same event can reach the engine twice;
``data`` is whatever the band put there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from alerts.detectors import ResidentState, Tick, device_health, falls, sos, step
from alerts.detectors.types import (
    AlertCleared,
    AlertEvent,
    AlertRaised,
    AlertType,
    AlertUpdated,
    ClearReason,
    Profile,
    iso,
)
from eldercare.protocol import DeviceEvent, EventType, Telemetry
from ingest.rows import Accepted

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
P = Profile(resident_id=3)
S = timedelta(seconds=1)
H = timedelta(hours=1)
DEV = "wb-1"


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def ev(kind: EventType, at: datetime, seq: int = 0, **data: Any) -> DeviceEvent:
    return DeviceEvent(device_id=DEV, seq=seq, ts=ms(at), type=kind, data=data or None)


def raised(events: list[AlertEvent], alert_type: AlertType) -> list[AlertRaised]:
    return [e for e in events if isinstance(e, AlertRaised) and e.type is alert_type]


# --- falls -------------------------------------------------------------------------------


def test_an_old_im_ok_from_the_backlog_does_not_drop_a_new_band_fall() -> None:
    """The fuzzing repro, through the engine: fall now, then an hour-old "I'm OK" 1.5 s later."""
    state = ResidentState()
    state, events = step(P, state, Accepted(ev(EventType.FALL, T0, seq=7), 3), now=T0)
    assert events == []  # a band-only report is held
    late = Accepted(ev(EventType.IM_OK, T0 - H, seq=2), 3)
    state, events = step(P, state, late, now=T0 + 1.5 * S)
    assert events == []
    state, events = step(P, state, Tick(T0 + 30 * S), now=T0 + 30 * S)
    [fall] = raised(events, AlertType.FALL)
    assert fall.detail["stage"] == "confirmed"
    assert fall.detail["wearer_says_ok"] is False


def screened() -> falls.FallsState:
    """A suspicion the early window raised 1.3 s after an impact at T0."""
    state, _ = falls.suspect(falls.FallsState(), P, device_id=DEV, source="screen",
                             impact_at=T0, score=0.4, now=T0 + 1.3 * S)  # fmt: skip
    return state


@given(offset_ms=st.integers(min_value=-2 * 3_600_000, max_value=30_000))
@example(offset_ms=-3_600_000)
@example(offset_ms=-2_000)
@example(offset_ms=-2_001)
def test_im_ok_cancels_a_screened_fall_iff_pressed_after_the_impact_less_two_seconds(
    offset_ms: int,
) -> None:
    pressed = ev(EventType.IM_OK, T0 + timedelta(milliseconds=offset_ms))
    state, events = falls.step_event(screened(), P, pressed, T0 + 35 * S)
    if offset_ms >= -2_000:  # a clock skew of up to 2 s is allowed (falls.OK_SKEW)
        assert events == [
            AlertCleared(3, AlertType.FALL, T0 + 35 * S, ClearReason.CANCELLED_BY_WEARER)
        ]
    else:
        assert events == []
        assert AlertType.FALL in state.open
        assert falls.tick(state, P, T0 + 47 * S)[1] != []  # confirmed on time, as without it


def test_an_old_im_ok_is_not_recorded_on_a_confirmed_fall_or_its_long_lie() -> None:
    state = screened()
    state, _ = falls.tick(state, P, T0 + 11 * 60 * S)
    assert set(state.open) == {AlertType.FALL, AlertType.LONG_LIE}
    state, events = falls.step_event(state, P, ev(EventType.IM_OK, T0 - H), T0 + 12 * 60 * S)
    assert events == []
    state, events = falls.step_event(state, P, ev(EventType.IM_OK, T0 + 60 * S), T0 + 13 * 60 * S)
    assert {e.type for e in events} == {AlertType.FALL, AlertType.LONG_LIE}
    assert all(isinstance(e, AlertUpdated) and e.detail["wearer_says_ok"] for e in events)


def unconfirmed() -> falls.FallsState:
    """Screened, then the full window's model did not find the fall: closed, watched."""
    state, _ = falls.retract(screened(), P, T0 + 9 * S)
    return state


def test_an_old_im_ok_does_not_end_an_unconfirmed_watch() -> None:
    state, events = falls.step_event(unconfirmed(), P, ev(EventType.IM_OK, T0 - H), T0 + 20 * S)
    assert events == []
    _, events = falls.tick(state, P, T0 + 11 * 60 * S)
    [lie] = raised(events, AlertType.LONG_LIE)
    assert lie.detail["fall_stage"] == "unconfirmed"
    assert lie.detail["wearer_says_ok"] is False


def test_an_off_wrist_report_from_before_the_impact_does_not_end_an_unconfirmed_watch() -> None:
    state = ResidentState(falls=unconfirmed())
    old = Accepted(Telemetry(device_id=DEV, seq=3, ts=ms(T0 - H), worn=False), 3)
    state, _ = step(P, state, old, now=T0 + 20 * S)
    assert state.falls.episode is not None  # still watched: the long lie is raised on time
    _, events = step(P, state, Tick(T0 + 11 * 60 * S), now=T0 + 11 * 60 * S)
    assert len(raised(events, AlertType.LONG_LIE)) == 1
    new = Accepted(Telemetry(device_id=DEV, seq=9, ts=ms(T0 + 60 * S), worn=False), 3)
    state, _ = step(P, state, new, now=T0 + 61 * S)
    assert state.falls.episode is None  # a band put down after the knock: the watch ends


@given(score=st.one_of(st.booleans(), st.integers(), st.floats(), st.text(), st.none()))
@example(score=True)
@example(score=0.7)
def test_a_band_fall_score_is_kept_iff_it_is_a_number_from_0_to_1(score: object) -> None:
    state, _ = falls.step_event(falls.FallsState(), P, ev(EventType.FALL, T0, score=score), T0)
    _, events = falls.tick(state, P, T0 + 30 * S)
    [fall] = raised(events, AlertType.FALL)
    usable = (isinstance(score, int | float) and not isinstance(score, bool)
              and 0 <= score <= 1)  # fmt: skip
    assert fall.detail["score"] == (score if usable else None)


# --- SOS ---------------------------------------------------------------------------------


def test_an_im_ok_older_than_the_sos_is_not_recorded_on_it() -> None:
    state, _ = sos.step(sos.SosState(), P, ev(EventType.SOS, T0, seq=5), T0)
    state, events = sos.step(state, P, ev(EventType.IM_OK, T0 - H, seq=1), T0 + 5 * S)
    assert events == []
    state, events = sos.step(state, P, ev(EventType.IM_OK, T0 + 9 * S, seq=6), T0 + 9 * S)
    [update] = events
    assert isinstance(update, AlertUpdated)
    assert update.detail["wearer_says_ok"] is True
    assert update.detail["wearer_ok_at"] == iso(T0 + 9 * S)
    assert update.detail["first_pressed_at"] == iso(T0)


def test_an_im_ok_between_two_presses_arriving_after_the_second_does_not_mark_it() -> None:
    state, _ = sos.step(sos.SosState(), P, ev(EventType.SOS, T0, seq=1), T0)
    state, _ = sos.step(state, P, ev(EventType.SOS, T0 + 20 * S, seq=3), T0 + 20 * S)
    state, events = sos.step(state, P, ev(EventType.IM_OK, T0 + 10 * S, seq=2), T0 + 21 * S)
    assert events == []  # as in order: the second press came after that "I'm OK"


@given(repeats=st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=40))
def test_a_press_handed_over_twice_is_counted_once(repeats: list[int]) -> None:
    state, last = sos.SosState(), None
    for seq, times in enumerate(repeats):
        press = ev(EventType.SOS, T0 + seq * S, seq=seq)
        for _ in range(times):  # at-least-once: the same event, again
            state, events = sos.step(state, P, press, T0 + seq * S)
            last = events[-1] if events else last
    assert last is not None
    assert last.detail["presses"] == len(repeats)  # type: ignore[union-attr]


# --- battery -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)


@given(pct=json_values)
@example(pct=True)
@example(pct=-500)
@example(pct=10**4299)  # 4300 digits: Python's JSON decoder still takes it
@example(pct=0)
@example(pct=100)
@example(pct=12)
def test_a_low_battery_event_carries_its_percentage_iff_a_whole_number_0_to_100(
    pct: object,
) -> None:
    event = ev(EventType.LOW_BATTERY, T0, battery_pct=pct)
    _, events = device_health.step(device_health.DeviceHealthState(), P, event, T0)
    [alert] = raised(events, AlertType.BATTERY_LOW)  # the band said so, whatever the number
    usable = isinstance(pct, int) and not isinstance(pct, bool) and 0 <= pct <= 100
    assert alert.detail["battery_pct"] == (pct if usable else None)


def reading(at: datetime, steps: int, seq: int) -> Accepted:
    return Accepted(Telemetry(device_id=DEV, seq=seq, ts=ms(at), steps=steps, worn=True), 3)


def test_an_old_step_count_from_the_backlog_is_not_taken_for_walking_after_a_fall() -> None:
    """The daily counter of a backlog reading is lower than the newest one's. Taken as
    the latest, it made the next live reading look like thousands of new steps: a
    fallen wearer "walked", and the band's fall report was dropped."""
    state, _ = step(P, ResidentState(), reading(T0 - 10 * S, 5000, seq=50), now=T0 - 9 * S)
    state, _ = step(P, state, Accepted(ev(EventType.FALL, T0, seq=51), 3), now=T0)
    state, _ = step(P, state, reading(T0 + 5 * S, 5001, seq=52), now=T0 + 6 * S)  # the base
    state, _ = step(P, state, reading(T0 - H, 100, seq=1), now=T0 + 7 * S)  # the backlog
    state, events = step(P, state, reading(T0 + 10 * S, 5003, seq=53), now=T0 + 11 * S)
    assert raised(events, AlertType.FALL) == []
    state, events = step(P, state, Tick(T0 + 30 * S), now=T0 + 30 * S)
    assert len(raised(events, AlertType.FALL)) == 1
    # a counter reset at midnight (a newer reading, a lower count) still counts as steps
    state, _ = step(P, ResidentState(), reading(T0 - 10 * S, 5000, seq=60), now=T0 - 9 * S)
    assert state.last_steps == {DEV: 5000}
    state, _ = step(P, state, reading(T0, 12, seq=61), now=T0)
    assert state.last_steps == {DEV: 12}


def test_an_older_fall_from_the_backlog_does_not_move_the_current_fall_back() -> None:
    """A band's backlog fall, an hour before the fall being handled, took its place as
    the impact: evidence from between the two (an "I'm OK" pressed half an hour ago)
    then counted against the new fall."""
    state = screened()  # impact at T0, suspected 1.3 s later
    state, events = falls.step_event(state, P, ev(EventType.FALL, T0 - H, seq=1), T0 + 2 * S)
    assert events == []
    assert state.episode is not None
    assert state.episode.impact_at == T0
    state, events = falls.step_event(state, P, ev(EventType.IM_OK, T0 - H / 2, seq=2), T0 + 3 * S)
    assert events == []  # not about this fall: nothing cancelled
    assert state.episode is not None
    assert state.episode.wearer_ok_at is None
