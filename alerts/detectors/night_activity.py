"""Night-time activity: tonight's steps against the resident's own recent nights.

A night is the time outside waking hours, 22:00 local of day D-1 to 07:00 of
day D (the summaries' fixed split ``SUMMARY_WAKING``, not the personal waking window,
which the daily summaries cannot follow), named by D, the morning it
ends. Steps are counted as everywhere else (:func:`~alerts.detectors.types.steps_delta`:
the band's daily counter restarts at midnight), from reports of a band not
reported off the wrist, each report's new steps belonging to the report's own
(band) time.

The usual night (:func:`learn_night_threshold`) comes from the daily summaries
(alerts/daily_summary.py): each local day holds the steps of its two night
parts, before waking start and after waking end, and how much of each part a
worn band covered; :func:`night_totals` joins the evening of D-1 and the
morning of D into the night D, or leaves it unknown (a part missing, or a
worn band covering less than half the night). From the last 7 nights, with at
least 5 known, the threshold is the largest of:

* ``FLOOR_STEPS`` (300): a resident who never walks at night is not raised for
  one or two trips to the toilet and back (a few dozen steps each in a flat);
* twice the median night: a doubling of the usual night's walking;
* the median + 4 robust standard deviations (1.4826 x MAD): beyond the
  resident's own night-to-night variation when that is wide.

Tonight's count passing the threshold raises one ``night_activity`` alert
(low; medium with dementia, whose night-time restlessness is a sign of
delirium, pain or infection worth a call in the morning). It is a follow-up for
the day team, not an emergency, so it is **not** cleared at waking start (it
would vanish from the queue just before anyone could act on it): it stays open
until an operator closes it. A later restless night while it is still open
updates it; after an operator closed it, the same night is not raised again,
the next restless night is. No baseline (a new resident, a band charged
overnight): no alert.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from alerts.detectors.lifecycle import OpenAlerts, Want, forget, reconcile
from alerts.detectors.localtime import local_datetime, time_in_daily_window
from alerts.detectors.types import (
    SUMMARY_WAKING,
    AlertEvent,
    AlertType,
    ClearReason,
    NightActivityBaseline,
    Profile,
    Severity,
    iso,
    steps_delta,
)

WINDOW_NIGHTS: Final = 7
MIN_KNOWN_NIGHTS: Final = 5
FLOOR_STEPS: Final = 300
MEDIAN_FACTOR: Final = 2.0
MAD_Z: Final = 4.0
MAD_TO_SD: Final = 1.4826
MIN_COVERED: Final = 0.5  # share of the night a worn band must cover for it to be known
COVER_MAX_GAP: Final = timedelta(minutes=15)  # a longer silence between reports is not covered


@dataclass(frozen=True, slots=True)
class NightPart:
    """One part of a local day outside waking hours: steps, and seconds covered by a
    worn band (reports no more than ``COVER_MAX_GAP`` apart)."""

    steps: int = 0
    covered_s: float = 0.0


def night_totals(
    days: Mapping[date, tuple[NightPart, NightPart]],
    *,
    night_s: float,
    min_covered: float = MIN_COVERED,
) -> dict[date, int | None]:
    """Pure: per-day parts (morning, evening) -> steps per night, named by its morning.

    Night D = the evening part of D-1 + the morning part of D. None (unknown, not
    zero) when either day is missing or a worn band covered less than
    ``min_covered`` of the night's ``night_s`` seconds.
    """
    out: dict[date, int | None] = {}
    for day in sorted(days):
        before = days.get(day - timedelta(days=1))
        if before is None:
            out[day] = None
            continue
        morning, evening = days[day][0], before[1]
        covered = morning.covered_s + evening.covered_s
        out[day] = morning.steps + evening.steps if covered >= min_covered * night_s else None
    return out


def learn_night_threshold(
    nights: Sequence[int | None],
    *,
    min_known: int = MIN_KNOWN_NIGHTS,
    floor: int = FLOOR_STEPS,
    factor: float = MEDIAN_FACTOR,
    z: float = MAD_Z,
) -> NightActivityBaseline | None:
    """Pure: the usual night and its threshold from recent nights (None: unknown);
    None until ``min_known`` nights are known. See the module doc for the rule."""
    known = [n for n in nights if n is not None]
    if len(known) < min_known:
        return None
    median = float(statistics.median(known))
    mad = float(statistics.median(abs(n - median) for n in known))
    threshold = max(float(floor), factor * median, median + z * MAD_TO_SD * mad)
    return NightActivityBaseline(round(threshold), median, len(known))


def night_of(at: datetime, profile: Profile) -> date | None:
    """The night ``at`` falls in (named by the morning it ends), or None in waking hours."""
    local = local_datetime(at, profile.tz)
    if time_in_daily_window(local.time(), *SUMMARY_WAKING):
        return None
    day = local.date()
    return day + timedelta(days=1) if local.time() >= SUMMARY_WAKING[1] else day


def night_start(night: date, profile: Profile) -> datetime:
    """When the night ``night`` began: waking end of the day before, as aware UTC."""
    local = datetime.combine(night - timedelta(days=1), SUMMARY_WAKING[1], ZoneInfo(profile.tz))
    return local.astimezone(UTC)


def steps_in(
    reports: Iterable[tuple[str, datetime, int | None, bool | None]],
    start: datetime,
    end: datetime,
) -> int:
    """Pure: the steps of [start, end) in (band, time, step counter, worn) reports in time
    order, counted as the engine counts them (each report's new steps since the band's
    previous report, belonging to the report's time; not while reported off the wrist)."""
    last: dict[str, int] = {}
    total = 0
    for device_id, at, steps, worn in reports:
        if steps is None:
            continue
        delta = steps_delta(last.get(device_id), steps)
        last[device_id] = steps
        if start <= at < end and worn is not False:
            total += delta
    return total


@dataclass(frozen=True, slots=True)
class NightActivityState:
    night: date | None = None  # the night being counted
    steps: int = 0  # its steps so far
    raised_for: date | None = None  # the night an alert was raised for (never twice)
    open: OpenAlerts = field(default_factory=dict)


def _severity(profile: Profile) -> Severity:
    return Severity.MEDIUM if profile.dementia else Severity.LOW


def step(
    state: NightActivityState,
    profile: Profile,
    *,
    delta: int,
    worn: bool | None,
    observed_at: datetime,
    device_id: str | None,
    now: datetime,
) -> tuple[NightActivityState, list[AlertEvent]]:
    """One step report: ``delta`` new steps at the band's ``observed_at``."""
    night = night_of(observed_at, profile)
    if night is None or (state.night is not None and night < state.night):
        return state, []  # waking hours, or a late report of a night already over
    steps = state.steps if night == state.night else 0
    if worn is not False and delta > 0:
        steps += delta
    counted = NightActivityState(night, steps, state.raised_for, state.open)
    usual = profile.night_activity
    if usual is None or steps <= usual.threshold or state.raised_for == night:
        return counted, []
    detail = {
        "night_of": night.isoformat(),
        "night_started_at": iso(night_start(night, profile)),
        "steps_tonight": steps,
        "threshold_steps": usual.threshold,
        "usual_night_steps": usual.median,
        "nights_known": usual.nights,
        "dementia": profile.dementia,
    }
    want = Want(_severity(profile), device_id, detail, night.isoformat())
    opened, events = reconcile(
        state.open,
        AlertType.NIGHT_ACTIVITY,
        want,
        resident_id=profile.resident_id,
        at=now,
        clear_reason=ClearReason.RESOLVED,
    )
    return NightActivityState(night, steps, night, opened), events


def closed(state: NightActivityState) -> NightActivityState:
    """An operator closed the alert: forget it (the night it was for is not raised again)."""
    return NightActivityState(state.night, state.steps, state.raised_for,
                              forget(state.open, AlertType.NIGHT_ACTIVITY))  # fmt: skip
