"""Alert benchmark: simulated ground truth -> Mosquitto -> ingest -> alert engine -> PostgreSQL.

    python bench/detect.py [--bands 200] [--days 2] [--seed 7] [--scenario all|NAME]

Each scenario gets a fresh database and a registered fleet. Its messages go
through a private Mosquitto to an in-process IngestService whose handler is the
AlertEngine; alerts land in ``alerts``. Time is compressed: the publisher sends
as fast as ingest commits, and the engine's clock is *simulated* time. A small
handler in front of the engine (:class:`SimDriver`) looks up when each reading
was sent (simulated ms), re-slices every ingest batch into 100 ms of simulated
time (what a real-time batch spans), sets the clock to the slice's newest send
time and runs the engine's ticks (every simulated second; everyone every 30 s;
escalation every 5 s) before it. Alerts are then matched to episodes (see
docs/alerts-evaluation.md). A last phase feeds pre-decoded batches straight to
``AlertEngine.on_batch`` to measure readings/s. Prints figures; the last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.engine import AlertEngine
from alerts.falls import load_model
from bench.common import (
    REPO,
    BenchBroker,
    drop_database,
    fresh_database,
    seed_history,
)
from bench.detect_score import LOCAL, Run, TypeScore, merge, report, score, summarise, utc_ms
from bench.engine import engine_throughput
from bench.rawpub import RawPublisher
from eldercare.logs import configure_logging
from eldercare.migrate import migrate
from eldercare.settings import Settings
from eldercare.topics import Channel, device_topic
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted, Refusal
from ingest.service import IngestService
from simulators.fleet import Fleet, Simulation
from simulators.scenario import Scenario
from simulators.uplink import Link, Publish

SCENARIOS = REPO / "simulators" / "scenarios"


class SimClock:
    """The engine's clock: simulated time, moved only forward by the driver."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, to: datetime) -> None:
        self.now = max(self.now, to)


class SimDriver:
    """Ingest handler in front of the engine: simulated time for clock, slices and ticks."""

    def __init__(self, engine: AlertEngine, clock: SimClock, *, slice_ms: int = 100) -> None:
        self.engine, self.clock, self.slice_ms = engine, clock, slice_ms
        self.lock = asyncio.Lock()
        self._sent: dict[bytes, deque[int]] = {}  # payload -> simulated send times, in order
        self._sent_lock = threading.Lock()
        self._ticks = 0
        self._next_tick: datetime | None = None
        self.readings = 0
        self.unmapped = 0

    def sent(self, payload: bytes, t_ms: int) -> None:  # publisher thread
        with self._sent_lock:
            self._sent.setdefault(payload, deque()).append(t_ms)

    def _send_time(self, a: Accepted | Refusal) -> int | None:
        if a.raw is None:
            return None
        with self._sent_lock:
            times = self._sent.get(a.raw.payload)
            if not times:
                return None
            t = times.popleft()
            if not times:
                del self._sent[a.raw.payload]
            return t

    async def on_batch(self, batch: IngestedBatch) -> None:
        async with self.lock:
            now_ms = round(self.clock.now.timestamp() * 1000)
            items: list[tuple[int, str, Accepted | Refusal]] = []
            for channel in ("refused", "status", "telemetry", "events", "imu"):
                for a in getattr(batch, channel):
                    t = self._send_time(a)
                    self.unmapped += t is None
                    items.append((now_ms if t is None else t, channel, a))
            items.sort(key=lambda x: x[0])  # stable: each channel's order is kept
            self.readings += len(items) - len(batch.refused)
            i = 0
            while i < len(items):
                j, t_end = i, items[i][0] + self.slice_ms
                sub: dict[str, list[Any]] = defaultdict(list)
                while j < len(items) and items[j][0] < t_end:
                    sub[items[j][1]].append(items[j][2])
                    j += 1
                await self.advance(utc_ms(items[j - 1][0]))
                await self.engine.on_batch(IngestedBatch(**sub))
                i = j

    async def advance(self, to: datetime) -> None:
        """Run the engine's timers for every simulated second up to ``to``, then set the clock."""
        if self._next_tick is None:
            self._next_tick = self.clock.now.replace(microsecond=0) + timedelta(seconds=1)
        while self._next_tick <= to:
            self.clock.advance(self._next_tick)
            self._ticks += 1
            await self.engine.tick(everyone=self._ticks % 30 == 0)
            if self._ticks % 5 == 0:
                await self.engine.escalate()
            if self._ticks % 3600 == 0:  # as AlertEngine._tick_loop: hourly baselines
                await self.engine.reload_baselines()
            self._next_tick += timedelta(seconds=1)
        self.clock.advance(to)


