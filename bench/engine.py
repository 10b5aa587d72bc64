"""Alert-engine throughput: readings/s that ``AlertEngine.on_batch`` sustains.

Pre-decoded batches of 4,000 readings of a simulated fleet (normal week) are fed
straight to the engine: no broker, no ingest, the engine's own database writes
included. With ``--shards N`` the same stream goes to N engine processes, each
owning the residents with id mod N == its index (``alerts/shard.py``), started
together; the figure is the stream's readings over the slowest shard's time.

With ``--via-broker`` the batches go the way of the standalone engine instead:
published as ingest publishes them on the internal topic of a private Mosquitto
(deployment limits) while the engine is away, then read back on the engine's
persistent session (``ingest.consumer.DurableConsumer``: decode, ``on_batch``,
ack per batch); the figure is the time to drain that backlog.

    .venv/bin/python bench/engine.py [--shards 2 | --via-broker] [--readings 200000]

Prints the figures as the last line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.engine import AlertEngine
from alerts.falls import load_model
from bench.common import BenchBroker, drop_database, fresh_database
from bench.rawpub import RawPublisher
from eldercare.logs import configure_logging
from eldercare.migrate import migrate
from eldercare.protocol import StatusReport
from eldercare.settings import Settings
from eldercare.topics import INGESTED
from ingest.consumer import DurableConsumer
from ingest.handoff import IngestedBatch, encode_batch
from ingest.rows import DeviceInfo, RawMessage, sort_batch
from simulators.fleet import Fleet
from simulators.scenario import Scenario

SCENARIO = Path(__file__).resolve().parents[1] / "simulators" / "scenarios" / "normal_week.yaml"
BATCH = 4000
MEAN_INTERVAL_S = 35  # a band's mean telemetry interval in the normal week


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class Clock:
    """The engine's clock: simulated time, moved forward with the batches."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def batches(
    ids: dict[str, int], *, readings: int, bands: int, seed: int, start: datetime, duration: float
) -> list[tuple[int, IngestedBatch]]:
    """The fleet's first ``readings`` messages, decoded and sorted as ingest does."""
    fleet = Fleet.create(seed=seed + 1, bands=bands, prefix="THR")
    sim = fleet.simulate(duration_s=duration, start=start, scenario=Scenario.load(SCENARIO))
    settings = Settings(log_level="WARNING")
    lookup = {d: DeviceInfo(r, False) for d, r in ids.items()}.get
    now_ms = int(time.time() * 1000)
    out: list[tuple[int, IngestedBatch]] = []
    raw: list[RawMessage] = []
    for n, msg in enumerate(sim.messages(), start=1):
        raw.append(RawMessage(0, 1, msg.topic, msg.payload))
        if len(raw) == BATCH or n == readings:
            b = sort_batch(raw, lookup=lookup, now_ms=now_ms, limits=settings.limits())
            out.append((msg.t_ms, IngestedBatch(b.telemetry, b.events, b.imu, b.status)))
            raw = []
        if n == readings:
            break
    return out


def _readings(work: list[tuple[int, IngestedBatch]]) -> int:
    return sum(len(b.telemetry) + len(b.events) + len(b.imu) + len(b.status) for _, b in work)


