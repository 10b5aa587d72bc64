"""One resident, one input, pure: ``step(profile, state, item, now=...) -> (state, events)``.

Inputs are what ingest hands over (:class:`~ingest.rows.Accepted` wrapping a
Telemetry, DeviceEvent, ImuWindow or StatusReport, and :class:`~ingest.rows.Refusal`
for a message it refused, with the SOS or fall it may still hold), a :class:`Tick` for the
time-driven rules (offline, inactivity, band not worn, fall confirmation and
long lie, night-time re-grading of a geofence exit), and :class:`AlertClosed`
when an operator closes an alert in the lifecycle layer.

Closing: an SOS or fall episode ends (the next press or fall raises afresh); a
night-activity alert is forgotten (its night is not raised again, the next is).
A condition alert (vitals, baseline, inactivity, geofence, device health)
closed while its condition still holds is *muted* at the severity it had: it
stays open inside the detector, its updates are dropped, and when the
condition clears it unmutes silently, so the same condition is not raised
again until it recurs. If it grows worse than the operator saw it (a heart
rate from medium to high, a day-time outing that runs into the night), that
is news: it unmutes and is raised afresh.

A restart rebuilds such mutes from the database (:mod:`alerts.restart_mutes`) with a
deadline (``mute_until``): the detectors start empty, so no clear would ever end them.
Raised again (at most at the muted severity) before the deadline, the type is held
open and the mute becomes an ordinary one; not raised by then, the mute is lifted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

import msgspec

from alerts.detectors import (
    away,
    baseline,
    device_health,
    falls,
    geofence,
    inactivity,
    night_activity,
    sos,
    vitals,
)
from alerts.detectors.lifecycle import OpenAlert, OpenAlerts, forget
from alerts.detectors.types import (
    AlertCleared,
    AlertEvent,
    AlertType,
    Profile,
    Severity,
    ms_to_utc,
    steps_delta,
)
from alerts.falls import FallModel
from eldercare.protocol import DeviceEvent, EventType, ImuWindow, Telemetry
from ingest.rows import Accepted, Refusal


@dataclass(frozen=True, slots=True)
class Tick:
    now: datetime
    # since when the engine has heard ingest's feed without a break (alerts.feed); None:
    # not known (a small deployment), bands' silences are judged as they are
    feed_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertClosed:
    """An operator closed this resident's open alert of ``type``."""

    type: AlertType


Input = Accepted | Refusal | Tick | AlertClosed


class _HoldsOpen(Protocol):
    @property
    def open(self) -> OpenAlerts: ...


@dataclass(frozen=True, slots=True)
class ResidentState:
    sos: sos.SosState = field(default_factory=sos.SosState)
    falls: falls.FallsState = field(default_factory=falls.FallsState)
    vitals: vitals.VitalsState = field(default_factory=vitals.VitalsState)
    baseline: baseline.BaselineState = field(default_factory=baseline.BaselineState)
    inactivity: inactivity.InactivityState = field(default_factory=inactivity.InactivityState)
    geofence: geofence.GeofenceState = field(default_factory=geofence.GeofenceState)
    devices: device_health.DeviceHealthState = field(
        default_factory=device_health.DeviceHealthState
    )
    last_steps: dict[str, int] = field(default_factory=dict)
    muted: Mapping[AlertType, Severity] = field(default_factory=dict)  # closed at severity
    night: night_activity.NightActivityState = field(
        default_factory=night_activity.NightActivityState
    )
    steps_at: dict[str, int] = field(default_factory=dict)  # band ts of each last_steps
    # restored at a restart (a subset of muted): lifted at this time unless raised before
    mute_until: Mapping[AlertType, datetime] = field(default_factory=dict)
    # raised while the resident is away from home, held back until they are due back
    away_held: away.Held = field(default_factory=dict)

    def open_alerts(self) -> dict[AlertType, OpenAlert]:
        """Every alert the detectors hold open, at most one per type."""
        out: dict[AlertType, OpenAlert] = {}
        for part in self._parts():
            out.update(part.open)
        return out

    def holds_open(self) -> bool:
        """Does any detector hold an alert open? (``open_alerts`` without building it.)"""
        return any(part.open for part in self._parts())

    def _parts(self) -> tuple[_HoldsOpen, ...]:
        return (
            self.sos, self.falls, self.vitals, self.baseline,
            self.inactivity, self.geofence, self.devices, self.night,
        )  # fmt: skip


