"""The resident's own waking hours, learned from their routine. Pure.

The live waking-hours rules (inactivity, band_not_worn, geofence night weighting) used
07:00-22:00 for everyone. A late sleeper, up at 09:30, then had 2.5 h of "waking-hours
stillness" every morning: it inflated their learned inactivity threshold (the longest
still stretch of the day included the morning sleep), so daytime inactivity was found
hours later for them; an early sleeper (bed at 20:00) got the same from the evening.

Each summarised day (alerts/daily_summary.py, migration 011) holds a robust wake time
and bedtime from its movements (new steps):

* **wake**: the first movement at or after 04:00 local that begins sustained activity,
  at least ``SUSTAINED_MOVES`` (5) movements within [t, t + 60 min]. A toilet trip at
  04:30 followed by more sleep is one or two movements, not a wake-up.
* **bedtime**: the last movement of the local day (at or after 04:00, before 24:00) that
  ends sustained activity, at least 5 movements within [t - 60 min, t]. Not after
  midnight: the learned end is clamped to 23:45 anyway, so a later bedtime changes
  nothing, and the day can be summarised an hour after it ends as before.

:func:`learn_waking_window` turns the last 7 days into a window: the median wake time
rounded down to 15 min, clamped to [05:00, 10:00], and the median bedtime rounded up to
15 min, clamped to [19:00, 23:45], each from at least 5 known days (else that end keeps
its default, 07:00 or 22:00). Rounded outwards and clamped: a window a little too wide
only counts a little sleep as waking time (as the fixed window did for everyone); a
window much too narrow would hide a day of stillness, so it is bounded.

The daily summaries' split of vitals and night parts stays the fixed
:data:`~alerts.detectors.types.SUMMARY_WAKING` (07-22), and so does the night of the
night-activity rule. A vital sign is judged against the night baselines
(:func:`vitals_night`) outside that split *or* outside the resident's own window: the
night baselines describe their sleep (learned 22-07), and a resident asleep by 21:30
desaturates, slows and dips in sleep from 21:30. Without this, an early sleeper's
routine sleep-onset desaturations (a COPD resident's SpO2 of 88 %) were judged against
their waking-hours baseline and alarmed. The window is rounded outwards, so this
counts as sleep only what is surely past the resident's usual bedtime.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from typing import Final

from alerts.detectors.localtime import local_datetime, local_time, time_in_daily_window
from alerts.detectors.types import SUMMARY_WAKING, Profile

DAY_FROM: Final = time(4, 0)  # a wake-up is at or after this local time
SUSTAINED_MOVES: Final = 5  # movements within SUSTAINED_WITHIN of a wake-up or bedtime
SUSTAINED_WITHIN: Final = timedelta(minutes=60)
MIN_DAYS: Final = 5  # of the last 7
ROUND_S: Final = 15 * 60
START_RANGE: Final = (time(5, 0), time(10, 0))
END_RANGE: Final = (time(19, 0), time(23, 45))


def wake_and_bed(moves: Sequence[datetime], *, tz: str) -> tuple[datetime | None, datetime | None]:
    """Pure: one local day's wake-up and bedtime from its movement times (sorted, aware;
    all within that day), by the rule in the module doc; None where there is none."""
    wake: datetime | None = None
    bed: datetime | None = None
    for i, t in enumerate(moves):
        if local_datetime(t, tz).time() < DAY_FROM:
            continue
        after = sum(1 for m in moves[i:] if m <= t + SUSTAINED_WITHIN)
        before = sum(1 for m in moves if t - SUSTAINED_WITHIN <= m <= t)
        if wake is None and after >= SUSTAINED_MOVES:
            wake = t
        if before >= SUSTAINED_MOVES:
            bed = t
    return wake, bed


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _clock(seconds: int) -> time:
    return time(seconds // 3600, seconds % 3600 // 60)


def learn_waking_window(
    wakes: Sequence[time], beds: Sequence[time], *, min_days: int = MIN_DAYS
) -> tuple[time, time] | None:
    """Pure: the waking window from the local wake times and bedtimes of the recent days
    (one each per day known); None while neither end is learned (keep 07:00-22:00)."""
    start = _rounded_median(wakes, math.floor, START_RANGE, min_days)
    end = _rounded_median(beds, math.ceil, END_RANGE, min_days)
    if start is None and end is None:
        return None
    return (start or SUMMARY_WAKING[0], end or SUMMARY_WAKING[1])


def _rounded_median(
    times: Sequence[time], rounding: Callable[[float], int], bounds: tuple[time, time],
    min_days: int,
) -> time | None:  # fmt: skip
    """The median of ``times`` rounded (down or up) to ``ROUND_S`` and clamped to ``bounds``;
    None with fewer than ``min_days`` of them."""
    if len(times) < min_days:
        return None
    median = statistics.median(_seconds(t) for t in times)
    lo, hi = (_seconds(t) for t in bounds)
    return _clock(min(hi, max(lo, rounding(median / ROUND_S) * ROUND_S)))


def vitals_night(observed_at: datetime, profile: Profile) -> bool:
    """Whether a reading at ``observed_at`` is judged against the night baselines: outside
    the summaries' fixed split (where those were learned) or the resident's own window."""
    local = local_time(observed_at, profile.tz)  # once: every reading asks this
    return not time_in_daily_window(local, *SUMMARY_WAKING) or not time_in_daily_window(
        local, profile.waking_start, profile.waking_end
    )
