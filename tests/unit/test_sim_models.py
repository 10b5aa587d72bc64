"""Profiles, physiology, location and wrist accelerometer models stay in plausible ranges."""

from __future__ import annotations

import random
from statistics import mean

import numpy as np
import pytest

from eldercare.protocol import LocationSource
from eldercare.registry import CONDITIONS, NewResident
from simulators import motion
from simulators.location import distance_m, fix, offset
from simulators.physiology import Activity, BodyState, Effects, plan_day, vitals
from simulators.profiles import RUGAO_DISTRICTS, Profile, make_profile

PROFILES = [make_profile(random.Random(i), index=i, device_id=f"P-{i}", start_year=2025)
            for i in range(400)]  # fmt: skip


def test_profiles_are_plausible_and_registrable() -> None:
    for p in PROFILES:
        assert 60 <= p.age <= 100
        assert set(p.conditions) <= CONDITIONS
        assert p.district.contains(p.home_lat, p.home_lon)
        assert 10 <= p.interval_s <= 60
        entry = p.registry_entry()
        NewResident(**{k: v for k, v in entry.items() if k != "wristband"} | {
            "conditions": tuple(entry["conditions"])})  # fmt: skip
    names = {d.name for d, _ in RUGAO_DISTRICTS}
    assert {p.district.name for p in PROFILES} == names
    share = mean("hypertension" in p.conditions for p in PROFILES)
    assert 0.35 < share < 0.75
    assert any("copd_hypercapnic" in p.conditions for p in PROFILES)
    assert any("dementia" in p.conditions for p in PROFILES)


def _day_of_vitals(p: Profile, *, effects: Effects | None = None) -> dict[Activity, list[int]]:
    rng = random.Random(1)
    plan = plan_day(p, 0, rng)
    state = BodyState()
    hr: dict[Activity, list[int]] = {}
    for minute in range(24 * 60):
        h = minute / 60
        act = plan.activity(h)
        v = vitals(p, h=h, activity=act, effects=effects or Effects(), state=state,
                   wake_h=plan.wake_h, rng=rng)  # fmt: skip
        assert 20 <= v.bp_dia < v.bp_sys <= 280
        assert 50 <= v.spo2 <= 100
        assert 20.0 <= v.skin_temp_c <= 45.0
        hr.setdefault(act, []).append(v.hr)
    return hr


def test_heart_rate_is_lower_asleep_than_walking() -> None:
    for p in PROFILES[:40]:
        hr = _day_of_vitals(p)
        assert 35 < mean(hr[Activity.SLEEP]) < 85
        assert mean(hr[Activity.SLEEP]) < mean(hr[Activity.REST])
        if Activity.WALK in hr:
            assert mean(hr[Activity.WALK]) > mean(hr[Activity.REST]) + 5


def test_hypercapnic_copd_has_a_lower_spo2_baseline() -> None:
    copd = [p.spo2_base for p in PROFILES if "copd_hypercapnic" in p.conditions]
    healthy = [
        p.spo2_base for p in PROFILES if not {"copd", "copd_hypercapnic"} & set(p.conditions)
    ]
    assert max(copd) < 91 <= min(healthy) + 4
    assert min(healthy) >= 95


def test_episode_effects_move_the_readings() -> None:
    p = PROFILES[0]
    rng = random.Random(3)
    kw = {"h": 14.0, "activity": Activity.REST, "wake_h": 6.0, "rng": rng}
    assert vitals(p, effects=Effects(hr_level=150), state=BodyState(), **kw).hr > 130  # type: ignore[arg-type]
    assert vitals(p, effects=Effects(spo2_level=84), state=BodyState(), **kw).spo2 < 89  # type: ignore[arg-type]
    crisis = vitals(p, effects=Effects(bp_level=(200, 120)), state=BodyState(), **kw)  # type: ignore[arg-type]
    assert crisis.bp_sys > 180
    assert crisis.bp_dia > 105


