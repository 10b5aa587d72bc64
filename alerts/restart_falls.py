"""Restart, falls: what bands reported since a fall, folded into the seeded states.

Pure. For each resident with a fall episode seeded by :mod:`alerts.restart`
(:func:`fall_devices`: which bands, since when), what the band reported after
the fall (the step counter, "I'm OK", off the wrist, heart rates;
:class:`FallEvidence`, read by :mod:`alerts.evidence`) is folded in with
:func:`with_evidence`, so a watch that ended while the engine was down stays
ended and steps walked meanwhile count: the next tick decides as the running
engine would have. A red heart rate among them, and an "I'm OK" inside a shown
suspicion's cancel window, are acted on at start (:func:`with_alert_evidence`,
which returns the events to persist).

A band's own fall report is held (``pending``, nothing stored) for
``band_confirm_after``; one the engine was holding when it stopped is found
again among the stored device events (:class:`HeldReport`,
:func:`with_held_reports`) and held anew, so a restart inside those seconds no
longer loses the fall and its long lie.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from alerts.detectors import AlertEvent, AlertType, Profile, ResidentState, falls
from alerts.detectors.fall_evidence import answers
from alerts.detectors.falls import SAME_FALL, FallEpisode, FallsState, FallStage, red_heart_rate
from alerts.detectors.types import steps_delta
from alerts.restart_night import with_counters
from alerts.store import StoredAlert


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


@dataclass(frozen=True, slots=True)
class HeldReport:
    """A band's latest fall report lately stored (``device_events``), perhaps held."""

    resident_id: int
    device_id: str
    impact_at: datetime  # the event's band time
    received_at: datetime  # when ingest stored it: the platform clock, as the engine's


_FALL_TYPES = (AlertType.FALL, AlertType.LONG_LIE)


def _accounted(report: HeldReport, alerts: Iterable[StoredAlert]) -> bool:
    """A fall or long-lie alert of the resident opened since the report (raised from it,
    open or closed since), or with its impact: the running engine had shown it."""
    for a in alerts:
        if a.resident_id != report.resident_id or a.type not in _FALL_TYPES:
            continue
        impact = a.detail.get("impact_at")
        same = (
            isinstance(impact, str)
            and abs(datetime.fromisoformat(impact) - report.impact_at) <= SAME_FALL
        )
        if same or a.opened_at >= report.received_at - SAME_FALL:
            return True
    return False


def with_held_reports(
    states: Mapping[int, ResidentState],
    reports: Iterable[HeldReport],
    alerts: Iterable[StoredAlert],
) -> dict[int, ResidentState]:
    """Pure: hold again each band fall report no fall episode or alert accounts for.

    ``alerts``: the stored fall and long-lie alerts, open and lately closed (as
    :func:`alerts.restart.seed_states` gets them). A resident with a fall episode
    seeded keeps it (the running engine merged a report into it). The report is held
    from when it was stored, so its confirmation and long-lie clocks run as they would
    have; :func:`with_evidence` then ends it if the wearer said OK or walked away first.
    Until 2026-12-04 a restart inside a held report's 30 s lost the fall: nothing was
    stored to seed it from, and ingest had acknowledged the report."""
    out = dict(states)
    seen = list(alerts)
    for r in reports:
        state = out.get(r.resident_id) or ResidentState()
        if state.falls.episode is not None or _accounted(r, seen):
            continue
        held = FallEpisode(FallStage.PENDING, r.device_id, r.received_at, r.impact_at,
                           frozenset({"band"}), None)  # fmt: skip
        out[r.resident_id] = replace(state, falls=FallsState(held, state.falls.open))
    return out


def _held(
    ep: FallEpisode, found: FallEvidence, profile: Profile, red: tuple[int, datetime] | None
) -> FallEpisode | None:
    """A held band report after what the band said since: ended (None) by an "I'm OK" or
    by walking away before it was due for confirmation, as the running engine ends it;
    confirmed if the first of them came after (it had been raised by then: the "I'm OK"
    is recorded, the steps make it a welfare call). A red heart rate first: left to
    :func:`with_alert_evidence`."""
    confirm_at = ep.suspected_at + profile.falls.band_confirm_after
    ok = next((t for t in found.im_ok_at if answers(ep, t)), None)
    away = found.walked_away_at(ep.impact_at, profile.falls.recovery_steps)
    first = min((t for t in (ok, away) if t is not None), default=None)
    if first is None or (red is not None and red[1] < first):
        return ep
    if first < confirm_at:
        return None
    return replace(ep, stage=FallStage.CONFIRMED, wearer_ok_at=ok)


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
    band's last step counter is kept, with its band time, so the next report's new steps
    are counted and an older reading delivered after the restart is not (before
    2026-12-04 the counter was kept alone: such a reading's lower count was taken for
    the counter's midnight restart, and its phantom steps ended the watch as walking).

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
        counted = state  # with the band's last counter and its band time (older: late)
        if found.counters:
            last_at, last = found.counters[-1]
            counted = with_counters(state, {ep.device_id: (last, last_at)})
        base = found.base_at(ep.impact_at)
        if base is not None:
            walked = found.walked(ep.impact_at, until=due)
            ep = replace(ep, counter_since=ep.counter_since or base,
                         steps_since=max(ep.steps_since, walked))  # fmt: skip
        late_ok = next((t for t in found.im_ok_at if due is not None and t >= due), None)
        if late_ok is not None and ep.wearer_ok_at is None:  # pressed after the long lie
            ep = replace(ep, wearer_ok_at=late_ok)
        new_ep: FallEpisode | None = ep
        if ep.stage is FallStage.UNCONFIRMED and not ep.long_lie and ended:
            new_ep = None
        elif ep.stage is FallStage.PENDING:
            new_ep = _held(ep, found, profile, red)
        out[resident_id] = replace(counted, falls=FallsState(new_ep, state.falls.open))
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
