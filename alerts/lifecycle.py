"""The life of a stored alert after the detectors raised it: a pure transition table.

::

    open ──acknowledge──► acknowledged ──dispatch──► dispatched
      │                       │                          │
      ├── resolve / false_alarm / auto_clear ◄───────────┘ (resolve, false_alarm only)
      ▼
    resolved | false_alarm | auto_cleared      (closed: terminal)

* Operators acknowledge, dispatch, resolve (with an outcome: actionable, false,
  technical) or call a false alarm.
* The engine closes an alert when its detector clears it: ``auto_cleared``, or
  ``false_alarm`` (outcome ``false``) when the wearer cancelled a fall inside
  the cancel window. A dispatched alert is never closed by the engine: someone
  is on the way and only they (or the operator) can close it; the clear is
  recorded on the alert's detail instead (see :func:`engine_clear`).

Escalation: a critical alert nobody acknowledged is escalated to a supervisor
and then to the family contact after configurable delays
(:func:`due_escalations`, pure over the open alerts and ``now``); the store
records each step on the alert's detail and as a transition (actor
``escalation``, state unchanged).

No I/O here: ``alerts/store.py`` applies these decisions in the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from alerts.detectors.types import ClearReason


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"
    AUTO_CLEARED = "auto_cleared"

    @property
    def closed(self) -> bool:
        return self in CLOSED


CLOSED: Final = frozenset({AlertState.RESOLVED, AlertState.FALSE_ALARM, AlertState.AUTO_CLEARED})


class Outcome(StrEnum):
    ACTIONABLE = "actionable"  # someone needed help
    FALSE = "false"  # nobody needed help (a fumbled press, a cancelled fall)
    TECHNICAL = "technical"  # a device problem, not a person's


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    DISPATCH = "dispatch"
    RESOLVE = "resolve"
    FALSE_ALARM = "false_alarm"
    AUTO_CLEAR = "auto_clear"  # the engine: the detector cleared the alert


_S = AlertState
_A = Action
TRANSITIONS: Final[Mapping[tuple[AlertState, Action], AlertState]] = {
    (_S.OPEN, _A.ACKNOWLEDGE): _S.ACKNOWLEDGED,
    (_S.OPEN, _A.DISPATCH): _S.DISPATCHED,
    (_S.OPEN, _A.RESOLVE): _S.RESOLVED,
    (_S.OPEN, _A.FALSE_ALARM): _S.FALSE_ALARM,
    (_S.OPEN, _A.AUTO_CLEAR): _S.AUTO_CLEARED,
    (_S.ACKNOWLEDGED, _A.DISPATCH): _S.DISPATCHED,
    (_S.ACKNOWLEDGED, _A.RESOLVE): _S.RESOLVED,
    (_S.ACKNOWLEDGED, _A.FALSE_ALARM): _S.FALSE_ALARM,
    (_S.ACKNOWLEDGED, _A.AUTO_CLEAR): _S.AUTO_CLEARED,
    (_S.DISPATCHED, _A.RESOLVE): _S.RESOLVED,
    (_S.DISPATCHED, _A.FALSE_ALARM): _S.FALSE_ALARM,
}


class InvalidTransition(ValueError):  # noqa: N818 - reads as the domain's word
    """An action that the alert's current state does not allow."""

    def __init__(self, current: AlertState, action: Action, *, alert_id: int | None = None):
        self.current = current
        self.action = action
        self.alert_id = alert_id
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s is current)
        which = f"alert {alert_id} " if alert_id is not None else ""
        super().__init__(
            f"cannot {action.value} {which}in state {current.value};"
            f" allowed: {', '.join(allowed) or 'nothing (closed)'}"
        )


def next_state(current: AlertState, action: Action, *, alert_id: int | None = None) -> AlertState:
    """The state after ``action``, or :class:`InvalidTransition`."""
    target = TRANSITIONS.get((current, action))
    if target is None:
        raise InvalidTransition(current, action, alert_id=alert_id)
    return target


@dataclass(frozen=True, slots=True)
class Closing:
    """What the engine does with a detector's clear: the new state and its outcome."""

    state: AlertState
    outcome: Outcome | None


def engine_clear(current: AlertState, reason: ClearReason) -> Closing | None:
    """Close on a detector's clear, or None to keep the alert (closed, or dispatched)."""
    if current.closed or current is AlertState.DISPATCHED:
        return None
    if reason in (ClearReason.CANCELLED_BY_WEARER, ClearReason.NOT_CONFIRMED):
        return Closing(next_state(current, Action.FALSE_ALARM), Outcome.FALSE)
    return Closing(next_state(current, Action.AUTO_CLEAR), None)


def outcome_for(action: Action, outcome: Outcome | None) -> Outcome | None:
    """Validate an operator's outcome: resolve needs one, a false alarm is ``false``."""
    if action is Action.RESOLVE:
        if outcome is None:
            raise ValueError("resolving an alert needs an outcome (actionable, false, technical)")
        return outcome
    if action is Action.FALSE_ALARM:
        if outcome not in (None, Outcome.FALSE):
            raise ValueError("a false alarm has the outcome 'false'")
        return Outcome.FALSE
    if outcome is not None:
        raise ValueError(f"{action.value} takes no outcome")
    return None


# -- escalation of unacknowledged alerts ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """Who is told next while an alert stays unacknowledged (level 0: the operators).

    ``steps[i]`` = (target, delay since the alert opened) of level i + 1.
    """

    steps: tuple[tuple[str, timedelta], ...] = (
        ("supervisor", timedelta(minutes=2)),
        ("family_contact", timedelta(minutes=5)),
    )
    severities: frozenset[str] = frozenset({"critical"})

    def __post_init__(self) -> None:
        delays = [d for _, d in self.steps]
        if any(d <= timedelta(0) for d in delays) or delays != sorted(set(delays)):
            raise ValueError("escalation delays must be positive and strictly increasing")


@dataclass(frozen=True, slots=True)
class Unacknowledged:
    """What escalation needs to know of one stored alert."""

    alert_id: int
    severity: str
    state: AlertState
    opened_at: datetime
    level: int  # escalation level already reached (0: operators only)


ESCALATED_NOTE: Final = "escalated to "  # an escalation's recorded note starts so


@dataclass(frozen=True, slots=True)
class Escalation:
    alert_id: int
    level: int
    target: str
    due_at: datetime

    @property
    def note(self) -> str:
        """What the alert's history records for it (and families may read)."""
        return f"{ESCALATED_NOTE}{self.target} (level {self.level})"


def due_escalations(
    alerts: Iterable[Unacknowledged], *, now: datetime, policy: EscalationPolicy
) -> list[Escalation]:
    """Pure: the escalations due at ``now``; only the highest level due, once per level.

    An alert escalates while it is ``open`` (nobody acknowledged it); acknowledging
    it stops the chain.
    """
    out: list[Escalation] = []
    for a in alerts:
        if a.state is not AlertState.OPEN or a.severity not in policy.severities:
            continue
        level = sum(1 for _, delay in policy.steps if now >= a.opened_at + delay)
        if level > a.level:
            target, delay = policy.steps[level - 1]
            out.append(Escalation(a.alert_id, level, target, a.opened_at + delay))
    return out
