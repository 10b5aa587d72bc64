"""A press handed over again after its SOS was closed is not a new SOS.

At-least-once delivery: an engine that recorded a press and stopped before its
batch was acknowledged meets the same press again when it restarts, perhaps
after an operator closed the alert. Until 2026-12-04 closing an SOS forgot the
presses counted, and the redelivered press raised a second critical SOS.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts.detectors import AlertClosed, AlertRaised, AlertType, Profile, ResidentState, step
from alerts.restart import seed_states
from alerts.store import StoredAlert
from eldercare.protocol import DeviceEvent, EventType
from ingest.rows import Accepted

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
P = Profile(resident_id=4)


def press(seq: int, at: datetime) -> Accepted:
    ts = int(at.timestamp() * 1000)
    return Accepted(DeviceEvent(device_id="wb-4", seq=seq, ts=ts, type=EventType.SOS), 4)


def stored_sos(at: datetime) -> StoredAlert:
    """The SOS alert as the store keeps it once an operator closed it."""
    _, (raised,) = step(P, ResidentState(), press(1, T0), now=T0)
    assert isinstance(raised, AlertRaised)
    return StoredAlert(1, 4, "wb-4", "sos", "critical", "resolved", "actionable", T0, at, at,
                       dict(raised.detail), 1)  # fmt: skip


def test_a_press_redelivered_after_its_sos_was_closed_raises_nothing() -> None:
    state, _ = step(P, ResidentState(), press(1, T0), now=T0)
    state, _ = step(P, state, AlertClosed(AlertType.SOS), now=T0 + timedelta(minutes=5))
    later = T0 + timedelta(minutes=6)
    state, events = step(P, state, press(1, T0), now=later)
    assert events == []
    _, events = step(P, state, press(2, later), now=later)  # a new press is a new SOS
    assert [type(e) for e in events] == [AlertRaised]


def test_a_restart_remembers_the_presses_of_the_sos_closed_last() -> None:
    closed = stored_sos(T0 + timedelta(minutes=5))
    states = seed_states([], recently_closed=[closed])
    later = T0 + timedelta(minutes=6)
    state, events = step(P, states[4], press(1, T0), now=later)
    assert events == []
    _, events = step(P, state, press(2, later), now=later)
    assert [type(e) for e in events] == [AlertRaised]
    blank = replace(closed, detail={})  # an SOS stored without its presses: nothing seeded
    assert 4 not in seed_states([], recently_closed=[blank])
