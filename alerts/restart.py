"""Restart: detector states seeded from the alerts the database holds.

Pure (stored rows in, states out). An open SOS keeps its press count, an open
fall its episode (stage, sources, timers from ``opened_at``), so the next
press or the confirmation and long-lie timers carry on after a restart. Every
other alert is re-derived from fresh data (see :mod:`alerts.engine`).

An unconfirmed fall (closed ``not_confirmed`` by the full window, watched for
a long lie with no alert open, :mod:`alerts.detectors.falls`) is rebuilt from
its closed alert when it was closed within ``WATCH_LOOKBACK`` and no later
fall or long-lie alert of the resident has been closed since (an operator
closing one ends the episode); a long lie it raised that is still open comes
with it. What the band reported after the fall (the step counter, "I'm OK",
off the wrist, heart rates; :class:`FallEvidence`, read by :mod:`alerts.evidence`)
is then folded in with :func:`with_evidence`, so a watch that ended while the
engine was down stays ended and steps walked meanwhile count: the next tick
decides as the running engine would have. A red heart rate among them, and an
"I'm OK" inside a shown suspicion's cancel window, are acted on at start
(:func:`with_alert_evidence`, which returns the events to persist).

Night activity: an open ``night_activity`` alert is kept (the detector never
clears it; it updates it on a later restless night), and the night of any
such alert, open or closed by an operator, is remembered so that night is not
raised again. At night, tonight's count so far and each band's last step
counter are read back (:class:`NightEvidence`, :func:`alerts.evidence.load_night_evidence`)
and folded in with :func:`with_night`, so steps walked before and during the
downtime count and the next report continues the count.

Geofence: the clocks of a resident who is out (when they left, the run of
walking away) live in memory. At a restart the location fixes of every resident
whose band's last fix is not surely inside a safe zone (:func:`may_be_outside`)
are read back for :func:`geofence_lookback` and replayed through the detector
(:func:`with_fixes`), so an exit that was timing when the engine stopped is
raised on time, not one allowance later. The open alerts stay as stored; the
next tick decides at the restart's time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Final

from alerts.detectors import (
    AlertEvent,
    AlertType,
    ClearReason,
    Profile,
    ResidentState,
    Severity,
    falls,
    geofence,
)
from alerts.detectors.falls import FallEpisode, FallsState, FallStage, red_heart_rate
from alerts.detectors.lifecycle import OpenAlert
from alerts.detectors.night_activity import NightActivityState
from alerts.detectors.sos import SosState
from alerts.detectors.types import steps_delta
from alerts.store import StoredAlert
from eldercare.protocol import Location

WATCH_LOOKBACK: Final = timedelta(hours=1)  # how old an unconfirmed fall's watch may be
NIGHT_LOOKBACK: Final = timedelta(hours=12)  # closed night-activity alerts: longer than a night
_FALL_TYPES: Final = (AlertType.FALL, AlertType.LONG_LIE)


@dataclass(frozen=True, slots=True)
class FallEvidence:
    """What one band reported since a fall's impact (band clock), oldest first.

    ``counters`` starts with the last step counter before the impact, if any.
    """

    counters: tuple[tuple[datetime, int], ...] = ()
    im_ok_at: tuple[datetime, ...] = ()
    off_wrist_at: tuple[datetime, ...] = ()
    heart_rates: tuple[tuple[datetime, int], ...] = ()  # on the wrist, since the impact

    @classmethod
    def from_reports(
        cls,
        reports: Sequence[tuple[datetime, int | None, bool | None, int | None]],
        im_ok_at: Sequence[datetime],
        impact_at: datetime,
    ) -> FallEvidence:
        """From a band's telemetry (time, steps, worn, hr), oldest first: the last report
        before the impact with a step counter, then every report since (as
        :func:`alerts.evidence.load_fall_evidence` selects them), and its "I'm OK" times."""
        return cls(
            counters=tuple((at, steps) for at, steps, _, _ in reports if steps is not None),
            im_ok_at=tuple(im_ok_at),
            off_wrist_at=tuple(at for at, _, worn, _ in reports
                               if worn is False and at >= impact_at),
            heart_rates=tuple((at, hr) for at, _, worn, hr in reports
                              if hr is not None and worn is not False and at > impact_at),
        )  # fmt: skip

    def first_red(self, profile: Profile, impact_at: datetime) -> tuple[int, datetime] | None:
        """The first heart rate after the impact in the resident's red band, as
        :func:`~alerts.detectors.falls.heart_rate` takes it: (bpm, band time)."""
        return next(
            ((bpm, at) for at, bpm in self.heart_rates
             if at > impact_at and red_heart_rate(profile, bpm)),
            None,
        )  # fmt: skip

    def ended_at(self) -> datetime | None:
        """The first "I'm OK" or off-the-wrist report: the end of an unconfirmed watch."""
        return min((*self.im_ok_at, *self.off_wrist_at), default=None)

    def base_at(self, impact_at: datetime) -> datetime | None:
        """Band time of the first report after the impact: the counter's base."""
        return next((at for at, _ in self.counters if at > impact_at), None)

    def walked(self, impact_at: datetime, until: datetime | None = None) -> int:
        """Steps counted after the base report (up to ``until``), as
        :func:`~alerts.detectors.falls.step_report` counts them (the daily counter
        restarts at midnight)."""
        return self._walking(impact_at, until=until)[0]

    def walked_away_at(self, impact_at: datetime, steps: int) -> datetime | None:
        """Band time of the report by which ``steps`` had been walked since the base."""
        return self._walking(impact_at, steps)[1]

    def _walking(
        self, impact_at: datetime, steps: int = 0, until: datetime | None = None
    ) -> tuple[int, datetime | None]:
        total, last, reached = 0, None, None
        for at, counter in self.counters:
            if at <= impact_at:
                continue
            if until is not None and at >= until:
                break
            total += steps_delta(last, counter)
            last = counter
            if steps and reached is None and total >= steps:
                reached = at
        return total, reached


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _seed_sos(alert: StoredAlert) -> SosState:
    d = alert.detail
    presses = int(d.get("presses") or alert.repeat_count)
    first = _parse_time(d.get("first_pressed_at")) or alert.opened_at
    ok_at = _parse_time(d.get("wearer_ok_at"))
    opened = OpenAlert(Severity(alert.severity), alert.device_id, f"{presses}:{ok_at is not None}",
                       alert.opened_at)  # fmt: skip
    return SosState(presses, first, ok_at, {AlertType.SOS: opened})


