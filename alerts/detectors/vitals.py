"""Vital-sign alerts graded with NEWS2 bands, with persistence and hysteresis.

One :class:`~alerts.detectors.persistence.GradedTrack` per parameter; the
alert type names the parameter and the side (``vital_hr_high``...). Severity
follows the NEWS2 sub-score that persisted: 3 -> high, 2 -> medium, 1 -> low
(only scores >= ``Thresholds.min_alert_score`` alert, default 2).

Wrist skin temperature is turned into a core estimate before scoring: with a
personal temperature baseline (the resident's median wrist temperature of the
same part of the day), ``CORE_REFERENCE_C`` (36.8) plus the reading's
deviation from that median; without one, the reading plus
``Thresholds.skin_temp_offset_c`` (4.0). A rise of ``Thresholds.fever_rise_c``
(1.1 C) over the personal median grades as a 2 even below NEWS2's 39.1
(older adults' blunted fever). Temperature persists at least 30 minutes.
Blood pressure: systolic >= 180 or diastolic >= 120 (hypertensive crisis,
not NEWS2) grades as a 2 on the systolic track, >= 220 systolic as NEWS2's 3;
readings within 5 minutes of walking are not judged (:data:`REST_BEFORE`),
and a systolic below the red score that the resident routinely reaches (at or
under their own 99th percentile of that part of the day, ``Baseline.high``)
is not a crisis for them (chronic severe hypertension and its morning surge
are the clinician's to treat, not an operator's call every morning).
A high heart rate below NEWS2's red score (111-130/min) is likewise judged at
rest only: within 5 minutes of walking it is the heart rate of exertion.
Low readings are judged against the resident's own baseline too (SpO2, heart
rate and systolic pressure; the baseline of the same part of the day, waking
hours or night, see :meth:`Profile.baseline`): a low NEWS2 score that lies
within the resident's usual range (z >= -3 from the median, or at most one
scale under the resident's own 1st percentile: the intermittent night-time
desaturations a median treats as outliers) is not alarmed, because a
chronically low but stable SpO2 (COPD), a low resting heart rate or the
normal nocturnal dip of blood pressure in a resident with low-normal pressure
is what that person is like, not a deterioration. Below :data:`ALWAYS_ALARM`
(SpO2 <= 80 %, heart rate <= 35/min, systolic <= 80 mmHg) no baseline
excuses a reading. Without a baseline (a new resident, too little history)
NEWS2 alone decides. High readings are excused only in the crisis band (below). Readings from a band
reported off the wrist are ignored. A low temperature is not judged while the wearer
walks, for 30 minutes after, or while they are away from home (:data:`COLD_AFTER_ACTIVE`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from alerts.detectors.lifecycle import OpenAlerts, Want, reconcile
from alerts.detectors.news2 import DEFAULT_BANDS, Direction, VitalParam
from alerts.detectors.persistence import GradedTrack, observe, observe_idle
from alerts.detectors.types import (
    CORE_REFERENCE_C,
    AlertEvent,
    AlertType,
    ClearReason,
    Profile,
    Severity,
    iso,
    ms_to_utc,
    steps_delta,
)
from alerts.detectors.waking import vitals_night
from eldercare.protocol import Telemetry

SEVERITY_BY_SCORE: Final = {3: Severity.HIGH, 2: Severity.MEDIUM, 1: Severity.LOW}
BASELINE_TOLERANCE_Z: Final = 3.0
# Low values no personal baseline excuses (below NEWS2's own red limits).
ALWAYS_ALARM: Final = {VitalParam.SPO2: 80.0, VitalParam.HR: 35.0, VitalParam.SBP: 80.0}

ALERT_TYPES: Final = {
    (VitalParam.HR, Direction.HIGH): AlertType.VITAL_HR_HIGH,
    (VitalParam.HR, Direction.LOW): AlertType.VITAL_HR_LOW,
    (VitalParam.SPO2, Direction.LOW): AlertType.VITAL_SPO2_LOW,
    (VitalParam.SBP, Direction.HIGH): AlertType.VITAL_SBP_HIGH,
    (VitalParam.SBP, Direction.LOW): AlertType.VITAL_SBP_LOW,
    (VitalParam.TEMP, Direction.HIGH): AlertType.VITAL_TEMP_HIGH,
    (VitalParam.TEMP, Direction.LOW): AlertType.VITAL_TEMP_LOW,
}

_TYPES_OF: Final = {
    param: tuple((t, side) for (p, side), t in ALERT_TYPES.items() if p is param)
    for param in VitalParam
}


@dataclass(frozen=True, slots=True)
class VitalsState:
    tracks: Mapping[VitalParam, GradedTrack] = field(default_factory=dict)
    open: OpenAlerts = field(default_factory=dict)
    steps_seen: tuple[str, int, datetime] | None = None  # band, day's count, when
    active_until: datetime | None = None  # blood pressure is not judged before this


FEVER_SCORE: Final = 2  # a personal-baseline fever grades like NEWS2's 39.1
RED_SCORE: Final = 3  # NEWS2's red sub-score: no personal baseline excuses it
# Blood pressure is defined at rest: the guidelines measure after 5 minutes of quiet
# sitting (ACC/AHA 2017, section 4.1), and walking raises the systolic pressure of a
# hypertensive older adult past 180 without any crisis (cuffless wrist readings in
# motion are also the least accurate). A cadence of ACTIVE_CADENCE steps/min or more
# between two messages marks the wearer active; their blood pressure is not judged
# (neither raises, escalates nor clears) until REST_BEFORE after it.
# The same holds for a high heart rate below NEWS2's red score (111-130/min): walking
# takes an older adult's heart rate there (NEWS2 scores observations at rest), so it is
# judged at rest only; 131/min or more is judged whatever the wearer is doing.
ACTIVE_CADENCE: Final = 20.0
REST_BEFORE: Final = timedelta(minutes=5)
# A cold wrist is the weather, not hypothermia, while the wearer walks and for
# COLD_AFTER_ACTIVE after (hands warm up again for half an hour after coming in from
# the cold), and while they are away from home (their band's last fix outside every
# safe zone): a low temperature estimate is then not judged (neither raises nor clears).
# Wrist skin runs several degrees colder outdoors in winter; before 2026-12-04 a
# 40-minute walk in the cold raised hypothermia (high). Accidental hypothermia of older
# people happens still, at home, in a cold flat, which is still raised; being out in
# the cold is for the geofence, the long-lie and inactivity rules to raise.
COLD_AFTER_ACTIVE: Final = timedelta(minutes=30)


def activity(
    state: VitalsState, telemetry: Telemetry, observed_at: datetime
) -> tuple[tuple[str, int, datetime] | None, datetime | None]:
    """The state's step bookkeeping after one message: (steps seen, active until)."""
    steps = telemetry.steps
    if steps is None:
        return state.steps_seen, state.active_until
    prev, until = state.steps_seen, state.active_until
    if prev is not None and prev[0] == telemetry.device_id:
        if observed_at <= prev[2]:
            return prev, until  # late or repeated
        delta = steps_delta(prev[1], steps)
        minutes = (observed_at - prev[2]).total_seconds() / 60
        if delta >= ACTIVE_CADENCE * minutes:
            until = observed_at + REST_BEFORE
    return (telemetry.device_id, steps, observed_at), until


