"""Two dispatchers (two connections, and two OS processes) racing on the real database
never double-book a worker nor give one order to two workers."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import psycopg

from dispatch.lifecycle import InvalidTransition
from dispatch.service import book_order
from dispatch.store import WorkerBusy, offer
from tests.integration.dispatch_support import HOME, east, open_alert, seed

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CARE = frozenset({"caregiver"})


async def _order(db_url: str, rid: int, key: str) -> int:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        o, _ = await book_order(
            conn,
            resident_id=rid,
            service_type="welfare_visit",
            window_start=T0,
            window_end=T0 + timedelta(hours=3),
            actor="operator:1",
            idempotency_key=key,
            now=T0,
        )
        return o.id


async def _race(db_url: str, attempts: list[tuple[int, str]]) -> list[object]:
    """Each attempt offers (order, worker) on its own connection, all released at once."""
    conns = [await psycopg.AsyncConnection.connect(db_url) for _ in attempts]
    gate = asyncio.Event()

    async def one(conn: psycopg.AsyncConnection, order_id: int, worker: str) -> object:  # type: ignore[type-arg]
        await gate.wait()
        try:
            return await offer(
                conn,
                order_id,
                worker,
                actor="test",
                now=T0,
                booked_from=T0,
                booked_until=T0 + timedelta(minutes=30),
                expires_at=None,
            )
        except (WorkerBusy, InvalidTransition) as exc:
            return exc

    tasks = [asyncio.create_task(one(c, o, w)) for c, (o, w) in zip(conns, attempts, strict=True)]
    await asyncio.sleep(0.05)
    gate.set()
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for c in conns:
            await c.close()


async def test_one_order_is_never_given_to_two_workers(db_url: str) -> None:
    workers = [(f"W{i}", east(0.1 * i), CARE) for i in range(4)]
    [rid] = await seed(db_url, now=T0, workers=workers)
    for round_ in range(10):
        order_id = await _order(db_url, rid, f"k{round_}")
        results = await _race(db_url, [(order_id, w) for w, _, _ in workers])
        won = [r for r in results if isinstance(r, list)]
        assert len(won) == 1, results
        assert all(isinstance(r, InvalidTransition) for r in results if not isinstance(r, list))
        async with await psycopg.AsyncConnection.connect(db_url) as conn:  # free them again
            await conn.execute(
                "UPDATE work_orders SET state = 'cancelled' WHERE id = %s", (order_id,)
            )
            await conn.commit()


async def test_a_worker_is_never_double_booked(db_url: str) -> None:
    [rid] = await seed(db_url, now=T0, workers=[("W1", east(0.3), CARE)])
    orders = [await _order(db_url, rid, f"k{i}") for i in range(6)]
    results = await _race(db_url, [(o, "W1") for o in orders])
    assert sum(isinstance(r, list) for r in results) == 1, results
    assert all(isinstance(r, WorkerBusy) for r in results if not isinstance(r, list))


SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from datetime import datetime
    import psycopg
    from dispatch.service import dispatch_alert
    from dispatch.store import DispatchError

    async def main(url, now, alerts):
        async with await psycopg.AsyncConnection.connect(url) as conn:
            for a in alerts:
                try:
                    await dispatch_alert(conn, a, actor="proc", now=now)
                except DispatchError:
                    pass

    url, now, ids = sys.argv[1], datetime.fromisoformat(sys.argv[2]), sys.argv[3:]
    asyncio.run(main(url, now, [int(i) for i in ids]))
""")


async def test_two_dispatcher_processes_racing_on_alerts(db_url: str) -> None:
    homes = [east(0.2 * i) for i in range(12)]
    workers = [(f"W{i}", east(0.25 * i, HOME), CARE) for i in range(5)]
    rids = await seed(db_url, now=T0, residents=homes, workers=workers)
    alerts = [str(await open_alert(db_url, r, at=T0)) for r in rids]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", SCRIPT, db_url, T0.isoformat(), *order
        )
        for order in (alerts, alerts[::-1])
    ]
    for p in procs:
        assert await asyncio.wait_for(p.wait(), 120) == 0
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT alert_id, count(*) FROM work_orders GROUP BY 1")
        per_alert = dict(await cur.fetchall())
        assert set(per_alert) == {int(a) for a in alerts}
        assert set(per_alert.values()) == {1}
        cur = await conn.execute(
            "SELECT worker_id, count(*) FROM work_orders WHERE state = 'offered' GROUP BY 1"
        )
        per_worker = dict(await cur.fetchall())
        assert sorted(per_worker) == [w for w, _, _ in workers]  # everyone busy, once
        assert set(per_worker.values()) == {1}
        cur = await conn.execute("SELECT count(*) FROM work_order_events WHERE kind = 'escalated'")
        assert (await cur.fetchone()) == (len(alerts) - len(workers),)  # nobody left for them
