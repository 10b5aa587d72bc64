"""The falls detector's episode: its stages, how time settles it, the alerts it shows.

One :class:`FallEpisode` per resident, from a suspicion to its end: a new
suspicion (:func:`suspect`), the full window not bearing it out
(:func:`retract`), the timers (:func:`tick`: confirmation, long lie), and
:func:`sync`, which turns the episode into the ``fall`` and ``long_lie`` alerts
it wants open. The timeline is in :mod:`alerts.detectors.falls`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from alerts.detectors.lifecycle import OpenAlerts, Want, reconcile
from alerts.detectors.types import (
    AlertEvent,
    AlertType,
    ClearReason,
    FallRules,
    Profile,
    Severity,
    iso,
)

SAME_FALL: Final = timedelta(seconds=10)


class FallStage(StrEnum):
    PENDING = "pending"  # a band-only report awaiting confirmation: not raised
    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"
    RECOVERED = "recovered"
    UNCONFIRMED = "unconfirmed"  # the full window did not bear it out: closed, watched


_SHOWN: Final = frozenset({FallStage.SUSPECTED, FallStage.CONFIRMED, FallStage.RECOVERED})
_LIE_CLOCK: Final = frozenset({FallStage.CONFIRMED, FallStage.UNCONFIRMED})


@dataclass(frozen=True, slots=True)
class FallEpisode:
    stage: FallStage
    device_id: str
    suspected_at: datetime  # platform clock: starts the cancel window and the long-lie clock
    impact_at: datetime  # band clock, for the record
    sources: frozenset[str]
    score: float | None
    falls: int = 1
    steps_since: int = 0
    last_movement_at: datetime | None = None
    wearer_ok_at: datetime | None = None
    long_lie: bool = False
    moved_after_long_lie: bool = False
    # band time of the first step report after the impact: the counter's base. That
    # report's own new steps span the impact and may have been walked before the fall.
    counter_since: datetime | None = None
    # the first heart rate after the impact in the resident's red band: (bpm, band time)
    abnormal_hr: tuple[int, datetime] | None = None


@dataclass(frozen=True, slots=True)
class FallsState:
    episode: FallEpisode | None = None
    open: OpenAlerts = field(default_factory=dict)


def _heart_rate_detail(ep: FallEpisode) -> dict[str, object] | None:
    if ep.abnormal_hr is None:
        return None
    bpm, at = ep.abnormal_hr
    return {"bpm": bpm, "at": iso(at)}


def _wants(ep: FallEpisode | None, profile: Profile) -> tuple[Want | None, Want | None]:
    if ep is None:
        return None, None
    sources = sorted(ep.sources)
    hr = _heart_rate_detail(ep)
    fall = None
    if ep.stage in _SHOWN:
        deadline = ep.suspected_at + profile.falls.cancel_window
        detail = {
            "stage": ep.stage.value,
            "sources": sources,
            "score": ep.score,
            "impact_at": iso(ep.impact_at),
            "suspected_at": iso(ep.suspected_at),  # the clocks' start, for a restart
            "cancel_deadline": iso(deadline),
            "falls": ep.falls,
            "steps_since": ep.steps_since,
            "wearer_says_ok": ep.wearer_ok_at is not None,
            "heart_rate_after": hr,
        }
        # got up and walked: a welfare call, unless the heart rate says otherwise
        recovered = ep.stage is FallStage.RECOVERED and hr is None
        severity = Severity.HIGH if recovered else Severity.CRITICAL
        key = f"{ep.stage}:{ep.falls}:{','.join(sources)}:{ep.wearer_ok_at is not None}:{hr}"
        fall = Want(severity, ep.device_id, detail, key)
    if not ep.long_lie:
        return fall, None
    lie_detail = {
        "impact_at": iso(ep.impact_at),
        "fallen_at": iso(ep.suspected_at),
        "fall_stage": ep.stage.value,  # unconfirmed: the full window's model did not find it
        "sources": sources,
        "steps_since": ep.steps_since,
        "moved_since": ep.moved_after_long_lie,
        "wearer_says_ok": ep.wearer_ok_at is not None,
        "heart_rate_after": hr,
    }
    lie_key = f"{ep.moved_after_long_lie}:{ep.wearer_ok_at is not None}:{hr}"
    long_lie = Want(Severity.CRITICAL, ep.device_id, lie_detail, lie_key)
    return fall, long_lie


def sync(
    state: FallsState,
    episode: FallEpisode | None,
    profile: Profile,
    now: datetime,
    reason: ClearReason = ClearReason.CANCELLED_BY_WEARER,
) -> tuple[FallsState, list[AlertEvent]]:
    fall, long_lie = _wants(episode, profile)
    events: list[AlertEvent] = []
    opened = state.open
    for alert_type, want in ((AlertType.FALL, fall), (AlertType.LONG_LIE, long_lie)):
        opened, evs = reconcile(
            opened, alert_type, want, resident_id=profile.resident_id, at=now, clear_reason=reason
        )
        events.extend(evs)
    return FallsState(episode, opened), events


def suspect(
    state: FallsState,
    profile: Profile,
    *,
    device_id: str,
    source: str,
    impact_at: datetime,
    score: float | None,
    now: datetime,
) -> tuple[FallsState, list[AlertEvent]]:
    ep = state.episode
    fresh = FallStage.PENDING if source == "band" else FallStage.SUSPECTED
    if ep is None:
        new = FallEpisode(fresh, device_id, now, impact_at, frozenset({source}), score)
    elif abs(impact_at - ep.impact_at) <= SAME_FALL:  # the same fall seen by another source
        best = max((s for s in (ep.score, score) if s is not None), default=None)
        new = replace(ep, sources=ep.sources | {source}, score=best)
        if ep.stage is FallStage.PENDING and source != "band":  # confirmed by the platform
            new = replace(new, stage=FallStage.SUSPECTED, suspected_at=now)
        elif ep.stage is FallStage.UNCONFIRMED and source != "screen":
            # the band (or a second window) saw it too: as if it had come before the
            # full window, the fall is shown again on its original timers
            new = replace(new, stage=FallStage.SUSPECTED)
    elif impact_at < ep.impact_at:
        # an earlier fall arriving late (the band's backlog): the episode follows the newest
        # fall. Taken as a further fall it moved the impact back, and what the band took
        # between the two then counted against the new one (found on 2026-12-03).
        return state, []
    elif ep.stage in (FallStage.RECOVERED, FallStage.PENDING, FallStage.UNCONFIRMED):
        # a new fall: a new window (a long lie already raised stays open). After a fall
        # the wearer got up from, its welfare call is on screen: a band's report of another
        # is shown at once, not held (held, it closed that call as cancelled by the wearer)
        new = replace(
            ep,
            stage=FallStage.SUSPECTED if ep.stage is FallStage.RECOVERED else fresh,
            suspected_at=now,
            impact_at=impact_at,
            sources=frozenset({source}),
            score=score,
            falls=ep.falls + (ep.stage is FallStage.RECOVERED),
            steps_since=0,
            counter_since=None,
            last_movement_at=None,
            wearer_ok_at=None,
            abnormal_hr=None,  # evidence is what follows the new impact
        )
    else:
        new = replace(ep, falls=ep.falls + 1, sources=ep.sources | {source}, impact_at=impact_at)
    return sync(state, settle(new, profile.falls, now), profile, now)


def settle(ep: FallEpisode, rules: FallRules, now: datetime) -> FallEpisode | None:
    """The episode after what is known so far: walked away, confirmed, a long lie.

    None when it ends without anything to show: a band-only report or an
    unconfirmed suspicion the wearer walked away from. Once a long lie is
    raised, walking is recorded but ends nothing (only an operator does).
    """
    if not ep.long_lie and ep.steps_since >= rules.recovery_steps:
        if ep.stage in (FallStage.PENDING, FallStage.UNCONFIRMED):
            return None
        return replace(ep, stage=FallStage.RECOVERED)
    if ep.stage is FallStage.PENDING and now >= ep.suspected_at + rules.band_confirm_after:
        ep = replace(ep, stage=FallStage.CONFIRMED)  # nobody said OK or walked away
    elif ep.stage is FallStage.SUSPECTED and now >= ep.suspected_at + rules.cancel_window:
        ep = replace(ep, stage=FallStage.CONFIRMED)
    if not ep.long_lie and ep.stage in _LIE_CLOCK and now - ep.suspected_at >= rules.long_lie_after:
        ep = replace(ep, long_lie=True)
    return ep


def end_quietly(state: FallsState) -> tuple[FallsState, list[AlertEvent]]:
    """End an episode that has nothing open (pending or unconfirmed): no event."""
    return FallsState(None, state.open), []


def tick(state: FallsState, profile: Profile, now: datetime) -> tuple[FallsState, list[AlertEvent]]:
    ep = state.episode
    if ep is None:
        return state, []
    new = settle(ep, profile.falls, now)
    if new is None:
        return end_quietly(state)
    if new == ep:
        return state, []
    return sync(state, new, profile, now)


def retract(
    state: FallsState, profile: Profile, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    """The full window does not bear out a suspicion only the screen raised.

    The fall alert is closed (``not_confirmed``); the episode stays, unshown, as a
    watch for a long lie (see :mod:`alerts.detectors.falls`).
    """
    ep = state.episode
    if ep is None:
        return state, []
    watch = replace(ep, stage=FallStage.UNCONFIRMED)
    return sync(state, settle(watch, profile.falls, now), profile, now,
                 ClearReason.NOT_CONFIRMED)  # fmt: skip
