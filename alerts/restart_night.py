"""Restart, night activity: tonight's steps so far, folded into the seeded states.

Pure. At night, tonight's count so far and each band's last step counter are
read back (:class:`NightEvidence`, :func:`alerts.evidence.load_night_evidence`)
and folded in with :func:`with_night`, so steps walked before and during the
downtime count and the next report continues the count. The nights already
raised are seeded by :mod:`alerts.restart`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

from alerts.detectors import ResidentState
from alerts.detectors.night_activity import NightActivityState


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
