"""Daily per-resident summaries of telemetry, the source of the personal baselines.

The alert engine used to count the last 7 days of raw telemetry at every
hourly reload: one pass over ~10 million rows per reload at 2,000 residents.
Now each complete local day is summarised once (:func:`summarise_days`, run
by the engine before each reload; idempotent and safe across processes) into
two plain tables (migration 009, both storage paths):

* ``resident_daily_vitals``: per resident, day, part of the day (waking hours
  07-22 local, or night) and parameter, the histogram of values (heart rate,
  SpO2, systolic pressure, wrist skin temperature), from readings of a band
  not reported off the wrist, as one row of two arrays (migration 014: bins and
  counts; one row per bin was ~200 rows per resident-day). Summing the
  histograms of 7 days gives exactly the histogram of those 7 days, so the
  baselines are the same as a raw scan of the same days (tested).
* ``resident_daily_activity``: the first and last movement (new steps) of the
  day and (migration 012) every still stretch of at least 30 min, unclipped, from
  the day's start or a movement to the next movement; :func:`daily_longest_still`
  counts each of those, and the stretch across each night (last movement of the
  evening to the first of the morning), inside the resident's own waking window,
  as the inactivity rule counts it.
* ``resident_daily_night`` (migration 010): the steps of the day's two night
  parts (before waking start, after waking end), counted as the engine counts
  them (:func:`alerts.detectors.night_activity.steps_in`; a report's new steps
  against the band's previous report of the day or the hour before it, not while
  off the wrist), and the seconds of each part a worn band covered (reports at
  most 15 min apart); :func:`alerts.detectors.night_activity.night_totals` joins
  them into nights.

A day is summarised once it ended ``grace`` ago (1 h: late uploads of bands
that were briefly offline); readings arriving later than that are not in the
baselines. The current day is never in them, so a baseline lags by up to a
day (it describes a week, so that costs little). Days older than
``keep_days`` are deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import TupleRow

from alerts.detectors.localtime import time_in_window
from alerts.detectors.night_activity import COVER_MAX_GAP, WINDOW_NIGHTS
from alerts.detectors.types import DEFAULT_TZ, SUMMARY_WAKING
from alerts.detectors.waking import DAY_FROM, SUSTAINED_MOVES, SUSTAINED_WITHIN
from eldercare.logs import get_logger

log = get_logger(__name__)

WAKING: Final = SUMMARY_WAKING  # the fixed split of the day, local (not the personal window)
# Still stretches shorter than this are not kept (migration 012): the inactivity routine is
# at least 2 h = 1.5 x 80 min, so a day's longest stretch below 80 min never changes it.
STILL_KEPT_FROM: Final = timedelta(minutes=30)
_LOCK_BASE: Final = 0x0E1DE2CA20_0000  # + the day's ordinal: one summariser per day

# The scoreable vital-sign readings of [start, end), one row per (reading, parameter): the
# raw scan the daily summary replaced (alerts.baselines), which _VITALS counts alike.
VITAL_READINGS = """
FROM telemetry t
CROSS JOIN LATERAL (VALUES ('hr', t.hr::real), ('spo2', t.spo2::real), ('sbp', t.bp_sys::real),
                           ('temp', t.skin_temp_c)) AS v(param, value)
WHERE t.time >= %(start)s AND t.time < %(end)s
  AND t.resident_id IS NOT NULL AND t.worn IS NOT FALSE AND v.value IS NOT NULL
"""

# One row per resident, part of the day and parameter: the histogram as two arrays
# (migration 014), bins ascending. The same readings as VITAL_READINGS, counted with one
# grouping set per parameter over the day's rows: unpivoting each reading into four rows
# first made 4x the rows to hash (5.6 M at 2,000 residents) and took twice as long.
_VITALS = """
INSERT INTO resident_daily_vitals (resident_id, day, waking, param, bins, counts)
SELECT resident_id, %(day)s::date, waking, param,
       array_agg(value ORDER BY value), array_agg(n ORDER BY value)
