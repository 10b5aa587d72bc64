"""Falls: raise at once, let the wearer cancel, confirm, escalate to a long lie.

Timeline (timers run on the platform clock ``now``; the band's impact time is
kept in the detail):

* t0, a fall is suspected (a band ``fall`` event, or the platform's detector
  on an ``imu`` window): ``fall`` is RAISED at once as critical with
  ``stage: suspected``, so operators see it within the latency budget.
* t0 .. t0 + cancel_window: an ``im_ok`` retracts it (``AlertCleared``,
  ``cancelled_by_wearer``).
* t0 + cancel_window without it: UPDATED to ``stage: confirmed``.
* Walking ``recovery_steps`` (new steps since the fall, in total) before a
  long lie, at any stage: the wearer got up. The alert is UPDATED to ``stage:
  recovered`` and downgraded to high (a welfare call; nobody is lying on the
  floor) and the long-lie clock stops: a later long stillness (sleep) is not
  a long lie.
* ``long_lie_after`` since the fall without having walked: ``long_lie``
  RAISED as critical. The clock runs from the fall, not from the last step: a
  few steps (shuffling, an arm waving on the floor) are not getting up. A
  late ``im_ok`` or movement after confirmation is recorded on the alerts,
  never retracts them.

Band and platform detections of one fall (impacts within ``SAME_FALL``) are
merged; a later fall while one is open updates the open alert.

A fall reported by the band alone is held (``stage: pending``, nothing
raised) until what follows confirms it: the platform's own detector agrees on
the imu window of the same impact (raised then), or ``band_confirm_after``
passes without the wearer pressing "I'm OK" or walking ``recovery_steps``
(raised then as confirmed). Bands' own detectors fire on hard sit-downs; the
wearer's "I'm OK" or walking away retracts the report before anyone is
bothered. The platform's detection is the fast path (see docs/alerts.md).

A suspicion only the early window raised, which the full window's model does
not bear out, is closed (``not_confirmed``) but not forgotten: the episode
goes to ``stage: unconfirmed``, a watch with no alert open. Walking
``recovery_steps``, "I'm OK" or the band reporting itself off the wrist end
the watch silently; otherwise ``long_lie`` is RAISED when ``long_lie_after``
has passed since the suspicion, as for a confirmed fall (the full model
misses about a third of simulated soft falls; see docs/alerts.md). The band
reporting the same impact reopens the fall.

Heart rate after the impact (a telemetry reading the band took after it) in the
resident's red band (NEWS2 sub-score 3: <= 40 or >= 131 /min, or a clinician's
bands) is evidence that something is wrong beyond the fall itself: a faint from
a slow or fast rhythm, shock, pain. One such reading is enough here (the vital-
sign detector, which wants it to persist, raises its own alert later). It
raises a held band report at once and shows an unconfirmed fall again on its
original timers; a suspicion with it is not retracted by the full window's model
alone, is not cancelled by "I'm OK" (recorded, the operator calls back), and
stays critical when the wearer walks. The first such reading is on the fall and
long-lie alerts' detail (``heart_rate_after``).

What the band took before the impact says nothing about the fall, however late
it arrives: a band sends its new alarms first and its backlog after them
(docs/protocol.md), so an "I'm OK" pressed an hour ago can arrive seconds after
a new fall. An "I'm OK" counts for a fall only if pressed at or after its impact
(less ``OK_SKEW``), step counts, heart rates and off-the-wrist reports only if
taken after it; anything older is ignored for that fall (not recorded on it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

import numpy as np

from alerts.detectors.lifecycle import OpenAlerts, Want, reconcile
from alerts.detectors.news2 import VitalParam
from alerts.detectors.types import (
    AlertEvent,
    AlertType,
    ClearReason,
    FallRules,
    Profile,
    Severity,
    iso,
    ms_to_utc,
)
from alerts.falls import FallInputError, FallModel, detect_fall
from alerts.falls.screen import screen_early, screen_impact
from eldercare.protocol import DeviceEvent, EventType, ImuWindow

SAME_FALL: Final = timedelta(seconds=10)
MODEL_AFTER: Final = timedelta(seconds=4)  # the model needs this much window after the impact
RED_SCORE: Final = 3  # NEWS2's single-parameter red: a heart rate this abnormal after a fall
# How long before the impact an "I'm OK" may be stamped and still answer this fall. The
# impact time is an estimate (the strongest sample of an imu window, or when the band's own
# detector decided), and a resident's second band has its own clock; an older press answered
# an earlier alarm and reached us late from the band's backlog.
OK_SKEW: Final = timedelta(seconds=2)


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


def _sync(
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
        new = replace(  # a new fall: a new window (a long lie already raised stays open)
            ep,
            stage=fresh,
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
    return _sync(state, _settle(new, profile.falls, now), profile, now)


def _settle(ep: FallEpisode, rules: FallRules, now: datetime) -> FallEpisode | None:
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


def _quietly(state: FallsState) -> tuple[FallsState, list[AlertEvent]]:
    """End an episode that has nothing open (pending or unconfirmed): no event."""
    return FallsState(None, state.open), []


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
        return _quietly(state)  # the band's report or the watch ended: never shown
    if (
        ep.stage is FallStage.SUSPECTED
        and ep.abnormal_hr is None  # "I'm OK" with a heart rate of 35: the operator calls back
        and now <= ep.suspected_at + profile.falls.cancel_window
    ):
        return _sync(state, None, profile, now, ClearReason.CANCELLED_BY_WEARER)
    return _sync(state, replace(ep, wearer_ok_at=pressed_at), profile, now)


def movement(
    state: FallsState, profile: Profile, steps: int, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    """New steps since the last telemetry (0 when none: lying still is not movement)."""
    ep = state.episode
    if ep is None or steps <= 0:
        return state, []
    new = replace(ep, steps_since=ep.steps_since + steps, last_movement_at=now,
                  moved_after_long_lie=ep.long_lie)  # fmt: skip
    settled = _settle(new, profile.falls, now)
    if settled is None:
        return _quietly(state)  # walked away from a report nobody was shown
    return _sync(state, settled, profile, now)


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
    one is kept (see the module doc for what it changes).
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
    settled = _settle(new, profile.falls, now)
    return _sync(state, settled, profile, now)


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
    return _quietly(state)


def tick(state: FallsState, profile: Profile, now: datetime) -> tuple[FallsState, list[AlertEvent]]:
    ep = state.episode
    if ep is None:
        return state, []
    new = _settle(ep, profile.falls, now)
    if new is None:
        return _quietly(state)
    if new == ep:
        return state, []
    return _sync(state, new, profile, now)


def band_score(data: Mapping[str, object] | None) -> float | None:
    """The band's own fall score (``data.score``, a number 0..1), if it sent a usable one.

    ``data`` is whatever the band put there, unchecked by ingest: JSON ``true`` is a
    Python int, so bool is refused by name.
    """
    raw = (data or {}).get("score")
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 1:
        return None
    return float(raw)


def step_event(
    state: FallsState, profile: Profile, event: DeviceEvent, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    if event.type is EventType.FALL:
        return suspect(
            state,
            profile,
            device_id=event.device_id,
            source="band",
            impact_at=ms_to_utc(event.ts),
            score=band_score(event.data),
            now=now,
        )
    if event.type is EventType.IM_OK:
        return im_ok(state, profile, now, pressed_at=ms_to_utc(event.ts))
    return state, []


def _impact_and_after(t_s: np.ndarray, acc: np.ndarray) -> tuple[float, float]:
    """The strongest sample's time and how much window follows it (raw samples)."""
    if t_s.size == 0 or acc.shape[0] != t_s.size:
        return 0.0, 0.0
    peak = int(np.argmax(np.einsum("ij,ij->i", acc, acc)))
    return float(t_s[peak]), float(t_s[-1] - t_s[peak])


