"""A day's routine work on the real database: recurring orders made once, the PyVRP plan
offered to qualified workers on shift, nobody double-booked, re-running changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import TupleRow

from dispatch.assign import catalogue_from_db
from dispatch.day import PLANNED_ANSWER_LEAD, make_recurring, plan_and_offer
from dispatch.lifecycle import Action
from dispatch.model import OrderKind, ServiceType
from dispatch.recurring import load_recurring
from dispatch.roster import add_shift
from dispatch.store import act, create_order, expire_offers, offer
from tests.integration.dispatch_support import HOME, east, seed

TZ = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=TZ)


async def book(
    conn: psycopg.AsyncConnection[TupleRow],
    service: ServiceType,
    rid: int,
    day0: datetime,
    hours: tuple[float, float],
) -> int:
    """A booked visit of ``service`` whose window is the day's ``hours`` (from, to)."""
    start, end = hours
    o, _ = await create_order(
        conn,
        kind=OrderKind.BOOKED,
        resident_id=rid,
        service=service,
        window_start=day0 + timedelta(hours=start),
        window_end=day0 + timedelta(hours=end),
        actor="t",
        now=NOW,
    )
    return o.id


async def offer_at(
    conn: psycopg.AsyncConnection[TupleRow],
    order_id: int,
    worker: str,
    day0: datetime,
    hours: tuple[float, float],
) -> None:
    """The order offered to ``worker``, booked for the day's ``hours`` (from, to)."""
    start, end = hours
    await offer(
        conn,
        order_id,
        worker,
        actor="t",
        now=NOW,
        booked_from=day0 + timedelta(hours=start),
        booked_until=day0 + timedelta(hours=end),
        expires_at=None,
    )


async def test_recurring_then_plan_and_offer(db_url: str) -> None:
    homes = [east(0.3 * i) for i in range(8)]
    care = frozenset({"caregiver"})
    rids = await seed(
        db_url,
        now=NOW,
        residents=homes,
        workers=[
            ("A", HOME, care),
            ("B", east(1.0), care),
            ("C", east(0.5), frozenset({"cleaning"})),
        ],
    )
    rules = load_recurring()
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        for w in ("A", "B", "C"):
            await add_shift(conn, w, NOW + timedelta(hours=1), NOW + timedelta(hours=10))
        assert await make_recurring(conn, rules, MONDAY, now=NOW) == len(rids)  # all live alone
        assert await make_recurring(conn, rules, MONDAY, now=NOW) == 0  # idempotent
        report = await plan_and_offer(conn, MONDAY, tz=TZ, now=NOW, seconds=1.0)
        assert report.orders == len(rids)
        assert report.workers == 3
        assert report.offered == len(rids)
        assert report.unassigned == 0
        assert report.refused == 0
        assert report.on_time == 1.0
        cur = await conn.execute(
            "SELECT worker_id, count(*) FROM work_orders WHERE state = 'offered' GROUP BY 1"
        )
        per_worker = dict(await cur.fetchall())
        assert set(per_worker) <= {"A", "B"}  # C cannot do a welfare visit
        assert sum(per_worker.values()) == len(rids)
        cur = await conn.execute(
            "SELECT count(*) FROM work_orders a JOIN work_orders b ON a.worker_id = b.worker_id"
            " AND a.id < b.id AND tstzrange(a.booked_from, a.booked_until)"
            " && tstzrange(b.booked_from, b.booked_until)"
        )
        assert await cur.fetchone() == (0,)
        await conn.commit()
        again = await plan_and_offer(conn, MONDAY, tz=TZ, now=NOW, seconds=0.5)
        assert again.orders == 0  # nothing left waiting


