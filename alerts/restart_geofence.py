"""Restart, geofence: the recent location fixes replayed through the detector.

Pure. The clocks of a resident who is out (when they left, the run of walking
away) live in memory. At a restart the location fixes of every resident whose
band's last fix is not surely inside a safe zone (:func:`may_be_outside`) are
read back for :func:`geofence_lookback` (:func:`alerts.evidence.load_fixes`)
and replayed through the detector (:func:`with_fixes`), so an exit that was
timing when the engine stopped is raised on time, not one allowance later. The
open alerts stay as stored; the next tick decides at the restart's time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from alerts.detectors import Profile, ResidentState, geofence
from eldercare.protocol import Location

Fix = tuple[datetime, str, Location]  # when, which band, where


def may_be_outside(loc: Location, profile: Profile) -> bool:
    """Whether a resident's last fix leaves them possibly out: it is not surely inside
    one of their safe zones (the detector's own rule for inside)."""
    if not profile.safe_zones:
        return False
    margin, zone = geofence.margin_outside(loc, profile.safe_zones)
    return not geofence.surely_inside(loc, margin, zone)


def geofence_lookback(profile: Profile) -> timedelta:
    """How far back a restart replays a resident's fixes: an hour beyond the longest of
    the geofence's clocks for them."""
    longest = max(profile.day_outside_allowed, geofence.NIGHT_OUTSIDE_ALLOWED,
                  geofence.WALK_AWAY_FOR)  # fmt: skip
    return longest + timedelta(hours=1)


def with_fixes(
    states: Mapping[int, ResidentState],
    fixes: Mapping[int, Sequence[Fix]],
    profiles: Mapping[int, Profile],
) -> dict[int, ResidentState]:
    """Pure: each resident's fixes replayed through the geofence in time order, keeping
    the clocks they set (left at, outside fixes, walking away, the newest fix's time)
    and the stored open alerts; what the replay would have raised is left to the next
    tick, at now. A fix the replay took and the broker delivers again after the restart
    (it was stored, not yet decided on) is then ignored as repeated."""
    out = dict(states)
    for resident_id, seen in fixes.items():
        profile = profiles.get(resident_id)
        if profile is None or not seen:
            continue
        state = out.get(resident_id, ResidentState())
        stored = state.geofence.open
        geo = geofence.GeofenceState(open=stored)
        for at, device_id, loc in sorted(seen, key=lambda fix: fix[0]):
            geo, _ = geofence.step(geo, profile, loc, device_id, at, at=at)
        out[resident_id] = replace(state, geofence=replace(geo, open=stored))
    return out
