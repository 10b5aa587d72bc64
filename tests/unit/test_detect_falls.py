"""SOS and falls: raised at once, cancel window, confirmation, long lie."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import falls, sos
from alerts.detectors.types import (
    AlertCleared,
    AlertEvent,
    AlertRaised,
    AlertType,
    AlertUpdated,
    ClearReason,
    Profile,
    Severity,
)
from alerts.falls import load_model
from eldercare.protocol import DeviceEvent, EventType, ImuWindow, Limits, decode
from eldercare.topics import Channel, device_topic

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
P = Profile(resident_id=3)
S = timedelta(seconds=1)
MODEL = load_model()


def ev(kind: EventType, at: datetime) -> DeviceEvent:
    return DeviceEvent(device_id="wb-1", seq=0, ts=int(at.timestamp() * 1000), type=kind)


def test_sos_is_critical_at_once_and_im_ok_is_recorded_not_cancelled() -> None:
    state, events = sos.step(sos.SosState(), P, ev(EventType.SOS, T0), T0)
    assert len(events) == 1
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert (raised.type, raised.severity, raised.at) == (AlertType.SOS, Severity.CRITICAL, T0)
    state, events = sos.step(state, P, ev(EventType.SOS, T0 + 5 * S), T0 + 5 * S)
    assert [type(e) for e in events] == [AlertUpdated]  # a repeat press: one open alert
    state, events = sos.step(state, P, ev(EventType.IM_OK, T0 + 9 * S), T0 + 9 * S)
    assert [type(e) for e in events] == [AlertUpdated]
    assert isinstance(events[0], AlertUpdated)
    assert events[0].detail["wearer_says_ok"] is True
    assert AlertType.SOS in state.open


def test_an_im_ok_without_an_sos_does_nothing() -> None:
    assert sos.step(sos.SosState(), P, ev(EventType.IM_OK, T0), T0)[1] == []


def band_fall(state: falls.FallsState, at: datetime) -> tuple[falls.FallsState, list[object]]:
    new, events = falls.step_event(state, P, ev(EventType.FALL, at), at)
    return new, list(events)


def platform_fall(
    state: falls.FallsState, at: datetime, impact_at: datetime | None = None
) -> tuple[falls.FallsState, list[object]]:
    new, events = falls.suspect(state, P, device_id="wb-1", source="platform",
                                impact_at=impact_at or at, score=0.9, now=at)  # fmt: skip
    return new, list(events)


def test_a_platform_fall_is_raised_at_once_as_a_suspected_critical_fall() -> None:
    _, events = platform_fall(falls.FallsState(), T0)
    assert len(events) == 1
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert raised.type is AlertType.FALL
    assert raised.severity is Severity.CRITICAL
    assert raised.detail["stage"] == "suspected"


def test_a_band_only_fall_is_held_then_confirmed_when_nobody_says_ok_or_walks() -> None:
    state, events = band_fall(falls.FallsState(), T0)
    assert events == []
    assert state.episode is not None
    assert state.episode.stage is falls.FallStage.PENDING
    state, events = falls.movement(state, P, 3, T0 + 10 * S)  # a shuffle is not walking away
    assert events == []
    state, events = falls.tick(state, P, T0 + 29 * S)
    assert events == []
    state, events = falls.tick(state, P, T0 + 30 * S)
    assert len(events) == 1
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert (raised.type, raised.severity) == (AlertType.FALL, Severity.CRITICAL)
    assert raised.detail["stage"] == "confirmed"


def test_a_band_only_fall_retracted_by_im_ok_or_walking_is_never_raised() -> None:
    state, _ = band_fall(falls.FallsState(), T0)
    ok, events = falls.step_event(state, P, ev(EventType.IM_OK, T0 + 12 * S), T0 + 12 * S)
    assert (events, ok.episode) == ([], None)
    walked, events = falls.movement(state, P, 15, T0 + 20 * S)
    assert (events, walked.episode) == ([], None)
    assert falls.tick(walked, P, T0 + 60 * S) == (walked, [])


def test_the_band_and_the_platform_seeing_one_fall_make_one_alert() -> None:
    state, _ = band_fall(falls.FallsState(), T0)
    state, events = platform_fall(state, T0 + 3 * S, impact_at=T0 + 2 * S)
    assert [type(e) for e in events] == [AlertRaised]  # the platform confirms the band at once
    assert state.episode is not None
    assert state.episode.falls == 1
    assert state.episode.sources == {"band", "platform"}
    state, _ = platform_fall(falls.FallsState(), T0)  # the other order: one alert, updated
    state, events = band_fall(state, T0 + 2 * S)
    assert [type(e) for e in events] == [AlertUpdated]
    assert state.episode is not None
    assert state.episode.falls == 1


def test_im_ok_inside_the_cancel_window_retracts_the_fall() -> None:
    state, _ = platform_fall(falls.FallsState(), T0)
    state, events = falls.step_event(state, P, ev(EventType.IM_OK, T0), T0 + 30 * S)
    assert events == [AlertCleared(3, AlertType.FALL, T0 + 30 * S, ClearReason.CANCELLED_BY_WEARER)]
    assert state.episode is None
    assert state.open == {}


def test_the_fall_is_confirmed_after_the_window_and_a_late_im_ok_does_not_retract() -> None:
    state, _ = platform_fall(falls.FallsState(), T0)
    state, events = falls.tick(state, P, T0 + 44 * S)
    assert events == []
    state, events = falls.tick(state, P, T0 + 45 * S)
    assert len(events) == 1
    assert isinstance(events[0], AlertUpdated)
    assert events[0].detail["stage"] == "confirmed"
    state, events = falls.im_ok(state, P, T0 + 60 * S, pressed_at=T0 + 60 * S)
    assert [type(e) for e in events] == [AlertUpdated]
    assert AlertType.FALL in state.open


def test_no_movement_after_a_confirmed_fall_escalates_to_a_long_lie() -> None:
    state, _ = platform_fall(falls.FallsState(), T0)
    state, _ = falls.tick(state, P, T0 + 60 * S)
    state, events = falls.movement(state, P, 0, T0 + 5 * 60 * S)  # lying still
    assert events == []
    state, events = falls.tick(state, P, T0 + 10 * 60 * S)
    assert len(events) == 1
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert (raised.type, raised.severity) == (AlertType.LONG_LIE, Severity.CRITICAL)
    state, events = falls.tick(state, P, T0 + 20 * 60 * S)
    assert events == []  # one long lie


def test_getting_up_inside_the_window_downgrades_and_never_becomes_a_long_lie() -> None:
    state, _ = platform_fall(falls.FallsState(), T0)
    state, events = falls.movement(state, P, 25, T0 + 20 * S)
    assert len(events) == 1
    assert isinstance(events[0], AlertUpdated)
    assert (events[0].severity, events[0].detail["stage"]) == (Severity.HIGH, "recovered")
    state, events = falls.tick(state, P, T0 + 30 * 60 * S)
    assert events == []


def _window(acc: np.ndarray, t: np.ndarray, at: datetime) -> ImuWindow:
    return ImuWindow(
        device_id="wb-1", seq=1, ts=int(at.timestamp() * 1000),
        t_ms=[round(float(x) * 1000) for x in t],
        ax=acc[:, 0].tolist(), ay=acc[:, 1].tolist(), az=acc[:, 2].tolist(), trigger="impact",
    )  # fmt: skip


def test_the_platform_detector_raises_a_fall_from_an_imu_window() -> None:
    t = np.arange(0.0, 12.0, 1 / 50)
    rng = np.random.default_rng(0)
    acc = np.where((t < 5.0)[:, None], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    acc[(t > 4.5) & (t < 4.95)] *= 0.35
    acc = acc + (4.0 * np.exp(-0.5 * ((t - 5.0) / 0.06) ** 2))[:, None] * [0.6, 0.0, 0.8]
    acc = acc + rng.normal(0.0, 0.02, acc.shape)
    _, events = falls.step_imu(falls.FallsState(), P, _window(acc, t, T0), MODEL, T0 + 13 * S)
    assert len(events) == 1
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert raised.detail["sources"] == ["platform"]
    still = np.tile([0.0, 0.0, 1.0], (t.size, 1)) + rng.normal(0.0, 0.005, (t.size, 3))
    assert falls.step_imu(falls.FallsState(), P, _window(still, t, T0), MODEL, T0)[1] == []


def impact(back_to_start: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """10 s at 50 Hz: an arm hanging, a 5 g impact at 2.5 s that turns the forearm; then
    lying still, or (``back_to_start``) the arm back where it was and moving."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 10.0, 1 / 50)
    before, after = np.array([-0.94, 0.12, 0.32]), np.array([0.15, -0.25, 0.95])
    acc = np.where((t < 2.5)[:, None], before, after)
    acc = acc + 4.0 * np.exp(-0.5 * ((t - 2.5) / 0.05) ** 2)[:, None] * after
    if back_to_start:
        moving = t > 3.3
        acc[moving] = before + 0.6 * np.sin(2 * np.pi * 2.0 * t[moving])[:, None] * [1, 0.3, 0.2]
    return t, acc + rng.normal(0.0, 0.01, acc.shape)


