"""A day's routine work in the database: make the recurring orders, plan, offer the routes.

:func:`make_recurring` books the orders the recurring rules make for a day
(idempotent). :func:`plan_and_offer` loads the day's waiting routine orders
(state ``created``), the workers with a shift that day and, for continuity of
care, the worker who last completed a visit to each resident; plans with
PyVRP (:func:`dispatch.planner.plan_day`), and offers every planned visit to
its worker for its planned time (the no-double-booking constraint still has
the last word: a visit it refuses stays waiting). The visits workers already hold
(offered, accepted, under way) are planned as fixed stops at their booked times, so
a re-plan fits new work around them (:mod:`dispatch.routing`). The worker has until
``PLANNED_ANSWER_LEAD`` before the visit to accept it (at least
``PLANNED_ANSWER_MIN`` from the offer); unanswered by then, the offer times out
like any other and the order waits again, visible to the centre and planned again
by the next run, and the worker's time is free. Until 2026-12-04 a planned offer
never expired: an unanswered visit held the worker's time and never happened,
and nothing showed it. Re-planning after an
emergency is the same call later in the day: only orders still waiting are
planned, around what workers already hold (before 2026-12-04 it did not look at what
they held, and visits planned over a worker's accepted ones were refused and left
waiting), and what they completed that day counts against their orders per day. A
worker's day runs from their first shift's start to their last one's end;
the breaks between shifts are held stops at home, so nothing is planned in them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import TupleRow

from dispatch.assign import catalogue_from_db
from dispatch.model import Order, OrderKind, Point, load_catalogue
from dispatch.planner import PlannerSettings, plan_day
from dispatch.recurring import (
    Recurring,
    ResidentRef,
    expand,
    expand_subscriptions,
    load_recurring,
)
from dispatch.roster import list_workers, sync_catalogue
from dispatch.routing import PlanProblem, PlanWorker, evaluate, working_day
from dispatch.store import DispatchError, ResidentAway, WorkerBusy, create_order, offer
from dispatch.subscriptions import due_subscriptions
from dispatch.travel import HaversineTravel, TravelModel
from eldercare.migrate import migrate
from eldercare.settings import Settings

Conn = psycopg.AsyncConnection[TupleRow]
PLANNER = "planner"
PLANNED_ANSWER_LEAD = timedelta(minutes=30)  # accept a planned visit by this long before it
PLANNED_ANSWER_MIN = timedelta(minutes=15)  # the least time to answer (a re-plan at noon)


@dataclass(frozen=True, slots=True)
class DayPlanReport:
    orders: int
    workers: int
    offered: int
    refused: int  # planned, but the database refused the booking (taken meanwhile)
    unassigned: int
    travel_km: float
    on_time: float
    seconds: float

    def to_json(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in self.__slots__}


async def make_recurring(
    conn: Conn, recurring: Recurring, day: date, *, now: datetime, actor: str = "recurring"
) -> int:
    """Book the day's recurring orders, from the catalogue's rules and the residents' own
    standing services (:mod:`dispatch.subscriptions`); returns how many were new. A
    resident away from home (eldercare.absence) gets none whose window meets the absence:
    :func:`create_order` refuses it."""
    cur = await conn.execute(
        "SELECT resident_id, living_alone FROM residents WHERE left_at IS NULL ORDER BY 1"
    )
    people = [ResidentRef(int(r), bool(a)) for r, a in await cur.fetchall()]
    standing = await due_subscriptions(conn, day)
    await conn.commit()
    catalogue = await catalogue_from_db(conn)
    made = 0
    dues = expand(recurring, people, day) + expand_subscriptions(standing, day, recurring.timezone)
    for due in dues:
        try:
            _, new = await create_order(
                conn,
                kind=OrderKind.RECURRING,
                resident_id=due.resident_id,
                service=catalogue[due.service],
                window_start=due.window_start,
                window_end=due.window_end,
                actor=actor,
                now=now,
                idempotency_key=due.idempotency_key,
                recurrence=due.rule,
            )
        except ResidentAway:
            continue  # away from home then: no visit
        made += new
    return made


async def plan_and_offer(
    conn: Conn,
    day: date,
    *,
    tz: ZoneInfo,
    now: datetime,
    district: str | None = None,
    seconds: float = 30.0,
    travel: TravelModel | None = None,
) -> DayPlanReport:
    model = travel or HaversineTravel()
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = start + timedelta(days=1)
    catalogue = await catalogue_from_db(conn)
    cur = await conn.execute(
        "SELECT o.id, o.resident_id, o.service_type, r.home_lat, r.home_lon,"
        " greatest(o.window_start, %(now)s), o.window_end, o.duration_min, o.priority, o.district,"
        " (SELECT p.worker_id FROM work_orders p WHERE p.resident_id = o.resident_id"
        "   AND p.state = 'completed' ORDER BY p.completed_at DESC LIMIT 1), o.declined_by"
        " FROM work_orders o JOIN residents r USING (resident_id)"
        " WHERE o.state = 'created' AND o.kind <> 'emergency' AND o.window_start < %(b)s"
        " AND o.window_end > greatest(%(a)s, %(now)s) AND r.home_lat IS NOT NULL"
        " AND (%(d)s::text IS NULL OR o.district = %(d)s)",
        {"a": start, "b": end, "now": now, "d": district},
    )
    orders = [
        Order(
            int(i),
            int(rid),
            code,
            Point(lat, lon),
            ws,
            we,
            timedelta(minutes=dur),
            catalogue[code].skills,
            priority=int(pri),
            preferred_worker=pref,
            district=dist,
            declined_by=frozenset(declined or ()),
        )
        for i, rid, code, lat, lon, ws, we, dur, pri, dist, pref, declined in await cur.fetchall()
        if we >= ws
    ]
    cur = await conn.execute(
        "SELECT worker_id, greatest(starts_at, %(now)s), ends_at FROM worker_shifts"
        " WHERE starts_at < %(b)s AND ends_at > greatest(%(a)s, %(now)s)",
        {"a": start, "b": end, "now": now},
    )
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for w, a, b in await cur.fetchall():
        spans.setdefault(w, []).append((a, b))
    await conn.commit()
    days = {w: working_day(s) for w, s in spans.items()}
    workers = [
        PlanWorker.from_worker(
            w.to_worker(),
            shift_start=days[w.worker_id][0],
            shift_end=days[w.worker_id][1],
            travel=model,
        )
        for w in await list_workers(conn, district=district)
        if w.worker_id in days
    ]
    workers = await _less_done(conn, workers, start=start, end=end)
    held = await _held(conn, workers, start=start, end=end, now=now)
    held += _breaks(workers, {w: d[2] for w, d in days.items()})
    problem = PlanProblem(orders, workers, model, held=held)
    t = datetime.now(tz)
    plan = plan_day(problem, PlannerSettings(seconds=seconds))
    took = (datetime.now(tz) - t).total_seconds()
    stats = evaluate(problem, plan)
    by_id = {o.order_id: o for o in orders}
    offered = refused = 0
    for v in stats.visits:
        o = by_id[v.order_id]
        try:
            await offer(
                conn,
                v.order_id,
                v.worker_id,
                actor=PLANNER,
                now=now,
                booked_from=v.start,
                booked_until=v.start + o.duration,
                expires_at=answer_by(v.start, now),
                detail={"planned_start": v.start.isoformat(), "on_time": v.on_time},
            )
            offered += 1
        except (WorkerBusy, DispatchError, ValueError):
            refused += 1
    return DayPlanReport(
        len(orders),
        len(workers),
        offered,
        refused,
        stats.unassigned,
        round(stats.travel_km, 1),
        round(stats.on_time, 3),
        round(took, 2),
    )


async def _held(
    conn: Conn, workers: list[PlanWorker], *, start: datetime, end: datetime, now: datetime
) -> list[Order]:
    """The visits these workers hold in the day from ``now`` (offered, accepted or under
    way, routine or emergency), each at its booked time; one begun is what is left of it."""
    district = {w.worker_id: w.district for w in workers}
    cur = await conn.execute(
        "SELECT o.id, o.resident_id, o.service_type, r.home_lat, r.home_lon,"
        " greatest(o.booked_from, %(now)s), o.booked_until, o.worker_id"
        " FROM work_orders o JOIN residents r USING (resident_id)"
        " WHERE o.state IN ('offered', 'accepted', 'en_route', 'on_site')"
        " AND o.worker_id = ANY(%(w)s) AND o.booked_from < %(b)s"
        " AND o.booked_until > greatest(%(a)s, %(now)s) AND r.home_lat IS NOT NULL",
        {"a": start, "b": end, "now": now, "w": list(district)},
    )
    rows = await cur.fetchall()
    await conn.commit()
    return [
        Order(
            int(i),
            int(rid),
            code,
            Point(lat, lon),
            ws,
            ws,
            we - ws,
            district=district[wid],
            held_by=wid,
        )
        for i, rid, code, lat, lon, ws, we, wid in rows
    ]


async def _less_done(
    conn: Conn, workers: list[PlanWorker], *, start: datetime, end: datetime
) -> list[PlanWorker]:
    """The workers with their capacity less the visits they completed in the day (the
    visits they still hold are taken off by :meth:`PlanProblem.capacities`). Before
    2026-12-04 a re-plan at noon gave a worker who had done eight of their ten a day up
    to ten more."""
    cur = await conn.execute(
        "SELECT worker_id, count(*) FROM work_orders WHERE state = 'completed'"
        " AND worker_id = ANY(%(w)s) AND completed_at >= %(a)s AND completed_at < %(b)s"
        " GROUP BY worker_id",
        {"a": start, "b": end, "w": [w.worker_id for w in workers]},
    )
    done = {str(w): int(n) for w, n in await cur.fetchall()}
    await conn.commit()
    return [
        replace(w, capacity=max(0, w.capacity - done[w.worker_id])) if w.worker_id in done else w
        for w in workers
    ]


def _breaks(
    workers: list[PlanWorker], gaps: dict[str, list[tuple[datetime, datetime]]]
) -> list[Order]:
    """The breaks between a worker's shifts as held stops at home (negative ids, never
    offered): the plan gives a split shift's worker nothing between the two. Before
    2026-12-04 the day's shifts were merged into one, and the midday was planned."""
    out: list[Order] = []
    for w in workers:
        for a, b in gaps.get(w.worker_id, []):
            out.append(Order(-(len(out) + 1), 0, "break", w.end, a, a, b - a,
                             district=w.district, held_by=w.worker_id))  # fmt: skip
    return out


def answer_by(planned_start: datetime, now: datetime) -> datetime:
    """When a planned visit's offer expires unanswered (see the module doc)."""
    return max(planned_start - PLANNED_ANSWER_LEAD, now + PLANNED_ANSWER_MIN)


def plan_main(
    settings: Settings, *, day: str | None, district: str | None, seconds: float, recurring: bool
) -> int:
    """`eldercare dispatch plan`: the day's recurring orders, then the plan, offered."""
    rules = load_recurring(settings.dispatch_catalogue)
    when = date.fromisoformat(day) if day else datetime.now(rules.timezone).date()
    url = settings.require_database_url()

    async def main() -> dict[str, Any]:
        await asyncio.to_thread(migrate, url)
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await sync_catalogue(conn, load_catalogue(settings.dispatch_catalogue))
            made = (
                await make_recurring(conn, rules, when, now=datetime.now(UTC)) if recurring else 0
            )
            report = await plan_and_offer(
                conn,
                when,
                tz=rules.timezone,
                now=datetime.now(UTC),
                district=district,
                seconds=seconds,
            )
        return {"date": when.isoformat(), "recurring_made": made, **report.to_json()}

    print(json.dumps(asyncio.run(main())))
    return 0