def _cleared_reason(alert: StoredAlert) -> str | None:
    """Why the engine closed it (or, for a dispatched alert it kept open, wanted to)."""
    for key in ("cleared", "detector_cleared"):
        cleared = alert.detail.get(key)
        if isinstance(cleared, dict):
            return str(cleared.get("reason"))
    return None


def _episode(fall: StoredAlert, stage: FallStage, *, long_lie: bool) -> FallEpisode | None:
    if fall.device_id is None:
        return None
    d = fall.detail
    score = d.get("score")
    return FallEpisode(
        stage=stage,
        device_id=fall.device_id,
        suspected_at=fall.opened_at,
        impact_at=_parse_time(d.get("impact_at")) or fall.opened_at,
        sources=frozenset(str(s) for s in d.get("sources") or ["band"]),
        score=float(score) if isinstance(score, int | float) else None,
        falls=int(d.get("falls") or 1),
        steps_since=int(d.get("steps_since") or 0),
        wearer_ok_at=fall.updated_at if d.get("wearer_says_ok") else None,
        long_lie=long_lie,
        abnormal_hr=_heart_rate(d.get("heart_rate_after")),
    )


def _heart_rate(value: Any) -> tuple[int, datetime] | None:
    """``heart_rate_after`` of a fall's detail, as the episode keeps it."""
    if not isinstance(value, dict) or not isinstance(value.get("bpm"), int):
        return None
    at = _parse_time(value.get("at"))
    return None if at is None else (value["bpm"], at)


def _opened(alert: StoredAlert) -> OpenAlert:
    # key "" differs from any real key: the next sync refreshes the stored detail
    return OpenAlert(Severity(alert.severity), alert.device_id, "", alert.opened_at)


