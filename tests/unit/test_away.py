"""A resident away from home: the home-routine and band-upkeep alerts are held back while
the absence lasts and raised when it ends if they still hold; SOS, falls and vital signs
are raised as always (alerts/detectors/away.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import Tick, step
from alerts.detectors.away import QUIET_WHILE_AWAY, hold_while_away
from alerts.detectors.types import (
    AlertCleared,
    AlertEvent,
    AlertRaised,
    AlertType,
    AlertUpdated,
    Away,
    ClearReason,
    Profile,
    Severity,
)
from eldercare.protocol import EventType
from tests.unit.test_detect_engine import DAY, HOME, M, event, run, tele, types_of

H = timedelta(hours=1)
STAY = Away(DAY - H, DAY + 201 * M)  # in hospital, due back 201 minutes after DAY
ALONE = Profile(resident_id=9, lives_alone=True, safe_zones=(HOME,), expected_interval_s=60)
AWAY = Profile(resident_id=9, lives_alone=True, safe_zones=(HOME,), expected_interval_s=60,
               away=STAY)  # fmt: skip


def still_band(start: datetime, minutes: int, **kw: object) -> list[tuple[datetime, object]]:
    """A band on a bedside table: a reading a minute, no new steps."""
    return [
        (start + i * M, tele(start + i * M, steps=500, worn=True, **kw)) for i in range(minutes)
    ]


def test_while_away_a_still_band_and_a_flat_battery_raise_nothing_but_an_sos_does() -> None:
    items = still_band(DAY, 200, battery_pct=12)
    _, events = run(ALONE, items)  # at home, the same readings
    assert {AlertType.INACTIVITY, AlertType.BATTERY_LOW} <= {e.type for e in events}
    state, events = run(AWAY, items)
    assert events == []
    assert set(state.away_held) == {AlertType.INACTIVITY, AlertType.BATTERY_LOW}
    press = DAY + 199 * M + timedelta(seconds=30)
    state, events = step(AWAY, state, event(press, EventType.SOS), now=press)
    assert types_of(events) == [("AlertRaised", AlertType.SOS)]


def test_what_still_holds_when_they_are_due_back_is_raised_then_once() -> None:
    state, _ = run(AWAY, still_band(DAY, 200, battery_pct=12))
    due = STAY.ends_at + M
    state, events = step(AWAY, state, Tick(due), now=due)
    raised = [e for e in events if isinstance(e, AlertRaised)]
    assert {e.type for e in raised} == {AlertType.INACTIVITY, AlertType.BATTERY_LOW}
    assert all(e.at == due and "held_while_away_since" in e.detail for e in raised)
    assert state.away_held == {}
    later = due + M
    state, events = step(AWAY, state, tele(later, steps=500, worn=True, battery_pct=12), now=later)
    assert not [e for e in events if isinstance(e, AlertRaised)]  # raised once, held open


def test_ended_early_the_held_alerts_are_raised_at_the_next_step() -> None:
    state, _ = run(AWAY, still_band(DAY, 200))
    back = DAY + 200 * M  # the centre ended the absence: the profile has none
    state, events = step(ALONE, state, Tick(back), now=back)
    assert types_of(events) == [("AlertRaised", AlertType.INACTIVITY)]


def test_a_held_alert_that_clears_while_away_is_never_shown() -> None:
    items = still_band(DAY, 5, battery_pct=12)
    items.append((DAY + 6 * M, tele(DAY + 6 * M, steps=500, worn=True, battery_pct=25)))
    state, events = run(AWAY, items)
    assert events == []
    assert state.away_held == {}
    due = STAY.ends_at + M
    shown = step(AWAY, state, Tick(due), now=due)[1]  # the band silent since: offline, now
    assert AlertType.BATTERY_LOW not in {e.type for e in shown}


def test_an_alert_open_before_the_absence_goes_on_being_the_centres() -> None:
    state, events = run(ALONE, [(DAY - 2 * H, tele(DAY - 2 * H, battery_pct=12))])
    assert types_of(events) == [("AlertRaised", AlertType.BATTERY_LOW)]
    at = DAY + M
    state, events = step(AWAY, state, tele(at, battery_pct=25), now=at)
    assert types_of(events) == [("AlertCleared", AlertType.BATTERY_LOW)]


def test_the_closed_elsewhere_check_leaves_held_alerts_alone() -> None:
    from alerts.engine_states import ResidentStates

    state, _ = run(AWAY, still_band(DAY, 200))
    book = ResidentStates()
    book.keep(9, state)
    assert list(book.closed_elsewhere(set())) == []  # not in the database: not closed there


# -- the rule alone, on any stream a detector can make --------------------------------

TYPES = [AlertType.INACTIVITY, AlertType.DEVICE_OFFLINE, AlertType.SOS, AlertType.VITAL_HR_HIGH]
SEVERITIES = [Severity.LOW, Severity.HIGH]


def _detector_stream(
    script: list[tuple[int, int, int]], start: datetime
) -> list[tuple[datetime, AlertEvent]]:
    """Events one detector could emit (one open alert per type), a minute apart."""
    out: list[tuple[datetime, AlertEvent]] = []
    open_now: set[AlertType] = set()
    for i, (kind, t, sev) in enumerate(script):
        at, alert_type, severity = start + i * M, TYPES[t], SEVERITIES[sev]
        if alert_type not in open_now:
            out.append((at, AlertRaised(9, "wb-9", alert_type, severity, at, {})))
            open_now.add(alert_type)
        elif kind == 0:
            out.append((at, AlertCleared(9, alert_type, at, ClearReason.RESOLVED)))
            open_now.discard(alert_type)
        else:
            out.append((at, AlertUpdated(9, "wb-9", alert_type, severity, at, {"n": i})))
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 3), st.integers(0, 1)), max_size=40),
    st.integers(0, 40),
    st.integers(1, 40),
)
def test_published_alerts_follow_the_detector_with_quiet_types_delayed_to_the_return(
    script: list[tuple[int, int, int]], begins: int, lasts: int
) -> None:
    start = datetime(2025, 3, 1, tzinfo=DAY.tzinfo)
    away = Away(start + begins * M, start + (begins + lasts) * M)
    stream = _detector_stream(script, start)
    held: dict[AlertType, AlertRaised] = {}
    published: list[tuple[datetime, AlertEvent]] = []
    detector_open: set[AlertType] = set()
    times = [at for at, _ in stream] + [start + (len(script) + lasts + begins + 1) * M]
    for at in times:  # each detector event, then one last step after everything
        here = [e for t, e in stream if t == at]
        for e in here:
            if isinstance(e, AlertRaised):
                detector_open.add(e.type)
            elif isinstance(e, AlertCleared):
                detector_open.discard(e.type)
        new_held, out = hold_while_away(away, held, here, at)
        held = dict(new_held)
        published += [(at, e) for e in out]
    shown: set[AlertType] = set()
    for at, e in published:  # one open alert per type, as published
        if isinstance(e, AlertRaised):
            assert e.type not in shown
            shown.add(e.type)
        else:
            assert e.type in shown
            if isinstance(e, AlertCleared):
                shown.discard(e.type)
        if e.type in QUIET_WHILE_AWAY and isinstance(e, AlertRaised):
            assert not away.covers(at)  # never raised while they are away
    assert shown == detector_open  # in the end, exactly what the detector holds open
    assert held == {}
