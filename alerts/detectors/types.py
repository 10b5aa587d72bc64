"""Values shared by the detectors: alert types, severities, events, the resident profile.

Everything is an immutable value. Times are timezone-aware ``datetime`` objects
in UTC; the platform clock is always passed in as ``now`` and a reading's own
time (the band's ``ts``) is converted with :func:`ms_to_utc`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final

from alerts.detectors.news2 import DBP_BANDS, DEFAULT_BANDS, SPO2_SCALE_2, ParamBands, VitalParam
from eldercare.protocol import Location

DEFAULT_TZ: Final = "Asia/Shanghai"
COPD_HYPERCAPNIC: Final = "copd_hypercapnic"
DEMENTIA: Final = "dementia"
DEFAULT_INACTIVITY_AFTER: Final = timedelta(hours=3)
# The fixed local split of the day the daily summaries use (alerts/daily_summary.py: vital
# histograms by part of the day, the night parts' steps). night_activity.night_of uses it
# too, so live and learned agree; the vitals' night baselines apply outside it and outside
# the resident's own window (waking.vitals_night). The live waking-hours rules (inactivity,
# band_not_worn, geofence) use the resident's own Profile.waking_start/end instead.
SUMMARY_WAKING: Final = (time(7, 0), time(22, 0))
# Mean oral temperature of healthy adults (Mackowiak, Wasserman & Levine, JAMA 1992;
# 268:1578-80): the core estimate for a resident's usual wrist skin temperature.
CORE_REFERENCE_C: Final = 36.8
# Temperature is slow and the wrist is ambient-sensitive (a hot drink, a bath, bedding):
# a temperature alarm needs at least this long, whatever the general persistence says.
TEMP_MIN_DURATION: Final = timedelta(minutes=30)


class Severity(StrEnum):
    """Alarm priority in the spirit of IEC 60601-1-8: immediate, prompt, awareness."""

    CRITICAL = "critical"  # someone must act now (SOS, fall, long lie)
    HIGH = "high"  # prompt response (NEWS2 red score, night wandering, inactivity)
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK: Final = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


class AlertType(StrEnum):
    SOS = "sos"
    FALL = "fall"
    LONG_LIE = "long_lie"
    VITAL_HR_HIGH = "vital_hr_high"
    VITAL_HR_LOW = "vital_hr_low"
    VITAL_SPO2_LOW = "vital_spo2_low"
    VITAL_SBP_HIGH = "vital_sbp_high"
    VITAL_SBP_LOW = "vital_sbp_low"
    VITAL_TEMP_HIGH = "vital_temp_high"
    VITAL_TEMP_LOW = "vital_temp_low"
    BASELINE_DEVIATION = "baseline_deviation"
    INACTIVITY = "inactivity"
    GEOFENCE_EXIT = "geofence_exit"
    DEVICE_OFFLINE = "device_offline"
    BATTERY_LOW = "battery_low"
    BAND_NOT_WORN = "band_not_worn"
    IMU_REFUSED = "imu_refused"
    NIGHT_ACTIVITY = "night_activity"


class ClearReason(StrEnum):
    RESOLVED = "resolved"  # a vital sign or baseline back inside its narrower band for a while
    CANCELLED_BY_WEARER = "cancelled_by_wearer"  # "I'm OK" inside the fall cancel window
    NOT_CONFIRMED = "not_confirmed"  # the full imu window retracts a screened suspicion
    MOVEMENT_RESUMED = "movement_resumed"
    RETURNED_TO_SAFE_ZONE = "returned_to_safe_zone"
    DEVICE_BACK_ONLINE = "device_back_online"
    BATTERY_RECOVERED = "battery_recovered"
    CHARGING = "charging"
    BAND_WORN = "band_worn"
    DATA_ACCEPTED = "data_accepted"  # the band's movement windows are accepted again
    BAND_UNPAIRED = "band_unpaired"  # the band is no longer the resident's (re-paired, revoked)


Detail = Mapping[str, Any]  # JSON-ready values only: str, int, float, bool, lists, dicts


@dataclass(frozen=True, slots=True)
class AlertRaised:
    resident_id: int
    device_id: str | None
    type: AlertType
    severity: Severity
    at: datetime
    detail: Detail


@dataclass(frozen=True, slots=True)
class AlertUpdated:
    """A repeat or change (stage, severity, new evidence) of an alert that is still open."""

    resident_id: int
    device_id: str | None
    type: AlertType
    severity: Severity
    at: datetime
    detail: Detail


@dataclass(frozen=True, slots=True)
class AlertCleared:
    resident_id: int
    type: AlertType
    at: datetime
    reason: ClearReason


AlertEvent = AlertRaised | AlertUpdated | AlertCleared


def ms_to_utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def steps_delta(last: int | None, steps: int | None) -> int:
    """New steps since the last report; the daily counter restarts at midnight."""
    if steps is None or last is None:
        return 0
    return steps - last if steps >= last else steps


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _positive(name: str, value: timedelta) -> None:
    if value <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True, slots=True)
class Persistence:
    """How long a condition must hold to raise, and how long its absence to clear."""

    min_readings: int = 3
    min_duration: timedelta = timedelta(minutes=5)
    clear_readings: int = 3
    clear_duration: timedelta = timedelta(minutes=10)
    max_gap: timedelta = timedelta(minutes=15)  # a longer silence restarts the count

    def __post_init__(self) -> None:
        if self.min_readings < 1 or self.clear_readings < 1:
            raise ValueError("reading counts must be at least 1")
        if self.min_duration < timedelta(0) or self.clear_duration < timedelta(0):
            raise ValueError("durations must not be negative")
        _positive("max_gap", self.max_gap)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A resident's vital-sign rules: NEWS2 bands by default, overridable by a clinician.

    ``spo2`` None means "pick NEWS2 scale 1, or scale 2 for hypercapnic COPD".
    ``margins`` is the hysteresis per parameter: to clear, a value must score
    below ``min_alert_score`` even after moving ``margin`` towards the alarm.
    ``dbp``: diastolic bands (hypertensive crisis, news2.py); a diastolic alarm
    raises the systolic track's ``vital_sbp_high`` (one blood-pressure alarm).
    ``fever_rise_c``: a wrist skin temperature this far above the resident's own
    median (same part of the day) grades as a 2 (fever in older adults: a rise
    of > 1.1 C over baseline, High et al., IDSA guideline, Clin Infect Dis
    2009;48:149-71); needs a temperature baseline, see docs/alerts.md.
    """

    hr: ParamBands = DEFAULT_BANDS[VitalParam.HR]
    spo2: ParamBands | None = None
    sbp: ParamBands = DEFAULT_BANDS[VitalParam.SBP]
    dbp: ParamBands = DBP_BANDS
    temp: ParamBands = DEFAULT_BANDS[VitalParam.TEMP]
    min_alert_score: int = 2
    persistence: Persistence = Persistence()
    margins: Mapping[VitalParam, float] = field(
        default_factory=lambda: {
            VitalParam.HR: 5.0,
            VitalParam.SPO2: 1.0,
            VitalParam.SBP: 5.0,
            VitalParam.TEMP: 0.2,
        }
    )
    skin_temp_offset_c: float = 4.0  # wrist skin to core, without a baseline: docs/alerts.md
    fever_rise_c: float = 1.1

    def __post_init__(self) -> None:
        score = self.min_alert_score
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 3:
            raise ValueError("min_alert_score must be 1, 2 or 3")
        if self.fever_rise_c <= 0:
            raise ValueError("fever_rise_c must be positive")
        if any(m < 0 for m in self.margins.values()):
            raise ValueError("hysteresis margins must not be negative")

    def bands(self, param: VitalParam, conditions: frozenset[str]) -> ParamBands:
        if param is VitalParam.SPO2:
            if self.spo2 is not None:
                return self.spo2
            return SPO2_SCALE_2 if COPD_HYPERCAPNIC in conditions else DEFAULT_BANDS[param]
        return {VitalParam.HR: self.hr, VitalParam.SBP: self.sbp, VitalParam.TEMP: self.temp}[param]

    def margin(self, param: VitalParam) -> float:
        return self.margins.get(param, 0.0)

    def persistence_of(self, param: VitalParam) -> Persistence:
        """The persistence rules of one parameter (temperature: at least 30 min)."""
        p = self.persistence
        if param is VitalParam.TEMP and p.min_duration < TEMP_MIN_DURATION:
            return Persistence(p.min_readings, TEMP_MIN_DURATION, p.clear_readings,
                               max(p.clear_duration, TEMP_MIN_DURATION), p.max_gap)  # fmt: skip
        return p


