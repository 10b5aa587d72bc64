"""Personal baselines from the resident's own recent history in the database.

At engine start, and again when a day has been summarised since (the engine
checks every hour), :func:`load_baselines` reads the daily summaries
(:func:`alerts.daily_summary.summarise_days`: each complete local day's
telemetry is read once), by chunks of residents, and sums the last ``days`` (7)
days' histograms per resident, parameter (heart rate, SpO2, systolic pressure,
wrist skin temperature) and part of the day (waking hours or night, by the
default waking window in the residents' time zone). :func:`baselines_from_histograms`
(pure) turns each histogram into a :class:`~alerts.detectors.types.Baseline`
(median, 1.4826 x MAD, floored, the 1st and 99th percentiles as ``low`` and
``high``) when it
holds at least ``min_samples`` readings. The percentile matters for
intermittent values: night-time desaturations that come and go (a quarter of
the readings of some residents) are outliers to the median and MAD, yet they
are that person's normal night. Readings from a band reported off the wrist
are left out. The same pass yields each day's longest waking-hours still
stretch, from which :func:`~alerts.detectors.inactivity.learn_threshold` sets
what the resident's routine allows (``Profile.inactivity_routine``), and the
night parts' steps give the usual night and its threshold
(:func:`~alerts.detectors.night_activity.learn_night_threshold`,
``Profile.night_activity``) from the last 7 nights. Each day's wake-up and
bedtime give the resident's own waking hours
(:func:`~alerts.detectors.waking.learn_waking_window`, ``Profile.waking_start``
/ ``waking_end``), learned first: the routine's overnight stretch counts only
its part in that window. The vital-sign histograms keep the fixed 07-22 split.

:func:`scan_baselines` is the previous way, one pass over the raw telemetry of
the window; the summary gives the same baselines for the same days (tested),
and ``bench/baselines.py`` measures both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from psycopg.rows import TupleRow

from alerts.daily_summary import (
    VITAL_READINGS,
    WAKING,
    Stretch,
    daily_longest_still,
    summarise_days,
)
from alerts.detectors.baseline import MAD_TO_SD
from alerts.detectors.inactivity import learn_threshold
from alerts.detectors.localtime import local_time
from alerts.detectors.news2 import VitalParam
from alerts.detectors.night_activity import (
    WINDOW_NIGHTS,
    NightPart,
    learn_night_threshold,
    night_totals,
)
from alerts.detectors.types import DEFAULT_TZ, Baseline, NightActivityBaseline, Profile
from alerts.detectors.waking import learn_waking_window
from alerts.shard import EVERYONE, Shard

SCALE_FLOOR: Final = {VitalParam.HR: 3.0, VitalParam.SPO2: 1.0, VitalParam.SBP: 5.0,
                      VitalParam.TEMP: 0.2}  # fmt: skip
MIN_SAMPLES: Final = 50
LOW_Q: Final = 0.01  # Baseline.low: the value the resident reaches in 1 % of readings
HIGH_Q: Final = 0.99  # Baseline.high: exceeded by 1 % of the resident's readings
WAKING_HOURS: Final = (WAKING[0].hour, WAKING[1].hour)  # local [start, end): the fixed split
# Residents per read and computation at a reload: a chunk's rows are converted on the
# event loop (~0.1 s per 500 residents), the rest runs in a worker thread.
CHUNK_RESIDENTS: Final = 500

_QUERY = f"""
SELECT t.resident_id,
       extract(hour FROM t.time AT TIME ZONE %(tz)s) >= %(wake)s
         AND extract(hour FROM t.time AT TIME ZONE %(tz)s) < %(sleep)s AS day,
       v.param, v.value, count(*) AS n
{VITAL_READINGS}
GROUP BY 1, 2, 3, 4
"""

# Each chunk of resident ids [lo, hi) of one shard (resident_id mod n = k: alerts/shard.py).
_CHUNK = "resident_id >= %(lo)s AND resident_id < %(hi)s AND resident_id %% %(n)s = %(k)s"

# The range of resident ids in the summaries (each min and max an index endpoint: instant).
_IDS = """
SELECT min(lo), max(hi) FROM (
    SELECT min(resident_id) AS lo, max(resident_id) AS hi FROM resident_daily_vitals
    UNION ALL SELECT min(resident_id), max(resident_id) FROM resident_daily_activity
    UNION ALL SELECT min(resident_id), max(resident_id) FROM resident_daily_night
) AS ends
"""

# each day's histogram as it is stored (bins, counts); the days are joined in Python
_SUMMARY = f"""
SELECT resident_id, waking, param, bins, counts
FROM resident_daily_vitals
WHERE day >= %(since)s AND day < %(until)s AND {_CHUNK}
"""

_ACTIVITY = f"""
SELECT resident_id, day, first_move_at, last_move_at, wake_at, bed_at, still_from, still_to
FROM resident_daily_activity
WHERE day >= %(since)s AND day < %(until)s AND {_CHUNK}
"""

# the usual nights: the evening before the first night of the window included
_NIGHTS = f"""
SELECT resident_id, day, morning_steps, morning_covered_s, evening_steps, evening_covered_s
FROM resident_daily_night
WHERE day >= %(nights_since)s AND day < %(until)s AND {_CHUNK}
"""
# the night outside the waking window, in seconds (9 h for 07:00-22:00)
NIGHT_S: Final = 86400.0 - (
    (WAKING[1].hour - WAKING[0].hour) * 3600 + (WAKING[1].minute - WAKING[0].minute) * 60
)


@dataclass(frozen=True, slots=True)
class ResidentBaselines:
    day: Mapping[VitalParam, Baseline] = field(default_factory=dict)
    night: Mapping[VitalParam, Baseline] = field(default_factory=dict)
    inactivity_routine: timedelta | None = None
    night_activity: NightActivityBaseline | None = None
    waking: tuple[time, time] | None = None  # learned waking hours, detectors/waking.py

    def apply(self, profile: Profile) -> Profile:
        start, end = self.waking or (profile.waking_start, profile.waking_end)
        return replace(
            profile,
            waking_start=start,
            waking_end=end,
            baselines=self.day,
            night_baselines=self.night,
            inactivity_routine=self.inactivity_routine,
            night_activity=self.night_activity,
        )


def histogram_baseline(
    values: Iterable[float], counts: Iterable[int], *, scale_floor: float, min_samples: int
) -> Baseline | None:
    """Median and 1.4826 x MAD (floored at ``scale_floor``), 1st and 99th percentiles of
    one histogram (value -> count, values on the readings' 0.1 grid); None if too few
    readings. :func:`_segment_baselines` with one segment."""
    v = np.round(np.asarray(list(values), dtype=np.float64), 1)
    c = np.asarray(list(counts), dtype=np.int64)
    one = np.zeros(v.size, dtype=np.intp)
    stats = _segment_baselines(v, c, one, 1, min_samples=max(min_samples, 1)).get(0)
    return None if stats is None else _baseline(stats, scale_floor)


def _baseline(stats: tuple[float, float, int, float, float], scale_floor: float) -> Baseline:
    median, mad, n, low, high = stats
    return Baseline(median, max(MAD_TO_SD * mad, scale_floor), n, low, high)


def baselines_from_counts(
    rows: Iterable[tuple[int, bool, str, float, int]], *, min_samples: int = MIN_SAMPLES
) -> dict[int, ResidentBaselines]:
    """Pure: (resident_id, waking hours?, parameter, value, count) rows to baselines."""
    return baselines_from_histograms(
        ((r, day, param, [value], [n]) for r, day, param, value, n in rows),
        min_samples=min_samples,
    )


def baselines_from_histograms(
    rows: Iterable[tuple[int, bool, str, Sequence[float], Sequence[int]]],
    *,
    min_samples: int = MIN_SAMPLES,
) -> dict[int, ResidentBaselines]:
    """Pure: (resident_id, waking hours?, parameter, values, counts) rows, any number per
    histogram (one per day), to baselines. A value may recur across rows: the weighted
    median and quantiles of the concatenation are those of the summed histogram.

    Every histogram of the rows at once (:func:`_segment_baselines`), each with the
    figures it has alone (:func:`histogram_baseline`; tested), without numpy's per-call
    overhead on thousands of small arrays (a reload's chunk of 500 residents holds 4,000).
    """
    keys: dict[tuple[int, bool, VitalParam], int] = {}
    values: list[float] = []
    counts: list[int] = []
    segment: list[int] = []  # per row: its histogram's index...
    lengths: list[int] = []  # ...and its number of bins
    for resident_id, day, param, vals, cnts in rows:
        p = _PARAMS.get(param)
        if p is None:
            continue
        if len(vals) != len(cnts):
            raise ValueError(f"histogram of resident {resident_id} {param}: "
                             f"{len(vals)} bins but {len(cnts)} counts")  # fmt: skip
        segment.append(keys.setdefault((int(resident_id), bool(day), p), len(keys)))
        lengths.append(len(vals))
        values.extend(vals)
        counts.extend(cnts)
    if not keys:
        return {}
    # real -> float: 36.2 comes back as 36.20000076; the readings have 0.1 resolution
    found = _segment_baselines(
        np.round(np.asarray(values, dtype=np.float64), 1),
        np.asarray(counts, dtype=np.int64),
        np.repeat(np.asarray(segment, dtype=np.intp), lengths),
        len(keys),
        min_samples=max(min_samples, 1),
    )
    out: dict[int, tuple[dict[VitalParam, Baseline], dict[VitalParam, Baseline]]] = {}
    for (resident_id, day, p), i in keys.items():
        stats = found.get(i)
        if stats is None:
            continue
        pair = out.setdefault(resident_id, ({}, {}))
        pair[0 if day else 1][p] = _baseline(stats, SCALE_FLOOR.get(p, 1.0))
    return {r: ResidentBaselines(d, n) for r, (d, n) in out.items()}


_PARAMS: Final = {p.value: p for p in VitalParam}


def _segment_baselines(
    v: np.ndarray, c: np.ndarray, g: np.ndarray, segments: int, *, min_samples: int
) -> dict[int, tuple[float, float, int, float, float]]:
    """Segment ``g`` of the bins ``v`` (on the 0.1 grid) with counts ``c`` -> (median,
    MAD, n, 1st and 99th percentile), for the segments of at least ``min_samples``
    readings, every segment in one pass each. The median is the mean of the lower and
    upper middle reading; a percentile ``q`` is the smallest value with at least ``q`` of
    the readings at or below it.

    Sorted by (segment, value), one cumulative count runs through all segments: the
    ``r``-th reading of segment ``i`` is the first bin whose cumulative count reaches
    (readings before segment ``i``) + ``r``. Counts are whole, so "at least ``q`` x n"
    is "at least ceil(``q`` x n)".
    """
    keep = np.isfinite(v) & (c > 0)
    v, c, g = v[keep], c[keep], g[keep]
    if v.size == 0:
        return {}
    # one float key sorts by segment, then value (5x faster than np.lexsort): segment i
    # spans [i x span, i x span + span - 1]; bins are 0.1 apart, far above the key's ulp
    span = float(v.max() - v.min()) + 1.0
    order = np.argsort(g * span + (v - v.min()))
    v, c, g = v[order], c[order], g[order]
    total = np.bincount(g, weights=c, minlength=segments).astype(np.int64)
    base = np.concatenate(([0], np.cumsum(total)[:-1]))
    ok = np.flatnonzero(total >= min_samples)
    if ok.size == 0:
        return {}
    n, before = total[ok], base[ok]

    def middle(x: np.ndarray, cum: np.ndarray) -> np.ndarray:
        lo = np.searchsorted(cum, before + (n + 1) // 2)  # the lower middle (1-based rank)
        hi = np.searchsorted(cum, before + n // 2 + 1)  # the upper middle
        return np.asarray((x[lo] + x[hi]) / 2)

    cum = np.cumsum(c)
    median = middle(v, cum)
    centre = np.full(segments, np.nan)
    centre[ok] = median
    # Bins are 0.1 apart and medians 0.05: a deviation is a multiple of 0.05 whose float
    # noise (|36.1 - 36.25| != |36.4 - 36.25| in the last bits) rounding takes out, so
    # equal deviations tie exactly and a resident's figures do not depend on the others
    # in the chunk. Within [0, span - 1] like the values (0 for the segments left out).
    dev = np.round(np.nan_to_num(np.abs(v - centre[g]), nan=0.0), 2)
    by_dev = np.argsort(g * span + dev)
    mad = middle(dev[by_dev], np.cumsum(c[by_dev]))
    low = v[np.searchsorted(cum, before + np.ceil(LOW_Q * n.astype(np.float64)).astype(np.int64))]
    high = v[np.searchsorted(cum, before + np.ceil(HIGH_Q * n.astype(np.float64)).astype(np.int64))]
    return {
        int(i): (float(median[j]), float(mad[j]), int(n[j]), float(low[j]), float(high[j]))
        for j, i in enumerate(ok)
    }


def _rows(raw: Iterable[tuple[object, ...]]) -> list[tuple[int, bool, str, float, int]]:
    return [(int(str(r[0])), bool(r[1]), str(r[2]), float(str(r[3])), int(str(r[4])))
            for r in raw]  # fmt: skip


async def scan_baselines(
    conn: psycopg.AsyncConnection[TupleRow],
    *,
    since: datetime,
    until: datetime,
    tz: str = DEFAULT_TZ,
    min_samples: int = MIN_SAMPLES,
) -> dict[int, ResidentBaselines]:
    """Every resident's vital-sign baselines by one pass over the raw telemetry of
    [since, until) (the pre-summary way; for comparison and measurement)."""
    params = {"tz": tz, "wake": WAKING_HOURS[0], "sleep": WAKING_HOURS[1],
              "start": since, "end": until}  # fmt: skip
    cur = await conn.execute(_QUERY, params)
    return baselines_from_counts(_rows(await cur.fetchall()), min_samples=min_samples)


async def load_baselines(
    conn: psycopg.AsyncConnection[TupleRow],
    *,
    now: datetime,
    days: float = 7.0,
    tz: str = DEFAULT_TZ,
    min_samples: int = MIN_SAMPLES,
    summarise: bool = True,
    shard: Shard = EVERYONE,
    chunk: int = CHUNK_RESIDENTS,
) -> dict[int, ResidentBaselines]:
    """The baselines of the shard's residents from the daily summaries of the ``days``
    local days before today (summarising the complete days not yet summarised first).

    Read ``chunk`` resident ids at a time, and each chunk computed in a worker thread,
    so that a city's reload never holds the event loop for long: the engine keeps
    deciding meanwhile (``bench/reload.py``).
    """
    n = max(1, round(days))
    if summarise:
        await summarise_days(conn, now=now, tz=tz, days=n)
    today = now.astimezone(ZoneInfo(tz)).date()
    window = {"since": today - timedelta(days=n), "until": today,
              "nights_since": today - timedelta(days=WINDOW_NIGHTS + 1),
              "n": shard.count, "k": shard.index}  # fmt: skip
    cur = await conn.execute(_IDS, window)
    row = await cur.fetchone()
    out: dict[int, ResidentBaselines] = {}
    if row is None or row[0] is None:
        return out
    first, last = int(row[0]), int(row[1])
    for lo in range(first, last + 1, chunk):
        ids = {**window, "lo": lo, "hi": lo + chunk}
        vitals = await (await conn.execute(_SUMMARY, ids)).fetchall()
        activity = await (await conn.execute(_ACTIVITY, ids)).fetchall()
        nights = await (await conn.execute(_NIGHTS, ids)).fetchall()
        out.update(await asyncio.to_thread(
            baselines_of, vitals, activity, nights, today=today, tz=tz, min_samples=min_samples
        ))  # fmt: skip
    return out


def baselines_of(
    vitals: Iterable[tuple[Any, ...]],
    activity: Iterable[tuple[Any, ...]],
    nights: Iterable[tuple[Any, ...]],
    *,
    today: date,
    tz: str = DEFAULT_TZ,
    min_samples: int = MIN_SAMPLES,
) -> dict[int, ResidentBaselines]:
    """Pure: the summary rows of some residents (``_SUMMARY``, ``_ACTIVITY``, ``_NIGHTS``)
    to their baselines."""
    out = baselines_from_histograms(
        ((r[0], r[1], r[2], r[3], r[4]) for r in vitals), min_samples=min_samples
    )
    moves: dict[int, dict[date, tuple[datetime, datetime, list[Stretch]]]] = {}
    wakes: dict[int, tuple[list[time], list[time]]] = {}
    for rid, day, first, last, wake_at, bed_at, still_from, still_to in activity:
        stretches = list(zip(still_from or (), still_to or (), strict=True))
        moves.setdefault(int(rid), {})[day] = (first, last, stretches)
        known = wakes.setdefault(int(rid), ([], []))
        if wake_at is not None:
            known[0].append(local_time(wake_at, tz))
        if bed_at is not None:
            known[1].append(local_time(bed_at, tz))
    for rid, per_day in moves.items():
        # the window first: the routine counts the nights' stretches in it
        waking = learn_waking_window(*wakes[rid])
        routine = learn_threshold(daily_longest_still(per_day, tz=tz, window=waking or WAKING))
        if routine is not None or waking is not None:
            out[rid] = replace(out.get(rid, ResidentBaselines()), inactivity_routine=routine,
                               waking=waking)  # fmt: skip
    night_rows = [(int(r[0]), r[1], int(r[2]), float(r[3]), int(r[4]), float(r[5]))
                  for r in nights]  # fmt: skip
    for rid, night in night_baselines(night_rows, today=today).items():
        out[rid] = replace(out.get(rid, ResidentBaselines()), night_activity=night)
    return out


def night_baselines(
    rows: Iterable[tuple[int, date, int, float, int, float]], *, today: date
) -> dict[int, NightActivityBaseline]:
    """Pure: (resident, day, morning steps, covered s, evening steps, covered s) rows to
    each resident's usual night, from the ``WINDOW_NIGHTS`` nights before ``today``'s."""
    parts: dict[int, dict[date, tuple[NightPart, NightPart]]] = {}
    for rid, day, m_steps, m_cov, e_steps, e_cov in rows:
        parts.setdefault(rid, {})[day] = (NightPart(m_steps, m_cov), NightPart(e_steps, e_cov))
    window = [today - timedelta(days=i) for i in range(WINDOW_NIGHTS, 0, -1)]
    out: dict[int, NightActivityBaseline] = {}
    for rid, days in parts.items():
        totals = night_totals(days, night_s=NIGHT_S)
        usual = learn_night_threshold([totals.get(d) for d in window])
        if usual is not None:
            out[rid] = usual
    return out