def core_estimate(
    skin_c: float, profile: Profile, *, night: bool, skin_shift_c: float = 0.0
) -> float:
    """Core temperature estimated from wrist skin temperature, to 0.1 degree.

    Personal: 36.8 plus the deviation from the resident's own median (same part
    of the day); without a baseline, the population offset (a clinician may
    calibrate it per resident). ``skin_shift_c``: the rise every resident's wrist
    shares now (hot weather, :mod:`alerts.detectors.ambient`), taken off a warm
    estimate, down to the reference at most: it explains a warm wrist, never a cold one.
    Before 2026-12-04 it was taken off every estimate, and on a hot day a wrist at its
    usual temperature in an air-conditioned home read as hypothermic (high severity).
    """
    baseline = profile.baseline(VitalParam.TEMP, night=night)
    if baseline is not None:
        core = CORE_REFERENCE_C + skin_c - baseline.median
    else:
        core = skin_c + profile.thresholds.skin_temp_offset_c
    if skin_shift_c and core > CORE_REFERENCE_C:
        core = max(core - skin_shift_c, CORE_REFERENCE_C)
    return round(core, 1)


def readings(
    telemetry: Telemetry, profile: Profile, *, night: bool, skin_shift_c: float = 0.0
) -> dict[VitalParam, float]:
    """The scoreable values of one telemetry message (temperature as a core estimate,
    against the baseline of the part of the day the message is in: ``night``)."""
    if telemetry.worn is False:
        return {}
    out: dict[VitalParam, float] = {}
    if telemetry.hr is not None:
        out[VitalParam.HR] = float(telemetry.hr)
    if telemetry.spo2 is not None:
        out[VitalParam.SPO2] = float(telemetry.spo2)
    if telemetry.bp_sys is not None:
        out[VitalParam.SBP] = float(telemetry.bp_sys)
    if telemetry.skin_temp_c is not None:
        out[VitalParam.TEMP] = core_estimate(
            telemetry.skin_temp_c, profile, night=night, skin_shift_c=skin_shift_c
        )
    return out