@dataclass(frozen=True, slots=True)
class Baseline:
    """A resident's own typical value: median and a robust scale (1.4826 x MAD, floored),
    and ``low``, the value the resident routinely reaches (a low percentile, see
    alerts/baselines.py), when known."""

    median: float
    scale: float
    n: int
    low: float | None = None
    high: float | None = None  # the value the resident routinely reaches upwards (99th pct)

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError("baseline scale must be positive")
        if self.low is not None and self.low > self.median:
            raise ValueError("a baseline's low percentile cannot exceed its median")
        if self.high is not None and self.high < self.median:
            raise ValueError("a baseline's high percentile cannot be below its median")

    def usual_low(self, value: float, *, z: float) -> bool:
        """Is a low ``value`` within this resident's own usual range?

        Within ``z`` robust scales of the median, or no more than one scale under
        the low percentile (intermittent dips the median and MAD treat as outliers).
        """
        if (value - self.median) / self.scale >= -z:
            return True
        return self.low is not None and value >= self.low - self.scale

    def z(self, value: float) -> float:
        return (value - self.median) / self.scale


@dataclass(frozen=True, slots=True)
class NightActivityBaseline:
    """A resident's usual night (steps walked 22:00-07:00 local) and how many steps a
    night may hold before it is raised (night_activity.py, learned from the daily
    summaries)."""

    threshold: int
    median: float
    nights: int  # known nights it was learned from

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.median < 0 or self.nights < 1:
            raise ValueError("a night-activity baseline needs threshold >= 1, median >= 0, nights")


