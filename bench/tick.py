"""The alert engine's recurring work at a city's size: what each periodic pass costs.

    python bench/tick.py [--residents 100000] [--open 200] [--repeat 20] [--stream-s 30]

A fresh, migrated database gets ``--residents`` residents with a band each (no
history). One engine starts on it; ``--open`` of them press SOS, so that many
hold an open alert. Then each pass runs ``--repeat`` times and its duration is
reported (median and maximum, ms). Each runs under the decision lock, so a
reading arriving meanwhile waits for it:

* ``tick_1s``: the tick every second, for residents with something pending;
* ``escalate_5s``: the escalation check every 5 s, which also tells the
  detectors about alerts operators closed;
* ``full_tick_30s``: the tick of every resident every 30 s (taken in slices of
  1,000, so the reading waits at most one slice; the figure is the whole pass),
  once the engine holds every resident's state (``first_full_tick`` makes them).

Then ``stream``: for ``--stream-s`` seconds, batches of 500 readings (heart
rate, SpO2, steps) of random residents go to ``on_batch``, with the 1 s tick
between them as the engine's loop runs it; the figures are readings per second
of the engine's own time and the garbage collector's full collections meanwhile
(count, longest and total pause: each stops the whole process).
``peak_rss_mb`` is the process's peak memory: the engine's profiles and states.

Prints the figures; the last line is JSON. Wall-clock on a shared machine: noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.engine import AlertEngine
from bench.common import report, rss_mb
from bench.reload import Clock, city, started_engine
from eldercare.logs import configure_logging
from eldercare.protocol import DeviceEvent, EventType, Telemetry
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


class FullCollections:
    """The garbage collector's full (generation 2) collections while it is entered."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def _seen(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                self._started = time.perf_counter()
            else:
                self.pauses.append(time.perf_counter() - self._started)

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._seen)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._seen)


async def stream(engine: AlertEngine, residents: int, seconds: float) -> dict[str, Any]:
    rng = random.Random(7)
    ts = round(engine._clock().timestamp() * 1000)
    seq = n = 0
    busy = 0.0
    with FullCollections() as full:
        t0 = last_tick = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            batch = []
            for _ in range(500):
                rid, seq, ts = rng.randint(1, residents), seq + 1, ts + 1
                m = Telemetry(device_id=f"wb-{rid}", seq=seq, ts=ts, hr=rng.randint(60, 90),
                              spo2=rng.randint(94, 99), steps=seq, worn=True)  # fmt: skip
                batch.append(Accepted(m, rid))
            t = time.perf_counter()
            await engine.on_batch(IngestedBatch(telemetry=batch))
            if t - last_tick >= 1.0:
                await engine.tick()
                last_tick = t
            busy += time.perf_counter() - t
            n += len(batch)
    return {"readings": n, "readings_per_engine_s": round(n / busy),
            "full_collections": len(full.pauses),
            "full_collection_max_ms": round(max(full.pauses, default=0.0) * 1000),
            "full_collections_total_s": round(sum(full.pauses), 2)}  # fmt: skip


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    async with city("ec_bench_tick", args.residents, 60) as url:
        clock = Clock(datetime(2026, 1, 20, 4, 0, tzinfo=UTC))
        async with started_engine(url, clock) as (engine, start_s):
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
            out["first_full_tick"] = await timed(lambda: engine.tick(everyone=True), 1)
            full = await timed(lambda: engine.tick(everyone=True), max(1, args.repeat // 5))
            out["tick_1s"] = await timed(engine.tick, args.repeat)
            out["escalate_5s"] = await timed(engine.escalate, args.repeat)
            out["full_tick_30s"] = full
            out["states"] = len(engine.states)
            out["stream"] = await stream(engine, args.residents, args.stream_s)
            out["peak_rss_mb"] = round(rss_mb(os.getpid()))  # the bench's process: the engine
            return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    ap.add_argument("--residents", type=int, default=100_000)
    ap.add_argument("--open", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--stream-s", type=float, default=30.0)
    args = ap.parse_args()
    configure_logging("WARNING", json=True)
    report(asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