def test_location_fix_accuracy_by_source() -> None:
    rng = random.Random(2)
    lat, lon = 32.37, 120.57
    outdoors = [fix(lat, lon, outdoors=True, rng=rng) for _ in range(500)]
    indoors = [fix(lat, lon, outdoors=False, rng=rng) for _ in range(500)]
    assert mean(f.src is LocationSource.GPS for f in outdoors) > 0.8
    assert not any(f.src is LocationSource.GPS for f in indoors)
    for f in outdoors + indoors:
        assert distance_m(lat, lon, f.lat, f.lon) < 4 * f.acc_m + 5
        limit = 15 if f.src is LocationSource.GPS else 40 if f.src is LocationSource.WIFI else 1500
        assert f.acc_m <= limit
    la, lo = offset(lat, lon, 300, 400)
    assert distance_m(lat, lon, la, lo) == pytest.approx(500, rel=0.01)


def _mag(s: motion.Samples) -> np.ndarray:  # type: ignore[type-arg]
    return motion.magnitude(s)


@pytest.mark.parametrize("direction", motion.FALL_DIRECTIONS)
@pytest.mark.parametrize("origin", motion.FALL_ORIGINS)
@pytest.mark.parametrize("long_lie", [True, False])
def test_falls_have_a_dip_an_impact_and_a_new_orientation(
    direction: motion.FallDirection, origin: motion.FallOrigin, long_lie: bool
) -> None:
    rng = np.random.default_rng(5)
    s = motion.fall(rng, direction=direction, origin=origin, long_lie=long_lie)
    t = np.array(s.t_ms)
    m = _mag(s)
    assert np.all(np.diff(t) == 20)  # 50 Hz
    assert len(t) * 20 >= 8000
    impact = s.event_ms
    assert abs(np.mean(m[t < 400]) - 1.0) < 0.2  # gravity at the start
    dip = m[(t > impact - 450) & (t < impact - 30)]
    assert dip.min() < 0.75
    peak = m[(t >= impact - 60) & (t <= impact + 60)].max()
    assert 2.0 <= peak <= 8.0 * np.sqrt(3)  # each axis saturates at 8 g
    assert peak >= (3.0 if origin == "standing" else 2.0)  # real falls: q10 3.5 g
    acc = np.stack([s.ax, s.ay, s.az], axis=1)
    before = acc[t < 300].mean(axis=0)
    after = acc[(t > impact + 1000) & (t < impact + 1900)].mean(axis=0)
    cos = before @ after / np.linalg.norm(before) / np.linalg.norm(after)
    assert cos < 0.8  # the wrist ends up differently oriented
    if long_lie:
        tail = m[t > t[-1] - 2000]
        assert abs(tail.mean() - 1.0) < 0.05
        assert tail.std() < 0.05


@pytest.mark.parametrize("kind", motion.ADL_KINDS)
def test_daily_activities_are_wrist_like_and_not_free_falls(kind: motion.AdlKind) -> None:
    s = motion.adl(np.random.default_rng(2), kind)
    m = _mag(s)
    t = np.array(s.t_ms)
    assert len(t) >= 150
    assert np.all(np.diff(t) == 20)
    assert m.max() <= motion.FULL_SCALE_G
    if kind in ("sit_down_hard", "lie_on_bed", "band_on_table"):
        assert abs(m[t > t[-1] - 1500].mean() - 1.0) < 0.05  # at rest afterwards: ~1 g
    if kind == "band_on_table":
        tail = np.stack([s.ax, s.ay, s.az], axis=1)[t > t[-1] - 1500]
        assert np.allclose(tail.mean(axis=0), [0, 0, 1], atol=0.02)
        assert tail.std(axis=0).max() < 0.01  # no tremor, no pulse: not on a wrist
    if kind in ("clapping", "jogging"):
        assert m.max() > 1.8
    if kind == "stairs":
        assert 1.2 < m.max() < 2.2


def test_same_generator_seed_same_window() -> None:
    a = motion.fall(np.random.default_rng(9), direction="forward", origin="standing", long_lie=True)
    b = motion.fall(np.random.default_rng(9), direction="forward", origin="standing", long_lie=True)
    assert a == b