@dataclass(frozen=True, slots=True)
class SafeZone:
    lat: float
    lon: float
    radius_m: float
    name: str = "home"

    def __post_init__(self) -> None:
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError("safe zone centre out of range")
        if self.radius_m <= 0:
            raise ValueError("safe zone radius must be positive")


@dataclass(frozen=True, slots=True)
class Away:
    """The resident is away from home from ``starts_at`` until ``ends_at`` (a hospital
    stay, a week with family): :mod:`alerts.detectors.away`."""

    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        if self.ends_at <= self.starts_at:
            raise ValueError("an absence must end after it starts")

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True, slots=True)
class FallRules:
    cancel_window: timedelta = timedelta(seconds=45)
    long_lie_after: timedelta = timedelta(minutes=10)
    recovery_steps: int = 10  # steps after a suspected fall that show the wearer got up
    band_confirm_after: timedelta = timedelta(seconds=30)  # a band-only report, falls.py

    def __post_init__(self) -> None:
        _positive("cancel_window", self.cancel_window)
        _positive("band_confirm_after", self.band_confirm_after)
        if self.long_lie_after <= self.cancel_window:
            raise ValueError("long_lie_after must exceed the cancel window")


@dataclass(frozen=True, slots=True)
class DeviceRules:
    interval_factor: float = 3.0  # offline after this many missed telemetry intervals...
    grace: timedelta = timedelta(minutes=2)  # ...plus this
    reconnect_grace: timedelta = timedelta(minutes=10)  # at least, after a dropped link
    battery_low_pct: int = 15
    battery_clear_pct: int = 20
    not_worn_after: timedelta = timedelta(minutes=30)
    not_worn_charging_after: timedelta = timedelta(hours=2)
    imu_refused_after: int = 2  # movement windows refused in a row: not a one-off

    def __post_init__(self) -> None:
        if self.imu_refused_after < 1:
            raise ValueError("imu_refused_after must be at least 1")
        if self.interval_factor < 1:
            raise ValueError("interval_factor must be at least 1")
        if not 0 < self.battery_low_pct <= self.battery_clear_pct <= 100:
            raise ValueError("need 0 < battery_low_pct <= battery_clear_pct <= 100")


