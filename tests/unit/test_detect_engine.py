"""Device health, inactivity, geofence, baseline, and the engine's one-open-alert rule."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import AlertClosed, ResidentState, Tick, compute_baseline, step
from alerts.detectors.geofence import GeofenceState, haversine_m
from alerts.detectors.inactivity import learn_threshold
from alerts.detectors.localtime import local_time, time_in_window
from alerts.detectors.news2 import VitalParam
from alerts.detectors.types import (
    AlertCleared,
    AlertEvent,
    AlertRaised,
    AlertType,
    AlertUpdated,
    ClearReason,
    Profile,
    SafeZone,
    Severity,
)
from alerts.restart_geofence import with_fixes
from eldercare.protocol import (
    DeviceEvent,
    EventType,
    Location,
    LocationSource,
    RejectReason,
    StatusReport,
    Telemetry,
)
from eldercare.topics import Channel
from ingest.rows import Accepted, Refusal

# 2025-03-01 02:00 UTC is 10:00 in Asia/Shanghai (waking hours); 15:00 UTC is 23:00 (night)
DAY = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
NIGHT = datetime(2025, 3, 1, 15, 0, tzinfo=UTC)
M = timedelta(minutes=1)
HOME = SafeZone(31.2304, 121.4737, 200.0)
P = Profile(resident_id=9, lives_alone=True, safe_zones=(HOME,), expected_interval_s=60)


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def tele(at: datetime, **kw: object) -> Accepted:
    return Accepted(Telemetry(device_id="wb-9", seq=0, ts=ms(at), **kw), 9)  # type: ignore[arg-type]


def event(at: datetime, kind: EventType) -> Accepted:
    return Accepted(DeviceEvent(device_id="wb-9", seq=0, ts=ms(at), type=kind), 9)


def run(
    profile: Profile, items: list[tuple[datetime, object]], state: ResidentState | None = None
) -> tuple[ResidentState, list[AlertEvent]]:
    state, out = state or ResidentState(), []
    for now, item in items:
        state, events = step(profile, state, item, now=now)  # type: ignore[arg-type]
        out.extend(events)
    return state, out


def types_of(events: list[AlertEvent]) -> list[tuple[str, AlertType]]:
    return [(type(e).__name__, e.type) for e in events]


def test_offline_uses_the_bands_own_interval_and_clears_when_it_talks_again() -> None:
    status = Accepted(StatusReport(device_id="wb-9", state="online", ts=ms(DAY), interval_s=300), 9)
    # 3 x 300 s + 120 s grace = 17 min; the registry's 60 s interval would say 5 min
    _, events = run(P, [(DAY, status), (DAY + 16 * M, Tick(DAY + 16 * M))])
    assert events == []
    state, events = run(P, [(DAY, status), (DAY + 18 * M, Tick(DAY + 18 * M))])
    assert types_of(events) == [("AlertRaised", AlertType.DEVICE_OFFLINE)]
    assert isinstance(events[0], AlertRaised)
    assert (events[0].severity, events[0].detail["cause"]) == (Severity.MEDIUM, "silent")
    state, events = step(P, state, tele(DAY + 19 * M, hr=70), now=DAY + 19 * M)
    assert events == [
        AlertCleared(9, AlertType.DEVICE_OFFLINE, DAY + 19 * M, ClearReason.DEVICE_BACK_ONLINE)
    ]


def test_a_dropped_connection_gets_time_to_reconnect_before_a_technical_check() -> None:
    status = Accepted(StatusReport(device_id="wb-9", state="online", ts=ms(DAY), interval_s=10), 9)
    will = Accepted(StatusReport(device_id="wb-9", state="offline"), 9)  # the last will
    items: list[tuple[datetime, object]] = [(DAY, status), (DAY + M, will)]
    # silent: 3 x 10 s + 2 min; a dropped link: at least 10 min
    _, events = run(P, [*items, (DAY + 10 * M, Tick(DAY + 10 * M))])
    assert events == []
    _, events = run(P, [*items, (DAY + 12 * M, Tick(DAY + 12 * M))])
    assert types_of(events) == [("AlertRaised", AlertType.DEVICE_OFFLINE)]
    assert isinstance(events[0], AlertRaised)
    assert events[0].detail["cause"] == "connection_lost"


def test_a_band_charged_overnight_counts_only_its_waking_hours_off_the_wrist() -> None:
    evening = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)  # 20:30 local
    items: list[tuple[datetime, object]] = [(evening, event(evening, EventType.CHARGING_START))]
    items.append((evening, event(evening, EventType.REMOVED)))
    morning = datetime(2025, 3, 1, 23, 0, tzinfo=UTC)  # 07:00 local, next day
    # 10.6 h off, but 1.5 h of waking time in the evening and 6 min in the morning: < 2 h
    at = evening
    while at <= morning + 6 * M:
        items.append((at, tele(at, worn=False)))  # online all night, on the charger
        at += 3 * M
    _, events = run(P, items)
    assert events == []
    later = morning + 40 * M  # 2 h 10 min of waking time off the wrist while charging
    while at <= later:
        items.append((at, tele(at, worn=False)))
        at += 3 * M
    _, events = run(P, items)
    assert types_of(events) == [("AlertRaised", AlertType.BAND_NOT_WORN)]


def test_battery_low_is_a_battery_visit_and_clears_with_hysteresis() -> None:
    _, events = run(P, [(DAY, tele(DAY, battery_pct=14)), (DAY + M, tele(DAY + M, battery_pct=17))])
    assert types_of(events) == [("AlertRaised", AlertType.BATTERY_LOW)]
    assert isinstance(events[0], AlertRaised)
    assert (events[0].severity, events[0].detail["response"]) == (Severity.LOW, "battery_visit")
    _, events = run(P, [(DAY, tele(DAY, battery_pct=14)), (DAY + M, tele(DAY + M, battery_pct=20))])
    assert types_of(events)[-1] == ("AlertCleared", AlertType.BATTERY_LOW)


def test_band_not_worn_in_waking_hours_is_a_welfare_check_but_not_at_night() -> None:
    def off_wrist(t0: datetime) -> list[tuple[datetime, object]]:
        items: list[tuple[datetime, object]] = [(t0, event(t0, EventType.REMOVED))]
        items += [(t0 + i * M, tele(t0 + i * M, worn=False)) for i in range(1, 32)]
        return items

    _, events = run(P, off_wrist(DAY))
    assert types_of(events) == [("AlertRaised", AlertType.BAND_NOT_WORN)]
    assert isinstance(events[0], AlertRaised)
    assert events[0].detail["response"] == "welfare_check"
    _, events = run(P, off_wrist(NIGHT))
    assert events == []


def test_inactivity_counts_waking_hours_only_and_clears_on_movement() -> None:
    items: list[tuple[datetime, object]] = []
    for i in range(0, 200, 1):  # a band reporting every minute, no new steps
        at = DAY + i * M
        items.append((at, tele(at, steps=500, worn=True)))
    state, events = run(P, items[:179])
    assert AlertType.INACTIVITY not in [e.type for e in events]
    state, events = run(P, items[:181])
    assert ("AlertRaised", AlertType.INACTIVITY) in types_of(events)
    state, events = step(P, state, tele(DAY + 182 * M, steps=520), now=DAY + 182 * M)
    assert ("AlertCleared", AlertType.INACTIVITY) in types_of(events)
    assert not run(Profile(resident_id=9), items)[1]  # not living alone: no rule
    # 21:00 to 07:30 local is only 1.5 waking hours
    a, b = datetime(2025, 3, 1, 13, 0, tzinfo=UTC), datetime(2025, 3, 1, 23, 30, tzinfo=UTC)
    assert time_in_window(a, b, time(7), time(22), "Asia/Shanghai") == timedelta(
        hours=1, minutes=30
    )


def test_a_learned_inactivity_threshold_is_clamped() -> None:
    h = timedelta(hours=1)
    assert learn_threshold([h] * 2) is None  # fewer than 3 days
    assert learn_threshold([h] * 7) == 2 * h  # 1.5 h, raised to the 2 h floor
    assert learn_threshold([3 * h] * 7) == 4.5 * h
    assert learn_threshold([5 * h] * 7) == 6 * h  # the ceiling


def test_one_unusual_day_does_not_stretch_the_routine() -> None:
    h = timedelta(hours=1)
    days = [2 * h, 2 * h, 2 * h, 2 * h, 2 * h, 2 * h, 5 * h]  # one day ill in the chair
    assert learn_threshold(days) == 3 * h  # the 0.75 quantile (2nd longest) x 1.5


def away(
    at: datetime, metres_north: float, acc_m: float = 10.0, src: LocationSource = LocationSource.GPS
) -> Accepted:
    loc = Location(lat=HOME.lat + metres_north / 111_195.0, lon=HOME.lon, acc_m=acc_m, src=src)
    return tele(at, loc=loc)


def test_geofence_is_weighted_by_night_and_dementia() -> None:
    dementia = Profile(resident_id=9, conditions=frozenset({"dementia"}), safe_zones=(HOME,))
    night = [(NIGHT + i * M, away(NIGHT + i * M, 800)) for i in range(3)]
    _, events = run(dementia, night)
    raised = [e for e in events if isinstance(e, AlertRaised)]
    assert [(e.type, e.severity) for e in raised] == [(AlertType.GEOFENCE_EXIT, Severity.HIGH)]
    day = [(DAY + i * M, away(DAY + i * M, 800)) for i in range(3)]
    assert not [
        e
        for e in run(Profile(resident_id=9, safe_zones=(HOME,)), day)[1]
        if e.type is AlertType.GEOFENCE_EXIT
    ]
    fuzzy = [(NIGHT + i * M, away(NIGHT + i * M, 800, acc_m=900)) for i in range(3)]
    assert not [e for e in run(dementia, fuzzy)[1] if e.type is AlertType.GEOFENCE_EXIT]
    back = [*night, (NIGHT + 5 * M, away(NIGHT + 5 * M, 20))]
    assert types_of(run(dementia, back)[1])[-1] == ("AlertCleared", AlertType.GEOFENCE_EXIT)
    assert abs(haversine_m(HOME.lat, HOME.lon, HOME.lat + 800 / 111_195.0, HOME.lon) - 800) < 2


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=3.0, max_value=1500.0),
    st.one_of(st.floats(min_value=0.0, max_value=1.9), st.floats(min_value=2.1, max_value=4.0)),
)
def test_a_fix_counts_as_outside_iff_beyond_twice_its_accuracy(acc_m: float, radii: float) -> None:
    """A night exit of a resident with dementia is raised at once, but only on fixes
    farther outside the zone than twice their accuracy radius (a 68 % radius; cell-tower
    fixes of a resident at home often land beyond one radius, and together)."""
    dementia = Profile(resident_id=9, conditions=frozenset({"dementia"}), safe_zones=(HOME,))
    north = HOME.radius_m + radii * acc_m
    src = LocationSource.LBS if acc_m > 100 else LocationSource.GPS
    fixes = [(NIGHT + i * 5 * M, away(NIGHT + i * 5 * M, north, acc_m, src)) for i in range(3)]
    raised = [e for e in run(dementia, fixes)[1] if isinstance(e, AlertRaised)]
    assert len(raised) == (1 if radii > 2 else 0)


def test_cell_tower_jumps_of_a_resident_at_home_raise_nothing() -> None:
    """The simulated week's case: Wi-Fi fixes at home, two cell-tower fixes 1.3-1.6 km
    out with 1.2-1.4 km radii, Wi-Fi at home again. One radius would have raised it."""
    plain = Profile(resident_id=9, safe_zones=(HOME,))
    deep = datetime(2025, 3, 1, 18, 0, tzinfo=UTC)  # 02:00 local
    lbs = LocationSource.LBS
    fixes = [
        (deep, away(deep, 10, 35.0, LocationSource.WIFI)),
        (deep + 5 * M, away(deep + 5 * M, HOME.radius_m + 1580, 1417.0, lbs)),
        (deep + 10 * M, away(deep + 10 * M, HOME.radius_m + 1285, 1154.0, lbs)),
        (deep + 15 * M, away(deep + 15 * M, 5, 21.0, LocationSource.WIFI)),
    ]
    assert not [e for e in run(plain, fixes)[1] if e.type is AlertType.GEOFENCE_EXIT]


def geofence_events(profile: Profile, start: datetime, minutes: int) -> list[AlertEvent]:
    """Outside 800 m from ``start``, a fix every 5 min, ticks every minute (as the engine)."""
    items: list[tuple[datetime, object]] = []
    for i in range(minutes + 1):
        at = start + i * M
        items.append((at, away(at, 800) if i % 5 == 0 else Tick(at)))
    return [e for e in run(profile, items)[1] if e.type is AlertType.GEOFENCE_EXIT]


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=300), st.booleans(), st.booleans())
def test_a_geofence_exit_is_raised_iff_out_longer_than_allowed(
    minutes: int, dementia: bool, at_night: bool
) -> None:
    """Dementia: at night at once, by day after 3 h; otherwise in the deep night at once,
    never by day (800 m from home: within the usual daytime range)."""
    conditions = frozenset({"dementia"}) if dementia else frozenset()
    profile = Profile(resident_id=9, conditions=conditions, safe_zones=(HOME,))
    start = datetime(2025, 3, 1, 16, 0, tzinfo=UTC) if at_night else DAY  # 00:00 / 10:00 local
    events = geofence_events(profile, start, minutes)
    second_fix = 5  # two outside fixes are needed
    if at_night:
        allowed = second_fix
    elif dementia:
        allowed = 180
    else:
        allowed = 10_000
    raised = [e for e in events if isinstance(e, AlertRaised)]
    assert len(raised) == (1 if minutes >= max(allowed, second_fix) else 0)


def test_by_day_a_resident_with_dementia_far_from_home_is_raised_at_once() -> None:
    dementia = Profile(resident_id=9, conditions=frozenset({"dementia"}), safe_zones=(HOME,))
    far = [(DAY + i * M, away(DAY + i * M, 3500)) for i in range(3)]
    raised = [e for e in run(dementia, far)[1] if isinstance(e, AlertRaised)]
    assert [(e.type, e.severity) for e in raised] == [(AlertType.GEOFENCE_EXIT, Severity.MEDIUM)]


def walk_items(path: list[float], every: int = 5) -> list[tuple[datetime, object]]:
    """By day, a fix every ``every`` minutes at ``path[i]`` metres north of the zone's
    edge (GPS), ticks every minute as the engine does."""
    items: list[tuple[datetime, object]] = []
    for i, metres in enumerate(path):
        for k in range(every):
            at = DAY + (i * every + k) * M
            items.append((at, away(at, HOME.radius_m + metres) if k == 0 else Tick(at)))
    return items


def walk_events(profile: Profile, path: list[float], every: int = 5) -> list[AlertEvent]:
    """The geofence events of :func:`walk_items`."""
    return [e for e in run(profile, walk_items(path, every))[1]
            if e.type is AlertType.GEOFENCE_EXIT]  # fmt: skip


WANDERER = Profile(
    resident_id=9, conditions=frozenset({"dementia"}), safe_zones=(HOME,), day_range_m=50_000.0
)  # far beyond any walk here: only the walking-away rule can raise by day


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=0.3, max_value=5.0), st.integers(min_value=0, max_value=24))
def test_by_day_walking_steadily_away_is_raised_iff_long_and_far_enough(
    km_per_h: float, fixes: int
) -> None:
    """A resident with dementia walking straight away from home by day: raised once
    the walk has lasted 45 min and gained 800 m, not before (a fix every 5 min)."""
    metres_per_fix = km_per_h * 1000 / 12
    path = [100.0 + i * metres_per_fix for i in range(fixes + 1)]
    raised = [e for e in walk_events(WANDERER, path) if isinstance(e, AlertRaised)]
    due = [i for i in range(fixes + 1) if i * 5 >= 45 and i * metres_per_fix >= 800]
    assert len(raised) == (1 if due else 0)
    if due:
        assert raised[0].severity is Severity.MEDIUM
        assert raised[0].at == DAY + due[0] * 5 * M
        assert raised[0].detail["walking_away"]["metres"] >= 800


def test_by_day_an_outing_or_a_walk_round_the_block_is_not_walking_away() -> None:
    bus = [2500.0] * 20 + [0.0]  # 15 min by bus (between fixes), 100 min there, back
    assert walk_events(WANDERER, [100.0, *bus]) == []
    there_and_back = [100.0 + 100 * i for i in range(8)] + [800 - 100 * i for i in range(8)]
    assert walk_events(WANDERER, there_and_back) == []  # 35 min out, then home
    with_stops = [100.0 + 150 * i for i in range(8)]  # 35 min away...
    with_stops += [with_stops[-1]] * 3  # ...a 15 min stop (at a bench, a shop)...
    with_stops += [with_stops[-1] + 150 * i for i in range(1, 8)]  # ...35 min away again
    assert walk_events(WANDERER, with_stops) == []
    drifting = [100.0 + 150 * i + (60 if i % 2 else 0) for i in range(12)]  # GPS scatter
    assert [e.type for e in walk_events(WANDERER, drifting) if isinstance(e, AlertRaised)] == [
        AlertType.GEOFENCE_EXIT
    ]


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=0.3, max_value=5.0), st.integers(min_value=1, max_value=125))
def test_a_restart_replaying_the_fixes_raises_a_walk_away_when_running_on_would(
    km_per_h: float, down_at: int
) -> None:
    """The engine stops at minute ``down_at`` of a walk away and starts again at once
    with its clocks rebuilt from the stored fixes (alerts.restart_geofence.with_fixes): the
    exit is raised at the same minute as by an engine that ran throughout."""
    metres_per_fix = km_per_h * 1000 / 12
    items = walk_items([100 + i * metres_per_fix for i in range(26)])
    _, throughout = run(WANDERER, items)
    restart = DAY + down_at * M
    before, after = [x for x in items if x[0] < restart], [x for x in items if x[0] >= restart]
    state, events = run(WANDERER, before)
    stored = [e for e in events if isinstance(e, AlertRaised)]  # persisted before the stop
    fixes = [(at, "wb-9", item.message.loc) for at, item in before
             if isinstance(item, Accepted) and isinstance(item.message, Telemetry)
             and item.message.loc is not None]  # fmt: skip
    seeded = ResidentState(geofence=GeofenceState(open=state.geofence.open))
    state = with_fixes({9: seeded}, {9: fixes}, {9: WANDERER})[9]
    for now, item in after:
        state, evs = step(WANDERER, state, item, now=now)  # type: ignore[arg-type]
        events.extend(evs)
    raised = [(e.at, e.severity) for e in events if isinstance(e, AlertRaised)]
    assert raised == [(e.at, e.severity) for e in throughout if isinstance(e, AlertRaised)]
    assert len(stored) <= 1


def test_at_the_edge_of_the_night_an_early_walk_is_not_wandering() -> None:
    early = datetime(2025, 3, 1, 22, 20, tzinfo=UTC)  # 06:20 local: night, its last hour
    plain = Profile(resident_id=9, safe_zones=(HOME,))
    assert geofence_events(plain, early, 35) == []  # back within the waking window
    late = datetime(2025, 3, 1, 14, 10, tzinfo=UTC)  # 22:10 local
    events = geofence_events(plain, late, 70)
    assert [e.severity for e in events if isinstance(e, AlertRaised)] == [Severity.LOW]


def test_a_drift_from_the_personal_baseline_raises_baseline_deviation() -> None:
    base = compute_baseline([92.0, 93.0, 92.0, 91.0, 92.0] * 20)
    assert base is not None
    assert base.median == 92.0
    profile = Profile(resident_id=9, baselines={VitalParam.SPO2: base})
    items = [(DAY + 8 * i * M, tele(DAY + 8 * i * M, spo2=86)) for i in range(6)]
    _, events = run(profile, items)
    kinds = {e.type for e in events if isinstance(e, AlertRaised)}
    assert AlertType.BASELINE_DEVIATION in kinds


def test_an_operator_closing_a_condition_mutes_it_until_it_clears() -> None:
    state, events = run(P, [(DAY, tele(DAY, battery_pct=10))])
    state, _ = step(P, state, AlertClosed(AlertType.BATTERY_LOW), now=DAY + M)
    state, events = step(P, state, tele(DAY + 2 * M, battery_pct=9), now=DAY + 2 * M)
    assert events == []
    state, events = step(P, state, tele(DAY + 3 * M, battery_pct=40), now=DAY + 3 * M)
    assert events == []  # the cleared event of a muted alert is swallowed
    state, events = step(P, state, tele(DAY + 4 * M, battery_pct=10), now=DAY + 4 * M)
    assert types_of(events) == [("AlertRaised", AlertType.BATTERY_LOW)]


def test_a_closed_condition_that_grows_worse_than_it_was_closed_at_is_raised_again() -> None:
    """Muted at the severity the operator saw: a heart rate from medium to NEWS2 red is
    news (before 2026-12-04 it stayed silent until the rate came back to normal)."""
    items = [(DAY + i * M, tele(DAY + i * M, hr=118)) for i in range(10)]
    state, events = run(P, items)
    assert [(e.type, e.severity) for e in events if isinstance(e, AlertRaised)] == [
        (AlertType.VITAL_HR_HIGH, Severity.MEDIUM)
    ]
    state, _ = step(P, state, AlertClosed(AlertType.VITAL_HR_HIGH), now=DAY + 10 * M)
    state, events = run(P, [(DAY + (11 + i) * M, tele(DAY + (11 + i) * M, hr=118))
                            for i in range(10)], state)  # fmt: skip
    assert events == []  # the same condition, as the operator saw it: still muted
    state, events = run(P, [(DAY + (21 + i) * M, tele(DAY + (21 + i) * M, hr=150))
                            for i in range(60)], state)  # fmt: skip
    worse = [(e.type, e.severity) for e in events if not isinstance(e, AlertCleared)]
    assert worse[:1] == [(AlertType.VITAL_HR_HIGH, Severity.HIGH)]
    assert AlertType.VITAL_HR_HIGH not in state.muted


# --- one open alert per resident and type ----------------------------------------

inputs = st.one_of(
    st.builds(lambda hr, b, st_: ("t", {"hr": hr, "battery_pct": b, "steps": st_}),
              st.sampled_from([35, 70, 140]), st.sampled_from([5, 50, 90]), st.integers(0, 50)),
    st.sampled_from([("e", k) for k in (EventType.SOS, EventType.FALL, EventType.IM_OK,
                                        EventType.REMOVED, EventType.WORN)]),
    st.just(("tick", None)),
    st.sampled_from([("refused", c) for c in (Channel.IMU, Channel.TELEMETRY, Channel.EVENTS)]),
    st.sampled_from([("close", t) for t in (AlertType.SOS, AlertType.FALL, AlertType.BATTERY_LOW,
                                            AlertType.IMU_REFUSED)]),
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(inputs, st.integers(1, 1200)), max_size=40))
def test_there_is_never_more_than_one_open_alert_per_resident_and_type(
    script: list[tuple[tuple[str, object], int]],
) -> None:
    state, now, open_types = ResidentState(), DAY, set()
    for (kind, arg), gap in script:
        now += timedelta(seconds=gap)
        if kind == "t":
            item: object = tele(now, **arg)  # type: ignore[arg-type]
        elif kind == "e":
            item = event(now, arg)  # type: ignore[arg-type]
        elif kind == "tick":
            item = Tick(now)
        elif kind == "refused":  # a message refused at ingest; an SOS salvaged from one
            press = DeviceEvent(device_id="wb-9", seq=0, ts=ms(now), type=EventType.SOS)
            item = Refusal("wb-9", 9, arg, RejectReason.INVALID, "?",  # type: ignore[arg-type]
                           press if arg is Channel.EVENTS else None)  # fmt: skip
        else:
            item = AlertClosed(arg)  # type: ignore[arg-type]
            open_types.discard(arg)
            if arg in (AlertType.FALL, AlertType.LONG_LIE):  # one fall episode, closed whole
                open_types -= {AlertType.FALL, AlertType.LONG_LIE}
        state, events = step(P, state, item, now=now)  # type: ignore[arg-type]
        for e in events:
            if isinstance(e, AlertRaised):
                assert e.type not in open_types
                open_types.add(e.type)
            else:
                assert isinstance(e, AlertUpdated | AlertCleared)
                assert e.type in open_types
                if isinstance(e, AlertCleared):
                    open_types.discard(e.type)


@settings(max_examples=300, deadline=None)
@given(
    seconds=st.integers(min_value=1_600_000_000, max_value=1_900_000_000),
    tz=st.sampled_from(
        [
            "Asia/Shanghai",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "UTC",
        ]
    ),
)
def test_local_time_matches_astimezone_across_offset_changes(seconds: int, tz: str) -> None:
    now = datetime.fromtimestamp(seconds, UTC)
    assert local_time(now, tz) == now.astimezone(ZoneInfo(tz)).time()


def test_local_time_is_right_minute_by_minute_through_daylight_saving_changes() -> None:
    for tz, change in (("Europe/Berlin", datetime(2025, 3, 30, 1, tzinfo=UTC)),
                       ("Europe/Berlin", datetime(2025, 10, 26, 1, tzinfo=UTC)),
                       ("Australia/Lord_Howe", datetime(2025, 4, 5, 15, tzinfo=UTC))):  # fmt: skip
        for minute in range(-90, 91):
            now = change + timedelta(minutes=minute, seconds=30)
            assert local_time(now, tz) == now.astimezone(ZoneInfo(tz)).time()


def test_a_cold_wrist_is_judged_at_home_not_away_from_it() -> None:
    """Outside every safe zone (two fixes, as the geofence counts), a cold wrist is the
    weather: not hypothermia (before 2026-12-04, high after 30 minutes on a bench)."""
    cold = Profile(resident_id=9, safe_zones=(HOME,),
                   baselines={VitalParam.TEMP: compute_baseline([33.0] * 200)})  # fmt: skip

    def readings(metres: float) -> list[tuple[datetime, object]]:
        out: list[tuple[datetime, object]] = []
        for i in range(15):
            at = DAY + 3 * i * M
            loc = Location(lat=HOME.lat + metres / 111_195.0, lon=HOME.lon, acc_m=10.0,
                           src=LocationSource.GPS)  # fmt: skip
            out.append((at, tele(at, skin_temp_c=28.0, loc=loc)))
        return out

    assert AlertType.VITAL_TEMP_LOW in [e.type for e in run(cold, readings(20))[1]]  # at home
    assert AlertType.VITAL_TEMP_LOW not in [e.type for e in run(cold, readings(800))[1]]
