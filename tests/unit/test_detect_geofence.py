"""The geofence's own clock: fixes in band time, late and repeated ones ignored, and a
resident whose safe zones were removed (defects found in review on 2026-12-04)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts.detectors import ResidentState, Tick, geofence, step
from alerts.detectors.geofence import GeofenceState
from alerts.detectors.types import (
    AlertCleared,
    AlertEvent,
    AlertRaised,
    AlertType,
    ClearReason,
    Profile,
    SafeZone,
    Severity,
)
from alerts.restart_geofence import with_fixes
from eldercare.protocol import DeviceEvent, EventType, Location, LocationSource, Telemetry
from ingest.rows import Accepted

NIGHT = datetime(2025, 3, 1, 15, 0, tzinfo=UTC)  # 23:00 in Asia/Shanghai
DAY = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # 10:00
M = timedelta(minutes=1)
S = timedelta(seconds=1)
HOME = SafeZone(31.2304, 121.4737, 200.0)
DEMENTIA = Profile(resident_id=9, conditions=frozenset({"dementia"}), safe_zones=(HOME,),
                   expected_interval_s=60)  # fmt: skip
WANDERER = replace(DEMENTIA, day_range_m=50_000.0)  # by day only walking away can raise


def north(metres: float, acc_m: float = 10.0) -> Location:
    return Location(HOME.lat + metres / 111_195.0, HOME.lon, acc_m, LocationSource.GPS)


def fixes(
    profile: Profile,
    sent: list[tuple[datetime, datetime, Location]],
    state: GeofenceState | None = None,
) -> tuple[GeofenceState, list[AlertEvent]]:
    """Each (arrival, band time, fix) through the geofence, in arrival order."""
    geo, out = state or GeofenceState(), []
    for now, at, loc in sent:
        geo, events = geofence.step(geo, profile, loc, "wb-9", now, at=at)
        out += events
    return geo, out


def test_a_backlog_of_old_fixes_after_a_newer_one_at_home_raises_nothing() -> None:
    """The band was offline while the resident went out and came back; at 23:30 it sends
    its newest fix (an SOS pressed at home), then its backlog of 23:10 and 23:11, 500 m
    out. Before, the backlog was judged as if the resident were out at 23:30."""
    pressed = NIGHT + 30 * M
    state, events = fixes(DEMENTIA, [(NIGHT, NIGHT, north(0)), (pressed, pressed, north(0)),
                                     (pressed + S, NIGHT + 10 * M, north(500)),
                                     (pressed + 2 * S, NIGHT + 11 * M, north(500))])  # fmt: skip
    assert events == []
    assert (state.outside_fixes, state.last_fix, state.fix_at) == (0, north(0), pressed)


def test_one_outlier_delivered_twice_is_one_fix_not_two() -> None:
    """At-least-once delivery hands the same message over again (an ingest crash): it is
    not the second outside fix an exit needs."""
    glitch = NIGHT + M
    state, events = fixes(DEMENTIA, [(NIGHT, NIGHT, north(0)), (glitch, glitch, north(1000, 15)),
                                     (glitch + 2 * S, glitch, north(1000, 15))])  # fmt: skip
    assert events == []
    assert state.outside_fixes == 1


def test_the_exit_is_timed_from_the_fixes_not_their_arrival() -> None:
    """A band offline from 22:10 sends its fixes at 23:15: the resident without dementia
    left at 22:10 (an hour out at the night's edge: low at once), not at 23:15."""
    plain = Profile(resident_id=9, safe_zones=(HOME,))
    arrival = NIGHT + 15 * M
    sent = [(arrival + k * S, NIGHT - 50 * M + k * 5 * M, north(800)) for k in range(3)]
    _, events = fixes(plain, sent)
    (raised,) = events
    assert isinstance(raised, AlertRaised)
    assert raised.severity is Severity.LOW
    assert raised.detail["left_at"] == (NIGHT - 50 * M).isoformat().replace("+00:00", "Z")


def test_a_walk_away_is_timed_from_the_fixes_of_a_backlog() -> None:
    """By day a resident with dementia walks 2 km away for an hour while the band is
    offline; its fixes arrive together: the run lasted an hour, not a second."""
    sent = [(DAY + 61 * M + k * S, DAY + k * 5 * M, north(300 + 170 * k)) for k in range(13)]
    _, events = fixes(WANDERER, sent)
    raised = [e for e in events if isinstance(e, AlertRaised)]
    assert [(e.type, e.severity) for e in raised] == [(AlertType.GEOFENCE_EXIT, Severity.MEDIUM)]
    assert raised[0].detail["walking_away"]["since"] == DAY.isoformat().replace("+00:00", "Z")


def test_a_fix_the_restart_replayed_is_not_taken_again_when_redelivered() -> None:
    """The replay keeps the newest fix's time: the broker's redelivery after the restart
    of a fix already stored (and replayed) does not count as a second outside fix."""
    out = NIGHT + 10 * M
    seeded = with_fixes({9: ResidentState()}, {9: [(NIGHT, "wb-9", north(0)),
                                                   (out, "wb-9", north(1000))]},
                        {9: DEMENTIA})[9]  # fmt: skip
    assert (seeded.geofence.outside_fixes, seeded.geofence.fix_at) == (1, out)
    geo, events = fixes(DEMENTIA, [(out + M, out, north(1000))], seeded.geofence)
    assert (events, geo.outside_fixes) == ([], 1)
    geo, events = fixes(DEMENTIA, [(out + M, out + M, north(1000))], geo)  # a new one
    assert [type(e) for e in events] == [AlertRaised]


def test_removing_the_safe_zones_of_a_resident_out_clears_the_exit_and_ticks_go_on() -> None:
    """A clinician removes a resident's zones while they are out (exit open): the exit is
    cleared and the state reset. Before, every tick of theirs raised ValueError, so
    nothing time-driven (offline, inactivity, long lie) was decided for them again."""
    state = ResidentState()
    for i in range(3):
        at = NIGHT + i * M
        loc = north(3000)
        msg = Telemetry(device_id="wb-9", seq=i, ts=int(at.timestamp() * 1000), loc=loc)
        state, _ = step(DEMENTIA, state, Accepted(msg, 9), now=at)
    assert AlertType.GEOFENCE_EXIT in state.geofence.open
    gone = replace(DEMENTIA, safe_zones=())
    now = NIGHT + 3 * M
    state, events = step(gone, state, Tick(now), now=now)
    assert events == [AlertCleared(9, AlertType.GEOFENCE_EXIT, now, ClearReason.RESOLVED)]
    assert (state.geofence.outside_fixes, state.geofence.left_at, state.geofence.walk) == (
        0, None, None,
    )  # fmt: skip
    raised: list[AlertType] = []
    for k in range(1, 30):  # the band falls silent: its offline alert is still raised
        state, events = step(gone, state, Tick(now + k * M), now=now + k * M)
        raised += [e.type for e in events]
    assert raised == [AlertType.DEVICE_OFFLINE]
    state, events = geofence.step(state.geofence, gone, north(3000), "wb-9", now + 30 * M)
    assert (events, state.outside_fixes) == ([], 0)  # a fix with no zones: nothing to judge


def test_the_engine_gives_the_geofence_each_fix_s_band_time() -> None:
    """Through the engine (alerts.detectors.engine): a telemetry fix delivered twice is one
    fix, and a backlog older than an SOS pressed at home raises nothing."""
    state = ResidentState()
    glitch = Telemetry(device_id="wb-9", seq=7, ts=int((NIGHT + M).timestamp() * 1000),
                       loc=north(1000, 15))  # fmt: skip
    for k in range(2):
        state, events = step(DEMENTIA, state, Accepted(glitch, 9), now=NIGHT + M + 2 * k * S)
        assert [e for e in events if e.type is AlertType.GEOFENCE_EXIT] == []
    pressed = NIGHT + 30 * M
    sos = DeviceEvent(device_id="wb-9", seq=8, ts=int(pressed.timestamp() * 1000),
                      type=EventType.SOS, loc=north(0))  # fmt: skip
    state, _ = step(DEMENTIA, state, Accepted(sos, 9), now=pressed)
    for k, back in enumerate((20, 19)):
        ts = int((pressed - back * M).timestamp() * 1000)
        old = Telemetry(device_id="wb-9", seq=9 + k, ts=ts, loc=north(500))
        state, events = step(DEMENTIA, state, Accepted(old, 9), now=pressed + (k + 1) * S)
        assert [e for e in events if e.type is AlertType.GEOFENCE_EXIT] == []
    assert state.geofence.open == {}