def grade(
    param: VitalParam,
    value: float,
    profile: Profile,
    *,
    night: bool = False,
    dbp: float | None = None,
) -> tuple[int, Direction | None]:
    """NEWS2 sub-score and side, after the personal-baseline allowance for low values.

    ``night`` (the reading is outside waking hours) picks the night or waking-hours
    baseline. For
    systolic pressure, ``dbp`` (the same reading's diastolic) may raise the grade
    on the high side (hypertensive crisis); for temperature, a rise of
    ``fever_rise_c`` over a personal baseline grades as :data:`FEVER_SCORE`.
    """
    th = profile.thresholds
    level, side = th.bands(param, profile.conditions).score(value)
    if (param is VitalParam.SBP and side is Direction.HIGH and level < RED_SCORE
            and th.sbp == DEFAULT_BANDS[VitalParam.SBP]):  # fmt: skip
        # the crisis band below NEWS2's red: not for pressures the resident routinely
        # reaches. A clinician's own bands are their judgement of this resident and are
        # applied as set (before 2026-12-04 this excused readings under their limit too)
        baseline = profile.baseline(param, night=night)
        if baseline is not None and baseline.high is not None and value <= baseline.high:
            level, side = 0, None
    if param is VitalParam.SBP and dbp is not None and side is not Direction.LOW:
        d = th.dbp.score_towards(dbp, Direction.HIGH)
        if d > level:
            level, side = d, Direction.HIGH
    if param is VitalParam.TEMP and level < FEVER_SCORE and side is not Direction.LOW:
        personal = profile.baseline(VitalParam.TEMP, night=night) is not None
        if personal and round(value - CORE_REFERENCE_C, 1) >= th.fever_rise_c:
            level, side = FEVER_SCORE, Direction.HIGH
    if level == 0 or side is not Direction.LOW or param not in ALWAYS_ALARM:
        return level, side
    if value <= ALWAYS_ALARM[param]:
        return level, side
    baseline = profile.baseline(param, night=night)
    if baseline is not None and baseline.usual_low(value, z=BASELINE_TOLERANCE_Z):
        return 0, None
    return level, side


def clear_ok(
    param: VitalParam,
    value: float,
    side: Direction | None,
    profile: Profile,
    *,
    night: bool = False,
    dbp: float | None = None,
) -> bool:
    """Inside the narrower band: still below the alarm level after a step towards it."""
    if side is None:
        return False
    margin = profile.thresholds.margin(param)
    step = margin if side is Direction.HIGH else -margin
    shifted_dbp = None if dbp is None else dbp + step
    level, got = grade(param, value + step, profile, night=night, dbp=shifted_dbp)
    return got is not side or level < profile.thresholds.min_alert_score