def test_an_early_impact_window_raises_a_suspected_fall_at_once() -> None:
    t, acc = impact(back_to_start=False)
    early = t <= 3.3  # 0.8 s after the impact: uploaded ~1 s after it
    state, events = falls.step_imu(falls.FallsState(), P, _window(acc[early], t[early], T0),
                                   MODEL, T0 + 3 * S)  # fmt: skip
    assert len(events) == 1
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert (raised.type, raised.severity, raised.at) == (AlertType.FALL, Severity.CRITICAL,
                                                         T0 + 3 * S)  # fmt: skip
    assert raised.detail["sources"] == ["screen"]
    state, events = falls.step_imu(state, P, _window(acc, t, T0), MODEL, T0 + 11 * S)
    assert [type(e) for e in events] == [AlertUpdated]  # the model agrees: one alert
    assert state.episode is not None
    assert state.episode.sources == {"screen", "platform"}


def test_the_full_window_retracts_a_suspicion_only_the_screen_raised() -> None:
    t, acc = impact(back_to_start=True)
    early = t <= 3.3
    state, _ = falls.step_imu(falls.FallsState(), P, _window(acc[early], t[early], T0), MODEL,
                              T0 + 3 * S)  # fmt: skip
    assert AlertType.FALL in state.open
    state, events = falls.step_imu(state, P, _window(acc, t, T0), MODEL, T0 + 11 * S)
    assert events == [AlertCleared(3, AlertType.FALL, T0 + 11 * S, ClearReason.NOT_CONFIRMED)]
    assert state.episode is not None  # closed, but watched for a long lie
    assert state.episode.stage is falls.FallStage.UNCONFIRMED
    assert state.open == {}