def _seed_falls(fall: StoredAlert, long_lie: StoredAlert | None) -> FallsState:
    try:
        stage = FallStage(str(fall.detail.get("stage", FallStage.CONFIRMED)))
    except ValueError:
        stage = FallStage.CONFIRMED
    episode = _episode(fall, stage, long_lie=long_lie is not None)
    if episode is None:
        return FallsState()
    opened = {AlertType.FALL: _opened(fall)}
    if long_lie is not None:
        opened[AlertType.LONG_LIE] = _opened(long_lie)
    return FallsState(episode, opened)


def _seed_watch(
    fall: StoredAlert, long_lie: StoredAlert | None, closed_since: list[StoredAlert]
) -> FallsState | None:
    """An unconfirmed fall still watched, or None when it ended (see the module doc)."""
    if _cleared_reason(fall) != ClearReason.NOT_CONFIRMED:
        return None
    if any(a.opened_at > fall.opened_at for a in closed_since):
        return None  # a later fall or long lie, closed: the episode ended
    lie = long_lie if long_lie is not None and long_lie.opened_at >= fall.opened_at else None
    episode = _episode(fall, FallStage.UNCONFIRMED, long_lie=lie is not None)
    if episode is None:
        return None
    return FallsState(episode, {AlertType.LONG_LIE: _opened(lie)} if lie is not None else {})


def _night_of(alert: StoredAlert) -> date | None:
    value = alert.detail.get("night_of")
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _seed_night(open_alert: StoredAlert | None, closed: list[StoredAlert]) -> NightActivityState:
    nights = [n for a in closed if a.type == AlertType.NIGHT_ACTIVITY and (n := _night_of(a))]
    opened: dict[AlertType, OpenAlert] = {}
    if open_alert is not None:
        night = _night_of(open_alert)
        if night is not None:
            nights.append(night)
        opened[AlertType.NIGHT_ACTIVITY] = OpenAlert(
            Severity(open_alert.severity), open_alert.device_id,
            night.isoformat() if night else "", open_alert.opened_at,
        )  # fmt: skip
    return NightActivityState(raised_for=max(nights, default=None), open=opened)


def seed_states(
    alerts: Iterable[StoredAlert], *, recently_closed: Iterable[StoredAlert] = ()
) -> dict[int, ResidentState]:
    """Pure: detector states that know the stored open SOS, fall and night-activity
    alerts, the unconfirmed falls still watched among ``recently_closed`` (fall and
    long-lie alerts closed within ``WATCH_LOOKBACK``) and the nights already raised
    (night-activity alerts closed within ``NIGHT_LOOKBACK``)."""
    by_resident: dict[int, dict[str, StoredAlert]] = {}
    for a in alerts:
        by_resident.setdefault(a.resident_id, {})[a.type] = a
    closed: dict[int, list[StoredAlert]] = {}
    for a in recently_closed:
        closed.setdefault(a.resident_id, []).append(a)
    states: dict[int, ResidentState] = {}
    for resident_id in by_resident.keys() | closed.keys():
        alerts_of = by_resident.get(resident_id, {})
        closed_all = closed.get(resident_id, [])
        closed_of = [a for a in closed_all if a.type in _FALL_TYPES]
        state = ResidentState(night=_seed_night(alerts_of.get(AlertType.NIGHT_ACTIVITY),
                                                closed_all))  # fmt: skip
        if (sos := alerts_of.get(AlertType.SOS)) is not None:
            state = replace(state, sos=_seed_sos(sos))
        fall = alerts_of.get(AlertType.FALL)
        long_lie = alerts_of.get(AlertType.LONG_LIE)
        if fall is not None and _cleared_reason(fall) != ClearReason.NOT_CONFIRMED:
            state = replace(state, falls=_seed_falls(fall, long_lie))
        else:  # the full window did not confirm it (closed, or kept open as dispatched)
            retracted = [a for a in closed_of if a.type == AlertType.FALL]
            candidate = fall or (retracted[-1] if retracted else None)
            watch = candidate and _seed_watch(candidate, long_lie, closed_of)
            if watch:
                state = replace(state, falls=watch)
        if resident_id in by_resident or state.falls.episode is not None or state.night.raised_for:
            states[resident_id] = state
    return states


