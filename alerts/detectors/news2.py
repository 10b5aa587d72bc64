"""NEWS2 sub-scores (Royal College of Physicians, National Early Warning Score 2, 2017).

Each parameter's bands are data (:class:`ParamBands`) so a clinician can
override them per resident. Only the parameters a wristband measures are
scored: heart rate, SpO2 (scale 1, or scale 2 for hypercapnic COPD, on air),
systolic blood pressure and temperature. One addition that is not NEWS2: the
hypertensive-crisis bands (:data:`ALERT_SBP_BANDS`, :data:`DBP_BANDS`).
Respiration rate, consciousness and supplemental oxygen are not known to the
band and are not scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class VitalParam(StrEnum):
    HR = "hr"
    SPO2 = "spo2"
    SBP = "sbp"
    TEMP = "temp"


class Direction(StrEnum):
    HIGH = "high"
    LOW = "low"

    @property
    def opposite(self) -> Direction:
        return Direction.LOW if self is Direction.HIGH else Direction.HIGH


@dataclass(frozen=True, slots=True)
class ParamBands:
    """``low``: (bound, score) pairs, score applies when value <= bound, tightest first;
    ``high``: (bound, score) pairs, score applies when value >= bound, highest first."""

    low: tuple[tuple[float, int], ...] = ()
    high: tuple[tuple[float, int], ...] = ()

    def __post_init__(self) -> None:
        for bands in (self.low, self.high):
            if any(not 1 <= s <= 3 for _, s in bands):
                raise ValueError("NEWS2 sub-scores are 1, 2 or 3")
            scores = [s for _, s in bands]
            if scores != sorted(scores, reverse=True):
                raise ValueError("bands must go from the highest score to the lowest")
        lows = [b for b, _ in self.low]
        highs = [b for b, _ in self.high]
        if lows != sorted(lows) or highs != sorted(highs, reverse=True):
            raise ValueError("band bounds must widen towards normal")
        if lows and highs and lows[-1] >= highs[-1]:
            raise ValueError("low and high bands overlap")

    def score(self, value: float) -> tuple[int, Direction | None]:
        """The sub-score of one value and which side of normal it lies on."""
        for bound, s in self.low:
            if value <= bound:
                return s, Direction.LOW
        for bound, s in self.high:
            if value >= bound:
                return s, Direction.HIGH
        return 0, None

    def score_towards(self, value: float, direction: Direction) -> int:
        """The sub-score of ``value`` counting only the bands on one side."""
        s, d = self.score(value)
        return s if d is direction else 0


# Integers arrive for HR, SpO2 and SBP; temperature has 0.1 degree resolution, so the
# band 35.1-36.0 is "<= 36.0" and 38.1-39.0 is ">= 38.1" (values are rounded to 0.1 first).
HR_BANDS: Final = ParamBands(low=((40, 3), (50, 1)), high=((131, 3), (111, 2), (91, 1)))
SPO2_SCALE_1: Final = ParamBands(low=((91, 3), (93, 2), (95, 1)))
SPO2_SCALE_2: Final = ParamBands(low=((83, 3), (85, 2), (87, 1)))  # on air: >= 88 scores 0
SBP_BANDS: Final = ParamBands(low=((90, 3), (100, 2), (110, 1)), high=((220, 3),))
TEMP_BANDS: Final = ParamBands(low=((35.0, 3), (36.0, 1)), high=((39.1, 2), (38.1, 1)))

# Not NEWS2: hypertensive crisis (2017 ACC/AHA guideline, Whelton et al., Hypertension
# 2018;71:e13-e115, section 11.2: systolic > 180 and/or diastolic > 120 mmHg). NEWS2 scores
# a high systolic only at >= 220, which misses a crisis of 180-219 in a resident at home;
# the alerting bands add it as a 2 (medium: a call, symptoms, a cuff reading).
CRISIS_SBP: Final = 180
CRISIS_DBP: Final = 120
ALERT_SBP_BANDS: Final = ParamBands(low=SBP_BANDS.low, high=((220, 3), (CRISIS_SBP, 2)))
DBP_BANDS: Final = ParamBands(high=((CRISIS_DBP, 2),))

DEFAULT_BANDS: Final = {
    VitalParam.HR: HR_BANDS,
    VitalParam.SPO2: SPO2_SCALE_1,
    VitalParam.SBP: ALERT_SBP_BANDS,
    VitalParam.TEMP: TEMP_BANDS,
}
