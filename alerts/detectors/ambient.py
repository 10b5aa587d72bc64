"""Hot weather: the shared rise of everyone's wrist temperature is not a fever.

The fever rule reads core temperature from wrist *skin* temperature, as 36.8 plus
the reading's deviation from the resident's own median (``vitals.core_estimate``).
Skin follows the room: on a hot day without air conditioning every resident's wrist
is warmer than their median, by about the same amount, and the rule would raise a
fever for half the city at once. The engine therefore estimates the common shift,
the median deviation over the residents it watches, and takes it off each estimate:
what is left is the resident's own rise, beyond everyone else's.

* Only a rise is taken off (``MIN_SHIFT_C`` or more). A city-wide cooling is not
  excused: a cold home is a hypothermia risk for an older person, not noise.
* Only with enough residents (``MIN_RESIDENTS`` with a temperature baseline and a
  reading in the last ``WINDOW``): a handful of warm wrists is not the weather. An
  outbreak of fever in a few percent of residents barely moves a median.
* A resident warmer than everyone else by a fever's rise is still raised: heat
  stroke in a hot flat, the danger of a heatwave, shows as exactly that.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from alerts.detectors.news2 import VitalParam
from alerts.detectors.types import Profile

MIN_RESIDENTS: Final = 200
MIN_SHIFT_C: Final = 0.3  # below this the median is day-to-day noise, not weather
WINDOW: Final = timedelta(minutes=30)
SAMPLE_EVERY_MS: Final = 5 * 60_000  # one deviation per resident per 5 min is enough


def deviation(skin_c: float, profile: Profile, *, night: bool) -> float | None:
    """The reading's deviation from the resident's own median wrist temperature of that
    part of the day; None without a baseline."""
    baseline = profile.baseline(VitalParam.TEMP, night=night)
    return None if baseline is None else skin_c - baseline.median


def common_shift(deviations: list[float], *, min_residents: int = MIN_RESIDENTS) -> float:
    """Pure: the shared rise to take off every estimate (0.0 when there is none)."""
    if len(deviations) < min_residents:
        return 0.0
    median = statistics.median(deviations)
    return round(median, 1) if median >= MIN_SHIFT_C else 0.0


@dataclass(slots=True)
class SkinShift:
    """The engine's running estimate: each resident's latest deviation (sampled, at most
    one per ``SAMPLE_EVERY_MS``: the engine's hot path asks :meth:`due` first), and the
    common shift of those from the last ``WINDOW`` (recomputed by :meth:`update`)."""

    min_residents: int = MIN_RESIDENTS
    # resident id -> (ts ms, deviation; None without a baseline: sampled all the same)
    latest: dict[int, tuple[int, float | None]] = field(default_factory=dict)
    shift_c: float = 0.0

    def due(self, resident_id: int, ts_ms: int) -> bool:
        last = self.latest.get(resident_id)
        return last is None or ts_ms - last[0] >= SAMPLE_EVERY_MS

    def observe(self, resident_id: int, ts_ms: int, dev: float | None) -> None:
        self.latest[resident_id] = (ts_ms, dev)

    def update(self, now: datetime) -> float:
        since = int((now - WINDOW).timestamp() * 1000)
        stale = [r for r, (at, _) in self.latest.items() if at < since]
        for r in stale:
            del self.latest[r]
        devs = [d for _, d in self.latest.values() if d is not None]
        self.shift_c = common_shift(devs, min_residents=self.min_residents)
        return self.shift_c
