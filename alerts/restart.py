"""Restart: detector states seeded from the alerts the database still holds open.

Pure (stored rows in, states out). An open SOS keeps its press count, an open
fall its episode (stage, sources, timers from ``opened_at``), so the next
press or the confirmation and long-lie timers carry on after a restart. Every
other alert is re-derived from fresh data (see :mod:`alerts.engine`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from alerts.detectors import AlertType, ResidentState, Severity
from alerts.detectors.falls import FallEpisode, FallsState, FallStage
from alerts.detectors.lifecycle import OpenAlert
from alerts.detectors.sos import SosState
from alerts.store import StoredAlert


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


def _seed_falls(fall: StoredAlert, long_lie: StoredAlert | None) -> FallsState:
    if fall.device_id is None:
        return FallsState()
    d = fall.detail
    try:
        stage = FallStage(str(d.get("stage", FallStage.CONFIRMED)))
    except ValueError:
        stage = FallStage.CONFIRMED
    score = d.get("score")
    episode = FallEpisode(
        stage=stage,
        device_id=fall.device_id,
        suspected_at=fall.opened_at,
        impact_at=_parse_time(d.get("impact_at")) or fall.opened_at,
        sources=frozenset(str(s) for s in d.get("sources") or ["band"]),
        score=float(score) if isinstance(score, int | float) else None,
        falls=int(d.get("falls") or 1),
        steps_since=int(d.get("steps_since") or 0),
        wearer_ok_at=fall.updated_at if d.get("wearer_says_ok") else None,
        long_lie=long_lie is not None,
    )
    # key "" differs from any real key: the next sync refreshes the stored detail
    opened = {
        AlertType.FALL: OpenAlert(Severity(fall.severity), fall.device_id, "", fall.opened_at)
    }
    if long_lie is not None:
        opened[AlertType.LONG_LIE] = OpenAlert(
            Severity(long_lie.severity), long_lie.device_id, "", long_lie.opened_at
        )
    return FallsState(episode, opened)


def seed_states(alerts: Iterable[StoredAlert]) -> dict[int, ResidentState]:
    """Pure: detector states that know the stored open SOS and fall alerts."""
    by_resident: dict[int, dict[str, StoredAlert]] = {}
    for a in alerts:
        by_resident.setdefault(a.resident_id, {})[a.type] = a
    states: dict[int, ResidentState] = {}
    for resident_id, alerts_of in by_resident.items():
        state = ResidentState()
        if (sos := alerts_of.get(AlertType.SOS)) is not None:
            state = replace(state, sos=_seed_sos(sos))
        if (fall := alerts_of.get(AlertType.FALL)) is not None:
            state = replace(state, falls=_seed_falls(fall, alerts_of.get(AlertType.LONG_LIE)))
        states[resident_id] = state
    return states
