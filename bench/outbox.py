"""The dispatch outbox (dispatch/outbox.py): what a poll costs, idle and with gaps, and
how fast order events go out on the broker.

    python bench/outbox.py [--events 5000] [--polls 2000] [--gaps 20]

A fresh, migrated database gets one resident and one booked order. Then:

* ``idle_poll_ms``: one poll with nothing new (the service polls every 0.2 s), the
  mean of ``--polls``;
* ``gap_poll_ms``: the same while ``--gaps`` transactions, each holding one event
  not committed yet, leave as many gaps behind an event committed after them (the
  gaps are read again at every poll);
* ``events_per_s``: ``--events`` events committed at once, then published (each with
  its order, as the service sends them) on a private broker with the deployment's
  configuration, by polls until all are out.

Prints the figures; the last line is JSON. Wall-clock on a shared machine: noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BenchBroker, drop_database, fresh_database, report
from dispatch.model import load_catalogue
from dispatch.outbox import Outbox
from dispatch.roster import sync_catalogue
from dispatch.service import book_order
from eldercare.migrate import migrate
from eldercare.registry import NewResident, add_residents

EVENT = (
    "INSERT INTO work_order_events (order_id, at, kind, to_state, actor)"
    " SELECT %s, now(), 'noted', 'created', 'bench' FROM generate_series(1, %s)"
)


async def _order(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await sync_catalogue(conn, load_catalogue())
        home = NewResident(name="R", birth_year=1940, district="D1", home_lat=32.0, home_lon=120.86)
        [rid] = await add_residents(conn, [home])
        await conn.commit()
        start = datetime.now(UTC) + timedelta(hours=2)
        order, _ = await book_order(conn, resident_id=rid, service_type="cleaning",
                                    window_start=start, window_end=start + timedelta(hours=3),
                                    actor="bench")  # fmt: skip
        return order.id


async def _mean_poll_ms(outbox: Outbox, conn: Any, client: aiomqtt.Client, polls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(polls):
        await outbox.publish_new(conn, client)
    return (time.perf_counter() - t0) / polls * 1e3


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = fresh_database("ec_bench_outbox")
    broker = BenchBroker()
    try:
        migrate(url)
        order_id = await _order(url)
        async with (
            await psycopg.AsyncConnection.connect(url) as conn,
            aiomqtt.Client("127.0.0.1", broker.port) as client,
        ):
            outbox = Outbox()
            await outbox.resume(conn)
            await outbox.publish_new(conn, client)
            idle = await _mean_poll_ms(outbox, conn, client, args.polls)

            holders = [await psycopg.AsyncConnection.connect(url) for _ in range(args.gaps)]
            for h in holders:  # each holds an event id, uncommitted
                await h.execute("SELECT pg_current_xact_id()")
                await h.execute(EVENT, (order_id, 1))
            await conn.execute(EVENT, (order_id, 1))
            await conn.commit()
            await outbox.publish_new(conn, client)
            gaps = len(outbox.cursor.gaps)
            gap_poll = await _mean_poll_ms(outbox, conn, client, args.polls)
            for h in holders:
                await h.commit()
                await h.close()
            late = await outbox.publish_new(conn, client)  # the gaps filled, published
            for _ in range(2):  # horizon, then settled
                await outbox.publish_new(conn, client)
            left = len(outbox.cursor.gaps)

            await conn.execute(EVENT, (order_id, args.events))
            await conn.commit()
            t0 = time.perf_counter()
            sent = 0
            while sent < args.events:
                sent += await outbox.publish_new(conn, client)
            rate = args.events / (time.perf_counter() - t0)
    finally:
        broker.close()
        drop_database(url)
    return {
        "idle_poll_ms": round(idle, 3),
        "gap_poll_ms": round(gap_poll, 3),
        "gap_ranges_held": gaps,
        "late_events_published": late,
        "gaps_left_after_commit": left,
        "events_per_s": round(rate),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--polls", type=int, default=2000)
    parser.add_argument("--gaps", type=int, default=20)
    out = asyncio.run(run(parser.parse_args()))
    for k, v in out.items():
        print(f"{k}: {v}")
    report(out)


if __name__ == "__main__":
    main()
