"""The detectors' shortcuts for the common case decide exactly what the full rule
decides: device health and inactivity, over random message sequences."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import device_health, engine, inactivity
from alerts.detectors.types import AlertEvent, AlertType, Profile, SafeZone
from eldercare.protocol import (
    DeviceEvent,
    EventType,
    Location,
    LocationSource,
    StatusReport,
    Telemetry,
)
from ingest.rows import Accepted

T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)  # 08:00 in Asia/Shanghai

telemetry = st.builds(
    lambda dev, pct, worn: ("t", dev, pct, worn),
    st.sampled_from(["wb-1", "wb-2"]),
    st.one_of(st.none(), st.integers(0, 100)),
    st.one_of(st.none(), st.booleans()),
)
other = st.builds(
    lambda dev, kind: ("e", dev, kind, None),
    st.sampled_from(["wb-1", "wb-2"]),
    st.sampled_from(["charging_start", "charging_stop", "removed", "worn", "offline"]),
)
steps = st.lists(
    st.tuples(st.integers(1, 3 * 3600), st.one_of(telemetry, other)), min_size=1, max_size=40
)


def message(
    item: tuple[str, str, object, object], at: datetime
) -> Telemetry | DeviceEvent | StatusReport:
    kind, dev, a, b = item
    ts = int(at.timestamp() * 1000)
    if kind == "t":
        return Telemetry(device_id=dev, seq=0, ts=ts, battery_pct=a, worn=b)  # type: ignore[arg-type]
    if a == "offline":
        return StatusReport(device_id=dev, state="offline")
    return DeviceEvent(device_id=dev, seq=0, ts=ts, type=EventType(str(a)))


def full_device_step(
    state: device_health.DeviceHealthState, profile: Profile, msg: object, now: datetime
) -> tuple[device_health.DeviceHealthState, list[AlertEvent]]:
    track = device_health.observe(state.devices.get(msg.device_id), msg, profile, now)  # type: ignore[arg-type, attr-defined]
    state = device_health.DeviceHealthState({**state.devices, msg.device_id: track}, state.open)  # type: ignore[attr-defined]
    return device_health.evaluate(state, profile, now)


@settings(max_examples=300, deadline=None)
@given(seq=steps)
def test_device_health_shortcut_equals_the_full_rule(
    seq: list[tuple[int, tuple[str, str, object, object]]],
) -> None:
    profile = Profile(resident_id=1)
    fast = full = device_health.DeviceHealthState()
    now = T0
    for gap, item in seq:
        now += timedelta(seconds=gap)
        msg = message(item, now)
        fast, got = device_health.step(fast, profile, msg, now)
        full, want = full_device_step(full, profile, msg, now)
        assert (fast, got) == (full, want)


@settings(max_examples=300, deadline=None)
@given(
    seq=st.lists(st.tuples(st.integers(1, 3 * 3600), st.booleans(), st.booleans()), max_size=40),
    threshold_h=st.one_of(st.none(), st.integers(1, 6)),
)
def test_inactivity_shortcut_equals_the_full_rule(
    seq: list[tuple[int, bool, bool]], threshold_h: int | None
) -> None:
    profile = replace(
        Profile(resident_id=1, lives_alone=True),
        inactivity_after=None if threshold_h is None else timedelta(hours=threshold_h),
    )
    fast = full = inactivity.InactivityState()
    now = T0
    for gap, moved, usable in seq:
        now += timedelta(seconds=gap)
        fast, got = inactivity.step(fast, profile, moved=moved, usable=usable, now=now)
        if moved or full.last_movement_at is None:
            full = inactivity.InactivityState(now, full.open)
        full, want = inactivity._evaluate(full, profile, now, usable=usable)
        assert (fast, got) == (full, want)


def test_a_tick_that_changes_nothing_keeps_the_very_state() -> None:
    """The full tick visits every resident every 30 s: a new state each time was 80 % of
    its cost (bench/tick.py). Nothing due: the same object; something due: a new one."""
    zone = SafeZone(31.2, 121.4, 150.0)
    profile = Profile(resident_id=1, safe_zones=(zone,))
    ts = int(T0.timestamp() * 1000)
    home = Location(31.2, 121.4, 10.0, LocationSource.GPS)
    seen = Telemetry(device_id="wb-1", seq=1, ts=ts, hr=70, steps=10, worn=True, loc=home)
    state, _ = engine.step(profile, engine.ResidentState(), Accepted(seen, 1), now=T0)
    later = T0 + timedelta(minutes=2)
    ticked, events = engine.step(profile, state, engine.Tick(later), now=later)
    assert ticked is state
    assert events == []
    silent = T0 + timedelta(hours=1)  # past the band's expected interval: offline
    ticked, events = engine.step(profile, state, engine.Tick(silent), now=silent)
    assert ticked is not state
    assert [e.type for e in events] == [AlertType.DEVICE_OFFLINE]
    assert ticked.devices.open.keys() == {AlertType.DEVICE_OFFLINE}
