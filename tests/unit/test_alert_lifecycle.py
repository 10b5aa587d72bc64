"""The stored alert's transition table, engine clears, and seeding detectors after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.detectors import AlertRaised, AlertType, AlertUpdated, Profile, ResidentState, step
from alerts.detectors.types import ClearReason
from alerts.engine_states import pending
from alerts.lifecycle import (
    CLOSED,
    TRANSITIONS,
    Action,
    AlertState,
    Closing,
    EscalationPolicy,
    InvalidTransition,
    Outcome,
    Unacknowledged,
    due_escalations,
    engine_clear,
    next_state,
    outcome_for,
)
from alerts.profiles import ResidentRow, profile_from_row
from alerts.restart import seed_states
from alerts.store import StoredAlert
from eldercare.protocol import DeviceEvent, EventType
from ingest.rows import Accepted

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


def test_the_operator_path_acknowledge_dispatch_resolve() -> None:
    state = AlertState.OPEN
    for action, expected in (
        (Action.ACKNOWLEDGE, AlertState.ACKNOWLEDGED),
        (Action.DISPATCH, AlertState.DISPATCHED),
        (Action.RESOLVE, AlertState.RESOLVED),
    ):
        state = next_state(state, action)
        assert state is expected
    assert state.closed


@given(st.sampled_from(AlertState), st.sampled_from(Action))
def test_a_transition_is_allowed_iff_it_is_in_the_table(state: AlertState, action: Action) -> None:
    if (state, action) in TRANSITIONS:
        assert next_state(state, action) is TRANSITIONS[state, action]
    else:
        with pytest.raises(InvalidTransition) as info:
            next_state(state, action, alert_id=7)
        assert info.value.current is state
        assert "alert 7" in str(info.value)


@given(st.sampled_from(sorted(CLOSED)), st.sampled_from(Action))
def test_a_closed_alert_never_changes(state: AlertState, action: Action) -> None:
    with pytest.raises(InvalidTransition, match="nothing \\(closed\\)"):
        next_state(state, action)


def test_resolving_a_resolved_alert_is_refused_with_a_clear_message() -> None:
    with pytest.raises(InvalidTransition, match="cannot resolve alert 3 in state resolved"):
        next_state(AlertState.RESOLVED, Action.RESOLVE, alert_id=3)


def test_engine_clears() -> None:
    assert engine_clear(AlertState.OPEN, ClearReason.RESOLVED) == Closing(
        AlertState.AUTO_CLEARED, None
    )
    assert engine_clear(AlertState.ACKNOWLEDGED, ClearReason.CANCELLED_BY_WEARER) == Closing(
        AlertState.FALSE_ALARM, Outcome.FALSE
    )
    assert engine_clear(AlertState.DISPATCHED, ClearReason.RESOLVED) is None  # someone is going
    assert engine_clear(AlertState.AUTO_CLEARED, ClearReason.RESOLVED) is None


def test_outcomes() -> None:
    assert outcome_for(Action.RESOLVE, Outcome.TECHNICAL) is Outcome.TECHNICAL
    assert outcome_for(Action.FALSE_ALARM, None) is Outcome.FALSE
    assert outcome_for(Action.ACKNOWLEDGE, None) is None
    with pytest.raises(ValueError, match="needs an outcome"):
        outcome_for(Action.RESOLVE, None)
    with pytest.raises(ValueError, match="takes no outcome"):
        outcome_for(Action.DISPATCH, Outcome.ACTIONABLE)
    with pytest.raises(ValueError, match="'false'"):
        outcome_for(Action.FALSE_ALARM, Outcome.ACTIONABLE)


def stored(alert_type: AlertType, detail: dict[str, object], **kw: object) -> StoredAlert:
    values: dict[str, object] = {
        "id": 1, "resident_id": 5, "device_id": "wb-5", "type": alert_type.value,
        "severity": "critical", "state": "open", "outcome": None, "opened_at": T0,
        "updated_at": T0, "closed_at": None, "detail": detail, "repeat_count": 1,
    }  # fmt: skip
    values.update(kw)
    return StoredAlert(**values)  # type: ignore[arg-type]


def press(kind: EventType, at: datetime) -> Accepted:
    msg = DeviceEvent(device_id="wb-5", seq=9, ts=int(at.timestamp() * 1000), type=kind)
    return Accepted(msg, 5)


def test_a_seeded_open_sos_is_updated_by_the_next_press_not_raised_again() -> None:
    alert = stored(AlertType.SOS, {"presses": 2, "first_pressed_at": "2025-03-01T02:00:00Z"})
    state = seed_states([alert])[5]
    assert state.holds_open()
    assert not pending(state)  # no timer: ticked with everyone, every 30 s
    _, events = step(Profile(5), state, press(EventType.SOS, T0 + timedelta(minutes=1)),
                     now=T0 + timedelta(minutes=1))  # fmt: skip
    assert [type(e) for e in events] == [AlertUpdated]
    assert events[0].detail["presses"] == 3  # type: ignore[union-attr]


def test_a_seeded_sos_knows_the_presses_it_counted_and_the_latest() -> None:
    # the engine recorded two presses, then stopped before its batch was acked: the
    # restarted engine gets the same presses again, and an "I'm OK" from between them
    def at_s(s: int, seq: int, kind: EventType = EventType.SOS) -> Accepted:
        when = T0 + timedelta(seconds=s)
        msg = DeviceEvent(device_id="wb-5", seq=seq, ts=int(when.timestamp() * 1000), type=kind)
        return Accepted(msg, 5)

    state, events = step(Profile(5), ResidentState(), at_s(0, 1), now=T0)
    state, more = step(Profile(5), state, at_s(20, 3), now=T0 + timedelta(seconds=20))
    detail = [*events, *more][-1].detail  # type: ignore[union-attr]
    seeded = seed_states([stored(AlertType.SOS, detail)])[5]
    later = T0 + timedelta(minutes=2)
    for again in (at_s(0, 1), at_s(20, 3), at_s(10, 2, EventType.IM_OK)):
        # before: each redelivered press counted again ("presses: 3", "4"), and the
        # "I'm OK" pressed before the latest press marked the SOS as answered
        _, events = step(Profile(5), seeded, again, now=later)
        assert events == [], again
    _, events = step(Profile(5), seeded, at_s(30, 4), now=later)
    assert events[0].detail["presses"] == 3  # type: ignore[union-attr]


def test_a_seeded_sos_takes_only_well_formed_presses() -> None:
    junk: list[object] = ["x", ["d", 1], [1, 2, 3], ["d", True, 5], ["d", 1, 2.5], ["d", 1, 2]]
    for seen, counted in (("junk", ()), (None, ()), (junk, (("d", 1, 2),))):
        detail = {"presses": 1, "presses_seen": seen, "last_pressed_at": "not a time"}
        state = seed_states([stored(AlertType.SOS, detail)])[5].sos
        assert state.counted == counted
        assert state.last_pressed_at is None
    old = seed_states([stored(AlertType.SOS, {"presses": 2})])[5].sos  # recorded before
    assert (old.counted, old.last_pressed_at, old.presses) == ((), None, 2)


def test_a_seeded_suspected_fall_keeps_its_cancel_window() -> None:
    detail = {"stage": "suspected", "sources": ["band"], "impact_at": "2025-03-01T02:00:00Z",
              "falls": 1, "steps_since": 0, "wearer_says_ok": False, "score": None}  # fmt: skip
    state = seed_states([stored(AlertType.FALL, detail)])[5]
    assert pending(state)  # its timers are ticked every second
    at = T0 + timedelta(seconds=20)
    _, events = step(Profile(5), state, press(EventType.IM_OK, at), now=at)
    assert [(type(e).__name__, e.type) for e in events] == [("AlertCleared", AlertType.FALL)]
    late = T0 + timedelta(seconds=50)  # after the window: confirmed instead
    _, events = step(Profile(5), state, press(EventType.FALL, late), now=late)
    assert not any(isinstance(e, AlertRaised) for e in events)


def test_no_open_alerts_seed_nothing() -> None:
    assert seed_states([]) == {}
    assert not pending(ResidentState())


def test_profile_from_a_registry_row() -> None:
    row = ResidentRow(5, ["dementia"], True, 32.38, 120.56, 30)
    p = profile_from_row(row)
    assert p.dementia
    assert p.lives_alone
    assert p.expected_interval_s == 30
    assert p.safe_zones[0].radius_m == 150.0
    bare = profile_from_row(ResidentRow(6, [], False, None, None, None))
    assert bare.safe_zones == ()
    assert bare.expected_interval_s == 60


def unacked(
    level: int = 0, state: AlertState = AlertState.OPEN, severity: str = "critical"
) -> Unacknowledged:
    return Unacknowledged(1, severity, state, T0, level)


def test_unacknowledged_critical_alerts_escalate_step_by_step() -> None:
    policy = EscalationPolicy()
    assert due_escalations([unacked()], now=T0 + timedelta(minutes=1), policy=policy) == []
    (first,) = due_escalations([unacked()], now=T0 + timedelta(minutes=2), policy=policy)
    assert (first.level, first.target) == (1, "supervisor")
    assert due_escalations([unacked(1)], now=T0 + timedelta(minutes=3), policy=policy) == []
    (second,) = due_escalations([unacked(1)], now=T0 + timedelta(minutes=6), policy=policy)
    assert (second.level, second.target) == (2, "family_contact")
    assert due_escalations([unacked(2)], now=T0 + timedelta(hours=1), policy=policy) == []


def test_acknowledged_or_non_critical_alerts_do_not_escalate() -> None:
    later = T0 + timedelta(hours=1)
    policy = EscalationPolicy()
    assert due_escalations([unacked(state=AlertState.ACKNOWLEDGED)], now=later, policy=policy) == []
    assert due_escalations([unacked(severity="medium")], now=later, policy=policy) == []


def test_escalation_delays_must_increase() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        EscalationPolicy(steps=(("a", timedelta(minutes=5)), ("b", timedelta(minutes=2))))
