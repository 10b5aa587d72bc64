"""What a band reports after a fall's impact, and what it does to the episode.

"I'm OK" (:func:`im_ok`), steps walked (:func:`step_report`, :func:`movement`),
a heart rate in the resident's red band (:func:`heart_rate`) and the band taken
off the wrist (:func:`off_wrist`). Only what the band took after the impact
counts (:func:`answers` for "I'm OK"); see :mod:`alerts.detectors.falls`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

from alerts.detectors.fall_episode import (
    FallEpisode,
    FallsState,
    FallStage,
    end_quietly,
    settle,
    sync,
)
from alerts.detectors.news2 import VitalParam
from alerts.detectors.types import AlertEvent, ClearReason, Profile

RED_SCORE: Final = 3  # NEWS2's single-parameter red: a heart rate this abnormal after a fall
# How long before the impact an "I'm OK" may be stamped and still answer this fall. The
# impact time is an estimate (the strongest sample of an imu window, or when the band's own
# detector decided), and a resident's second band has its own clock; an older press answered
# an earlier alarm and reached us late from the band's backlog.
OK_SKEW: Final = timedelta(seconds=2)


def answers(ep: FallEpisode, pressed_at: datetime) -> bool:
    """Was an "I'm OK" pressed at ``pressed_at`` (band clock) pressed for this fall?"""
    return pressed_at >= ep.impact_at - OK_SKEW


def im_ok(
    state: FallsState, profile: Profile, now: datetime, *, pressed_at: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    """The wearer's "I'm OK", pressed at ``pressed_at`` (band clock), arriving at ``now``.

    One pressed before the fall (:func:`answers`) is ignored: it neither cancels,
    retracts nor ends anything, and is not recorded on the alerts.
    """
    ep = state.episode
    if ep is None or not answers(ep, pressed_at):
        return state, []
    if not ep.long_lie and ep.stage in (FallStage.PENDING, FallStage.UNCONFIRMED):
        return end_quietly(state)  # the band's report or the watch ended: never shown
    if (
        ep.stage is FallStage.SUSPECTED
        and ep.abnormal_hr is None  # "I'm OK" with a heart rate of 35: the operator calls back
        and now <= ep.suspected_at + profile.falls.cancel_window
    ):
        return sync(state, None, profile, now, ClearReason.CANCELLED_BY_WEARER)
    return sync(state, replace(ep, wearer_ok_at=pressed_at), profile, now)


def movement(
    state: FallsState, profile: Profile, steps: int, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    """New steps since the last telemetry (0 when none: lying still is not movement)."""
    ep = state.episode
    if ep is None or steps <= 0:
        return state, []
    new = replace(ep, steps_since=ep.steps_since + steps, last_movement_at=now,
                  moved_after_long_lie=ep.long_lie)  # fmt: skip
    settled = settle(new, profile.falls, now)
    if settled is None:
        return end_quietly(state)  # walked away from a report nobody was shown
    return sync(state, settled, profile, now)


def step_report(
    state: FallsState, profile: Profile, steps: int, observed_at: datetime, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    """A band's step report (``observed_at``: band clock) with ``steps`` new since the last.

    Only steps after the fall are evidence of getting up: a report from before the
    impact is ignored, and the first report after it only sets the base, since its new
    steps cover an interval that spans the impact (someone walking when they fell must
    not look recovered). Later reports count (:func:`movement`).
    """
    ep = state.episode
    if ep is None or observed_at <= ep.impact_at:
        return state, []
    if ep.counter_since is None:
        return FallsState(replace(ep, counter_since=observed_at), state.open), []
    return movement(state, profile, steps, now)


def red_heart_rate(profile: Profile, bpm: int) -> bool:
    """In the resident's red band: NEWS2 sub-score 3, or the clinician's bands."""
    score, _ = profile.thresholds.bands(VitalParam.HR, profile.conditions).score(bpm)
    return score >= RED_SCORE


def heart_rate(
    state: FallsState, profile: Profile, bpm: int, observed_at: datetime, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    """A heart-rate reading the band took at ``observed_at`` (band clock).

    Only a reading after the impact, in the resident's red band, counts; the first
    one is kept (see :mod:`alerts.detectors.falls` for what it changes).
    """
    ep = state.episode
    if ep is None or ep.abnormal_hr is not None or observed_at <= ep.impact_at:
        return state, []
    if not red_heart_rate(profile, bpm):
        return state, []
    new = replace(ep, abnormal_hr=(bpm, observed_at))
    if ep.stage is FallStage.PENDING:  # a held band report: the platform now agrees
        new = replace(new, stage=FallStage.SUSPECTED, suspected_at=now)
    elif ep.stage is FallStage.UNCONFIRMED:  # shown again, on its original timers
        new = replace(new, stage=FallStage.SUSPECTED)
    settled = settle(new, profile.falls, now)
    return sync(state, settled, profile, now)


def off_wrist(
    state: FallsState, profile: Profile, observed_at: datetime, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    """The band reports itself not worn at ``observed_at`` (band clock): an unconfirmed
    suspicion's watch ends.

    Stillness of a band on a table says nothing about its wearer (that is
    ``band_not_worn``'s business); a shown fall is left as it is. A report from
    before the impact (a backlog) is ignored: if the band is still off, its next
    report says so.
    """
    ep = state.episode
    if ep is None or ep.long_lie or ep.stage is not FallStage.UNCONFIRMED:
        return state, []
    if observed_at <= ep.impact_at:
        return state, []
    return end_quietly(state)