@dataclass(frozen=True, slots=True)
class Profile:
    """What the detectors know about one resident; built by the shell from the registry."""

    resident_id: int
    conditions: frozenset[str] = frozenset()
    lives_alone: bool = False
    safe_zones: tuple[SafeZone, ...] = ()
    thresholds: Thresholds = Thresholds()
    baselines: Mapping[VitalParam, Baseline] = field(default_factory=dict)  # waking hours
    night_baselines: Mapping[VitalParam, Baseline] = field(default_factory=dict)
    expected_interval_s: int = 60  # registry value; a band's announced interval_s wins
    tz: str = DEFAULT_TZ
    # the resident's waking hours for the live rules (inactivity, band_not_worn, geofence):
    # learned from their routine (alerts/detectors/waking.py), else 07:00-22:00
    waking_start: time = SUMMARY_WAKING[0]
    waking_end: time = SUMMARY_WAKING[1]
    inactivity_after: timedelta | None = None  # a clinician's setting; wins over the routine
    inactivity_routine: timedelta | None = None  # learned from the resident's days, inactivity.py
    day_outside_allowed: timedelta = timedelta(hours=3)  # dementia: a daytime outing, geofence.py
    day_range_m: float = 3000.0  # dementia: farther than this by day, geofence.py
    night_activity: NightActivityBaseline | None = None  # the usual night, night_activity.py
    falls: FallRules = FallRules()
    devices: DeviceRules = DeviceRules()
    # the resident's bands not revoked, from the registry; None: not known (every band
    # the resident's readings come from counts). A band re-paired to someone else is
    # forgotten (device_health.keep_bands).
    bands: frozenset[str] | None = None
    away: Away | None = None  # current or planned absence from home (eldercare.absence)

    def __post_init__(self) -> None:
        if self.expected_interval_s < 1:
            raise ValueError("expected_interval_s must be at least 1")
        if self.inactivity_after is not None:
            _positive("inactivity_after", self.inactivity_after)
        if self.inactivity_routine is not None:
            _positive("inactivity_routine", self.inactivity_routine)
        if self.day_outside_allowed < timedelta(0):
            raise ValueError("day_outside_allowed must not be negative")
        if self.day_range_m <= 0:
            raise ValueError("day_range_m must be positive")

    @property
    def inactivity_threshold(self) -> timedelta:
        """Still this long in waking hours raises inactivity: the clinician's setting,
        else what the resident's routine allows, else 3 h."""
        return self.inactivity_threshold_from[0]

    @property
    def inactivity_threshold_from(self) -> tuple[timedelta, str]:
        """The inactivity threshold and where it comes from: clinician, routine, default."""
        if self.inactivity_after:
            return self.inactivity_after, "clinician"
        if self.inactivity_routine:
            return self.inactivity_routine, "routine"
        return DEFAULT_INACTIVITY_AFTER, "default"

    @property
    def dementia(self) -> bool:
        return DEMENTIA in self.conditions

    def baseline(self, param: VitalParam, *, night: bool) -> Baseline | None:
        """The resident's own baseline for that part of the day (night falls back to day)."""
        if night:
            found = self.night_baselines.get(param)
            if found is not None:
                return found
        return self.baselines.get(param)


def location_detail(loc: Location | None) -> dict[str, Any] | None:
    if loc is None:
        return None
    return {"lat": loc.lat, "lon": loc.lon, "acc_m": loc.acc_m, "src": loc.src.value}
