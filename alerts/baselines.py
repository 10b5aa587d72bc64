"""Personal baselines from the resident's own recent history in the database.

At engine start, and again every hour, :func:`load_baselines` counts each
resident's telemetry of the last ``days`` days (7 by default) by parameter
(heart rate, SpO2, systolic pressure), part of the day (waking hours or night,
by the default waking window in the residents' time zone) and value: the
readings are integers, so a histogram is exact and small (tens of distinct
values per parameter). :func:`baselines_from_counts` (pure) turns each
histogram into a :class:`~alerts.detectors.types.Baseline` (median, 1.4826 x MAD,
floored, and the 1st percentile as ``low``) when it holds at least
``min_samples`` readings. The percentile matters for intermittent values:
night-time desaturations that come and go (a quarter of the readings of some
residents) are outliers to the median and MAD, yet they are that person's
normal night.
Readings from a band reported off the wrist are left out.

Why a histogram in SQL rather than the rows: the database does the counting
next to the data, and what travels is a few thousand rows, not millions. The
cost is one pass over the window's telemetry per reload; at city scale a
daily materialised histogram table would replace it (see docs/alerts.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final

import numpy as np
import psycopg
from psycopg.rows import TupleRow

from alerts.detectors.baseline import MAD_TO_SD
from alerts.detectors.news2 import VitalParam
from alerts.detectors.types import DEFAULT_TZ, Baseline, Profile

SCALE_FLOOR: Final = {VitalParam.HR: 3.0, VitalParam.SPO2: 1.0, VitalParam.SBP: 5.0}
MIN_SAMPLES: Final = 50
LOW_Q: Final = 0.01  # Baseline.low: the value the resident reaches in 1 % of readings
WAKING_HOURS: Final = (7, 22)  # local [start, end): Profile's default waking window

_QUERY = """
SELECT t.resident_id,
       extract(hour FROM t.time AT TIME ZONE %(tz)s) >= %(wake)s
         AND extract(hour FROM t.time AT TIME ZONE %(tz)s) < %(sleep)s AS day,
       v.param, v.value, count(*) AS n
FROM telemetry t
CROSS JOIN LATERAL (VALUES ('hr', t.hr), ('spo2', t.spo2), ('sbp', t.bp_sys)) AS v(param, value)
WHERE t.time >= %(since)s AND t.time < %(until)s
  AND t.resident_id IS NOT NULL AND t.worn IS NOT FALSE AND v.value IS NOT NULL
GROUP BY 1, 2, 3, 4
"""


@dataclass(frozen=True, slots=True)
class ResidentBaselines:
    day: Mapping[VitalParam, Baseline] = field(default_factory=dict)
    night: Mapping[VitalParam, Baseline] = field(default_factory=dict)

    def apply(self, profile: Profile) -> Profile:
        return replace(profile, baselines=self.day, night_baselines=self.night)


def histogram_baseline(
    values: Iterable[float], counts: Iterable[int], *, scale_floor: float, min_samples: int
) -> Baseline | None:
    """Median and 1.4826 x MAD of a histogram (value -> count); None if too few readings."""
    v = np.asarray(list(values), dtype=np.float64)
    c = np.asarray(list(counts), dtype=np.int64)
    keep = np.isfinite(v) & (c > 0)
    v, c = v[keep], c[keep]
    n = int(c.sum())
    if n < min_samples:
        return None
    median = _weighted_median(v, c)
    mad = _weighted_median(np.abs(v - median), c)
    return Baseline(median, max(MAD_TO_SD * mad, scale_floor), n, _lower_quantile(v, c, LOW_Q))


def _weighted_median(v: np.ndarray, c: np.ndarray) -> float:
    order = np.argsort(v, kind="stable")
    v, c = v[order], c[order]
    cum = np.cumsum(c)
    total = int(cum[-1])
    lo = int(np.searchsorted(cum, (total + 1) // 2))  # the lower middle (1-based rank)
    hi = int(np.searchsorted(cum, total // 2 + 1))  # the upper middle
    return float((v[lo] + v[hi]) / 2)


def _lower_quantile(v: np.ndarray, c: np.ndarray, q: float) -> float:
    """The smallest value with at least ``q`` of the readings at or below it."""
    order = np.argsort(v, kind="stable")
    v, c = v[order], c[order]
    cum = np.cumsum(c)
    return float(v[int(np.searchsorted(cum, q * float(cum[-1])))])


def baselines_from_counts(
    rows: Iterable[tuple[int, bool, str, float, int]], *, min_samples: int = MIN_SAMPLES
) -> dict[int, ResidentBaselines]:
    """Pure: (resident_id, waking hours?, parameter, value, count) rows to baselines."""
    hist: dict[tuple[int, bool, VitalParam], dict[float, int]] = {}
    for resident_id, day, param, value, n in rows:
        try:
            p = VitalParam(param)
        except ValueError:
            continue
        h = hist.setdefault((resident_id, bool(day), p), {})
        h[float(value)] = h.get(float(value), 0) + int(n)
    out: dict[int, tuple[dict[VitalParam, Baseline], dict[VitalParam, Baseline]]] = {}
    for (resident_id, day, p), h in hist.items():
        b = histogram_baseline(h.keys(), h.values(), scale_floor=SCALE_FLOOR.get(p, 1.0),
                               min_samples=min_samples)  # fmt: skip
        if b is None:
            continue
        pair = out.setdefault(resident_id, ({}, {}))
        pair[0 if day else 1][p] = b
    return {r: ResidentBaselines(d, n) for r, (d, n) in out.items()}


async def load_baselines(
    conn: psycopg.AsyncConnection[TupleRow],
    *,
    now: datetime,
    days: float = 7.0,
    tz: str = DEFAULT_TZ,
    min_samples: int = MIN_SAMPLES,
) -> dict[int, ResidentBaselines]:
    """Every resident's baselines from the telemetry of ``days`` before ``now``."""
    params = {"tz": tz, "wake": WAKING_HOURS[0], "sleep": WAKING_HOURS[1],
              "since": now - timedelta(days=days), "until": now}  # fmt: skip
    cur = await conn.execute(_QUERY, params)
    rows = [
        (int(r[0]), bool(r[1]), str(r[2]), float(r[3]), int(r[4])) for r in await cur.fetchall()
    ]
    return baselines_from_counts(rows, min_samples=min_samples)
