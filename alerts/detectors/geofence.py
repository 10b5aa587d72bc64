"""Geofence: leaving every safe zone, graded by the time of night and dementia.

| resident    | night (outside waking hours)  | day                                        |
|-------------|-------------------------------|--------------------------------------------|
| dementia    | high, at once                 | medium: out long or far, or walking away   |
| no dementia | low (edges of the night: 1 h) | none                                       |

By day a resident with dementia still walks to the market or the park, often
with family: an exit alone is not wandering, so a daytime exit is raised only
once it has lasted longer than ``Profile.day_outside_allowed`` (3 h by
default, longer than a usual walk or outing) or reaches farther than
``Profile.day_range_m`` from the nearest zone (3 km by default: beyond the
neighbourhood life-space of most older adults; a resident drifting away on a
bearing gets there within one or two hours, a walk round the block never).
A clinician can set both per resident. Nor does the allowance wait while a
resident with dementia keeps *walking away*: ``WALK_AWAY_FOR`` (45 min) of
steady progress away from the zone, ``WALK_AWAY_M`` (800 m) or more, with no
stop of ``WALK_AWAY_STALL`` and no turn back of ``WALK_AWAY_TURN_BACK_M``.
A walk round the block comes back, an outing reaches its destination (a bus
or a walk of half an hour) and stays; search-and-rescue studies describe people
with dementia who got lost as going on, often fairly straight, until something
stops them. At night an exit of a resident with
dementia counts at once. One of a resident without dementia counts at once in
the deep night, but in the hour at either edge of the night (an early walk
before the fixed waking window opens, a late visit) only after
``NIGHT_OUTSIDE_ALLOWED``.

A fix counts as outside only when it is farther outside the nearest zone than
``OUTSIDE_CONFIDENCE`` times its own accuracy radius, and as inside only when
its centre is inside a zone with an accuracy no larger than that zone's
radius; other fixes are ignored. ``MIN_OUTSIDE_FIXES`` consecutive outside
fixes are needed (GPS jumps).

A fix belongs to its own (band) time, as a vital-sign reading does: when the
resident left and the run of walking away are counted from the fixes' times,
and a fix at or before the newest one taken is ignored (late or repeated). Before
2026-12-04 every fix was taken as of its arrival: a band's backlog of old fixes,
sent after its newest report (an SOS pressed at home), raised a night exit for
a resident at home, and one GPS outlier delivered twice (at least once, after
an ingest crash) was the two fixes an exit needs.

A resident with no safe zone (a clinician removed them) cannot be outside one:
an open exit is cleared and the clocks reset. Before 2026-12-04 it stayed open
and every tick of that resident raised, so none of their time-driven rules
(offline, inactivity, long lie) was decided any more.

Why twice the radius: a reported accuracy is the radius of 68 % confidence
(Android's definition; a band's radius is read the same way), so one fix in
three lies beyond it. Under a two-dimensional normal error, twice that radius
(3 sigma) is passed by about 1 % of fixes. For a GPS fix (3-15 m) the difference is a few metres;
a cell-tower fix (200-1,500 m) must put the resident 0.4-3 km beyond the zone
to count. Cell-tower errors are also correlated from one fix to the next (the
same towers give the same wrong place), so two consecutive ones are not two
independent confirmations: two such fixes, 1.3-1.6 km out with radii of
1.2-1.4 km, between Wi-Fi fixes at home, raised a night exit for a resident
asleep in the simulated week.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Final

from alerts.detectors.lifecycle import OpenAlerts, Want, reconcile
from alerts.detectors.localtime import in_window
from alerts.detectors.types import (
    AlertEvent,
    AlertType,
    ClearReason,
    Profile,
    SafeZone,
    Severity,
    iso,
)
from eldercare.protocol import Location

EARTH_RADIUS_M: Final = 6_371_008.8
MIN_OUTSIDE_FIXES: Final = 2
NIGHT_OUTSIDE_ALLOWED: Final = timedelta(hours=1)  # no dementia: out at night this long
OUTSIDE_CONFIDENCE: Final = 2.0  # accuracy radii (68 % each) a fix must lie outside by
# Dementia, by day: walking steadily away this long and this far is raised at once.
WALK_AWAY_FOR: Final = timedelta(minutes=45)
WALK_AWAY_M: Final = 800.0
WALK_AWAY_STALL: Final = timedelta(minutes=10)  # no farther point for this long: a stop
WALK_AWAY_TURN_BACK_M: Final = 200.0  # this much closer than the farthest point: a return


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def margin_outside(loc: Location, zones: tuple[SafeZone, ...]) -> tuple[float, SafeZone]:
    """Distance outside the nearest zone's edge (negative: inside), and that zone."""
    return min(
        ((haversine_m(loc.lat, loc.lon, z.lat, z.lon) - z.radius_m, z) for z in zones),
        key=lambda pair: pair[0],
    )