async def feed(
    db_url: str, work: list[tuple[int, IngestedBatch]], start: datetime, shard: str,
    barrier: Barrier | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One engine (one shard) over every batch; seconds from the start signal."""
    clock = Clock(start)
    settings = Settings(database_url=db_url, log_level="WARNING", alert_shard=shard)
    engine = AlertEngine(settings, fall_model=load_model(), clock=clock)
    try:
        await engine.on_batch(IngestedBatch())  # load profiles and baselines before timing
        if barrier is not None:
            await asyncio.to_thread(barrier.wait)
        t0 = time.perf_counter()
        for t_ms, batch in work:
            clock.now = max(clock.now, _utc(t_ms))
            await engine.on_batch(batch)
        wall = time.perf_counter() - t0
        fed = _readings(work)
        return {"shard": shard, "residents": len(engine.profiles), "fed": fed,
                "seconds": round(wall, 2)}  # fmt: skip
    finally:
        await engine.close()


async def feed_via_broker(
    db_url: str, work: list[tuple[int, IngestedBatch]], start: datetime
) -> dict[str, Any]:
    """The standalone engine's path: a backlog on its session, drained through it."""
    broker = BenchBroker()
    clock = Clock(start)
    settings = Settings(database_url=db_url, mqtt_url=broker.url, log_level="WARNING",
                        alerts_client_id=f"bench-alerts-{uuid.uuid4().hex[:8]}")  # fmt: skip
    engine = AlertEngine(settings, fall_model=load_model(), clock=clock)
    try:
        await engine.on_batch(IngestedBatch())  # load profiles and baselines before timing
        session = DurableConsumer(broker.url, client_id=engine.client_id)
        stop = asyncio.Event()
        task = asyncio.create_task(session.run(engine.on_batch, stop))
        await asyncio.wait_for(session.subscribed.wait(), 30)
        stop.set()
        await task
        pub = RawPublisher("127.0.0.1", broker.port, f"bench-ingest-{uuid.uuid4().hex[:8]}")
        try:
            pub.publish_many([INGESTED] * len(work), [encode_batch(b) for _, b in work])
            await asyncio.to_thread(pub.wait_acked, 120)
        finally:
            pub.close()
        done = asyncio.Event()
        handled = 0

        async def handler(batch: IngestedBatch) -> None:
            nonlocal handled
            latest = max((a.message.ts for a in (*batch.telemetry, *batch.events, *batch.imu)
                          if not isinstance(a.message, StatusReport)), default=0)  # fmt: skip
            clock.now = max(clock.now, _utc(latest))  # as feed(): the batch's last reading
            await engine.on_batch(batch)
            handled += 1
            if handled == len(work):
                done.set()

        drain = DurableConsumer(broker.url, client_id=engine.client_id)
        t0 = time.perf_counter()
        task = asyncio.create_task(drain.run(handler, done))
        await asyncio.wait_for(task, 1800)
        wall = time.perf_counter() - t0
        fed = _readings(work)
        return {"shard": "0/1 via broker", "residents": len(engine.profiles), "fed": fed,
                "batches": handled, "seconds": round(wall, 2)}  # fmt: skip
    finally:
        await engine.close()
        broker.close()


def _shard_process(
    db_url: str, ids: dict[str, int], plan: dict[str, Any], *, shard: str, barrier: Barrier,
    results: Any,
) -> None:  # fmt: skip
    configure_logging("WARNING", json=True)
    work = batches(ids, **plan)
    results.put(asyncio.run(feed(db_url, work, plan["start"], shard, barrier)))


async def engine_throughput(
    *, readings: int, bands: int, seed: int, shards: int = 1, via_broker: bool = False
) -> dict[str, Any]:
    """Readings/s of one engine, or of ``shards`` engine processes together."""
    db_url = fresh_database("ec_bench_engine")
    try:
        await asyncio.to_thread(migrate, db_url)
        ids = await Fleet.create(seed=seed + 1, bands=bands, prefix="THR").register(db_url)
        duration = readings / (bands / MEAN_INTERVAL_S) * 1.2
        start = datetime.now(UTC) - timedelta(seconds=duration + 3600)
        plan = {"readings": readings, "bands": bands, "seed": seed, "start": start,
                "duration": duration}  # fmt: skip
        if via_broker:
            per = [await feed_via_broker(db_url, batches(ids, **plan), start)]
        elif shards == 1:
            work = batches(ids, **plan)
            per = [await feed(db_url, work, start, "0/1")]
        else:
            ctx = mp.get_context("spawn")
            barrier, results = ctx.Barrier(shards), ctx.Queue()
            procs = [ctx.Process(target=_shard_process, args=(db_url, ids, plan),
                                 kwargs={"shard": f"{k}/{shards}", "barrier": barrier,
                                         "results": results})
                     for k in range(shards)]  # fmt: skip
            for p in procs:
                p.start()
            per = [results.get(timeout=1800) for _ in procs]
            for p in procs:
                p.join()
        wall, fed = max(p["seconds"] for p in per), per[0]["fed"]
        return {"readings": fed, "shards": shards, "seconds": wall,
                "events_per_s": round(fed / wall), "per_shard": per}  # fmt: skip
    finally:
        drop_database(db_url)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--bands", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--via-broker",
        action="store_true",
        help="drain a backlog on the standalone engine's persistent session",
    )
    args = ap.parse_args()
    if args.via_broker and args.shards != 1:
        ap.error("--via-broker runs one engine")
    configure_logging("WARNING", json=True)
    result = asyncio.run(engine_throughput(readings=args.readings, bands=args.bands,
                                           seed=args.seed, shards=args.shards,
                                           via_broker=args.via_broker))  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
