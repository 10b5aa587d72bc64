"""Restart, night activity: tonight's steps so far, folded into the seeded states.

Pure. At night, tonight's count so far and each band's last step counter are
read back (:class:`NightEvidence`, :func:`alerts.evidence.load_night_evidence`)
and folded in with :func:`with_night`, so steps walked before and during the
downtime count and the next report continues the count. The nights already
raised are seeded by :mod:`alerts.restart`.

A band's last counter is seeded with its band time (:func:`with_counters`, which
:func:`alerts.restart_falls.with_evidence` uses too), as the running engine keeps
it: a reading older than it, delivered after the restart (the broker kept the
engine's queued batches while it was down), says nothing new. Before 2026-12-04
the counter was seeded alone, and such a reading's lower daily count was taken
for the counter's midnight restart: the day's whole count became new steps,
thousands of phantom night steps and a false ``night_activity`` at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final

from alerts.detectors import ResidentState
from alerts.detectors.night_activity import NightActivityState

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)

Counter = tuple[int, datetime]  # a band's daily step counter, and its report's band time


@dataclass(frozen=True, slots=True)
class NightEvidence:
    """Tonight so far for one resident, read back at a restart: the night (named by its
    morning), its steps as the detector counts them, each band's last step counter with
    its report's band time."""

    night: date
    steps: int
    counters: Mapping[str, Counter]


def with_counters(state: ResidentState, counters: Mapping[str, Counter]) -> ResidentState:
    """Pure: each band's last step counter seeded with its band time (``steps_at``, the
    report's ``ts`` in ms, as the engine keeps it), unless the state holds a newer one."""
    last_steps, steps_at = dict(state.last_steps), dict(state.steps_at)
    for device_id, (counter, at) in counters.items():
        ts = (at - _EPOCH) // _MS  # exact: the band's ts in ms, as stored
        kept = steps_at.get(device_id)
        if kept is None or ts >= kept:
            last_steps[device_id], steps_at[device_id] = counter, ts
    return replace(state, last_steps=last_steps, steps_at=steps_at)


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
        state = replace(
            state, night=NightActivityState(ev.night, ev.steps, night.raised_for, night.open)
        )
        out[resident_id] = with_counters(state, ev.counters)
    return out