def retract(
    state: FallsState, profile: Profile, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    """The full window does not bear out a suspicion only the screen raised.

    The fall alert is closed (``not_confirmed``); the episode stays, unshown, as a
    watch for a long lie (see the module doc).
    """
    ep = state.episode
    if ep is None:
        return state, []
    watch = replace(ep, stage=FallStage.UNCONFIRMED)
    return _sync(state, _settle(watch, profile.falls, now), profile, now,
                 ClearReason.NOT_CONFIRMED)  # fmt: skip


def step_imu(
    state: FallsState, profile: Profile, window: ImuWindow, model: FallModel, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    """Run the platform's fall detection on one accelerometer window.

    A window with less than ``MODEL_AFTER`` after its strongest impact is an
    early impact upload: the early-window model (``model.early``, via
    :func:`alerts.falls.screen.screen_early`; the rule screen
    :func:`alerts.falls.screen.screen_impact` when the model has none) decides
    on it, and a pass raises ``fall`` (source ``screen``) at once.
    A longer window goes to the model; when the model finds no fall around
    the impact of a suspicion that only the screen raised, the suspicion is
    retracted (``not_confirmed``: closed as a false alarm) and watched for a long
    lie (:func:`retract`).
    """
    t_s = np.asarray(window.t_ms, dtype=np.float64) / 1000.0
    acc = np.column_stack((window.ax, window.ay, window.az)).astype(np.float64)
    start = ms_to_utc(window.ts)
    peak_s, after_s = _impact_and_after(t_s, acc)
    try:
        if after_s < MODEL_AFTER.total_seconds():
            early = model.early
            screen = screen_impact(t_s, acc) if early is None else screen_early(t_s, acc, early)
            if not screen.suspected or screen.t_s is None:
                return state, []
            impact_at = start + timedelta(seconds=screen.t_s)
            return suspect(state, profile, device_id=window.device_id, source="screen",
                           impact_at=impact_at, score=screen.score, now=now)  # fmt: skip
        decision = detect_fall(t_s, acc, model, judge_tail=False)
    except FallInputError:
        return state, []  # too short or malformed to score: not evidence either way
    if not decision.fall or decision.t_s is None:
        ep = state.episode
        covered = start + timedelta(seconds=peak_s)
        if (
            ep is not None
            and ep.sources == {"screen"}
            and ep.abnormal_hr is None
            and ep.stage is FallStage.SUSPECTED
            and abs(covered - ep.impact_at) <= SAME_FALL
        ):
            return retract(state, profile, now)
        return state, []
    return suspect(
        state,
        profile,
        device_id=window.device_id,
        source="platform",
        impact_at=start + timedelta(seconds=decision.t_s),
        score=decision.score,
        now=now,
    )
