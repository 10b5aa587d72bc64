"""Virtual residents: who wears each band, where they live, how their days go.

A profile is drawn once per band from the band's own seeded ``random.Random``,
so the same seed and index always give the same person. Districts are
approximate bounding boxes of Rugao (如皋), Jiangsu: the city centre and a few
nearby towns, good enough to put homes on plausible streets, not a survey.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

LOCAL_OFFSET_MS = 8 * 3_600_000  # Asia/Shanghai: UTC+8 all year (no DST since 1991)
DAY_MS = 86_400_000
# The conditions make_profile draws (a scenario's `where: {conditions: ...}` names these).
CONDITIONS = ("hypertension", "copd", "copd_hypercapnic", "heart_failure", "dementia", "frailty")


@dataclass(frozen=True, slots=True)
class District:
    name: str
    name_zh: str
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float

    def __post_init__(self) -> None:
        if not (self.lat_min < self.lat_max and self.lon_min < self.lon_max):
            raise ValueError(f"empty bounding box for {self.name}")

    def contains(self, lat: float, lon: float) -> bool:
        return self.lat_min <= lat <= self.lat_max and self.lon_min <= lon <= self.lon_max


# Weight ~ population share of the simulated fleet.
RUGAO_DISTRICTS: tuple[tuple[District, float], ...] = (
    (District("Rucheng", "如城街道", 32.360, 32.400, 120.545, 120.600), 0.40),
    (District("Chengnan", "城南街道", 32.330, 32.360, 120.545, 120.600), 0.20),
    (District("Dongchen", "东陈镇", 32.360, 32.405, 120.620, 120.680), 0.15),
    (District("Dingyan", "丁堰镇", 32.330, 32.370, 120.630, 120.680), 0.12),
    (District("Baipu", "白蒲镇", 32.220, 32.260, 120.590, 120.650), 0.13),
)
_ROADS = ("Haiyang Rd", "Zhongshan Rd", "Fuqian Rd", "Yuejin Rd", "Ninghai Rd", "Wenfeng Rd",
          "Huancheng Rd", "Renmin Rd", "Xinmin Rd", "Zhufeng Rd")  # fmt: skip
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董"
_GIVEN_F = ("秀英", "桂英", "秀兰", "玉兰", "桂兰", "凤英", "玉珍", "淑珍", "兰英", "美华")
_GIVEN_M = ("建国", "国强", "志明", "德华", "福林", "永康", "长生", "宝山", "洪兴", "金生")
MODELS = (("EC-W2", "2.3.1"), ("EC-W2", "2.4.0"), ("EC-W3", "3.0.2"))
INTERVALS_S = (10, 15, 20, 30, 60)


@dataclass(frozen=True, slots=True)
class Routine:
    """A typical day, in local hours (jittered per day by physiology.plan_day)."""

    wake_h: float
    sleep_h: float  # bedtime, before midnight
    meals_h: tuple[float, float, float]
    walks_h: tuple[float, ...]  # start of each walk
    walk_min: float
    outings_per_week: float  # market, park, family, clinic
    night_toilet_per_night: float


@dataclass(frozen=True, slots=True)
class Profile:
    index: int
    device_id: str
    external_ref: str
    name: str
    sex: str  # "female" / "male", as the registry stores it
    birth_year: int
    age: int
    conditions: tuple[str, ...]
    living_alone: bool
    district: District
    address: str
    home_lat: float
    home_lon: float
    interval_s: int
    routine: Routine
    hr_rest: float
    sbp_rest: float
    dbp_rest: float
    spo2_base: float
    skin_temp_base: float
    sleep_spo2_dips: bool
    wandering_risk: float  # probability of a night wander per night (dementia)
    cadence: float  # steps/min when walking
    fall_detection: bool  # the band detects falls itself and sends a `fall` event
    charges_overnight: bool  # otherwise charges in the evening before bed
    model: str
    firmware: str
    extra: dict[str, Any] = field(default_factory=dict)

    def has(self, condition: str) -> bool:
        return condition in self.conditions

    def registry_entry(self) -> dict[str, Any]:
        """The resident and wristband as eldercare.registry_cli.register expects them."""
        return {
            "external_ref": self.external_ref,
            "name": self.name,
            "birth_year": self.birth_year,
            "sex": self.sex,
            "address": self.address,
            "district": self.district.name,
            "home_lat": self.home_lat,
            "home_lon": self.home_lon,
            "living_alone": self.living_alone,
            "conditions": list(self.conditions),
            "wristband": {
                "device_id": self.device_id,
                "model": self.model,
                "firmware": self.firmware,
                "interval_s": self.interval_s,
            },
        }


def _pick_district(rng: random.Random) -> District:
    x = rng.random() * sum(w for _, w in RUGAO_DISTRICTS)
    for d, w in RUGAO_DISTRICTS:
        x -= w
        if x <= 0:
            return d
    return RUGAO_DISTRICTS[-1][0]


def make_profile(
    rng: random.Random,
    *,
    index: int,
    device_id: str,
    start_year: int,
    interval_s: int | None = None,
) -> Profile:
    """Draw one resident (pure: everything comes from ``rng``)."""
    age = 60 + min(40, int(rng.gammavariate(2.2, 6.5)))
    sex = "female" if rng.random() < 0.56 else "male"
    old = (age - 60) / 40  # 0..1
    conditions: list[str] = []
    if rng.random() < 0.45 + 0.2 * old:
        conditions.append("hypertension")
    if rng.random() < 0.12:
        conditions.append("copd_hypercapnic" if rng.random() < 0.25 else "copd")
    if rng.random() < 0.05 + 0.12 * old:
        conditions.append("heart_failure")
    if rng.random() < 0.04 + 0.25 * old:
        conditions.append("dementia")
    if rng.random() < 0.08 + 0.35 * old:
        conditions.append("frailty")
    frail = "frailty" in conditions
    district = _pick_district(rng)
    lat = rng.uniform(district.lat_min, district.lat_max)
    lon = rng.uniform(district.lon_min, district.lon_max)
    surname = _SURNAMES[rng.randrange(len(_SURNAMES))]
    given = rng.choice(_GIVEN_F if sex == "female" else _GIVEN_M)
    wake = rng.uniform(5.3, 7.2)
    routine = Routine(
        wake_h=wake,
        sleep_h=rng.uniform(20.5, 22.8),
        meals_h=(wake + rng.uniform(0.4, 1.2), rng.uniform(11.2, 12.0), rng.uniform(17.0, 18.2)),
        walks_h=(() if frail and rng.random() < 0.5 else (rng.uniform(7.5, 9.5),))
        + ((rng.uniform(15.0, 17.0),) if rng.random() < 0.6 else ()),
        walk_min=rng.uniform(15, 30) if frail else rng.uniform(25, 60),
        outings_per_week=rng.uniform(0.5, 2.0) if frail else rng.uniform(2.0, 6.0),
        night_toilet_per_night=rng.uniform(0.5, 2.5),
    )
    copd = "copd" in conditions
    hypercapnic = "copd_hypercapnic" in conditions
    hypertensive = "hypertension" in conditions
    model, firmware = rng.choice(MODELS)
    sleep_dips = copd or hypercapnic or rng.random() < 0.15
    return Profile(
        index=index,
        device_id=device_id,
        external_ref=f"sim:{device_id}",
        name=surname + given,
        sex=sex,
        birth_year=start_year - age,
        age=age,
        conditions=tuple(conditions),
        living_alone=rng.random() < 0.3,
        district=district,
        address=f"{district.name_zh} {rng.choice(_ROADS)} {rng.randint(1, 399)}",
        home_lat=round(lat, 6),
        home_lon=round(lon, 6),
        interval_s=interval_s if interval_s is not None else rng.choice(INTERVALS_S),
        routine=routine,
        hr_rest=min(90.0, max(54.0, rng.gauss(68, 7))) + (8 if "heart_failure" in conditions
                                                          else 0),
        sbp_rest=rng.gauss(148, 10) if hypertensive else rng.gauss(124, 9),
        dbp_rest=rng.gauss(88, 6) if hypertensive else rng.gauss(76, 5),
        spo2_base=rng.uniform(88.5, 90.5) if hypercapnic else (
            rng.uniform(92.0, 94.5) if copd else rng.uniform(95.5, 98.0)),
        skin_temp_base=rng.uniform(32.0, 33.8),
        sleep_spo2_dips=sleep_dips,
        wandering_risk=rng.uniform(0.02, 0.15) if "dementia" in conditions else 0.0,
        cadence=rng.uniform(60, 85) if frail else rng.uniform(85, 110),
        fall_detection=rng.random() < 0.5,
        charges_overnight=rng.random() < 0.2 and not sleep_dips and "dementia" not in conditions,
        model=model,
        firmware=firmware,
    )  # fmt: skip