def _telemetry(
    profile: Profile, s: ResidentState, t: Telemetry, now: datetime, skin_shift_c: float
) -> tuple[ResidentState, list[AlertEvent]]:
    events: list[AlertEvent] = []
    devices, evs = device_health.step(s.devices, profile, t, now)
    events += evs
    if t.worn is None and (track := devices.devices.get(t.device_id)) and track.not_worn_since:
        # a band that reports its wear state by events (docs/protocol.md) and said
        # "removed": its sensors read a bedside table. Before 2026-12-04 its readings
        # were judged as the wearer's (a low heart rate and SpO2 raised, high)
        t = msgspec.structs.replace(t, worn=False)
    delta, last_steps, steps_at = 0, s.last_steps, s.steps_at
    kept_at = s.steps_at.get(t.device_id)
    if t.steps is not None and (kept_at is None or t.ts >= kept_at):
        delta = steps_delta(s.last_steps.get(t.device_id), t.steps)
        last_steps = {**s.last_steps, t.device_id: t.steps}
        steps_at = {**s.steps_at, t.device_id: t.ts}
    # else a reading from the band's backlog, older than the counter kept: its lower
    # daily count, kept as the latest, made the next reading look like thousands of new
    # steps (a fallen wearer "walked"; found on 2026-12-03). It says nothing new.
    msg = vitals.reading(t, profile, skin_shift_c=skin_shift_c)
    away = s.geofence.outside_fixes >= geofence.MIN_OUTSIDE_FIXES  # as the geofence counts it
    vit, evs = vitals.step(s.vitals, profile, t, now, msg, away=away)
    events += evs
    base = s.baseline
    if profile.baselines or profile.night_baselines:
        for param, value in msg.values.items():
            base, evs = baseline.step_value(
                base, profile, param=param, value=value, observed_at=msg.observed_at,
                device_id=t.device_id, now=now, night=msg.night,
            )  # fmt: skip
            events += evs
    fal = s.falls
    if t.steps is not None:
        fal, evs = falls.step_report(fal, profile, delta, msg.observed_at, now)
        events += evs
    if t.worn is False:
        fal, evs = falls.off_wrist(fal, profile, msg.observed_at, now)
        events += evs
    elif t.hr is not None and fal.episode is not None:
        fal, evs = falls.heart_rate(fal, profile, t.hr, msg.observed_at, now)
        events += evs
    usable = device_health.band_usable(devices, profile, now)
    ina, evs = inactivity.step(s.inactivity, profile, moved=delta > 0, usable=usable, now=now)
    events += evs
    geo = s.geofence
    if t.loc is not None:
        geo, evs = geofence.step(geo, profile, t.loc, t.device_id, now, at=msg.observed_at)
        events += evs
    restless = s.night
    if t.steps is not None and msg.night:  # by day night_activity.step does nothing
        restless, evs = night_activity.step(restless, profile, delta=delta, worn=t.worn,
                                            observed_at=msg.observed_at,
                                            device_id=t.device_id, now=now)  # fmt: skip
        events += evs
    # built whole, not with dataclasses.replace (3.2 against 5.3 µs, on every reading):
    # a field added to ResidentState must be passed on here, or each reading drops it
    new = ResidentState(s.sos, fal, vit, base, ina, geo, devices, last_steps, s.muted, restless,
                        steps_at=steps_at, mute_until=s.mute_until,
                        away_held=s.away_held)  # fmt: skip
    return new, events


_ALIVE = frozenset({EventType.SOS, EventType.IM_OK, EventType.WORN})