# -- after the fall: walking ends the watch, a long lie does not need a confirmed fall ---------


def screened(at: datetime = T0) -> falls.FallsState:
    """A suspicion the early window raised at ``at`` (1.3 s after an impact at ``T0``)."""
    state, events = falls.suspect(falls.FallsState(), P, device_id="wb-1", source="screen",
                                  impact_at=T0, score=0.4, now=at)  # fmt: skip
    assert [type(e) for e in events] == [AlertRaised]
    return state


def unconfirmed(at: datetime = T0 + 9 * S) -> falls.FallsState:
    """Screened, then the full window's model did not find the fall (closed, watched)."""
    state, events = falls.retract(screened(T0 + S), P, at)
    assert events == [AlertCleared(3, AlertType.FALL, at, ClearReason.NOT_CONFIRMED)]
    return state


def test_an_unconfirmed_fall_followed_by_stillness_is_exactly_one_long_lie() -> None:
    state = unconfirmed()
    state, events = falls.movement(state, P, 4, T0 + 5 * 60 * S)  # a shuffle is not getting up
    assert events == []
    state, events = falls.tick(state, P, T0 + 10 * 60 * S)  # 10 min since the suspicion: not yet
    assert events == []
    state, events = falls.tick(state, P, T0 + S + 10 * 60 * S)
    assert len(events) == 1
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert (raised.type, raised.severity) == (AlertType.LONG_LIE, Severity.CRITICAL)
    assert raised.detail["fall_stage"] == "unconfirmed"
    assert AlertType.FALL not in state.open  # the fall alert stays closed
    for minutes in (11, 20, 60):
        state, events = falls.tick(state, P, T0 + minutes * 60 * S)
        assert events == []
    state, events = falls.movement(state, P, 30, T0 + 61 * 60 * S)  # walking is recorded...
    assert [type(e) for e in events] == [AlertUpdated]
    assert AlertType.LONG_LIE in state.open  # ...and only an operator closes a long lie