def surely_inside(loc: Location, margin_m: float, zone: SafeZone) -> bool:
    """The detector's rule for inside: the fix's centre inside ``zone`` (``margin_m``
    from :func:`margin_outside`) with an accuracy no larger than the zone."""
    return margin_m <= 0 and loc.acc_m <= zone.radius_m


def surely_outside_by(loc: Location, zones: tuple[SafeZone, ...]) -> float:
    """How far outside the nearest zone the resident is at least, given the fix's
    accuracy (``OUTSIDE_CONFIDENCE`` radii taken off); positive: surely outside."""
    return margin_outside(loc, zones)[0] - OUTSIDE_CONFIDENCE * loc.acc_m


def _shifted(t: time, by: timedelta) -> time:
    return (datetime.combine(date(2000, 1, 1), t) + by).time()


def grade(
    profile: Profile,
    now: datetime,
    left_at: datetime | None = None,
    outside_by_m: float = 0.0,
    walking_away: bool = False,
) -> Severity | None:
    """Severity of being outside now, having left at ``left_at`` (None: just now), at
    least ``outside_by_m`` beyond the nearest zone's edge (:func:`surely_outside_by`),
    and whether still walking away (:meth:`WalkAway.walking_away`)."""
    night = not in_window(now, profile.waking_start, profile.waking_end, profile.tz)
    out_for = now - (left_at or now)
    if profile.dementia:
        if night:
            return Severity.HIGH
        far = outside_by_m >= profile.day_range_m
        long = out_for >= profile.day_outside_allowed
        return Severity.MEDIUM if far or long or walking_away else None
    if not night:
        return None
    edge = NIGHT_OUTSIDE_ALLOWED
    deep = not in_window(now, _shifted(profile.waking_start, -edge),
                         _shifted(profile.waking_end, edge), profile.tz)  # fmt: skip
    return Severity.LOW if deep or out_for >= NIGHT_OUTSIDE_ALLOWED else None


@dataclass(frozen=True, slots=True)
class WalkAway:
    """The current run of progress away from the zone: where and when it started
    (metres outside the nearest zone's edge) and its farthest point so far."""

    since: datetime
    from_m: float
    farthest_at: datetime
    farthest_m: float

    def after(self, at: datetime, margin_m: float) -> WalkAway:
        """The run after a confident outside fix ``margin_m`` beyond the zone at ``at``."""
        stalled = at - self.farthest_at >= WALK_AWAY_STALL
        if stalled or margin_m < self.farthest_m - WALK_AWAY_TURN_BACK_M:
            return WalkAway(at, margin_m, at, margin_m)  # stopped or turned back: a new run
        if margin_m > self.farthest_m:
            return WalkAway(self.since, self.from_m, at, margin_m)
        return self

    def walking_away(self, now: datetime) -> bool:
        """Far and long enough away, and no stop yet."""
        return (
            self.farthest_at - self.since >= WALK_AWAY_FOR
            and self.farthest_m - self.from_m >= WALK_AWAY_M
            and now - self.farthest_at < WALK_AWAY_STALL
        )


@dataclass(frozen=True, slots=True)
class GeofenceState:
    outside_fixes: int = 0
    last_fix: Location | None = None
    left_at: datetime | None = None  # band time of the first outside fix
    open: OpenAlerts = field(default_factory=dict)
    walk: WalkAway | None = None
    fix_at: datetime | None = None  # band time of the newest fix taken: none at or before it


