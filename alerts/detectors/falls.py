"""Falls: raise at once, let the wearer cancel, confirm, escalate to a long lie.

Timeline (timers run on the platform clock ``now``; the band's impact time is
kept in the detail):

* t0, a fall is suspected (a band ``fall`` event, or the platform's detector
  on an ``imu`` window): ``fall`` is RAISED at once as critical with
  ``stage: suspected``, so operators see it within the latency budget.
* t0 .. t0 + cancel_window: an ``im_ok`` retracts it (``AlertCleared``,
  ``cancelled_by_wearer``). ``recovery_steps`` new steps mean the wearer got
  up: the alert is UPDATED to ``stage: recovered`` and downgraded to high (a
  welfare call, not an emergency; nobody is lying on the floor).
* t0 + cancel_window with neither: UPDATED to ``stage: confirmed``.
* no movement for ``long_lie_after`` since the fall (or the last movement after
  it): ``long_lie`` RAISED as critical. A late ``im_ok`` or movement after
  confirmation is recorded on the alerts, never retracts them.

Band and platform detections of one fall (impacts within ``SAME_FALL``) are
merged; a later fall while one is open updates the open alert.

A fall reported by the band alone is held (``stage: pending``, nothing
raised) until what follows confirms it: the platform's own detector agrees on
the imu window of the same impact (raised then), or ``band_confirm_after``
passes without the wearer pressing "I'm OK" or walking ``recovery_steps``
(raised then as confirmed). Bands' own detectors fire on hard sit-downs; the
wearer's "I'm OK" or walking away retracts the report before anyone is
bothered. The platform's detection is the fast path (see docs/alerts.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

import numpy as np

from alerts.detectors.lifecycle import OpenAlerts, Want, reconcile
from alerts.detectors.types import (
    AlertEvent,
    AlertType,
    ClearReason,
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


class FallStage(StrEnum):
    PENDING = "pending"  # a band-only report awaiting confirmation: not raised
    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class FallEpisode:
    stage: FallStage
    device_id: str
    suspected_at: datetime  # platform clock: starts the cancel window
    impact_at: datetime  # band clock, for the record
    sources: frozenset[str]
    score: float | None
    falls: int = 1
    steps_since: int = 0
    last_movement_at: datetime | None = None
    wearer_ok_at: datetime | None = None
    long_lie: bool = False
    moved_after_long_lie: bool = False


@dataclass(frozen=True, slots=True)
class FallsState:
    episode: FallEpisode | None = None
    open: OpenAlerts = field(default_factory=dict)


def _wants(ep: FallEpisode | None, profile: Profile) -> tuple[Want | None, Want | None]:
    if ep is None or ep.stage is FallStage.PENDING:
        return None, None
    deadline = ep.suspected_at + profile.falls.cancel_window
    sources = sorted(ep.sources)
    detail = {
        "stage": ep.stage.value,
        "sources": sources,
        "score": ep.score,
        "impact_at": iso(ep.impact_at),
        "cancel_deadline": iso(deadline),
        "falls": ep.falls,
        "steps_since": ep.steps_since,
        "wearer_says_ok": ep.wearer_ok_at is not None,
    }
    severity = Severity.HIGH if ep.stage is FallStage.RECOVERED else Severity.CRITICAL
    key = f"{ep.stage}:{ep.falls}:{','.join(sources)}:{ep.wearer_ok_at is not None}"
    fall = Want(severity, ep.device_id, detail, key)
    if not ep.long_lie:
        return fall, None
    lie_detail = {
        "impact_at": iso(ep.impact_at),
        "still_since": iso(ep.last_movement_at or ep.suspected_at),
        "moved_since": ep.moved_after_long_lie,
    }
    long_lie = Want(Severity.CRITICAL, ep.device_id, lie_detail, str(ep.moved_after_long_lie))
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
    if ep is None:
        stage = FallStage.PENDING if source == "band" else FallStage.SUSPECTED
        new = FallEpisode(stage, device_id, now, impact_at, frozenset({source}), score)
    elif abs(impact_at - ep.impact_at) <= SAME_FALL:  # the same fall seen by another source
        best = max((s for s in (ep.score, score) if s is not None), default=None)
        new = replace(ep, sources=ep.sources | {source}, score=best)
        if ep.stage is FallStage.PENDING and source != "band":  # confirmed by the platform
            new = replace(new, stage=FallStage.SUSPECTED, suspected_at=now)
    elif ep.stage in (FallStage.RECOVERED, FallStage.PENDING):  # a new fall: a new window
        new = replace(
            ep,
            stage=FallStage.PENDING if source == "band" else FallStage.SUSPECTED,
            suspected_at=now,
            impact_at=impact_at,
            sources=frozenset({source}),
            score=score,
            falls=ep.falls + (ep.stage is FallStage.RECOVERED),
            steps_since=0,
            last_movement_at=None,
            wearer_ok_at=None,
        )
    else:
        new = replace(ep, falls=ep.falls + 1, sources=ep.sources | {source}, impact_at=impact_at)
    return _sync(state, new, profile, now)


def im_ok(
    state: FallsState, profile: Profile, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    ep = state.episode
    if ep is None:
        return state, []
    if ep.stage is FallStage.PENDING:
        return FallsState(None, state.open), []  # the band's report retracted: never raised
    if ep.stage is FallStage.SUSPECTED and now <= ep.suspected_at + profile.falls.cancel_window:
        return _sync(state, None, profile, now, ClearReason.CANCELLED_BY_WEARER)
    return _sync(state, replace(ep, wearer_ok_at=now), profile, now)


def movement(
    state: FallsState, profile: Profile, steps: int, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    """New steps since the last telemetry (0 when none: lying still is not movement)."""
    ep = state.episode
    if ep is None or steps <= 0:
        return state, []
    total = ep.steps_since + steps
    if ep.stage is FallStage.PENDING and total >= profile.falls.recovery_steps:
        return FallsState(None, state.open), []  # walked away: the band's report retracted
    new = replace(ep, steps_since=total, last_movement_at=now)
    if ep.stage is FallStage.SUSPECTED and total >= profile.falls.recovery_steps:
        new = replace(new, stage=FallStage.RECOVERED)
    if ep.long_lie:
        new = replace(new, moved_after_long_lie=True)
    return _sync(state, new, profile, now)


def tick(state: FallsState, profile: Profile, now: datetime) -> tuple[FallsState, list[AlertEvent]]:
    ep = state.episode
    if ep is None:
        return state, []
    rules = profile.falls
    new = ep
    if new.stage is FallStage.PENDING:
        if now < new.suspected_at + rules.band_confirm_after:
            return state, []
        new = replace(new, stage=FallStage.CONFIRMED)  # nobody said OK or walked away
    elif new.stage is FallStage.SUSPECTED and now >= new.suspected_at + rules.cancel_window:
        new = replace(new, stage=FallStage.CONFIRMED)
    still_since = new.last_movement_at or new.suspected_at
    if (
        new.stage is FallStage.CONFIRMED
        and not new.long_lie
        and now - still_since >= rules.long_lie_after
    ):
        new = replace(new, long_lie=True)
    if new is ep:
        return state, []
    return _sync(state, new, profile, now)


def step_event(
    state: FallsState, profile: Profile, event: DeviceEvent, now: datetime
) -> tuple[FallsState, list[AlertEvent]]:
    if event.type is EventType.FALL:
        raw = (event.data or {}).get("score")
        score = float(raw) if isinstance(raw, int | float) and 0 <= raw <= 1 else None
        return suspect(
            state,
            profile,
            device_id=event.device_id,
            source="band",
            impact_at=ms_to_utc(event.ts),
            score=score,
            now=now,
        )
    if event.type is EventType.IM_OK:
        return im_ok(state, profile, now)
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
    """The full window does not bear out a suspicion only the screen raised."""
    return _sync(state, None, profile, now, ClearReason.NOT_CONFIRMED)


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
    retracted (``not_confirmed``: closed as a false alarm).
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
        decision = detect_fall(t_s, acc, model)
    except FallInputError:
        return state, []  # too short or malformed to score: not evidence either way
    if not decision.fall or decision.t_s is None:
        ep = state.episode
        covered = start + timedelta(seconds=peak_s)
        if (
            ep is not None
            and ep.sources == {"screen"}
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