def test_walking_im_ok_or_taking_the_band_off_ends_the_watch_silently() -> None:
    walked, events = falls.movement(unconfirmed(), P, 12, T0 + 3 * 60 * S)
    ok, ok_events = falls.im_ok(unconfirmed(), P, T0 + 2 * 60 * S, pressed_at=T0 + 2 * 60 * S)
    off, off_events = falls.off_wrist(unconfirmed(), P, T0 + 60 * S, T0 + 60 * S)
    for state, evs in ((walked, events), (ok, ok_events), (off, off_events)):
        assert (state.episode, state.open, evs) == (None, {}, [])
        assert falls.tick(state, P, T0 + 30 * 60 * S) == (state, [])


def test_the_band_reporting_the_same_impact_shows_the_unconfirmed_fall_again() -> None:
    state = unconfirmed()  # the band's report (impact at T0 + 2 s by its clock) comes late
    state, events = falls.step_event(state, P, ev(EventType.FALL, T0 + 2 * S), T0 + 12 * S)
    assert len(events) == 1
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert raised.type is AlertType.FALL
    assert raised.detail["sources"] == ["band", "screen"]
    state, events = falls.tick(state, P, T0 + S + 45 * S)  # on the original cancel window
    assert [e.detail["stage"] for e in events if isinstance(e, AlertUpdated)] == ["confirmed"]


def test_a_band_reported_fall_the_full_window_does_not_confirm_stays_open() -> None:
    t, acc = impact(back_to_start=True)
    early = t <= 3.3
    state, _ = falls.step_imu(falls.FallsState(), P, _window(acc[early], t[early], T0), MODEL,
                              T0 + 3 * S)  # fmt: skip
    state, _ = band_fall(state, T0 + 4 * S)  # the band's own detector reports it too
    state, events = falls.step_imu(state, P, _window(acc, t, T0), MODEL, T0 + 11 * S)
    assert events == []  # two detectors against one: not retracted
    state, events = falls.tick(state, P, T0 + 48 * S)
    assert [e.detail["stage"] for e in events if isinstance(e, AlertUpdated)] == ["confirmed"]
    state, events = falls.tick(state, P, T0 + 3 * S + 10 * 60 * S)
    assert [(type(e), e.type) for e in events] == [(AlertRaised, AlertType.LONG_LIE)]