def _zones_removed(
    state: GeofenceState, profile: Profile, now: datetime
) -> tuple[GeofenceState, list[AlertEvent]]:
    """No safe zone left: nobody is outside one. An open exit is cleared (``resolved``:
    the resident did not return, the condition is gone; a reason of its own would be a
    new ``ClearReason``, and the lifecycle auto-clears every reason but a false alarm's
    alike) and the outside clocks reset, so zones set again start afresh."""
    opened, events = reconcile(
        state.open,
        AlertType.GEOFENCE_EXIT,
        None,
        resident_id=profile.resident_id,
        at=now,
        clear_reason=ClearReason.RESOLVED,
    )
    return GeofenceState(last_fix=state.last_fix, open=opened, fix_at=state.fix_at), events


def evaluate(
    state: GeofenceState, profile: Profile, now: datetime, device_id: str | None = None
) -> tuple[GeofenceState, list[AlertEvent]]:
    if not state.outside_fixes and not state.open:
        return state, []  # inside (or never seen outside), nothing open: nothing to do
    if not profile.safe_zones:
        return _zones_removed(state, profile, now)
    want = None
    surely_out_by = 0.0  # how far outside at least, given the fix's accuracy
    if state.outside_fixes and state.last_fix is not None and profile.safe_zones:
        surely_out_by = surely_outside_by(state.last_fix, profile.safe_zones)
    walk = state.walk if state.walk is not None and state.walk.walking_away(now) else None
    severity = grade(profile, now, state.left_at, surely_out_by, walk is not None)
    current = state.open.get(AlertType.GEOFENCE_EXIT)
    if current is not None and (severity is None or severity.rank < current.severity.rank):
        severity = current.severity  # never downgraded while still outside
    if state.outside_fixes >= MIN_OUTSIDE_FIXES and severity is not None and state.last_fix:
        fix = state.last_fix
        margin, zone = margin_outside(fix, profile.safe_zones)
        detail = {
            "nearest_zone": zone.name,
            "outside_by_m": round(margin, 1),
            "location": {"lat": fix.lat, "lon": fix.lon, "acc_m": fix.acc_m},
            "left_at": iso(state.left_at) if state.left_at else None,
            "dementia": profile.dementia,
        }
        if walk is not None:
            detail["walking_away"] = {
                "since": iso(walk.since),
                "metres": round(walk.farthest_m - walk.from_m),
            }
        want = Want(severity, device_id, detail)
    opened, events = reconcile(
        state.open,
        AlertType.GEOFENCE_EXIT,
        want,
        resident_id=profile.resident_id,
        at=now,
        clear_reason=ClearReason.RETURNED_TO_SAFE_ZONE,
    )
    return replace(state, open=opened), events


def step(
    state: GeofenceState,
    profile: Profile,
    loc: Location,
    device_id: str,
    now: datetime,
    *,
    at: datetime | None = None,
) -> tuple[GeofenceState, list[AlertEvent]]:
    """One location fix, taken at ``at`` (the band's ``ts``); ``now`` is the platform
    clock. A fix at or before the newest one taken is ignored: a band's backlog sent
    after newer reports, or the same message delivered again. ``at`` None (a caller
    without the band's time): the fix is taken as of ``now`` and not ordered."""
    if at is not None and state.fix_at is not None and at <= state.fix_at:
        return state, []  # late or repeated: says nothing about where the resident is now
    taken = at if at is not None else now
    if at is not None:
        state = replace(state, fix_at=at)
    if not profile.safe_zones:
        return evaluate(state, profile, now, device_id)  # nothing to judge; clears what was
    margin, zone = margin_outside(loc, profile.safe_zones)
    if margin > OUTSIDE_CONFIDENCE * loc.acc_m:
        walk = (
            state.walk.after(taken, margin)
            if state.walk
            else WalkAway(taken, margin, taken, margin)
        )
        state = replace(state, outside_fixes=state.outside_fixes + 1, last_fix=loc,
                        left_at=state.left_at or taken, walk=walk)  # fmt: skip
    elif surely_inside(loc, margin, zone):
        state = replace(state, outside_fixes=0, last_fix=loc, left_at=None, walk=None)
    else:
        return state, []  # too uncertain to say either way
    return evaluate(state, profile, now, device_id)