FROM (
    SELECT t.resident_id, t.time >= %(wake)s AND t.time < %(sleep)s AS waking,
           CASE WHEN GROUPING(t.hr) = 0 THEN 'hr' WHEN GROUPING(t.spo2) = 0 THEN 'spo2'
                WHEN GROUPING(t.bp_sys) = 0 THEN 'sbp' ELSE 'temp' END AS param,
           -- a grouping set's other parameters come out NULL: this is its own value
           coalesce(t.hr::real, t.spo2::real, t.bp_sys::real, t.skin_temp_c) AS value,
           count(*)::integer AS n
    FROM telemetry t
    WHERE t.time >= %(start)s AND t.time < %(end)s
      AND t.resident_id IS NOT NULL AND t.worn IS NOT FALSE
    GROUP BY GROUPING SETS (
        (t.resident_id, t.time >= %(wake)s AND t.time < %(sleep)s, t.hr),
        (t.resident_id, t.time >= %(wake)s AND t.time < %(sleep)s, t.spo2),
        (t.resident_id, t.time >= %(wake)s AND t.time < %(sleep)s, t.bp_sys),
        (t.resident_id, t.time >= %(wake)s AND t.time < %(sleep)s, t.skin_temp_c))
) AS bins
WHERE value IS NOT NULL
GROUP BY resident_id, waking, param
"""

# Movement: the day's step counter went up (or restarted at midnight above 0), as
# alerts.detectors.types.steps_delta counts it; per band, within the day.
_ACTIVITY = """
INSERT INTO resident_daily_activity
    (resident_id, day, first_move_at, last_move_at, wake_at, bed_at, still_from, still_to)
WITH s AS (
    SELECT resident_id, time, steps,
           lag(steps) OVER (PARTITION BY device_id ORDER BY time, seq) AS prev
    FROM telemetry
    WHERE time >= %(start)s AND time < %(end)s
      AND resident_id IS NOT NULL AND steps IS NOT NULL
), m AS (
    SELECT resident_id, time,
           lag(time) OVER w AS prev_time,
           count(*) OVER (w RANGE BETWEEN CURRENT ROW AND %(sustained)s FOLLOWING) AS after,
           count(*) OVER (w RANGE BETWEEN %(sustained)s PRECEDING AND CURRENT ROW) AS before
    FROM s
    WHERE prev IS NOT NULL AND (steps > prev OR (steps < prev AND steps > 0))
    WINDOW w AS (PARTITION BY resident_id ORDER BY time)
)
SELECT resident_id, %(day)s::date, min(time), max(time),
       min(time) FILTER (WHERE time >= %(day_from)s AND after >= %(moves)s),
       max(time) FILTER (WHERE time >= %(day_from)s AND before >= %(moves)s),
       coalesce(array_agg(coalesce(prev_time, %(start)s) ORDER BY time)
                FILTER (WHERE time - coalesce(prev_time, %(start)s) >= %(kept)s), '{}'),
       coalesce(array_agg(time ORDER BY time)
                FILTER (WHERE time - coalesce(prev_time, %(start)s) >= %(kept)s), '{}')
FROM m
GROUP BY resident_id
"""


# Steps and worn coverage of the day's night parts: [start, wake) and [sleep, end). The lag
# runs over all the band's reports of the day (and of the hour before it), and only then
# are the night parts kept, so a part's first report counts its steps against the band's
# previous report, as the live engine does (alerts.detectors.types.steps_delta;
# night_activity.steps_in). Before 2026-12-04 the lag ran over rows already cut to the
# night parts and the hour before the evening: a band silent from 21:00 to 22:00 had its
# first evening report counted against its last one before 07:00, the day's steps (~6,000)
# became night steps, and with them the usual night; restless nights were never raised.
_NIGHT = """
INSERT INTO resident_daily_night
    (resident_id, day, morning_steps, morning_covered_s, evening_steps, evening_covered_s)