def test_walking_after_confirmation_is_recovery_and_later_sleep_is_not_a_long_lie() -> None:
    state, _ = platform_fall(falls.FallsState(), T0)
    state, _ = falls.tick(state, P, T0 + 60 * S)  # confirmed
    state, events = falls.movement(state, P, 6, T0 + 3 * 60 * S)  # getting up...
    assert events == []
    state, events = falls.movement(state, P, 8, T0 + 4 * 60 * S)  # ...and walking back to bed
    assert len(events) == 1
    assert isinstance(events[0], AlertUpdated)
    assert (events[0].severity, events[0].detail["stage"]) == (Severity.HIGH, "recovered")
    state, events = falls.tick(state, P, T0 + 8 * 3600 * S)  # asleep all night
    assert events == []
    assert AlertType.LONG_LIE not in state.open


def test_a_band_report_after_a_recovered_fall_keeps_its_welfare_call_open() -> None:
    """The wearer got up (a welfare call, high); the band reports another fall. Held as a
    band-only report, it closed the open call as cancelled by the wearer (until
    2026-12-04); it is shown at once instead, as a further fall of the episode."""
    state, _ = platform_fall(falls.FallsState(), T0)
    state, _ = falls.tick(state, P, T0 + 60 * S)
    state, _ = falls.movement(state, P, 20, T0 + 4 * 60 * S)  # recovered: high
    state, events = band_fall(state, T0 + 20 * 60 * S)
    assert not [e for e in events if isinstance(e, AlertCleared)]
    (update,) = events
    assert isinstance(update, AlertUpdated)
    assert (update.severity, update.detail["stage"], update.detail["falls"]) == (
        Severity.CRITICAL, "suspected", 2,
    )  # fmt: skip


def test_a_few_steps_do_not_restart_the_long_lie_clock() -> None:
    state, _ = platform_fall(falls.FallsState(), T0)
    state, _ = falls.tick(state, P, T0 + 60 * S)
    state, _ = falls.movement(state, P, 3, T0 + 9 * 60 * S)  # an arm moving on the floor
    state, events = falls.tick(state, P, T0 + 10 * 60 * S)
    assert [(type(e), e.type) for e in events] == [(AlertRaised, AlertType.LONG_LIE)]


@settings(max_examples=80, deadline=None)
@given(
    st.booleans(),
    st.lists(st.tuples(st.integers(1, 1500), st.integers(0, 6)), max_size=25),
    st.one_of(st.none(), st.integers(1, 1500)),
)
def test_a_long_lie_is_raised_once_iff_the_wearer_has_not_walked_by_then(
    retracted: bool, reports: list[tuple[int, int]], ok_after_s: int | None
) -> None:
    """Screened at T0 + 1 s; the full window at + 9 s confirms or not. Telemetry reports
    new steps; "I'm OK" (after the cancel window) may come. A long lie iff fewer than
    ``recovery_steps`` were walked in the ``long_lie_after`` since the suspicion (and,
    for an unconfirmed one, no "I'm OK" came first); raised once, at the first input
    from then on; when none, nothing is left open but a recovered fall."""
    rules = P.falls
    t_susp = T0 + S
    state = screened(t_susp)
    if retracted:
        state, _ = falls.retract(state, P, T0 + 9 * S)
    else:
        state, _ = falls.suspect(state, P, device_id="wb-1", source="platform", impact_at=T0,
                                 score=0.9, now=T0 + 9 * S)  # fmt: skip
    inputs: list[tuple[datetime, str, int]] = [(T0 + (10 + 5 * i) * S, "tick", 0)
                                              for i in range(400)]  # fmt: skip
    inputs += [(T0 + (10 + at) * S + 500_000 * timedelta(microseconds=1), "steps", n)
               for at, n in reports]  # fmt: skip
    if ok_after_s is not None:
        inputs.append((T0 + (50 + ok_after_s) * S + timedelta(microseconds=250_000), "ok", 0))
    inputs.sort()
    walked, walked_at, ok_at = 0, None, None
    for at, kind, n in inputs:
        walked += n if kind == "steps" else 0
        if walked_at is None and walked >= rules.recovery_steps:
            walked_at = at
        if kind == "ok" and ok_at is None:
            ok_at = at
    due = t_susp + rules.long_lie_after
    ended_first = min((x for x in (walked_at, ok_at if retracted else None) if x), default=None)
    expect_lie = ended_first is None or ended_first > due
    raised_at: list[datetime] = []
    for at, kind, n in inputs:
        state, events = falls.tick(state, P, at)  # as the engine does before every input
        out: list[AlertEvent] = list(events)
        if kind == "steps":
            state, events = falls.movement(state, P, n, at)
            out += events
        elif kind == "ok":
            state, events = falls.im_ok(state, P, at, pressed_at=at)
            out += events
        raised_at += [at for e in out if isinstance(e, AlertRaised)
                      and e.type is AlertType.LONG_LIE]  # fmt: skip
    if expect_lie:
        first_after = min(at for at, _, _ in inputs if at >= due)
        assert raised_at == [first_after]
        assert AlertType.LONG_LIE in state.open
    else:
        assert raised_at == []
        if retracted:
            assert (state.episode, state.open) == (None, {})
        else:
            assert state.episode is not None
            assert state.episode.stage is falls.FallStage.RECOVERED
            assert state.open[AlertType.FALL].severity is Severity.HIGH


