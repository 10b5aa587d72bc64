"""Where a band thinks it is: GPS outdoors, WiFi or cell towers (LBS) indoors.

Accuracy figures follow what consumer wristbands report: GPS 3-15 m under open
sky, WiFi positioning 15-40 m, cell-tower (LBS) 200-1500 m. The reported fix is
the true position plus an error of about the reported accuracy, so a detector
that trusts a 1 km LBS fix for a geofence gets what it deserves.
"""

from __future__ import annotations

import math
import random

from eldercare.protocol import Location, LocationSource
from simulators.physiology import Activity, DayPlan
from simulators.profiles import Profile

M_PER_DEG_LAT = 111_320.0


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """The point ``north_m``/``east_m`` metres away (flat-earth, fine at city scale)."""
    return (
        lat + north_m / M_PER_DEG_LAT,
        lon + east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat))),
    )


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dn = (lat2 - lat1) * M_PER_DEG_LAT
    de = (lon2 - lon1) * M_PER_DEG_LAT * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dn, de)


def true_position(
    p: Profile,
    *,
    activity: Activity,
    plan: DayPlan,
    h: float,
    wander: tuple[float, float, float] | None = None,
) -> tuple[float, float]:
    """Where the resident is. ``wander`` = (bearing_rad, speed_m_per_h, hours_since_start)."""
    if wander is not None:
        bearing, speed, hours = wander
        d = speed * hours
        # a wandering walk drifts: the bearing turns slowly
        b = bearing + 0.6 * math.sin(hours * 2.1)
        return offset(p.home_lat, p.home_lon, d * math.cos(b), d * math.sin(b))
    if activity is Activity.WALK:
        for a, b in plan.walks:
            if a <= h < b:
                frac = (h - a) / max(b - a, 1e-6)
                radius = 150 + 250 * ((p.index % 5) / 4)
                ang = _TWO_PI * frac + p.index
                return offset(p.home_lat, p.home_lon, radius * (math.sin(ang) - math.sin(p.index)),
                              radius * (math.cos(ang) - math.cos(p.index)))  # fmt: skip
    if activity is Activity.OUTING and plan.outing is not None:
        a, b = plan.outing
        travel_h = min(0.25, (b - a) / 3)
        frac = min(1.0, (h - a) / travel_h, (b - h) / travel_h)
        d = plan.outing_km * 1000 * max(0.0, frac)
        return offset(p.home_lat, p.home_lon, d * math.cos(plan.outing_bearing),
                      d * math.sin(plan.outing_bearing))  # fmt: skip
    return p.home_lat, p.home_lon


_TWO_PI = 2 * math.pi


def fix(lat: float, lon: float, *, outdoors: bool, rng: random.Random) -> Location:
    """A reported fix near the true position, with the source's typical accuracy."""
    u = rng.random()
    if outdoors and u < 0.9:
        src, acc = LocationSource.GPS, rng.uniform(3.0, 15.0)
    elif u < 0.75:
        src, acc = LocationSource.WIFI, rng.uniform(15.0, 40.0)
    else:
        src, acc = LocationSource.LBS, rng.uniform(200.0, 1500.0)
    err = abs(rng.gauss(0, acc * 0.6))
    ang = rng.uniform(0, _TWO_PI)
    la, lo = offset(lat, lon, err * math.cos(ang), err * math.sin(ang))
    return Location(lat=round(la, 6), lon=round(lo, 6), acc_m=round(acc, 1), src=src)
