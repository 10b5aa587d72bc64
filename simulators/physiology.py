"""How a body's readings move: circadian rhythm, activity, episodes and sensor noise.

Pure functions of a profile, the local hour, what the resident is doing and a
seeded ``random.Random``. The models are deliberately simple and documented in
docs/simulators.md: a cosine circadian term, additive activity terms, an AR(1)
physiological wander and white measurement noise, then rounding as a band
would report.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import IntEnum

from simulators.profiles import Profile


class Activity(IntEnum):
    SLEEP = 0
    REST = 1  # at home, awake: sitting, pottering
    MEAL = 2
    WALK = 3  # a walk around the neighbourhood
    OUTING = 4  # market, park, family: away from home
    WANDER = 5  # dementia night wandering (scenario)
    LYING = 6  # on the floor after a fall, or motionless (scenario)


OUTDOORS = frozenset({Activity.WALK, Activity.OUTING, Activity.WANDER})


@dataclass(frozen=True, slots=True)
class DayPlan:
    """One local day of a resident's routine, jittered from the profile's Routine."""

    day: int  # local day number since the epoch
    wake_h: float
    sleep_h: float
    meals_h: tuple[float, ...]
    walks: tuple[tuple[float, float], ...]  # (start_h, end_h)
    outing: tuple[float, float] | None
    outing_bearing: float  # radians from home
    outing_km: float
    toilet_h: tuple[float, ...]  # night toilet trips (after midnight, before waking)

    def activity(self, h: float) -> Activity:
        if h < self.wake_h or h >= self.sleep_h:
            for t in self.toilet_h:
                if t <= h < t + 0.12:
                    return Activity.REST
            return Activity.SLEEP
        if self.outing is not None and self.outing[0] <= h < self.outing[1]:
            return Activity.OUTING
        for a, b in self.walks:
            if a <= h < b:
                return Activity.WALK
        for m in self.meals_h:
            if m <= h < m + 0.5:
                return Activity.MEAL
        return Activity.REST


def plan_day(profile: Profile, day: int, rng: random.Random) -> DayPlan:
    r = profile.routine
    wake = r.wake_h + rng.gauss(0, 0.3)
    sleep = min(23.9, r.sleep_h + rng.gauss(0, 0.3))
    walks = tuple(
        (s, s + r.walk_min / 60 * rng.uniform(0.7, 1.3))
        for s in (w + rng.gauss(0, 0.3) for w in r.walks_h)
        if rng.random() < 0.85
    )
    outing = None
    if rng.random() < r.outings_per_week / 7:
        start = rng.uniform(9.0, 15.0)
        outing = (start, start + rng.uniform(1.0, 2.5))
    n_toilet = min(4, int(rng.expovariate(1 / max(r.night_toilet_per_night, 0.01))))
    toilets = tuple(sorted(rng.uniform(0.5, max(0.6, wake - 0.3)) for _ in range(n_toilet)))
    return DayPlan(
        day=day, wake_h=wake, sleep_h=sleep,
        meals_h=tuple(m + rng.gauss(0, 0.2) for m in r.meals_h),
        walks=walks, outing=outing, outing_bearing=rng.uniform(0, 2 * math.pi),
        outing_km=rng.uniform(0.4, 3.0), toilet_h=toilets,
    )  # fmt: skip


@dataclass(slots=True)
class Effects:
    """What active scenario episodes do to the body at one moment (None: no change)."""

    hr_level: float | None = None
    hr_add: float = 0.0
    spo2_level: float | None = None
    bp_level: tuple[float, float] | None = None
    temp_add: float = 0.0
    activity: Activity | None = None
    still: bool = False  # no steps at all (inactivity, long lie)
    step_rate: float | None = None  # steps/min instead of the activity's (restless night)


@dataclass(slots=True)
class BodyState:
    """Slow physiological wander (AR(1)) carried from one reading to the next."""

    hr: float = 0.0
    bp: float = 0.0
    temp: float = 0.0
    spo2: float = 0.0
    extras: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Vitals:
    hr: int
    spo2: int
    bp_sys: int
    bp_dia: int
    skin_temp_c: float


_HR_ACTIVITY = {Activity.SLEEP: -7.0, Activity.REST: 2.0, Activity.MEAL: 6.0, Activity.WALK: 24.0,
                Activity.OUTING: 14.0, Activity.WANDER: 20.0, Activity.LYING: 4.0}  # fmt: skip
_BP_ACTIVITY = {Activity.SLEEP: -13.0, Activity.REST: 0.0, Activity.MEAL: 3.0, Activity.WALK: 14.0,
                Activity.OUTING: 8.0, Activity.WANDER: 12.0, Activity.LYING: 6.0}  # fmt: skip
_TWO_PI = 2 * math.pi


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def vitals(
    p: Profile,
    *,
    h: float,
    activity: Activity,
    effects: Effects,
    state: BodyState,
    wake_h: float,
    rng: random.Random,
) -> Vitals:
    """One set of readings at local hour ``h`` (pure apart from advancing ``state``)."""
    g = rng.gauss
    state.hr = 0.8 * state.hr + g(0, 2.0)
    state.bp = 0.85 * state.bp + g(0, 3.0)
    state.temp = 0.9 * state.temp + g(0, 0.08)
    state.spo2 = 0.7 * state.spo2 + g(0, 0.5)

    walk_gain = 0.6 if p.has("frailty") else 1.0
    act = _HR_ACTIVITY[activity] * (walk_gain if activity in OUTDOORS else 1.0)
    hr = p.hr_rest + 4.0 * math.cos(_TWO_PI * (h - 15.0) / 24) + act + effects.hr_add
    if effects.hr_level is not None:  # an arrhythmia barely follows activity
        hr = effects.hr_level + 0.2 * act + 0.5 * state.hr + g(0, 1.5)
    else:
        hr += state.hr + g(0, 1.5)

    surge = 9.0 if wake_h <= h < wake_h + 2.0 else 0.0
    sbp = p.sbp_rest + 6.0 * math.cos(_TWO_PI * (h - 10.0) / 24) + surge + _BP_ACTIVITY[activity]
    sbp += state.bp + g(0, 4.0)
    dbp = p.dbp_rest + 0.45 * (sbp - p.sbp_rest) + g(0, 3.0)
    if effects.bp_level is not None:
        sbp = effects.bp_level[0] + g(0, 5.0)
        dbp = effects.bp_level[1] + g(0, 3.0)
    dbp = min(dbp, sbp - 20.0)

    spo2 = p.spo2_base + state.spo2
    if activity in OUTDOORS and (p.has("copd") or p.has("copd_hypercapnic")):
        spo2 -= 2.0  # exertional desaturation
    if activity is Activity.SLEEP and p.sleep_spo2_dips and rng.random() < 0.25:
        spo2 -= rng.uniform(3.0, 8.0)
    if effects.spo2_level is not None:
        spo2 = effects.spo2_level + g(0, 1.0)

    temp = p.skin_temp_base + state.temp + effects.temp_add
    if activity is Activity.SLEEP:
        temp += 0.8  # distal warming in sleep
    elif activity in OUTDOORS:
        temp -= 0.7

    return Vitals(
        hr=round(_clip(hr, 30.0, 220.0)),
        spo2=round(_clip(spo2, 70.0, 100.0)),
        bp_sys=round(_clip(sbp, 80.0, 250.0)),
        bp_dia=round(_clip(dbp, 40.0, 150.0)),
        skin_temp_c=round(_clip(temp, 25.0, 41.0), 1),
    )


def step_rate(p: Profile, activity: Activity, rng: random.Random) -> float:
    """Steps per minute while doing ``activity``."""
    if activity in (Activity.WALK, Activity.WANDER):
        return p.cadence * rng.uniform(0.75, 1.05)
    if activity is Activity.OUTING:
        return p.cadence * rng.uniform(0.2, 0.5)
    if activity is Activity.REST:
        return rng.uniform(0.0, 6.0)
    if activity is Activity.MEAL:
        return rng.uniform(0.0, 2.0)
    return 0.0