def test_only_step_reports_after_the_impact_count_towards_getting_up() -> None:
    """The first report after the impact spans it: its steps may have been walked
    before the fall (someone walking when they fell), so it only sets the base."""
    state, _ = platform_fall(falls.FallsState(), T0)
    impact = state.episode.impact_at if state.episode else T0
    late, events = falls.step_report(state, P, 50, impact - 5 * S, T0 + 2 * S)  # before the fall
    assert (late, events) == (state, [])
    state, events = falls.step_report(state, P, 40, impact + 30 * S, T0 + 31 * S)  # spans it
    assert events == []
    assert state.episode is not None
    assert state.episode.steps_since == 0
    assert state.episode.stage is falls.FallStage.SUSPECTED
    state, events = falls.step_report(state, P, 12, impact + 90 * S, T0 + 91 * S)  # walking
    assert state.episode is not None
    assert state.episode.stage is falls.FallStage.RECOVERED
    assert [e.severity for e in events] == [Severity.HIGH]


SAMPLE_G = st.one_of(st.floats(-2.0, 2.0), st.floats(-16.0, 16.0))


@settings(max_examples=150, deadline=None)
@given(st.integers(3, 300).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 400), min_size=n, max_size=n),
    st.lists(st.tuples(SAMPLE_G, SAMPLE_G, SAMPLE_G), min_size=n, max_size=n),
)))  # fmt: skip
def test_any_window_ingest_accepts_is_scored_or_passed_by_never_an_error(
    window: tuple[list[int], list[tuple[float, float, float]]],
) -> None:
    """Bursty, duplicated, gapped or constant samples of any size the protocol takes: the
    detector decides or passes the window by (too short, too flat); it never raises.
    (The same was fuzzed with atheris over the decoder and the CSV reader, ~10 min each.)"""
    steps_ms, samples = window
    at_ms = int(T0.timestamp() * 1000)
    ax, ay, az = zip(*samples, strict=True)
    doc = {"device_id": "wb-1", "seq": 1, "ts": at_ms, "t_ms": list(itertools.accumulate(steps_ms)),
           "ax": ax, "ay": ay, "az": az}  # fmt: skip
    message = decode(device_topic("wb-1", Channel.IMU), json.dumps(doc).encode(),
                     now_ms=at_ms + 60_000, limits=Limits())  # fmt: skip
    if not isinstance(message, ImuWindow):
        return  # dead-lettered by ingest with its reason (tests/integration/test_ingest_bad_input)
    state, events = falls.step_imu(falls.FallsState(), P, message, MODEL, T0 + 60 * S)
    assert all(e.type is AlertType.FALL for e in events)
    assert (state.episode is None) == (events == [])
