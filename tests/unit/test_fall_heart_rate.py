"""A heart rate in the red band after a fall: confirming evidence, shown to the operator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import ResidentState, falls, step
from alerts.detectors.news2 import ParamBands
from alerts.detectors.types import (
    AlertCleared,
    AlertRaised,
    AlertType,
    AlertUpdated,
    ClearReason,
    Profile,
    Severity,
    Thresholds,
    iso,
)
from alerts.restart import seed_states
from alerts.store import StoredAlert
from eldercare.protocol import DeviceEvent, EventType, Telemetry
from ingest.rows import Accepted

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # the impact, band clock
S = timedelta(seconds=1)
P = Profile(resident_id=3)
DEV = "wb-1"


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def band_report(profile: Profile = P) -> falls.FallsState:
    """A band-only fall report at T0: held, nothing raised."""
    event = DeviceEvent(device_id=DEV, seq=0, ts=ms(T0), type=EventType.FALL)
    state, events = falls.step_event(falls.FallsState(), profile, event, T0 + S)
    assert events == []
    return state


def screened() -> falls.FallsState:
    """A suspicion only the early window raised, at T0 + 1 s."""
    state, _ = falls.suspect(falls.FallsState(), P, device_id=DEV, source="screen", impact_at=T0,
                         score=0.4, now=T0 + S)  # fmt: skip
    return state


def test_a_red_heart_rate_raises_a_held_band_report_at_once() -> None:
    state, events = falls.heart_rate(band_report(), P, 36, T0 + 5 * S, T0 + 6 * S)
    assert len(events) == 1
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert (raised.type, raised.severity, raised.at) == (AlertType.FALL, Severity.CRITICAL,
                                                         T0 + 6 * S)  # fmt: skip
    assert raised.detail["stage"] == "suspected"
    assert raised.detail["heart_rate_after"] == {"bpm": 36, "at": iso(T0 + 5 * S)}
    # the cancel window starts when it is shown, as when the platform agrees with the band
    state, events = falls.tick(state, P, T0 + 6 * S + 45 * S)
    assert [e.detail["stage"] for e in events if isinstance(e, AlertUpdated)] == ["confirmed"]


def test_a_heart_rate_outside_the_red_band_or_from_before_the_impact_changes_nothing() -> None:
    held = band_report()
    for bpm, at in ((41, T0 + 5 * S), (130, T0 + 5 * S), (72, T0 + 5 * S), (150, T0), (35, T0 - S)):
        assert falls.heart_rate(held, P, bpm, at, T0 + 6 * S) == (held, [])
    nothing = falls.FallsState()  # no fall
    assert falls.heart_rate(nothing, P, 35, T0, T0) == (nothing, [])


@settings(max_examples=60, deadline=None)
@given(st.integers(20, 250), st.sampled_from([None, (50, 150)]))
def test_a_held_report_is_raised_iff_the_reading_is_in_the_residents_red_band(
    bpm: int, clinician: tuple[int, int] | None
) -> None:
    """NEWS2's red by default (<= 40, >= 131); a clinician's bands when set."""
    profile = P
    if clinician is not None:
        low, high = clinician
        bands = ParamBands(low=((low, 3),), high=((high, 3),))
        profile = Profile(resident_id=3, thresholds=Thresholds(hr=bands))
    low, high = clinician or (40, 131)
    _, events = falls.heart_rate(band_report(profile), profile, bpm, T0 + 5 * S, T0 + 6 * S)
    assert bool(events) == (bpm <= low or bpm >= high)


def test_a_suspicion_with_a_red_heart_rate_is_not_retracted_by_the_model_alone() -> None:
    state, events = falls.heart_rate(screened(), P, 140, T0 + 3 * S, T0 + 4 * S)
    assert [type(e) for e in events] == [AlertUpdated]  # the operator sees the heart rate
    assert falls.retract(screened(), P, T0 + 9 * S)[1] != []  # without it: retracted
    assert state.episode is not None
    assert state.episode.abnormal_hr == (140, T0 + 3 * S)


def test_an_unconfirmed_fall_is_shown_again_on_its_original_timers() -> None:
    state, events = falls.retract(screened(), P, T0 + 9 * S)
    assert events == [AlertCleared(3, AlertType.FALL, T0 + 9 * S, ClearReason.NOT_CONFIRMED)]
    state, events = falls.heart_rate(state, P, 38, T0 + 60 * S, T0 + 61 * S)
    assert [(type(e), e.type) for e in events] == [(AlertRaised, AlertType.FALL)]
    assert events[0].detail["stage"] == "confirmed"  # its cancel window (from T0 + 1 s) is over
    state, events = falls.tick(state, P, T0 + S + 10 * 60 * S)
    lie = [e for e in events if isinstance(e, AlertRaised)]
    assert [e.type for e in lie] == [AlertType.LONG_LIE]
    assert lie[0].detail["heart_rate_after"] == {"bpm": 38, "at": iso(T0 + 60 * S)}


def test_im_ok_with_a_red_heart_rate_is_recorded_not_a_cancel() -> None:
    state, _ = falls.heart_rate(screened(), P, 35, T0 + 3 * S, T0 + 4 * S)
    state, events = falls.im_ok(state, P, T0 + 10 * S, pressed_at=T0 + 10 * S)
    assert [type(e) for e in events] == [AlertUpdated]
    assert events[0].detail["wearer_says_ok"] is True
    assert AlertType.FALL in state.open
    # without it, the wearer cancels
    _, events = falls.im_ok(screened(), P, T0 + 10 * S, pressed_at=T0 + 10 * S)
    assert [type(e) for e in events] == [AlertCleared]


def test_walking_away_with_a_red_heart_rate_stays_critical() -> None:
    state, _ = falls.heart_rate(screened(), P, 135, T0 + 3 * S, T0 + 4 * S)
    state, events = falls.movement(state, P, 20, T0 + 30 * S)
    assert [(e.detail["stage"], e.severity) for e in events if isinstance(e, AlertUpdated)] == [
        ("recovered", Severity.CRITICAL)
    ]
    _, events = falls.movement(screened(), P, 20, T0 + 30 * S)
    assert [e.severity for e in events] == [Severity.HIGH]  # without it: a welfare call


def test_a_new_fall_starts_without_the_last_ones_heart_rate() -> None:
    state, _ = falls.heart_rate(screened(), P, 135, T0 + 3 * S, T0 + 4 * S)
    state, _ = falls.movement(state, P, 20, T0 + 30 * S)  # got up: recovered, still critical
    later = T0 + 20 * 60 * S
    state, events = falls.suspect(state, P, device_id=DEV, source="platform", impact_at=later,
                                  score=0.9, now=later)  # fmt: skip
    assert state.episode is not None
    assert state.episode.abnormal_hr is None
    assert [e.detail["heart_rate_after"] for e in events if isinstance(e, AlertUpdated)] == [None]


def test_only_the_first_red_reading_is_kept() -> None:
    state, _ = falls.heart_rate(screened(), P, 35, T0 + 3 * S, T0 + 4 * S)
    assert falls.heart_rate(state, P, 30, T0 + 63 * S, T0 + 64 * S) == (state, [])


def tele(at: datetime, hr: int, worn: bool | None = True) -> Accepted:
    return Accepted(Telemetry(device_id=DEV, seq=0, ts=ms(at), hr=hr, worn=worn), 3)


def test_the_engine_reads_the_heart_rate_of_telemetry_but_not_off_the_wrist() -> None:
    event = Accepted(DeviceEvent(device_id=DEV, seq=0, ts=ms(T0), type=EventType.FALL), 3)
    held, events = step(P, ResidentState(), event, now=T0 + S)
    assert events == []
    _, events = step(P, held, tele(T0 + 5 * S, 34, worn=False), now=T0 + 6 * S)
    assert not [e for e in events if e.type is AlertType.FALL]
    state, events = step(P, held, tele(T0 + 5 * S, 34), now=T0 + 6 * S)
    assert [(type(e), e.type) for e in events if e.type is AlertType.FALL] == [
        (AlertRaised, AlertType.FALL)
    ]
    assert state.falls.episode is not None
    assert state.falls.episode.abnormal_hr == (34, T0 + 5 * S)


def test_a_restart_keeps_the_heart_rate_of_an_open_fall() -> None:
    _, events = falls.heart_rate(band_report(), P, 36, T0 + 5 * S, T0 + 6 * S)
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    row = StoredAlert(id=1, resident_id=3, device_id=DEV, type="fall", severity="critical",
                      state="open", outcome=None, opened_at=raised.at, updated_at=raised.at,
                      closed_at=None, detail=dict(raised.detail), repeat_count=1)  # fmt: skip
    seeded = seed_states([row], recently_closed=[])[3].falls
    assert seeded.episode is not None
    assert seeded.episode.abnormal_hr == (36, T0 + 5 * S)
    # still not a cancel after the restart
    _, events = falls.im_ok(seeded, P, T0 + 10 * S, pressed_at=T0 + 10 * S)
    assert [type(e) for e in events] == [AlertUpdated]
