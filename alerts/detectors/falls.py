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

The detector is three modules behind this one, its entry point:
:mod:`alerts.detectors.fall_episode` (the episode, its stages and timers, the
alerts it shows), :mod:`alerts.detectors.fall_evidence` (what the band reports
after the impact) and :mod:`alerts.detectors.fall_inputs` (a band's events and
the accelerometer windows).
"""

from __future__ import annotations

from alerts.detectors.fall_episode import (
    SAME_FALL,
    FallEpisode,
    FallsState,
    FallStage,
    retract,
    suspect,
    tick,
)
from alerts.detectors.fall_evidence import (
    OK_SKEW,
    RED_SCORE,
    answers,
    heart_rate,
    im_ok,
    movement,
    off_wrist,
    red_heart_rate,
    step_report,
)
from alerts.detectors.fall_inputs import MODEL_AFTER, band_score, step_event, step_imu

__all__ = [
    "MODEL_AFTER",
    "OK_SKEW",
    "RED_SCORE",
    "SAME_FALL",
    "FallEpisode",
    "FallStage",
    "FallsState",
    "answers",
    "band_score",
    "heart_rate",
    "im_ok",
    "movement",
    "off_wrist",
    "red_heart_rate",
    "retract",
    "step_event",
    "step_imu",
    "step_report",
    "suspect",
    "tick",
]