WITH s AS (
    SELECT resident_id, time, worn IS NOT FALSE AS on_wrist, steps,
           lag(steps) OVER w AS prev, lag(time) OVER w AS prev_time
    FROM telemetry
    WHERE time >= %(start)s - interval '1 hour' AND time < %(end)s
      AND resident_id IS NOT NULL AND steps IS NOT NULL
    WINDOW w AS (PARTITION BY device_id ORDER BY time, seq)
), d AS (
    SELECT resident_id, time < %(wake)s AS morning,
           CASE WHEN NOT on_wrist OR prev IS NULL THEN 0
                WHEN steps >= prev THEN steps - prev ELSE steps END AS delta,
           CASE WHEN on_wrist AND prev_time IS NOT NULL AND time - prev_time <= %(gap)s
                THEN extract(epoch FROM time - greatest(prev_time,
                     CASE WHEN time < %(wake)s THEN %(start)s ELSE %(sleep)s END))
                ELSE 0 END AS covered
    FROM s
    WHERE time >= %(start)s AND (time < %(wake)s OR time >= %(sleep)s)
)
SELECT resident_id, %(day)s::date,
       coalesce(sum(delta) FILTER (WHERE morning), 0),
       least(coalesce(sum(covered) FILTER (WHERE morning), 0),
             extract(epoch FROM %(wake)s - %(start)s)),
       coalesce(sum(delta) FILTER (WHERE NOT morning), 0),
       least(coalesce(sum(covered) FILTER (WHERE NOT morning), 0),
             extract(epoch FROM %(end)s - %(sleep)s))