def fall_devices(states: Mapping[int, ResidentState]) -> dict[str, datetime]:
    """The bands whose reports since a fall matter after a restart, with its impact time."""
    return {
        s.falls.episode.device_id: s.falls.episode.impact_at
        for s in states.values()
        if s.falls.episode is not None
    }


def _profile(profiles: Mapping[int, Profile], resident_id: int) -> Profile:
    return profiles.get(resident_id) or Profile(resident_id=resident_id)


def _lie_due(ep: FallEpisode, profile: Profile) -> datetime | None:
    """When the episode's long lie falls due, if it is not raised yet."""
    return None if ep.long_lie else ep.suspected_at + profile.falls.long_lie_after


def _with_evidence_of(
    states: Mapping[int, ResidentState],
    evidence: Mapping[str, FallEvidence],
    profiles: Mapping[int, Profile],
) -> Iterator[tuple[int, ResidentState, FallEpisode, FallEvidence, Profile]]:
    """Each resident with a fall episode whose band's reports were read back."""
    for resident_id, state in states.items():
        ep = state.falls.episode
        found = evidence.get(ep.device_id) if ep is not None else None
        if ep is not None and found is not None:
            yield resident_id, state, ep, found, _profile(profiles, resident_id)


def with_evidence(
    states: Mapping[int, ResidentState],
    evidence: Mapping[str, FallEvidence],
    profiles: Mapping[int, Profile],
) -> dict[int, ResidentState]:
    """Pure: fold in what the bands reported since each fall (while the engine was down).

    Steps walked since the fall count towards recovery (the next tick settles it); an
    unconfirmed fall's watch ended by "I'm OK" or the band off the wrist is dropped,
    unless a red heart rate came first (:func:`with_alert_evidence` then shows it again); the
    band's last step counter is kept so the next report's new steps are counted.

    What came after the long lie fell due (``long_lie_after`` from the suspicion) ends
    nothing, as in the running engine, which had raised the long lie by then: steps
    walked after it do not count towards recovery (the next tick raises the long lie;
    they are not recorded as ``moved_since`` either), and an "I'm OK" pressed after it is
    recorded on it.
    """
    out = dict(states)
    for resident_id, state, seeded, found, profile in _with_evidence_of(states, evidence, profiles):
        ep = seeded  # with what the band reported folded in, below
        red = found.first_red(profile, ep.impact_at)
        # what came after the long lie fell due came too late to end anything: the
        # running engine had raised the long lie first (the next tick raises it)
        due = _lie_due(ep, profile)
        ended_at = found.ended_at()
        ended = (ended_at is not None and (red is None or ended_at < red[1])
                 and (due is None or ended_at < due))  # fmt: skip
        last_steps = state.last_steps
        if found.counters:
            last_steps = {**last_steps, ep.device_id: found.counters[-1][1]}
        base = found.base_at(ep.impact_at)
        if base is not None:
            walked = found.walked(ep.impact_at, until=due)
            ep = replace(ep, counter_since=ep.counter_since or base,
                         steps_since=max(ep.steps_since, walked))  # fmt: skip
        late_ok = next((t for t in found.im_ok_at if due is not None and t >= due), None)
        if late_ok is not None and ep.wearer_ok_at is None:  # pressed after the long lie
            ep = replace(ep, wearer_ok_at=late_ok)
        new_ep = None if ep.stage is FallStage.UNCONFIRMED and not ep.long_lie and ended else ep
        out[resident_id] = replace(
            state, falls=FallsState(new_ep, state.falls.open), last_steps=last_steps
        )
    return out


