"""Restart: detector states seeded from the alerts the database holds.

Pure (stored rows in, states out). An open SOS keeps its press count, an open
fall its episode (stage, sources, timers from ``opened_at``), so the next
press or the confirmation and long-lie timers carry on after a restart. Every
other alert is re-derived from fresh data (see :mod:`alerts.engine`).

An unconfirmed fall (closed ``not_confirmed`` by the full window, watched for
a long lie with no alert open, :mod:`alerts.detectors.falls`) is rebuilt from
its closed alert when it was closed within ``WATCH_LOOKBACK`` and no later
fall or long-lie alert of the resident has been closed since (an operator
closing one ends the episode); a long lie it raised that is still open comes
with it.

Night activity: an open ``night_activity`` alert is kept (the detector never
clears it; it updates it on a later restless night), and the night of any
such alert, open or closed by an operator, is remembered so that night is not
raised again.

What was read back since is folded into the seeded states by the rest of the
restart: what bands reported after a fall (:mod:`alerts.restart_falls`),
tonight's steps (:mod:`alerts.restart_night`) and the location fixes of
residents who may be out (:mod:`alerts.restart_geofence`); last, the condition alerts
anyone but the engine closed are muted again (:mod:`alerts.restart_mutes`).
:func:`alerts.evidence.restore_states` reads them and runs the whole restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, Final

from alerts.detectors import AlertType, ClearReason, ResidentState, Severity
from alerts.detectors.falls import FallEpisode, FallsState, FallStage
from alerts.detectors.lifecycle import OpenAlert
from alerts.detectors.night_activity import NightActivityState
from alerts.detectors.sos import SosState, press_ids
from alerts.store import StoredAlert

WATCH_LOOKBACK: Final = timedelta(hours=1)  # how old an unconfirmed fall's watch may be
NIGHT_LOOKBACK: Final = timedelta(hours=12)  # closed night-activity alerts: longer than a night
_FALL_TYPES: Final = (AlertType.FALL, AlertType.LONG_LIE)


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
    return SosState(presses, first, ok_at, {AlertType.SOS: opened},
                    last_pressed_at=_parse_time(d.get("last_pressed_at")),
                    counted=press_ids(d.get("presses_seen")))  # fmt: skip


def cleared_reason(alert: StoredAlert) -> str | None:
    """Why the engine closed it (or, for a dispatched alert it kept open, wanted to)."""
    for key in ("cleared", "detector_cleared"):
        cleared = alert.detail.get(key)
        if isinstance(cleared, dict):
            return str(cleared.get("reason"))
    return None


def _episode(fall: StoredAlert, stage: FallStage, *, long_lie: bool) -> FallEpisode | None:
    if fall.device_id is None:
        return None
    d = fall.detail
    score = d.get("score")
    return FallEpisode(
        stage=stage,
        device_id=fall.device_id,
        # a held band report is raised 30 s after its clocks started (before 2026-12-04
        # the detail had no suspected_at, and a restart ran the long lie 30 s late)
        suspected_at=_parse_time(d.get("suspected_at")) or fall.opened_at,
        impact_at=_parse_time(d.get("impact_at")) or fall.opened_at,
        sources=frozenset(str(s) for s in d.get("sources") or ["band"]),
        score=float(score) if isinstance(score, int | float) else None,
        falls=int(d.get("falls") or 1),
        steps_since=int(d.get("steps_since") or 0),
        wearer_ok_at=fall.updated_at if d.get("wearer_says_ok") else None,
        long_lie=long_lie,
        abnormal_hr=_heart_rate(d.get("heart_rate_after")),
    )


def _heart_rate(value: Any) -> tuple[int, datetime] | None:
    """``heart_rate_after`` of a fall's detail, as the episode keeps it."""
    if not isinstance(value, dict) or not isinstance(value.get("bpm"), int):
        return None
    at = _parse_time(value.get("at"))
    return None if at is None else (value["bpm"], at)


def _opened(alert: StoredAlert) -> OpenAlert:
    # key "" differs from any real key: the next sync refreshes the stored detail
    return OpenAlert(Severity(alert.severity), alert.device_id, "", alert.opened_at)