FROM d
GROUP BY resident_id
"""


def local_day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of a local day, in UTC."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def days_due(
    now: datetime, *, tz: str, days: int, done: Iterable[date], grace: timedelta
) -> list[date]:
    """Pure: the local days of the window before today not yet summarised and over ``grace`` ago."""
    today = now.astimezone(ZoneInfo(tz)).date()
    have = set(done)
    return [
        d
        for d in (today - timedelta(days=i) for i in range(days, 0, -1))
        if d not in have and local_day_bounds(d, tz)[1] + grace <= now
    ]


async def summarise_day(conn: psycopg.AsyncConnection[TupleRow], day: date, *, tz: str,
                        now: datetime) -> bool:  # fmt: skip
    """(Re)write one local day's summaries in one transaction; False if another process
    holds that day."""
    start, end = local_day_bounds(day, tz)
    zone = ZoneInfo(tz)
    wake = datetime.combine(day, WAKING[0], zone).astimezone(UTC)
    sleep = datetime.combine(day, WAKING[1], zone).astimezone(UTC)
    params = {"day": day, "start": start, "end": end, "wake": wake, "sleep": sleep,
              "gap": COVER_MAX_GAP, "sustained": SUSTAINED_WITHIN, "moves": SUSTAINED_MOVES,
              "kept": STILL_KEPT_FROM,
              "day_from": datetime.combine(day, DAY_FROM, zone).astimezone(UTC)}  # fmt: skip
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT pg_try_advisory_xact_lock(%s)", (_LOCK_BASE + day.toordinal(),)
        )
        row = await cur.fetchone()
        if row is None or not row[0]:
            return False
        await conn.execute("DELETE FROM resident_daily_vitals WHERE day = %s", (day,))
        await conn.execute("DELETE FROM resident_daily_activity WHERE day = %s", (day,))
        await conn.execute("DELETE FROM resident_daily_night WHERE day = %s", (day,))
        await conn.execute(_VITALS, params)
        await conn.execute(_ACTIVITY, params)
        await conn.execute(_NIGHT, params)
        cur = await conn.execute(
            "SELECT count(DISTINCT resident_id) FROM resident_daily_vitals WHERE day = %s", (day,)
        )
        counted = await cur.fetchone()
        residents = int(counted[0]) if counted else 0
        await conn.execute(
            "INSERT INTO daily_summary_days (day, tz, summarised_at, residents)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (day) DO UPDATE SET tz = EXCLUDED.tz,"
            " summarised_at = EXCLUDED.summarised_at, residents = EXCLUDED.residents",
            (day, tz, now, residents),
        )
    log.info("daily_summary_written", day=day.isoformat(), residents=residents)
    return True


async def summarise_days(
    conn: psycopg.AsyncConnection[TupleRow],
    *,
    now: datetime,
    tz: str = DEFAULT_TZ,
    days: int = 7,
    grace: timedelta = timedelta(hours=1),
    keep_days: int = 35,
) -> list[date]:
    """Summarise the complete days of the last ``days`` that are not yet; returns them."""
    cur = await conn.execute(
        "SELECT day FROM daily_summary_days WHERE tz = %s AND day >= %s",
        (tz, now.date() - timedelta(days=days + 2)),
    )
    done = [r[0] for r in await cur.fetchall()]
    written = [
        d for d in days_due(now, tz=tz, days=days, done=done, grace=grace)
        if await summarise_day(conn, d, tz=tz, now=now)
    ]  # fmt: skip
    horizon = now.date() - timedelta(days=keep_days)
    async with conn.transaction():
        for table in _TABLES:
            await conn.execute(f"DELETE FROM {table} WHERE day < %s", (horizon,))
    if written:
        # fresh statistics for the reload's reads (a day is a seventh of the window; without
        # them a new deployment's planner takes the tables for empty: 5x slower reads).
        # Needs the table's owner; for another role PostgreSQL skips it with a warning.
        for table in _TABLES:
            await conn.execute(f"ANALYZE {table}")
    return written


_TABLES: Final = ("resident_daily_vitals", "resident_daily_activity", "resident_daily_night",
                  "daily_summary_days")  # fmt: skip


async def summaries_key(
    conn: psycopg.AsyncConnection[TupleRow], *, now: datetime, tz: str = DEFAULT_TZ, days: int = 7
) -> tuple[object, ...]:
    """What the baselines of ``now`` are computed from: the window's days and when each
    was summarised. Equal keys, equal baselines, so a reload can skip the computation."""
    today = now.astimezone(ZoneInfo(tz)).date()
    cur = await conn.execute(
        "SELECT day, summarised_at FROM daily_summary_days"
        " WHERE tz = %s AND day >= %s AND day < %s ORDER BY day",
        (tz, today - timedelta(days=max(days, WINDOW_NIGHTS) + 1), today),
    )
    return (today, tz, days, tuple(await cur.fetchall()))


Stretch = tuple[datetime, datetime]


def daily_longest_still(
    days: Mapping[date, tuple[datetime, datetime, Sequence[Stretch]]],
    *,
    tz: str,
    window: tuple[time, time] = WAKING,
) -> list[timedelta]:
    """Pure: each day's longest waking-hours still stretch, the night before included.

    ``days``: local day -> (first movement, last movement, the day's still stretches
    of at least ``STILL_KEPT_FROM``, unclipped). Each stretch, and the one from the
    previous day's last movement to this day's first, counts its part in ``window``
    (the resident's own waking hours), as the inactivity rule does; without the
    previous day the night stretch is not known and left out. A late riser's
    morning sleep is therefore not stillness (it was, clipped at 07:00, before
    migration 012).
    """
    out: list[timedelta] = []
    for day in sorted(days):
        first, _, stretches = days[day]
        longest = timedelta(0)
        for a, b in stretches:
            if b - a > longest:  # its part in the window is at most its length
                longest = max(longest, time_in_window(a, b, *window, tz))
        before = days.get(day - timedelta(days=1))
        if before is not None:
            longest = max(longest, time_in_window(before[1], first, *window, tz))
        out.append(longest)
    return out