def _event(
    profile: Profile, s: ResidentState, e: DeviceEvent, now: datetime
) -> tuple[ResidentState, list[AlertEvent]]:
    events: list[AlertEvent] = []
    devices, evs = device_health.step(s.devices, profile, e, now)
    events += evs
    so, evs = sos.step(s.sos, profile, e, now)
    events += evs
    fal, evs = falls.step_event(s.falls, profile, e, now)
    events += evs
    usable = device_health.band_usable(devices, profile, now)
    ina, evs = inactivity.step(
        s.inactivity, profile, moved=e.type in _ALIVE, usable=usable, now=now
    )
    events += evs
    geo = s.geofence
    if e.loc is not None:
        geo, evs = geofence.step(geo, profile, e.loc, e.device_id, now, at=ms_to_utc(e.ts))
        events += evs
    return replace(s, sos=so, falls=fal, inactivity=ina, geofence=geo, devices=devices), events


def _imu(
    profile: Profile, s: ResidentState, w: ImuWindow, now: datetime, model: FallModel | None
) -> tuple[ResidentState, list[AlertEvent]]:
    events: list[AlertEvent] = []
    devices, evs = device_health.step(s.devices, profile, w, now)
    events += evs
    fal = s.falls
    if model is not None:
        fal, evs = falls.step_imu(fal, profile, w, model, now)
        events += evs
    usable = device_health.band_usable(devices, profile, now)
    moved = w.trigger == "motion" and not evs
    ina, evs = inactivity.step(s.inactivity, profile, moved=moved, usable=usable, now=now)
    events += evs
    return replace(s, falls=fal, inactivity=ina, devices=devices), events


def _tick(
    profile: Profile, s: ResidentState, now: datetime, feed_since: datetime | None = None
) -> tuple[ResidentState, list[AlertEvent]]:
    events: list[AlertEvent] = []
    devices, evs = device_health.evaluate(s.devices, profile, now, feed_since=feed_since)
    events += evs
    usable = device_health.band_usable(devices, profile, now)
    ina, evs = inactivity.step(s.inactivity, profile, moved=False, usable=usable, now=now)
    events += evs
    geo, evs = geofence.evaluate(s.geofence, profile, now)
    events += evs
    if ina is s.inactivity and geo is s.geofence and devices is s.devices:
        return s, events  # most residents at most ticks: no new state to allocate
    return replace(s, inactivity=ina, geofence=geo, devices=devices), events


def _close(s: ResidentState, alert_type: AlertType) -> ResidentState:
    if alert_type is AlertType.SOS:  # the presses counted stay: a redelivery is not a new one
        return replace(s, sos=sos.SosState(counted=s.sos.counted))
    if alert_type in (AlertType.FALL, AlertType.LONG_LIE):
        opened = forget(forget(s.falls.open, AlertType.FALL), AlertType.LONG_LIE)
        return replace(s, falls=falls.FallsState(None, opened))
    if alert_type is AlertType.NIGHT_ACTIVITY:
        return replace(s, night=night_activity.closed(s.night))
    if (closed := s.open_alerts().get(alert_type)) is not None:
        return replace(s, muted={**s.muted, alert_type: closed.severity})
    return s


def _mute(
    s: ResidentState, events: list[AlertEvent], now: datetime
) -> tuple[ResidentState, list[AlertEvent]]:
    """Drop a muted type's events; its clear unmutes it, and so does a severity above the
    one it was closed at (passed on: the store opens a new alert for an update of a
    closed one). Before 2026-12-04 a muted type stayed silent at any severity until it
    cleared: a heart rate of 150 for an hour, after a medium alert was closed, raised
    nothing.

    A mute restored at a restart (``mute_until``) whose deadline has passed is lifted
    first: the detector has not raised the type since, so what it raises now is a new
    episode. One it raises before the deadline is held open from then on: an ordinary
    mute, ended by the detector's clear."""
    if not s.muted:
        return s, events
    out: list[AlertEvent] = []
    muted, until = dict(s.muted), dict(s.mute_until)
    for alert_type, deadline in s.mute_until.items():
        if now >= deadline:
            muted.pop(alert_type, None)
            del until[alert_type]
    for e in events:
        seen = muted.get(e.type)  # the severity it was closed at
        if seen is None:
            out.append(e)
        elif isinstance(e, AlertCleared):
            del muted[e.type]
            until.pop(e.type, None)
        elif e.severity.rank > seen.rank:
            del muted[e.type]
            until.pop(e.type, None)
            out.append(e)
        else:  # dropped; the detector holds it open now, and its clear will unmute it
            until.pop(e.type, None)
    return replace(s, muted=muted, mute_until=until), out