async def test_a_planned_visit_nobody_accepted_waits_again_before_its_time(db_url: str) -> None:
    """Until 2026-12-04 a planned offer never expired: unanswered, it held the worker's
    time and the visit never happened, with nothing to show it."""
    rids = await seed(db_url, now=NOW, residents=[HOME, east(0.4)],
                      workers=[("A", HOME, frozenset({"caregiver"}))])  # fmt: skip
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await add_shift(conn, "A", NOW + timedelta(hours=1), NOW + timedelta(hours=10))
        assert await make_recurring(conn, load_recurring(), MONDAY, now=NOW) == len(rids)
        report = await plan_and_offer(conn, MONDAY, tz=TZ, now=NOW, seconds=0.5)
        assert report.offered == len(rids)
        cur = await conn.execute(
            "SELECT id, booked_from, offer_expires_at FROM work_orders WHERE state = 'offered'"
            " ORDER BY booked_from"
        )
        offered = await cur.fetchall()
        await conn.commit()
        for _, start, expires in offered:
            assert expires == max(start - PLANNED_ANSWER_LEAD, NOW + timedelta(minutes=15))
        first, start, expires = offered[0]
        assert await expire_offers(conn, now=expires - timedelta(seconds=1)) == []
        timed_out = await expire_offers(conn, now=expires)
        assert [c.order.id for c in timed_out] == [first]
        cur = await conn.execute(
            "SELECT state, worker_id, booked_from FROM work_orders WHERE id = %s", (first,)
        )
        assert await cur.fetchone() == ("created", None, None)  # waiting; A's time is free
        cur = await conn.execute("SELECT count(*) FROM work_orders WHERE state = 'offered'")
        assert await cur.fetchone() == (len(rids) - 1,)  # the later one still has time
        await conn.commit()
        # a re-plan does not give it to A again (A let it time out), and A is the only one
        again = await plan_and_offer(conn, MONDAY, tz=TZ, now=expires, seconds=0.5)
        assert (again.orders, again.offered, again.unassigned) == (1, 0, 1)


