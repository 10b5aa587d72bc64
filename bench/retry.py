"""Dispatch retry benchmark: what one retry costs in a surge of waiting emergencies.

    python bench/retry.py [--waiting 1000] [--workers 200] [--retries 10]

A fresh database with ``--workers`` workers, all off shift, and ``--waiting`` open
critical alerts, each with its emergency order waiting for a worker (nobody can take
one). Then :func:`dispatch.timers.retry_waiting` runs ``--retries`` times with one
:class:`dispatch.rotation.Rotation`, as the service does every
``ELDERCARE_DISPATCH_RETRY_S``: its wall time per retry, and after how many retries
every waiting order had been visited (offered again, or found with nobody to take it).
The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench.common import drop_database, fresh_database, percentile, report
from dispatch import service, timers
from dispatch.assign import assign_settings
from dispatch.fleet_cache import FleetCache
from dispatch.model import Mode, Point, load_catalogue
from dispatch.roster import NewWorker, add_workers, sync_catalogue
from dispatch.rotation import Rotation
from eldercare.migrate import migrate
from eldercare.registry import NewResident, add_residents
from eldercare.settings import Settings

T0 = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


class _Recording(Rotation):
    """The service's rotation, noting which waiting orders each retry visited."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[int] = set()

    def pick(self, queue: str, waiting: Sequence[tuple[tuple[int, ...], int]]) -> list[int]:
        ids = super().pick(queue, waiting)
        if queue == "waiting":
            self.seen |= set(ids)
        return ids


async def _surge(url: str, waiting: int, workers: int, retries: int) -> dict[str, float]:
    rng = random.Random(1)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await sync_catalogue(conn, load_catalogue())
        rids = await add_residents(conn, [
            NewResident(name="bench", birth_year=1940, district="D1",
                        home_lat=32.0 + rng.uniform(-0.05, 0.05),
                        home_lon=120.86 + rng.uniform(-0.05, 0.05))
            for _ in range(waiting)
        ])  # fmt: skip
        await conn.commit()
        await add_workers(conn, [
            NewWorker(f"W{i:04d}", "bench", "D1", frozenset({"caregiver"}), Point(32.0, 120.86),
                      mode=Mode.EBIKE)
            for i in range(workers)
        ])  # fmt: skip
        await conn.execute("UPDATE service_workers SET status = 'off_shift'")
        await conn.commit()
        for rid in rids:
            cur = await conn.execute(
                "INSERT INTO alerts (resident_id, type, severity, state, opened_at, updated_at)"
                " VALUES (%s, 'fall', 'critical', 'open', %s, %s) RETURNING id",
                (rid, T0, T0),
            )
            row = await cur.fetchone()
            assert row is not None
            await conn.commit()
            await service.dispatch_alert(conn, int(row[0]), actor="dispatcher", now=T0)
        settings = Settings(environment="test", database_url=url)
        # as the service has it: the fleet read at most every 2 s (dispatch.runner)
        assign = assign_settings(settings, fleet=FleetCache(max_age_s=2.0))
        rotation = _Recording()
        cur = await conn.execute("SELECT id FROM work_orders WHERE state = 'created'")
        ids = {int(r[0]) for r in await cur.fetchall()}
        await conn.commit()
        all_visited_after = -1
        seconds: list[float] = []
        for i in range(retries):
            t = time.perf_counter()
            at = T0 + timedelta(seconds=5 * (i + 1))
            await timers.retry_waiting(
                conn, now=at, settings=settings, assign=assign, rotation=rotation
            )
            seconds.append(time.perf_counter() - t)
            if all_visited_after < 0 and rotation.seen >= ids:
                all_visited_after = i + 1
    ms = [s * 1000 for s in seconds]
    return {
        "waiting": len(ids),
        "workers": workers,
        "retry_p50_ms": round(percentile(ms, 0.5), 1),
        "retry_max_ms": round(max(ms), 1),
        "retries_until_all_visited": all_visited_after,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--waiting", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--retries", type=int, default=50)
    args = ap.parse_args()
    url = fresh_database("ec_bench_retry")
    try:
        migrate(url)
        out = asyncio.run(_surge(url, args.waiting, args.workers, args.retries))
    finally:
        drop_database(url)
    report(out)


if __name__ == "__main__":
    main()
