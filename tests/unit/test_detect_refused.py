"""Refused messages in the detectors: ``imu_refused``, the offline cause ``refused``, the
SOS or fall salvaged from a message refused for another field, and ``sos_only``, the SOS
detector alone for a press whose full step failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import AlertClosed, ResidentState, Tick, sos_only, step
from alerts.detectors.types import (
    AlertCleared,
    AlertEvent,
    AlertRaised,
    AlertType,
    AlertUpdated,
    ClearReason,
    DeviceRules,
    Profile,
    Severity,
)
from eldercare.protocol import DeviceEvent, EventType, ImuWindow, RejectReason, Telemetry
from eldercare.topics import Channel
from ingest.rows import Accepted, Refusal

DAY = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
S = timedelta(seconds=1)
P = Profile(resident_id=9, expected_interval_s=60)
NO_GRAVITY = "median |a| is 0.05 g, expected about 1 g (linear acceleration, gravity removed?)"


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def refusal(channel: Channel = Channel.IMU, event: DeviceEvent | None = None) -> Refusal:
    return Refusal("wb-9", 9, channel, RejectReason.INVALID, NO_GRAVITY, event)


def window(at: datetime) -> Accepted:
    w = ImuWindow(device_id="wb-9", seq=0, ts=ms(at), t_ms=[0, 20, 40], ax=[0.0] * 3,
                  ay=[0.0] * 3, az=[1.0] * 3, trigger="motion")  # fmt: skip
    return Accepted(w, 9)


def tele(at: datetime) -> Accepted:
    return Accepted(Telemetry(device_id="wb-9", seq=0, ts=ms(at), hr=70), 9)


def run(items: list[tuple[datetime, object]], profile: Profile = P) -> list[AlertEvent]:
    state, out = ResidentState(), []
    for now, item in items:
        state, events = step(profile, state, item, now=now)  # type: ignore[arg-type]
        out.extend(events)
    return out


def kinds(events: list[AlertEvent]) -> list[tuple[str, AlertType]]:
    return [(type(e).__name__, e.type) for e in events]


def test_two_refused_windows_in_a_row_raise_imu_refused_and_an_accepted_one_clears_it() -> None:
    assert run([(DAY, tele(DAY)), (DAY + S, refusal())]) == []  # one may be a one-off
    items: list[tuple[datetime, object]] = [
        (DAY, tele(DAY)), (DAY + S, refusal()), (DAY + 2 * S, tele(DAY + 2 * S)),
        (DAY + 3 * S, refusal()), (DAY + 4 * S, refusal()),
    ]  # fmt: skip
    events = run(items)
    assert kinds(events) == [("AlertRaised", AlertType.IMU_REFUSED)]
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert (raised.severity, raised.device_id, raised.at) == (Severity.MEDIUM, "wb-9", DAY + 3 * S)
    assert raised.detail == {
        "cause": "imu_refused", "response": "band_configuration", "windows_refused": 2,
        "refused_channel": "imu", "refused_reason": "invalid", "refused_detail": NO_GRAVITY,
        "devices": ["wb-9"],
    }  # fmt: skip
    events = run([*items, (DAY + 5 * S, window(DAY + 5 * S))])
    assert events[-1] == AlertCleared(9, AlertType.IMU_REFUSED, DAY + 5 * S,
                                      ClearReason.DATA_ACCEPTED)  # fmt: skip


def test_a_band_whose_readings_are_all_refused_goes_offline_with_the_reason() -> None:
    later = DAY + 10 * timedelta(minutes=1)
    items: list[tuple[datetime, object]] = [(DAY, tele(DAY))]
    items += [(DAY + i * timedelta(minutes=1), refusal(Channel.TELEMETRY)) for i in range(1, 10)]
    events = run([*items, (later, Tick(later))])
    assert kinds(events) == [("AlertRaised", AlertType.DEVICE_OFFLINE)]
    detail = events[0].detail  # type: ignore[union-attr]
    assert detail["cause"] == "refused"
    assert detail["last_seen"] == "2025-03-01T02:00:00Z"  # the last usable reading
    assert (detail["refused_channel"], detail["refused_detail"]) == ("telemetry", NO_GRAVITY)
    assert "windows_refused" not in detail  # not a movement window: no imu_refused
    events = run([*items, (later, Tick(later)), (later + S, tele(later + S))])
    assert events[-1] == AlertCleared(9, AlertType.DEVICE_OFFLINE, later + S,
                                      ClearReason.DEVICE_BACK_ONLINE)  # fmt: skip


def test_a_band_silent_after_a_usable_reading_is_silent_not_refused() -> None:
    later = DAY + 10 * timedelta(minutes=1)
    events = run([(DAY, refusal(Channel.TELEMETRY)), (DAY + S, tele(DAY + S)),
                  (later, Tick(later))])  # fmt: skip
    assert kinds(events) == [("AlertRaised", AlertType.DEVICE_OFFLINE)]
    assert events[0].detail["cause"] == "silent"  # type: ignore[union-attr]
    assert "refused_detail" not in events[0].detail  # type: ignore[union-attr]


def test_an_sos_salvaged_from_a_refused_message_is_raised_at_once() -> None:
    press = DeviceEvent(device_id="wb-9", seq=4, ts=ms(DAY), type=EventType.SOS)
    events = run([(DAY + S, refusal(Channel.EVENTS, press))])
    assert kinds(events) == [("AlertRaised", AlertType.SOS)]
    assert events[0].severity is Severity.CRITICAL  # type: ignore[union-attr]
    # the same press again (the broker redelivering it) is not a second press
    events = run([(DAY + S, refusal(Channel.EVENTS, press)),
                  (DAY + 2 * S, refusal(Channel.EVENTS, press))])  # fmt: skip
    assert kinds(events) == [("AlertRaised", AlertType.SOS)]


def test_a_band_fall_salvaged_from_a_refused_message_is_held_like_any_band_report() -> None:
    fall = DeviceEvent(device_id="wb-9", seq=1, ts=ms(DAY), type=EventType.FALL)
    held = run([(DAY, refusal(Channel.EVENTS, fall)), (DAY + 10 * S, Tick(DAY + 10 * S))])
    assert held == []  # a band's own report waits for confirmation (docs/alerts.md)
    later = DAY + 31 * S
    events = run([(DAY, refusal(Channel.EVENTS, fall)), (later, Tick(later))])
    assert kinds(events) == [("AlertRaised", AlertType.FALL)]


def test_sos_only_raises_a_press_and_records_im_ok_and_leaves_anything_else() -> None:
    press = DeviceEvent(device_id="wb-9", seq=4, ts=ms(DAY), type=EventType.SOS)
    state, events = sos_only(P, ResidentState(), Accepted(press, 9), DAY)
    assert kinds(events) == [("AlertRaised", AlertType.SOS)]
    ok = DeviceEvent(device_id="wb-9", seq=5, ts=ms(DAY + S), type=EventType.IM_OK)
    state, events = sos_only(P, state, Accepted(ok, 9), DAY + S)
    assert kinds(events) == [("AlertUpdated", AlertType.SOS)]
    assert events[0].detail["wearer_says_ok"] is True  # type: ignore[union-attr]
    salvaged = DeviceEvent(device_id="wb-9", seq=6, ts=ms(DAY), type=EventType.SOS)
    _, events = sos_only(P, ResidentState(), refusal(Channel.EVENTS, salvaged), DAY)
    assert kinds(events) == [("AlertRaised", AlertType.SOS)]
    fall = DeviceEvent(device_id="wb-9", seq=7, ts=ms(DAY), type=EventType.FALL)
    for item in (Accepted(fall, 9), tele(DAY), window(DAY), refusal()):
        assert sos_only(P, state, item, DAY) == (state, [])


def test_the_threshold_is_a_rule_of_its_own() -> None:
    once = Profile(resident_id=9, devices=DeviceRules(imu_refused_after=1))
    assert kinds(run([(DAY, refusal())], once)) == [("AlertRaised", AlertType.IMU_REFUSED)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["refused", "window", "telemetry", "close"]), max_size=30))
def test_imu_refused_is_open_iff_the_last_two_windows_were_refused(script: list[str]) -> None:
    """Open (for the operator) iff the band's latest ``imu_refused_after`` windows were
    refused and it has not been closed by an operator during that run."""
    state, now, shown, run_length, muted = ResidentState(), DAY, False, 0, False
    for kind in script:
        now += S  # well inside the band's interval: never offline
        if kind == "close":
            item: object = AlertClosed(AlertType.IMU_REFUSED)
            muted = muted or shown or run_length >= 2
            shown = False
        elif kind == "refused":
            item, run_length = refusal(), run_length + 1
        elif kind == "window":
            item, run_length, muted = window(now), 0, False
        else:
            item = tele(now)
        state, events = step(P, state, item, now=now)  # type: ignore[arg-type]
        for e in events:
            assert e.type is AlertType.IMU_REFUSED
            if isinstance(e, AlertRaised):
                assert not shown
                shown = True
            elif isinstance(e, AlertCleared):
                shown = False
            else:
                assert isinstance(e, AlertUpdated)
                assert shown
        assert shown == (run_length >= 2 and not muted)