async def test_eldercare_dispatch_plan_command(db_url: str) -> None:
    await seed(
        db_url,
        now=NOW,
        residents=[HOME, east(0.4)],
        workers=[("A", HOME, frozenset({"caregiver"}))],
    )
    today = datetime.now(TZ).date()  # the command plans from the real now on
    next_monday = today + timedelta(days=7 - today.weekday())
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        at8 = datetime.combine(next_monday, time(8), tzinfo=TZ)
        await add_shift(conn, "A", at8, at8 + timedelta(hours=10))
    env = {**os.environ, "ELDERCARE_DATABASE_URL": db_url, "ELDERCARE_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eldercare.cli",
        "dispatch",
        "plan",
        "--date",
        next_monday.isoformat(),
        "--seconds",
        "0.5",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["recurring_made"] == 2
    assert report["offered"] == 2
    bad = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eldercare.cli",
        "dispatch",
        "plan",
        "--date",
        "someday",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(bad.communicate(), 60)
    assert bad.returncode == 2
    assert b"someday" in err


async def test_a_replan_plans_around_the_visits_workers_hold(db_url: str) -> None:
    """A re-plan later in the day: A holds an accepted visit at 10:00-11:00, and a new
    visit may be done 09:30-12:00. Before 2026-12-04 the plan saw A free all day and put
    it at 09:30, over the held one; the database refused the booking and it waited."""
    rids = await seed(db_url, now=NOW, residents=[HOME, east(0.4)],
                      workers=[("A", HOME, frozenset({"caregiver"}))])  # fmt: skip
    day0 = datetime.combine(MONDAY, time(0), tzinfo=TZ)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await add_shift(conn, "A", day0 + timedelta(hours=8), day0 + timedelta(hours=17))
        service = (await catalogue_from_db(conn))["personal_care"]  # 45 minutes

        def order(rid: int, start: float, end: float) -> Awaitable[int]:
            return book(conn, service, rid, day0, (start, end))

        held = await order(rids[0], 10, 10)
        await offer_at(conn, held, "A", day0, (10, 11))
        await act(conn, held, Action.ACCEPT, actor="worker:A", now=NOW, worker_id="A")
        new = await order(rids[1], 9.5, 12)
        report = await plan_and_offer(conn, MONDAY, tz=TZ, now=NOW, seconds=0.5)
        assert (report.orders, report.offered, report.refused) == (1, 1, 0)
        cur = await conn.execute(
            "SELECT id, state, booked_from FROM work_orders WHERE worker_id = 'A' ORDER BY id"
        )
        got = await cur.fetchall()
    assert [(i, s) for i, s, _ in got] == [(held, "accepted"), (new, "offered")]
    assert got[1][2] >= day0 + timedelta(hours=11)  # after the held visit, not over it


async def test_nothing_is_planned_between_a_split_shifts_two_halves(db_url: str) -> None:
    """A shift 08:00-12:00 and another 14:00-18:00. Before 2026-12-04 the day's shifts
    were merged into 08:00-18:00, and a visit was offered for the worker's midday off."""
    rids = await seed(db_url, now=NOW, residents=[HOME, east(0.4)],
                      workers=[("A", HOME, frozenset({"caregiver"}))])  # fmt: skip
    day0 = datetime.combine(MONDAY, time(0), tzinfo=TZ)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        for a, b in ((8, 12), (14, 18)):
            await add_shift(conn, "A", day0 + timedelta(hours=a), day0 + timedelta(hours=b))
        service = (await catalogue_from_db(conn))["personal_care"]  # 45 minutes
        ids = []
        for rid, (a, b) in zip(rids, ((12, 13.5), (11.5, 15)), strict=True):
            o, _ = await create_order(conn, kind=OrderKind.BOOKED, resident_id=rid,
                                      service=service, window_start=day0 + timedelta(hours=a),
                                      window_end=day0 + timedelta(hours=b), actor="t",
                                      now=NOW)  # fmt: skip
            ids.append(o.id)
        report = await plan_and_offer(conn, MONDAY, tz=TZ, now=NOW, seconds=0.5)
        cur = await conn.execute(
            "SELECT id, state, booked_from, booked_until FROM work_orders ORDER BY id"
        )
        got = await cur.fetchall()
    assert (report.orders, report.offered, report.unassigned) == (2, 1, 1)
    assert got[0][:2] == (ids[0], "created")  # only possible in the break: not planned
    assert got[1][:2] == (ids[1], "offered")
    off = (day0 + timedelta(hours=12), day0 + timedelta(hours=14))
    assert got[1][3] <= off[0] or got[1][2] >= off[1]  # before the break or after it


async def test_a_replan_counts_the_visits_done_today_against_the_days_capacity(
    db_url: str,
) -> None:
    """A does at most 2 visits a day and completed one this morning; a re-plan at noon
    has three waiting. Before 2026-12-04 only held visits counted, and A got two more."""
    rids = await seed(db_url, now=NOW, residents=[HOME, east(0.2), east(0.4), east(0.6)],
                      workers=[("A", HOME, frozenset({"caregiver"}))])  # fmt: skip
    day0 = datetime.combine(MONDAY, time(0), tzinfo=TZ)
    noon = day0 + timedelta(hours=12)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await conn.execute("UPDATE service_workers SET max_orders_per_day = 2")
        await add_shift(conn, "A", day0 + timedelta(hours=8), day0 + timedelta(hours=18))
        service = (await catalogue_from_db(conn))["personal_care"]  # 45 minutes

        def order(rid: int, start: float, end: float) -> Awaitable[int]:
            return book(conn, service, rid, day0, (start, end))

        done = await order(rids[0], 9, 9)
        await offer_at(conn, done, "A", day0, (9, 10))
        at = day0 + timedelta(hours=9)
        for action in (Action.ACCEPT, Action.EN_ROUTE, Action.CHECK_IN, Action.CHECK_OUT):
            at += timedelta(minutes=10)
            await act(conn, done, action, actor="worker:A", now=at, worker_id="A", at=HOME)
        waiting = [await order(rid, 13, 17) for rid in rids[1:]]
        report = await plan_and_offer(conn, MONDAY, tz=TZ, now=noon, seconds=0.5)
        cur = await conn.execute(
            "SELECT state, count(*) FROM work_orders WHERE id = ANY(%s) GROUP BY 1", [waiting]
        )
        got = dict(await cur.fetchall())
    assert (report.orders, report.offered) == (3, 1)
    assert got == {"offered": 1, "created": 2}
