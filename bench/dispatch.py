"""Dispatch benchmark: emergency decision latency, and day planning against greedy.

    .venv/bin/python bench/dispatch.py [--workers 2000] [--orders 2000] [--plan-workers 300]
                                      [--plan-seconds 40] [--seed 1]

A synthetic city of 10 districts (about 3 x 3 km each): workers with mixed
skills, shifts and modes; a day of orders from the catalogue with time windows,
durations and, for 40 % of them, a previous worker (continuity of care).
``emergency_p99_ms`` is the pure decision over a prebuilt fleet snapshot;
``emergency_db_path_p99_ms`` the same decision with the fleet (workers,
shifts, live orders) read from PostgreSQL each time, and
``emergency_service_p99_ms`` as the dispatch service makes it, with its fleet
cache warm (the resident's home still read from the database); both on a
scratch database on ``--db-url``. Prints the figures as one JSON object on
the last line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# run as a script, this file's folder comes first on sys.path and its name would hide
# the `dispatch` package: drop it (python -m bench.dispatch works as well)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import numpy as np  # noqa: E402

from dispatch.emergency import EmergencyPolicy, FleetSnapshot, decide  # noqa: E402
from dispatch.model import Mode, Order, Point, Worker, WorkerStatus, load_catalogue  # noqa: E402
from dispatch.planner import PlannerSettings, plan_day  # noqa: E402
from dispatch.routing import PlanProblem, PlanWorker, evaluate, greedy_plan  # noqa: E402
from dispatch.travel import HaversineTravel  # noqa: E402

CENTRE = (32.00, 120.86)
DAY = datetime(2026, 11, 24, tzinfo=UTC)
SKILL_SETS = [
    frozenset({"caregiver", "cleaning", "meal_delivery"}),
    frozenset({"caregiver", "bathing"}),
    frozenset({"nurse", "caregiver"}),
    frozenset({"caregiver", "escort", "driver"}),
    frozenset({"caregiver", "meal_delivery", "bathing", "cleaning"}),
]


def district_centre(d: int) -> tuple[float, float]:
    row, col = divmod(d, 5)
    return CENTRE[0] + (row - 0.5) * 0.027, CENTRE[1] + (col - 2) * 0.032


def point_in(d: int, rng: random.Random) -> Point:
    lat, lon = district_centre(d)
    return Point(lat + rng.uniform(-0.0135, 0.0135), lon + rng.uniform(-0.016, 0.016))


def make_workers(n: int, rng: random.Random) -> list[Worker]:
    out = []
    for i in range(n):
        d = i % 10
        mode = rng.choices([Mode.EBIKE, Mode.BIKE, Mode.WALK, Mode.CAR], [6, 2, 1, 1])[0]
        out.append(
            Worker(
                f"W{i:05d}",
                f"D{d}",
                rng.choice(SKILL_SETS),
                point_in(d, rng),
                mode=mode,
                max_orders_per_day=12,
                status=WorkerStatus.AVAILABLE,
                location=point_in(d, rng),
            )
        )
    return out


def make_orders(n: int, workers: list[Worker], rng: random.Random) -> list[Order]:
    catalogue = load_catalogue()
    routine = [s for s in catalogue.services.values() if not s.emergency]
    weights = {
        "meal_delivery": 5,
        "cleaning": 3,
        "welfare_visit": 3,
        "bathing": 2,
        "companionship": 2,
        "personal_care": 2,
        "nursing": 1,
        "shopping": 1,
        "escort": 0.5,
        "recreation": 0.5,
    }
    by_district: dict[str, list[Worker]] = {}
    for w in workers:
        by_district.setdefault(w.district, []).append(w)
    out = []
    for i in range(n):
        d = i % 10
        s = rng.choices(routine, [weights.get(x.code, 1) for x in routine])[0]
        if s.code == "meal_delivery":
            start = DAY + timedelta(hours=11, minutes=rng.choice([0, 15, 30]))
            width = timedelta(minutes=60)
        else:
            start = DAY + timedelta(hours=8, minutes=30 * rng.randrange(0, 16))
            width = timedelta(minutes=rng.choice([60, 120, 180]))
        able = [w for w in by_district[f"D{d}"] if s.skills <= w.skills]
        preferred = rng.choice(able).worker_id if able and rng.random() < 0.4 else None
        out.append(
            Order(
                i + 1,
                1_000 + i,
                s.code,
                point_in(d, rng),
                start,
                start + width,
                timedelta(minutes=s.duration_min),
                s.skills,
                preferred_worker=preferred,
                district=f"D{d}",
            )
        )
    return out


def bench_emergency(n: int, rng: random.Random, decisions: int = 5_000) -> dict[str, float]:
    travel = HaversineTravel()
    workers = make_workers(n, rng)
    now = DAY + timedelta(hours=10)
    t = time.perf_counter()
    fleet = FleetSnapshot.build(workers, commitments={}, now=now, travel=travel)
    build_ms = (time.perf_counter() - t) * 1000
    policy = EmergencyPolicy()
    need = frozenset({"caregiver"})
    lat, cpu = [], []
    for _ in range(decisions):
        at = point_in(rng.randrange(10), rng)
        t, c = time.perf_counter(), time.thread_time()
        decide(fleet, at, order_id=None, required=need, policy=policy, travel=travel)
        cpu.append((time.thread_time() - c) * 1000)
        lat.append((time.perf_counter() - t) * 1000)
    a, b = np.array(lat), np.array(cpu)
    return {
        "emergency_p50_ms": round(float(np.percentile(a, 50)), 3),
        "emergency_p99_ms": round(float(np.percentile(a, 99)), 3),
        # CPU time of the decision: the wall-clock p99 above includes time the process
        # waited for a core on a shared machine
        "emergency_cpu_p99_ms": round(float(np.percentile(b, 99)), 3),
        "emergency_snapshot_build_ms": round(build_ms, 1),
    }


async def _db_path(
    url: str, workers: list[Worker], rng: random.Random, n: int
) -> dict[str, list[float]]:
    import psycopg

    from dispatch.assign import AssignSettings, rank_for
    from dispatch.fleet_cache import FleetCache
    from dispatch.roster import NewWorker, add_workers, set_location, sync_catalogue
    from eldercare.registry import NewResident, add_residents

    async with await psycopg.AsyncConnection.connect(url) as conn:
        await sync_catalogue(conn, load_catalogue())
        homes = [point_in(rng.randrange(10), rng) for _ in range(n)]
        rids = await add_residents(
            conn,
            [
                NewResident(name="bench", birth_year=1940, home_lat=h.lat, home_lon=h.lon)
                for h in homes
            ],
        )
        await conn.commit()
        await add_workers(
            conn,
            [
                NewWorker(w.worker_id, "bench", w.district, w.skills, w.home, mode=w.mode)
                for w in workers
            ],
        )
        await conn.execute("UPDATE service_workers SET status = 'available'")
        await conn.commit()
        for w in workers[:50]:
            await set_location(conn, w.worker_id, w.where(), now=DAY)
        out: dict[str, list[float]] = {"cold": [], "cached": []}
        cached = AssignSettings(fleet=FleetCache(max_age_s=3600.0))
        for kind, settings in (("cold", AssignSettings()), ("cached", cached)):
            for rid in rids:
                t = time.perf_counter()
                await rank_for(
                    conn,
                    rid,
                    None,
                    emergency=True,
                    exclude=[],
                    now=DAY,
                    settings=settings,
                    limit=10,
                )
                out[kind].append((time.perf_counter() - t) * 1000)
        return out


def bench_db_path(admin_url: str, n_workers: int, rng: random.Random) -> dict[str, float]:
    """The same decision as the service makes it: fleet loaded from PostgreSQL each time."""
    import asyncio
    import uuid

    import psycopg

    from eldercare.migrate import migrate

    name = f"bench_dispatch_{uuid.uuid4().hex[:8]}"
    base = admin_url.rpartition("/")[0]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        url = f"{base}/{name}"
        migrate(url)
        lat = asyncio.run(_db_path(url, make_workers(n_workers, rng), rng, 200))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    cold = np.array(lat["cold"][10:])  # the first few warm the connection
    warm = np.array(lat["cached"][1:])  # the first loads the cache
    return {
        "emergency_db_path_p50_ms": round(float(np.percentile(cold, 50)), 2),
        "emergency_db_path_p99_ms": round(float(np.percentile(cold, 99)), 2),
        "emergency_service_p50_ms": round(float(np.percentile(warm, 50)), 2),
        "emergency_service_p99_ms": round(float(np.percentile(warm, 99)), 2),
    }


def bench_plan(
    n_orders: int, n_workers: int, seconds: float, rng: random.Random
) -> dict[str, float]:
    travel = HaversineTravel()
    workers = make_workers(n_workers, rng)
    orders = make_orders(n_orders, workers, rng)
    shifts = [(7, 15), (8, 17), (10, 19)]
    pws = []
    for w in workers:
        a, b = rng.choice(shifts)
        pws.append(
            PlanWorker.from_worker(
                w,
                shift_start=DAY + timedelta(hours=a),
                shift_end=DAY + timedelta(hours=b),
                travel=travel,
                start=w.home,
            )
        )
    problem = PlanProblem(orders, pws, travel)
    t = time.perf_counter()
    greedy = evaluate(problem, greedy_plan(problem))
    greedy_s = time.perf_counter() - t
    t = time.perf_counter()
    plan = evaluate(problem, plan_day(problem, PlannerSettings(seconds=seconds)))
    plan_s = time.perf_counter() - t
    return {
        "plan_seconds": round(plan_s, 2),
        "plan_travel_km": round(plan.travel_km, 1),
        "plan_on_time": round(plan.on_time, 4),
        "plan_unassigned": plan.unassigned,
        "plan_continuity": round(plan.continuity, 3),
        "plan_max_orders_per_worker": plan.max_orders_per_worker,
        "greedy_seconds": round(greedy_s, 3),
        "greedy_travel_km": round(greedy.travel_km, 1),
        "greedy_on_time": round(greedy.on_time, 4),
        "greedy_unassigned": greedy.unassigned,
        "greedy_continuity": round(greedy.continuity, 3),
        "travel_saving_vs_greedy": round(1 - plan.travel_km / greedy.travel_km, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2_000)
    p.add_argument("--orders", type=int, default=2_000)
    p.add_argument("--plan-workers", type=int, default=300)
    p.add_argument("--plan-seconds", type=float, default=40.0, help="solver time budget")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--db-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server for the database-path figure ('' to skip)",
    )
    args = p.parse_args()
    out: dict[str, object] = {
        "workers_on_shift": args.workers,
        "orders": args.orders,
        "plan_workers": args.plan_workers,
    }
    out.update(bench_emergency(args.workers, random.Random(args.seed)))
    if args.db_url:
        out.update(bench_db_path(args.db_url, args.workers, random.Random(args.seed)))
    out.update(
        bench_plan(args.orders, args.plan_workers, args.plan_seconds, random.Random(args.seed))
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
