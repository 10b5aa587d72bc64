"""Personal-baseline reload at city scale: raw 7-day scan against the daily summaries.

    python bench/baselines.py [--residents 2000] [--days 7] [--interval-s 120]

A fresh, migrated database gets ``--days`` (+1) days of synthetic telemetry
for ``--residents`` residents, one reading every ``--interval-s`` seconds
(generated in SQL; values in plausible ranges, the step counter rising most
readings). Then, on the same data:

* ``raw_scan_s``: the previous hourly reload, one pass over the window's raw
  telemetry (:func:`alerts.baselines.scan_baselines`);
* ``summary_backfill_s``: summarising every day of the window at once (a
  one-off, e.g. after upgrading);
* ``summary_one_day_s``: summarising one new day (what happens once a day);
* ``summary_reload_s``: the hourly reload now (:func:`alerts.baselines.load_baselines`:
  nothing left to summarise, read and sum the daily histograms);
* ``histograms_compute_s``: of that, the vital-sign statistics alone
  (:func:`alerts.baselines.baselines_from_histograms` over every resident's
  histograms, already fetched, by the reload's chunks of residents).

Prints the figures; the last line is JSON. Timings are wall-clock on whatever
else the machine is doing: noisy on a shared host.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.baselines import (
    CHUNK_RESIDENTS,
    baselines_from_histograms,
    load_baselines,
    scan_baselines,
)
from alerts.daily_summary import local_day_bounds, summarise_day, summarise_days
from alerts.detectors.types import DEFAULT_TZ
from bench.common import drop_database, fresh_database, history_args, report
from eldercare.migrate import migrate
from eldercare.storage import ensure_partitions

_FILL = """
INSERT INTO telemetry (time, device_id, seq, resident_id, hr, spo2, bp_sys, bp_dia,
                       skin_temp_c, steps, worn)
SELECT %(start)s + s * %(every)s, 'wb-' || r, %(seq0)s + s, r,
       (58 + random() * 35)::int, (92 + random() * 7)::int, (105 + random() * 50)::int,
       (65 + random() * 25)::int, round((31.5 + random() * 2.5)::numeric, 1),
       s - s %% 3, random() > 0.02
FROM generate_series(1, %(residents)s) AS r, generate_series(0, %(n)s - 1) AS s
"""


async def fill(url: str, *, residents: int, first: date, days: int, interval_s: int) -> int:
    per_day = 86_400 // interval_s
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        start0, _ = local_day_bounds(first, DEFAULT_TZ)
        end, _ = local_day_bounds(first + timedelta(days=days), DEFAULT_TZ)
        await ensure_partitions(
            conn, {(start0 + timedelta(days=i)).date() for i in range(-1, days + 2)}
        )
        for i in range(days):
            start, _ = local_day_bounds(first + timedelta(days=i), DEFAULT_TZ)
            params = {"start": start, "every": timedelta(seconds=interval_s),
                      "seq0": i * per_day, "residents": residents, "n": per_day}  # fmt: skip
            await conn.execute(_FILL, params)
            print(f"  day {i + 1}/{days} written", file=sys.stderr, flush=True)
        await conn.execute("ANALYZE telemetry")
        cur = await conn.execute("SELECT count(*) FROM telemetry WHERE time < %s", (end,))
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def measure(args: argparse.Namespace) -> dict[str, object]:
    url = fresh_database("ec_bench_baselines")
    try:
        migrate(url)
        zone = ZoneInfo(DEFAULT_TZ)
        today = date(2026, 1, 20)
        now = datetime(2026, 1, 20, 1, 30, tzinfo=zone).astimezone(UTC)  # after the grace
        first = today - timedelta(days=args.days)
        t = time.perf_counter()
        rows = await fill(url, residents=args.residents, first=first, days=args.days,
                          interval_s=args.interval_s)  # fmt: skip
        fill_s = time.perf_counter() - t
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            since, _ = local_day_bounds(first, DEFAULT_TZ)
            until, _ = local_day_bounds(today, DEFAULT_TZ)
            t = time.perf_counter()
            raw = await scan_baselines(conn, since=since, until=until)
            raw_s = time.perf_counter() - t
            t = time.perf_counter()
            # all but the last day at once (one-off), then the last as the daily increment
            backfilled = await summarise_days(conn, now=now - timedelta(days=1), days=args.days - 1)
            backfill_s = time.perf_counter() - t
            t = time.perf_counter()
            await summarise_day(conn, today - timedelta(days=1), tz=DEFAULT_TZ, now=now)
            one_day_s = time.perf_counter() - t
            t = time.perf_counter()
            summary = await load_baselines(conn, now=now, days=args.days)
            reload_s = time.perf_counter() - t
            # the reload's computation alone: every resident's 7 days of histograms at once
            cur = await conn.execute(
                "SELECT resident_id, waking, param, bins, counts FROM resident_daily_vitals"
            )
            chunks: dict[int, list[tuple[object, ...]]] = {}
            for r in await cur.fetchall():  # by chunks of residents, as the reload computes
                chunks.setdefault(int(r[0]) // CHUNK_RESIDENTS, []).append(r)
            t = time.perf_counter()
            for chunk in chunks.values():
                baselines_from_histograms(chunk)  # type: ignore[arg-type]
            compute_s = time.perf_counter() - t
            cur = await conn.execute(
                "SELECT count(*), sum(cardinality(bins)) FROM resident_daily_vitals"
            )
            row = await cur.fetchone()
            summary_rows, summary_bins = (int(row[0]), int(row[1])) if row else (0, 0)
            cur = await conn.execute("SELECT pg_total_relation_size('resident_daily_vitals')")
            row = await cur.fetchone()
            summary_mb = round(int(row[0]) / 2**20, 1) if row else 0.0
        same = sum(
            1 for r, b in raw.items()
            if r in summary and b.day.keys() == summary[r].day.keys()
            and all(abs(b.day[p].median - summary[r].day[p].median) < 1e-6 for p in b.day)
        )  # fmt: skip
        backfill_per_day = backfill_s / max(1, len(backfilled))
        return {
            "residents": args.residents, "days": args.days, "interval_s": args.interval_s,
            "telemetry_rows": rows, "summary_rows": summary_rows, "summary_bins": summary_bins,
            "summary_mb": summary_mb, "fill_s": round(fill_s, 1),
            "raw_scan_s": round(raw_s, 2), "summary_backfill_s": round(backfill_s, 2),
            "summary_backfill_days": len(backfilled),
            "summary_per_day_s": round(backfill_per_day, 2),
            "summary_one_day_s": round(one_day_s, 2), "summary_reload_s": round(reload_s, 2),
            "histograms_compute_s": round(compute_s, 2),
            "reload_speedup": round(raw_s / reload_s, 1) if reload_s > 0 else None,
            "residents_same_day_medians": same, "residents_with_baselines": len(raw),
        }  # fmt: skip
    finally:
        drop_database(url)


def main() -> None:
    args = history_args(__doc__, residents=2000, interval_s=120)
    report(asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