def _seed_falls(fall: StoredAlert, long_lie: StoredAlert | None) -> FallsState:
    try:
        stage = FallStage(str(fall.detail.get("stage", FallStage.CONFIRMED)))
    except ValueError:
        stage = FallStage.CONFIRMED
    episode = _episode(fall, stage, long_lie=long_lie is not None)
    if episode is None:
        return FallsState()
    opened = {AlertType.FALL: _opened(fall)}
    if long_lie is not None:
        opened[AlertType.LONG_LIE] = _opened(long_lie)
    return FallsState(episode, opened)


def _seed_watch(
    fall: StoredAlert, long_lie: StoredAlert | None, closed_since: list[StoredAlert]
) -> FallsState | None:
    """An unconfirmed fall still watched, or None when it ended (see the module doc)."""
    if cleared_reason(fall) != ClearReason.NOT_CONFIRMED:
        return None
    if any(a.opened_at > fall.opened_at for a in closed_since):
        return None  # a later fall or long lie, closed: the episode ended
    lie = long_lie if long_lie is not None and long_lie.opened_at >= fall.opened_at else None
    episode = _episode(fall, FallStage.UNCONFIRMED, long_lie=lie is not None)
    if episode is None:
        return None
    return FallsState(episode, {AlertType.LONG_LIE: _opened(lie)} if lie is not None else {})


def _night_of(alert: StoredAlert) -> date | None:
    value = alert.detail.get("night_of")
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _seed_night(open_alert: StoredAlert | None, closed: list[StoredAlert]) -> NightActivityState:
    nights = [n for a in closed if a.type == AlertType.NIGHT_ACTIVITY and (n := _night_of(a))]
    opened: dict[AlertType, OpenAlert] = {}
    if open_alert is not None:
        night = _night_of(open_alert)
        if night is not None:
            nights.append(night)
        opened[AlertType.NIGHT_ACTIVITY] = OpenAlert(
            Severity(open_alert.severity), open_alert.device_id,
            night.isoformat() if night else "", open_alert.opened_at,
        )  # fmt: skip
    return NightActivityState(raised_for=max(nights, default=None), open=opened)


def seed_states(
    alerts: Iterable[StoredAlert], *, recently_closed: Iterable[StoredAlert] = ()
) -> dict[int, ResidentState]:
    """Pure: detector states that know the stored open SOS, fall and night-activity
    alerts, the unconfirmed falls still watched among ``recently_closed`` (fall and
    long-lie alerts closed within ``WATCH_LOOKBACK``), the presses of the SOS closed
    last (within ``WATCH_LOOKBACK``: a redelivered press is not a new one) and the
    nights already raised (night-activity alerts closed within ``NIGHT_LOOKBACK``)."""
    by_resident: dict[int, dict[str, StoredAlert]] = {}
    for a in alerts:
        by_resident.setdefault(a.resident_id, {})[a.type] = a
    closed: dict[int, list[StoredAlert]] = {}
    for a in recently_closed:
        closed.setdefault(a.resident_id, []).append(a)
    states: dict[int, ResidentState] = {}
    for resident_id in by_resident.keys() | closed.keys():
        alerts_of = by_resident.get(resident_id, {})
        closed_all = closed.get(resident_id, [])
        closed_of = [a for a in closed_all if a.type in _FALL_TYPES]
        state = ResidentState(night=_seed_night(alerts_of.get(AlertType.NIGHT_ACTIVITY),
                                                closed_all))  # fmt: skip
        if (sos := alerts_of.get(AlertType.SOS)) is not None:
            state = replace(state, sos=_seed_sos(sos))
        elif done := [a for a in closed_all if a.type == AlertType.SOS]:
            # its presses, should the batch that held them be handed over again
            state = replace(state, sos=SosState(counted=press_ids(done[-1].detail.get(
                "presses_seen"))))  # fmt: skip
        fall = alerts_of.get(AlertType.FALL)
        long_lie = alerts_of.get(AlertType.LONG_LIE)
        if fall is not None and cleared_reason(fall) != ClearReason.NOT_CONFIRMED:
            state = replace(state, falls=_seed_falls(fall, long_lie))
        else:  # the full window did not confirm it (closed, or kept open as dispatched)
            retracted = [a for a in closed_of if a.type == AlertType.FALL]
            candidate = fall or (retracted[-1] if retracted else None)
            watch = candidate and _seed_watch(candidate, long_lie, closed_of)
            if watch:
                state = replace(state, falls=watch)
        if (resident_id in by_resident or state.falls.episode is not None
                or state.night.raised_for or state.sos.counted):  # fmt: skip
            states[resident_id] = state
    return states
