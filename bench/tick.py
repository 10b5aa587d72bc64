"""The alert engine's recurring work at a city's size: what each periodic pass costs.

    python bench/tick.py [--residents 100000] [--open 200] [--repeat 20]

A fresh, migrated database gets ``--residents`` residents with a band each (no
history). One engine starts on it; ``--open`` of them press SOS, so that many
hold an open alert. Then each pass runs ``--repeat`` times and its duration is
reported (median and maximum, ms). Each runs under the decision lock, so a
reading arriving meanwhile waits for it:

* ``tick_1s``: the tick every second, for residents with something pending;
* ``escalate_5s``: the escalation check every 5 s, which also tells the
  detectors about alerts operators closed;
* ``full_tick_30s``: the tick of every resident every 30 s (taken in slices of
  1,000, so the reading waits at most one slice; the figure is the whole pass).

Prints the figures; the last line is JSON. Wall-clock on a shared machine: noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.engine import AlertEngine
from bench.common import drop_database, fresh_database, report
from bench.reload import _BANDS, _REGISTRY, Clock
from eldercare.logs import configure_logging
from eldercare.migrate import migrate
from eldercare.protocol import DeviceEvent, EventType
from eldercare.settings import Settings
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted


async def timed(job: Callable[[], Awaitable[Any]], repeat: int) -> dict[str, float]:
    took = []
    for _ in range(repeat):
        t = time.perf_counter()
        await job()
        took.append(time.perf_counter() - t)
    return {"p50_ms": round(statistics.median(took) * 1000, 2),
            "max_ms": round(max(took) * 1000, 2)}  # fmt: skip


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    url = fresh_database("ec_bench_tick")
    try:
        await asyncio.to_thread(migrate, url)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(_REGISTRY, {"n": args.residents})
            await conn.execute(_BANDS, {"interval": 60})
        clock = Clock(datetime(2026, 1, 20, 4, 0, tzinfo=UTC))
        settings = Settings(database_url=url, log_level="WARNING")
        engine = AlertEngine(settings, fall_model=None, clock=clock)
        try:
            t = time.perf_counter()
            await engine.on_batch(IngestedBatch())  # the start: profiles, states
            start_s = time.perf_counter() - t
            ts = round(clock.now.timestamp() * 1000)
            presses = [
                Accepted(DeviceEvent(device_id=f"wb-{r}", seq=1, ts=ts, type=EventType.SOS), r)
                for r in range(1, args.open + 1)
            ]
            await engine.on_batch(IngestedBatch(events=presses))
            held = sum(1 for s in engine.states.values() if s.open_alerts())
            out: dict[str, Any] = {"residents": args.residents, "open_alerts": held,
                                   "start_s": round(start_s, 2)}  # fmt: skip
            # first: after it the engine holds every resident's state, as it does 30 s in
            full = await timed(lambda: engine.tick(everyone=True), max(1, args.repeat // 5))
            out["tick_1s"] = await timed(engine.tick, args.repeat)
            out["escalate_5s"] = await timed(engine.escalate, args.repeat)
            out["full_tick_30s"] = full
            out["states"] = len(engine.states)
            return out
        finally:
            await engine.close()
    finally:
        drop_database(url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    ap.add_argument("--residents", type=int, default=100_000)
    ap.add_argument("--open", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    configure_logging("WARNING", json=True)
    report(asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