def local_day_start(days_ago: int, hour: int = 0) -> datetime:
    """``hour`` o'clock local time, ``days_ago`` local days before today (in UTC)."""
    local_today = (datetime.now(UTC) + LOCAL).date()
    day = datetime(local_today.year, local_today.month, local_today.day, tzinfo=UTC)
    return day - timedelta(days=days_ago) + timedelta(hours=hour) - LOCAL


def publish_all(sim: Simulation, port: int, driver: SimDriver, service: IngestService) -> int:
    """Publisher thread: every output as QoS 1, as fast as ingest commits (window 20,000)."""
    pub = RawPublisher("127.0.0.1", port, f"bench-detect-pub-{uuid.uuid4().hex[:6]}")
    topics: list[str] = []
    payloads: list[bytes] = []

    def flush() -> None:
        while pub.sent - service.stats.committed > 20_000:
            time.sleep(0.005)
        pub.publish_many(topics, payloads)
        topics.clear()
        payloads.clear()

    for out in sim.outputs():
        if isinstance(out, Publish):
            topic, payload = out.topic, out.payload
        elif isinstance(out, Link) and not out.up:  # the band's last will, sent on its behalf
            topic, payload = device_topic(out.device_id, Channel.STATUS), out.will
        else:
            continue
        driver.sent(payload, out.t_ms)
        topics.append(topic)
        payloads.append(payload)
        if len(topics) >= 500:
            flush()
    if topics:
        flush()
    pub.wait_acked(120)
    pub.close()
    return pub.sent


async def run_scenario(
    broker: BenchBroker,
    name: str,
    *,
    bands: int,
    seed: int,
    start: datetime,
    duration_s: float,
    history_days: float,
) -> Run:
    db_url = fresh_database("ec_bench_detect")
    try:
        await asyncio.to_thread(migrate, db_url)
        fleet = Fleet.create(seed=seed, bands=bands, prefix="DET", year=start.year)
        ids = await fleet.register(db_url)
        scenario = Scenario.load(SCENARIOS / f"{name}.yaml")
        history = 0
        if history_days > 0:  # the residents' recent past, for their personal baselines
            history = await seed_history(
                db_url, fleet, ids, start=start, days=history_days,
                background=scenario.background, seed=seed + 100_000,
            )  # fmt: skip
        sim = fleet.simulate(duration_s=duration_s, start=start, scenario=scenario)
        settings = Settings(database_url=db_url, mqtt_url=broker.url, log_level="WARNING",
                            ingest_client_id=f"bench-detect-{uuid.uuid4().hex[:8]}",
                            ingest_publish_internal=False)  # fmt: skip
        clock = SimClock(start)
        engine = AlertEngine(settings, fall_model=load_model(), clock=clock)
        driver = SimDriver(engine, clock)
        service = IngestService(settings, handlers=[driver.on_batch])
        stop = asyncio.Event()
        wall0 = time.monotonic()
        task = asyncio.create_task(service.run(stop), name="bench-ingest")
        await asyncio.wait_for(service.ready.wait(), 30)
        await asyncio.sleep(0.5)  # as bench/ingest.py: let the SUBSCRIBE reach the broker
        sent = await asyncio.to_thread(publish_all, sim, broker.port, driver, service)
        deadline = time.monotonic() + 300
        while service.stats.committed < sent and time.monotonic() < deadline:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        async with driver.lock:  # the last batch's handler has finished
            await driver.advance(utc_ms(sim.end_ms))
        stop.set()
        await task
        await engine.close()
        wall = time.monotonic() - wall0
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            cur = await conn.execute(
                "SELECT id, resident_id, type, severity, state, opened_at, closed_at, detail"
                " FROM alerts ORDER BY opened_at, id"
            )
            cols = [c.name for c in cur.description or []]
            alerts = [dict(zip(cols, row, strict=True)) for row in await cur.fetchall()]
        episodes = [(e, ids[e.device_id]) for e in sim.truth()]
        stats = {"published": sent, "committed": service.stats.committed,
                 "dead_letters": dict(service.stats.dead_letters),
                 "duplicates": service.stats.duplicates, "unmapped": driver.unmapped,
                 "history_rows": history}  # fmt: skip
        return Run(name, bands, duration_s / 86400, episodes, alerts, wall, driver.readings, stats)
    finally:
        drop_database(db_url)