def step_value(
    state: VitalsState,
    profile: Profile,
    *,
    param: VitalParam,
    value: float,
    observed_at: datetime,
    device_id: str | None,
    now: datetime,
    night: bool = False,
    dbp: float | None = None,
    resting: bool = True,
    skin_shift_c: float = 0.0,
    cold_excused: bool = False,
) -> tuple[VitalsState, list[AlertEvent]]:
    """One reading of one parameter (``dbp``: the diastolic of a systolic reading;
    ``resting``: no walking in the last :data:`REST_BEFORE`; ``skin_shift_c``: the
    hot-weather rise already taken off a temperature, shown on its alert;
    ``cold_excused``: a cold wrist is the weather, :data:`COLD_AFTER_ACTIVE`)."""
    th = profile.thresholds
    track = state.tracks.get(param, GradedTrack())
    level, side = grade(param, value, profile, night=night, dbp=dbp)
    if not resting and param is VitalParam.HR and side is Direction.HIGH and level < RED_SCORE:
        return state, []  # the heart rate of exertion: not judged (module doc)
    if cold_excused and param is VitalParam.TEMP and side is Direction.LOW:
        return state, []  # the cold of outdoors, not hypothermia
    new = observe_idle(track, at=observed_at, side=side)
    if new is None:
        new = observe(
            track,
            at=observed_at,
            side=side,
            level=level,
            clear_ok=clear_ok(param, value, track.active_side, profile, night=night, dbp=dbp),
            min_level=th.min_alert_score,
            rules=th.persistence_of(param),
        )
    if new is track:
        return state, []
    tracks = dict(state.tracks)
    tracks[param] = new
    if not new.active and not track.active:  # the common case: nothing raised, nothing open
        return VitalsState(tracks, state.open, state.steps_seen, state.active_until), []
    open_alerts, events = state.open, []
    for alert_type, s in _TYPES_OF[param]:
        want = None
        if new.active and new.active_side is s:
            since = new.runs[new.active - 1]
            detail = {
                "parameter": param.value,
                "direction": s.value,
                "value": value,
                "news2_score": new.active,
                "observed_at": iso(observed_at),
                "since": iso(since.start) if since is not None else None,
            }
            if param is VitalParam.SBP and dbp is not None:
                detail["bp_dia"] = dbp
            if param is VitalParam.TEMP and skin_shift_c > 0:
                detail["hot_weather_shift_c"] = skin_shift_c
            want = Want(SEVERITY_BY_SCORE[new.active], device_id, detail, key=str(new.active))
        open_alerts, evs = reconcile(
            open_alerts,
            alert_type,
            want,
            resident_id=profile.resident_id,
            at=now,
            clear_reason=ClearReason.RESOLVED,
        )
        events.extend(evs)
    return VitalsState(tracks, open_alerts, state.steps_seen, state.active_until), events


@dataclass(frozen=True, slots=True)
class Reading:
    """What one telemetry message holds for the vital-sign rules, computed once per
    message and shared with the baseline-drift rule: when it was observed, whether
    that is night for the resident, and its scoreable values (:func:`readings`)."""

    observed_at: datetime
    night: bool
    values: Mapping[VitalParam, float]
    skin_shift_c: float = 0.0  # the hot-weather rise taken off the temperature


def reading(telemetry: Telemetry, profile: Profile, *, skin_shift_c: float = 0.0) -> Reading:
    observed_at = ms_to_utc(telemetry.ts)
    night = vitals_night(observed_at, profile)
    values = readings(telemetry, profile, night=night, skin_shift_c=skin_shift_c)
    return Reading(observed_at, night, values, skin_shift_c)


def step(
    state: VitalsState,
    profile: Profile,
    telemetry: Telemetry,
    now: datetime,
    message: Reading | None = None,
    *,
    away: bool = False,
) -> tuple[VitalsState, list[AlertEvent]]:
    """Fold every vital sign of one telemetry message into the state (``message``:
    its :func:`reading`, if the caller has it already; ``away``: the wearer is outside
    every safe zone, :data:`COLD_AFTER_ACTIVE`)."""
    events: list[AlertEvent] = []
    msg = message or reading(telemetry, profile)
    observed_at = msg.observed_at
    dbp = None if telemetry.bp_dia is None else float(telemetry.bp_dia)
    if telemetry.steps is not None:
        seen, until = activity(state, telemetry, observed_at)
        state = VitalsState(state.tracks, state.open, seen, until)
    resting = state.active_until is None or observed_at >= state.active_until
    cold_excused = away or (
        state.active_until is not None
        and observed_at < state.active_until - REST_BEFORE + COLD_AFTER_ACTIVE
    )
    for param, value in msg.values.items():
        if param is VitalParam.SBP and not resting:
            continue
        state, evs = step_value(
            state,
            profile,
            param=param,
            value=value,
            observed_at=observed_at,
            device_id=telemetry.device_id,
            now=now,
            night=msg.night,
            dbp=dbp if param is VitalParam.SBP else None,
            resting=resting,
            skin_shift_c=msg.skin_shift_c if param is VitalParam.TEMP else 0.0,
            cold_excused=cold_excused,
        )
        events.extend(evs)
    return state, events