def with_alert_evidence(
    states: Mapping[int, ResidentState],
    evidence: Mapping[str, FallEvidence],
    profiles: Mapping[int, Profile],
    *,
    now: datetime,
) -> tuple[dict[int, ResidentState], list[AlertEvent]]:
    """Pure: what a band reported after its fall while the engine was down that changes
    an alert at once, put through the running engine's own functions in the order it
    happened. Returns the states and the alert events to persist (stamped ``now``).

    * "I'm OK" inside the cancel window of a shown suspicion, before any red heart rate:
      :func:`~alerts.detectors.falls.im_ok` cancels it, as it would have then.
    * A red heart rate (:func:`~alerts.detectors.falls.heart_rate`): the fall's detail
      gains ``heart_rate_after``; an unconfirmed fall is shown again unless its watch had
      ended before the reading (I'm OK, off the wrist, walked away); an "I'm OK" pressed
      after it is then recorded (never a cancel, with that heart rate).

    Run after :func:`with_evidence` (steps folded in, ended watches dropped).
    """
    out = dict(states)
    events: list[AlertEvent] = []
    for resident_id, state, ep, found, profile in _with_evidence_of(states, evidence, profiles):
        red = None if ep.abnormal_hr is not None else found.first_red(profile, ep.impact_at)
        deadline = ep.suspected_at + profile.falls.cancel_window
        cancel = (
            next((t for t in found.im_ok_at if t <= deadline), None)
            if ep.stage is FallStage.SUSPECTED and ep.abnormal_hr is None
            else None
        )
        if cancel is not None and (red is None or cancel < red[1]):
            fal, evs = falls.im_ok(state.falls, profile, cancel, pressed_at=cancel)
        elif red is not None and not _walked_away_first(ep, found, profile, red[1]):
            bpm, at = red
            fal, evs = falls.heart_rate(state.falls, profile, bpm, at, now)
            ok_after = next((ok for ok in found.im_ok_at if ok > at), None)
            if ok_after is not None:
                fal, more = falls.im_ok(fal, profile, now, pressed_at=ok_after)
                evs = [*evs, *more]
        else:
            continue
        out[resident_id] = replace(state, falls=fal)
        events += [replace(e, at=now) for e in evs]
    return out, events


def _walked_away_first(
    ep: FallEpisode, found: FallEvidence, profile: Profile, before: datetime
) -> bool:
    """A watch (or held report) ended by walking away before ``before``, and before its
    long lie fell due (the next tick drops it)."""
    due = _lie_due(ep, profile)
    if ep.stage not in (FallStage.PENDING, FallStage.UNCONFIRMED) or due is None:
        return False
    away = found.walked_away_at(ep.impact_at, profile.falls.recovery_steps)
    return away is not None and away < before and away < due


@dataclass(frozen=True, slots=True)
class NightEvidence:
    """Tonight so far for one resident, read back at a restart: the night (named by its
    morning), its steps as the detector counts them, each band's last step counter."""

    night: date
    steps: int
    counters: Mapping[str, int]


def with_night(
    states: Mapping[int, ResidentState], evidence: Mapping[int, NightEvidence]
) -> dict[int, ResidentState]:
    """Pure: tonight's count and the bands' last counters folded into each resident's
    state, so the next report adds its new steps to the steps counted before it."""
    out = dict(states)
    for resident_id, ev in evidence.items():
        state = out.get(resident_id, ResidentState())
        night = state.night
        if night.night is not None and night.night > ev.night:
            continue
        out[resident_id] = replace(
            state,
            night=NightActivityState(ev.night, ev.steps, night.raised_for, night.open),
            last_steps={**state.last_steps, **ev.counters},
        )
    return out


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
    the clocks they set (left at, outside fixes, walking away) and the stored open
    alerts; what the replay would have raised is left to the next tick, at now."""
    out = dict(states)
    for resident_id, seen in fixes.items():
        profile = profiles.get(resident_id)
        if profile is None or not seen:
            continue
        state = out.get(resident_id, ResidentState())
        stored = state.geofence.open
        geo = geofence.GeofenceState(open=stored)
        for at, device_id, loc in sorted(seen, key=lambda fix: fix[0]):
            geo, _ = geofence.step(geo, profile, loc, device_id, at)
        out[resident_id] = replace(state, geofence=replace(geo, open=stored))
    return out
