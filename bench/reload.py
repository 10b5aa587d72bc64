"""Decisions while the alert engine reloads: how late an SOS is during the periodic work.

    python bench/reload.py [--residents 20000] [--days 7] [--interval-s 600]

The engine refreshes every resident's profile from the registry every 30 s,
reloads the personal baselines every hour and, once a day, first summarises
the day that ended. A fresh, migrated database gets ``--residents`` residents
with a band each and ``--days`` (+1) days of synthetic telemetry (the
generator of ``bench/baselines.py``), summarised. Then one engine, on that
database, does each periodic job while an SOS from another resident arrives
every 50 ms (``on_batch``, persisted as an alert); for each job the figures
are its duration, the SOS decisions' p50 and maximum latency meanwhile and the
longest the event loop went without running (a stall delays everything the
process does: MQTT keep-alives, the tick, the API of an embedded engine):

* ``idle``: SOS decisions with nothing else running, for scale;
* ``refresh``: the profile refresh (every 30 s);
* ``reload``: the hourly baseline reload, nothing to summarise;
* ``reload_new_day``: the first reload of a day, which summarises the day before.

Prints the figures; the last line is JSON. Wall-clock on a shared machine: noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.daily_summary import summarise_days
from alerts.detectors.types import DEFAULT_TZ
from alerts.engine import AlertEngine
from bench.baselines import fill
from bench.common import drop_database, fresh_database, history_args, percentile, report
from eldercare.logs import configure_logging
from eldercare.migrate import migrate
from eldercare.protocol import DeviceEvent, EventType
from eldercare.settings import Settings
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted

PROBE_EVERY_S = 0.05

_REGISTRY = """
INSERT INTO residents (name, birth_year, home_lat, home_lon, living_alone, conditions)
SELECT 'bench ' || g, 1940, 31.2 + (g %% 97) * 0.001, 121.4 + (g %% 89) * 0.001, g %% 3 = 0,
       CASE WHEN g %% 10 = 0 THEN '{dementia}'::text[] ELSE '{}'::text[] END
FROM generate_series(1, %(n)s) AS g;
"""
_BANDS = """
INSERT INTO wristbands (device_id, resident_id, expected_interval_s)
SELECT 'wb-' || resident_id, resident_id, %(interval)s FROM residents
"""


@contextlib.asynccontextmanager
async def city(prefix: str, residents: int, interval_s: int) -> AsyncIterator[str]:
    """A fresh, migrated database with ``residents`` residents and a band each; its URL.
    Dropped afterwards."""
    url = fresh_database(prefix)
    try:
        await asyncio.to_thread(migrate, url)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(_REGISTRY, {"n": residents})
            await conn.execute(_BANDS, {"interval": interval_s})
        yield url
    finally:
        drop_database(url)


@contextlib.asynccontextmanager
async def started_engine(url: str, clock: Clock, **kwargs: Any) -> AsyncIterator[
    tuple[AlertEngine, float]
]:  # fmt: skip
    """An engine on ``url``, started (profiles, baselines, states loaded), and how long
    the start took; closed afterwards."""
    settings = Settings(database_url=url, log_level="WARNING")
    engine = AlertEngine(settings, fall_model=None, clock=clock, **kwargs)
    try:
        t = time.perf_counter()
        await engine.on_batch(IngestedBatch())
        yield engine, time.perf_counter() - t
    finally:
        await engine.close()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Probe:
    """SOS presses from successive residents, every ``PROBE_EVERY_S``, timed."""

    def __init__(self, engine: AlertEngine, clock: Clock, residents: int) -> None:
        self.engine, self.clock, self.residents = engine, clock, residents
        self.next = 0

    def _sos(self) -> IngestedBatch:
        self.next += 1
        rid = self.residents - self.next  # from the top: never the same resident twice
        ts = round(self.clock.now.timestamp() * 1000)
        event = DeviceEvent(device_id=f"wb-{rid}", seq=self.next, ts=ts, type=EventType.SOS)
        return IngestedBatch(events=[Accepted(event, rid)])

    async def during(self, job: Callable[[], Awaitable[Any]] | None, *, idle_s: float = 2.0
                     ) -> dict[str, Any]:  # fmt: skip
        latencies: list[float] = []
        stalls: list[float] = []

        async def ticker() -> None:
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                stalls.append(now - last - 0.005)
                last = now

        watch = asyncio.create_task(ticker())
        t0 = time.perf_counter()
        task = asyncio.create_task(job()) if job is not None else None
        while (task is not None and not task.done()) or (
            task is None and time.perf_counter() - t0 < idle_s
        ):
            t = time.perf_counter()
            await self.engine.on_batch(self._sos())
            latencies.append(time.perf_counter() - t)
            await asyncio.sleep(PROBE_EVERY_S)
        if task is not None:
            await task
        duration = time.perf_counter() - t0
        watch.cancel()
        return {
            "job_s": round(duration, 2),
            "sos_decisions": len(latencies),
            "sos_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "sos_max_ms": round(max(latencies) * 1000, 1),
            "max_loop_stall_ms": round(max(stalls, default=0.0) * 1000, 1),
        }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    async with city("ec_bench_reload", args.residents, args.interval_s) as url:
        zone = ZoneInfo(DEFAULT_TZ)
        today = date(2026, 1, 20)
        now = datetime(2026, 1, 20, 1, 30, tzinfo=zone).astimezone(UTC)  # after the grace
        t = time.perf_counter()
        rows = await fill(url, residents=args.residents, first=today - timedelta(days=args.days),
                          days=args.days + 1, interval_s=args.interval_s)  # fmt: skip
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await summarise_days(conn, now=now, days=args.days)
        print(f"  {rows} rows written and summarised in {time.perf_counter() - t:.0f} s",
              file=sys.stderr)  # fmt: skip
        clock = Clock(now)
        async with started_engine(url, clock, baseline_days=args.days) as (engine, start_s):
            probe = Probe(engine, clock, args.residents)
            out: dict[str, Any] = {"residents": args.residents, "days": args.days,
                                   "telemetry_rows": rows,
                                   "start_s": round(start_s, 2)}  # fmt: skip
            out["idle"] = await probe.during(None)
            out["refresh"] = await probe.during(engine.refresh)
            out["reload"] = await probe.during(engine.reload_baselines)
            clock.now = now + timedelta(days=1)  # a new day is due: summarised first
            out["reload_new_day"] = await probe.during(engine.reload_baselines)
            async with await psycopg.AsyncConnection.connect(url) as conn:
                cur = await conn.execute("SELECT count(*) FROM alerts WHERE type = 'sos'")
                row = await cur.fetchone()
            out["sos_alerts"] = int(row[0]) if row else 0  # one per press: all were decided
            return out


def main() -> None:
    args = history_args(__doc__, residents=20000, interval_s=600)
    configure_logging("WARNING", json=True)
    report(asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