# -- main ----------------------------------------------------------------------------------


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    broker = BenchBroker()
    try:
        runs: dict[str, tuple[Run, dict[str, TypeScore]]] = {}
        plan: list[tuple[str, datetime, float]] = []
        if args.scenario in ("all", "normal_week"):
            days_ago = int(args.days) + 1  # whole local days, ending before now
            plan.append(("normal_week", local_day_start(days_ago), args.days * 86400))
        if args.scenario in ("all", "emergencies"):  # 08:00 local: inactivity is in waking hours
            plan.append(("emergencies", local_day_start(1, 8), args.emergency_hours * 3600))
        if args.scenario not in ("all", "normal_week", "emergencies"):
            plan.append((args.scenario, local_day_start(int(args.days) + 1), args.days * 86400))
        for name, start, duration in plan:
            run = await run_scenario(broker, name, bands=args.bands, seed=args.seed,
                                     start=start, duration_s=duration,
                                     history_days=args.history_days)  # fmt: skip
            runs[name] = (run, score(run))
            report(name, *runs[name])
    finally:
        broker.close()
    total = merge([s for _, s in runs.values()])
    result: dict[str, Any] = {"per_type": summarise(total)}
    if "normal_week" in runs:
        run, s = runs["normal_week"]
        resident_days = run.bands * run.days
        fp = {t: v.fp for t, v in s.items() if v.fp}
        result["false_alerts_per_resident_day"] = round(sum(fp.values()) / resident_days, 4)
        result["false_alerts_per_resident_day_by_type"] = {
            t: round(k / resident_days, 4) for t, k in sorted(fp.items())
        }
    thr = await engine_throughput(readings=args.throughput_readings, bands=1000, seed=args.seed)
    print(f"\n== engine throughput (on_batch, no broker): {json.dumps(thr)}")
    result["events_per_s"] = thr["events_per_s"]
    result["runs"] = {n: {"bands": r.bands, "days": round(r.days, 3), "readings": r.readings,
                          "alerts": len(r.alerts), "episodes": len(r.episodes),
                          "wall_s": round(r.wall_s, 1)} for n, (r, _) in runs.items()}  # fmt: skip
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--bands", type=int, default=100)
    ap.add_argument("--days", type=float, default=2.0, help="simulated days of normal_week")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scenario", default="all",
                    help="all, normal_week, emergencies, or another scenario name")  # fmt: skip
    ap.add_argument("--emergency-hours", type=float, default=6.0)
    ap.add_argument("--throughput-readings", type=int, default=200_000)
    ap.add_argument("--history-days", type=float, default=7.0,
                    help="days of telemetry before the start (personal baselines)")  # fmt: skip
    args = ap.parse_args()
    configure_logging("WARNING")
    result = asyncio.run(amain(args))
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
