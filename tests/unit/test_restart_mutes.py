"""A condition an operator closed stays muted across a restart, for a while.

The states are rebuilt as :func:`alerts.evidence.restore_states` does at the end of a
restart (:func:`alerts.restart_mutes.with_restored_mutes` over the stored rows), then
the detectors run on: the same condition raises nothing, a worse one does, and a
restored mute the detector has not raised again by its deadline is lifted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import (
    AlertEvent,
    AlertRaised,
    AlertType,
    Profile,
    ResidentState,
    Severity,
    Tick,
    step,
)
from alerts.restart_mutes import RESTORED_MUTE_FOR, ClosedAlert, restored_mutes, with_restored_mutes
from alerts.store import StoredAlert
from eldercare.protocol import Telemetry
from ingest.rows import Accepted

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai: waking hours
M = timedelta(minutes=1)
P = Profile(resident_id=9)
HR = AlertType.VITAL_HR_HIGH


def reading(at: datetime, hr: int) -> Accepted:
    return Accepted(Telemetry(device_id="wb-9", seq=0, ts=int(at.timestamp() * 1000), hr=hr,
                              worn=True), 9)  # fmt: skip


def alert(alert_id: int, *, opened: datetime, closed_by: str | None = "operator:7",
          alert_type: str = HR, severity: str = "medium",
          **detail: Any) -> StoredAlert:  # fmt: skip
    """A stored alert of resident 9: closed 10 min after it opened by ``closed_by``, or
    open (``closed_by=None``)."""
    row = StoredAlert(alert_id, 9, "wb-9", alert_type, severity, "open", None, opened,
                      opened, None, detail, 1)  # fmt: skip
    if closed_by is None:
        return row
    at = opened + 10 * M
    closing = "auto_cleared" if closed_by == "engine" else "resolved"
    return ClosedAlert(alert_id, 9, "wb-9", alert_type, severity, closing, None, opened, at,
                       at, detail, 1, closed_by=closed_by)  # fmt: skip


def restarted(*rows: StoredAlert, now: datetime = T0) -> ResidentState:
    closed = [a for a in rows if isinstance(a, ClosedAlert)]
    stored = [a for a in rows if not isinstance(a, ClosedAlert)]
    return with_restored_mutes({}, closed, stored, now=now).get(9, ResidentState())


def run(state: ResidentState, start: datetime, hr: int, minutes: int,
        every: int = 1) -> tuple[ResidentState, list[AlertEvent]]:  # fmt: skip
    out: list[AlertEvent] = []
    for i in range(0, minutes, every):
        at = start + i * M
        state, events = step(P, state, reading(at, hr), now=at)
        out += events
    return state, out


def raised(events: list[AlertEvent]) -> list[tuple[AlertType, Severity]]:
    return [(e.type, e.severity) for e in events if isinstance(e, AlertRaised)]


CLOSED = alert(1, opened=T0 - 3 * 60 * M)  # medium, closed by an operator 2 h 50 min ago


def test_a_restored_mute_drops_the_same_condition_raised_again() -> None:
    state = restarted(CLOSED)
    assert state.muted == {HR: Severity.MEDIUM}
    assert state.mute_until == {HR: T0 + RESTORED_MUTE_FOR}
    state, events = run(state, T0, 118, 20)  # medium again, as the operator saw it
    assert events == []
    assert HR in state.vitals.open  # held open from now on: an ordinary mute
    assert state.muted == {HR: Severity.MEDIUM}
    assert state.mute_until == {}


def test_a_condition_worse_than_it_was_closed_at_is_raised_after_a_restart() -> None:
    state, events = run(restarted(CLOSED), T0, 150, 20)
    assert raised(events) == [(HR, Severity.HIGH)]
    assert state.muted == {}
    assert state.mute_until == {}


def test_a_restored_mute_not_raised_again_by_its_deadline_is_lifted() -> None:
    state = restarted(CLOSED)
    state, events = step(P, state, Tick(T0 + RESTORED_MUTE_FOR - M), now=T0 + RESTORED_MUTE_FOR - M)
    assert events == []
    assert state.muted == {HR: Severity.MEDIUM}  # not yet
    deadline = T0 + RESTORED_MUTE_FOR
    state, _ = step(P, state, Tick(deadline), now=deadline)
    assert state.muted == {}
    assert state.mute_until == {}
    state, events = run(state, deadline + M, 118, 20)  # a new episode, at the same severity
    assert raised(events) == [(HR, Severity.MEDIUM)]


def test_a_condition_raised_again_before_the_deadline_stays_muted_until_it_clears() -> None:
    state, events = run(restarted(CLOSED), T0 + 30 * M, 118, 4 * 60, every=5)  # past it
    assert events == []
    assert state.muted == {HR: Severity.MEDIUM}
    state, events = run(state, T0 + 5 * 60 * M, 70, 30, every=5)  # the detector clears it
    assert events == []  # the clear of a muted alert is swallowed, as in a running engine
    assert state.muted == {}
    state, events = run(state, T0 + 6 * 60 * M, 118, 20)
    assert raised(events) == [(HR, Severity.MEDIUM)]


@settings(max_examples=60, deadline=None)
@given(start=st.integers(min_value=0, max_value=4 * 60))
def test_a_restored_mute_holds_iff_the_detector_raises_the_type_before_the_deadline(
    start: int,
) -> None:
    """Readings of 118/min every minute from ``start`` minutes after the restart: the
    detector raises at the 6th (3 readings over 5 min), which is shown iff that comes at
    or after the deadline."""
    _, events = run(restarted(CLOSED), T0 + start * M, 118, 20)
    shown = T0 + (start + 5) * M >= T0 + RESTORED_MUTE_FOR
    assert raised(events) == ([(HR, Severity.MEDIUM)] if shown else [])


def test_only_a_condition_people_closed_while_it_held_is_muted_again() -> None:
    old = T0 - 5 * 60 * M
    assert restored_mutes([alert(1, opened=old)], []) == {9: {HR: Severity.MEDIUM}}
    # a worker whose completed order resolved it: the running engine mutes that close
    # too (any close it did not make); until 2026-12-04 a restart did not restore it
    by_worker = alert(1, opened=old, closed_by="worker:W1")
    assert restored_mutes([by_worker], []) == {9: {HR: Severity.MEDIUM}}
    # the engine closed it, or had cleared it before the operator closed it (dispatched)
    assert restored_mutes([alert(1, opened=old, closed_by="engine")], []) == {}
    cleared = {"reason": "resolved", "at": old.isoformat()}
    assert restored_mutes([alert(1, opened=old, detector_cleared=cleared)], []) == {}
    # a later alert of the same type, closed by the engine or still open
    later = alert(2, opened=old + 60 * M, closed_by="engine")
    assert restored_mutes([alert(1, opened=old), later], []) == {}
    assert restored_mutes([alert(1, opened=old)], [alert(2, opened=old + 60 * M,
                                                         closed_by=None)]) == {}  # fmt: skip
    # an episode, not a condition: closing it ends it (alerts.detectors.engine._close)
    for episode in ("sos", "fall", "long_lie", "night_activity"):
        assert restored_mutes([alert(1, opened=old, alert_type=episode)], []) == {}
    # another type of the resident is its own
    battery = alert(3, opened=old + 60 * M, alert_type=AlertType.BATTERY_LOW, severity="low")
    assert restored_mutes([alert(1, opened=old), battery], []) == {
        9: {HR: Severity.MEDIUM, AlertType.BATTERY_LOW: Severity.LOW}
    }


def test_a_type_a_detector_already_holds_at_the_restart_is_muted_without_a_deadline() -> None:
    """A geofence exit is replayed from the stored fixes before the mutes are restored: one
    held open again is ended by its clear, as in a running engine."""
    state, _ = run(ResidentState(), T0, 118, 10)
    assert HR in state.vitals.open
    held = with_restored_mutes({9: state}, [CLOSED], [], now=T0)[9]
    assert held.muted == {HR: Severity.MEDIUM}
    assert held.mute_until == {}