def _settle(
    profile: Profile, s: ResidentState, events: list[AlertEvent], now: datetime
) -> tuple[ResidentState, list[AlertEvent]]:
    """The events a step publishes: the mutes first, then the absence rule
    (:mod:`alerts.detectors.away`)."""
    s, events = _mute(s, events, now)
    held, events = away.hold_while_away(profile.away, s.away_held, events, now)
    if held is not s.away_held:
        s = replace(s, away_held=held)
    return s, events


def step(
    profile: Profile,
    state: ResidentState,
    item: Input,
    *,
    now: datetime,
    fall_model: FallModel | None = None,
    skin_shift_c: float = 0.0,
) -> tuple[ResidentState, list[AlertEvent]]:
    """Fold one input into a resident's state; ``now`` is the platform clock.

    ``fall_model`` (``alerts.falls.load_model()``, loaded by the shell) enables the
    platform's own fall detector on imu windows; without it only band events count.
    ``skin_shift_c``: the wrist-temperature rise all residents share now (hot
    weather; :mod:`alerts.detectors.ambient`), not counted as anyone's fever.
    """
    if isinstance(item, AlertClosed):
        return _close(state, item.type), []
    if isinstance(item, Tick) and item.now != now:
        raise ValueError("a Tick carries the same now it is stepped with")
    fal, events = falls.tick(state.falls, profile, now)  # confirmation and long lie first
    if fal is not state.falls:
        state = replace(state, falls=fal)
    if isinstance(item, Tick):
        state, evs = _tick(profile, state, now, item.feed_since)
    elif item.resident_id is None:
        return _settle(profile, state, events, now)  # an unpaired band: nobody to alert about
    elif item.resident_id != profile.resident_id:
        raise ValueError(f"input for resident {item.resident_id}, profile {profile.resident_id}")
    elif isinstance(item, Refusal):
        evs = []
        if item.event is not None:  # an SOS or fall in a message refused for another field
            state, evs = _event(profile, state, item.event, now)
        devices, more = device_health.step(state.devices, profile, item, now)
        state = replace(state, devices=devices)
        evs += more
    else:
        m = item.message
        if isinstance(m, Telemetry):
            state, evs = _telemetry(profile, state, m, now, skin_shift_c)
        elif isinstance(m, DeviceEvent):
            state, evs = _event(profile, state, m, now)
        elif isinstance(m, ImuWindow):
            state, evs = _imu(profile, state, m, now, fall_model)
        else:
            devices, evs = device_health.step(state.devices, profile, m, now)
            state = replace(state, devices=devices)
    return _settle(profile, state, events + evs, now)


def rebanded(
    profile: Profile, state: ResidentState, now: datetime
) -> tuple[ResidentState, list[AlertEvent]]:
    """The state once the registry's pairing is known (``profile.bands``, reloaded): the
    bands no longer the resident's forgotten, with what only they held open."""
    devices, events = device_health.keep_bands(state.devices, profile, now)
    if devices is state.devices:
        return state, []
    return _settle(profile, replace(state, devices=devices), events, now)


def sos_only(
    profile: Profile, state: ResidentState, item: Accepted | Refusal, now: datetime
) -> tuple[ResidentState, list[AlertEvent]]:
    """The SOS detector alone, for an input :func:`step` raised on: a press (or the
    wearer's "I'm OK" after one) must not be lost to a defect in another detector that
    sees the same event (device health, falls, inactivity, the geofence with the press's
    fix). Anything else: no change. The shell calls it after logging the failure."""
    event = item.message if isinstance(item, Accepted) else item.event
    if not isinstance(event, DeviceEvent) or event.type not in (EventType.SOS, EventType.IM_OK):
        return state, []
    so, events = sos.step(state.sos, profile, event, now)
    return replace(state, sos=so), events
