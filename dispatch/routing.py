"""Day planning, the shared part: the problem, a plan, its evaluation, the greedy baseline.

A plan assigns and sequences the day's orders per worker. Every planner
(:mod:`dispatch.planner` with PyVRP, :func:`greedy_plan` here) returns a
:class:`Plan` of visit sequences, and :func:`evaluate` recomputes the schedule
of every route the same way (leave home at the shift start or when free, wait
for a window to open, serve, travel on, return home), so the figures compare.

Workers serve their own district (their service area) only; an order of a
district with no worker stays unassigned. Re-planning after an emergency is the
same call later in the day: :class:`PlanWorker` starts where the worker is, and
the visits workers already hold (``PlanProblem.held``, each ``Order.held_by`` its
worker, its window the booked start) are in their routes at their booked times, so
the new work is planned around them. A plan's routes list held visits too; the
figures (:func:`evaluate`) count the new orders only. Before 2026-12-04 a re-plan saw
every worker free for the rest of their shift: visits planned over a worker's
accepted ones were refused by the database and left waiting, though others were free.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from dispatch.emergency import skill_mask
from dispatch.model import Order, Point, Worker
from dispatch.travel import Floats, HaversineTravel, TravelModel


@dataclass(frozen=True, slots=True)
class PlanWorker:
    worker_id: str
    district: str
    skills: frozenset[str]
    start: Point
    end: Point
    speed_kmh: float
    shift_start: datetime
    shift_end: datetime
    capacity: int

    @classmethod
    def from_worker(
        cls,
        w: Worker,
        *,
        shift_start: datetime,
        shift_end: datetime,
        travel: TravelModel,
        start: Point | None = None,
    ) -> PlanWorker:
        return cls(
            w.worker_id,
            w.district,
            w.skills,
            start or w.where(),
            w.home,
            travel.speed_kmh(w.mode),
            shift_start,
            shift_end,
            w.max_orders_per_day,
        )


@dataclass(frozen=True, slots=True)
class PlanProblem:
    orders: Sequence[Order]
    workers: Sequence[PlanWorker]
    travel: TravelModel = field(default_factory=HaversineTravel)
    fairness_slack: float = 1.5  # nobody gets more than 1.5x the district's fair share
    held: Sequence[Order] = ()  # visits workers hold already (``Order.held_by``)

    def capacities(self) -> dict[str, int]:
        """Per worker, the new orders they may take: own capacity less the visits they
        hold (a break between shifts is none), capped at ``fairness_slack`` x the
        district's share. Before 2026-12-04 a re-plan gave a worker holding nine visits
        of their ten a day up to their full share of new ones."""
        orders: dict[str, int] = {}
        workers: dict[str, int] = {}
        holds: dict[str, int] = {}
        for o in self.orders:
            orders[o.district] = orders.get(o.district, 0) + 1
        for w in self.workers:
            workers[w.district] = workers.get(w.district, 0) + 1
        for h in self.held:
            if h.held_by is not None and h.order_id > 0:  # breaks have negative ids
                holds[h.held_by] = holds.get(h.held_by, 0) + 1
        out = {}
        for w in self.workers:
            share = orders.get(w.district, 0) / workers[w.district]
            own = w.capacity - holds.get(w.worker_id, 0)
            out[w.worker_id] = max(0, min(own, max(1, math.ceil(share * self.fairness_slack))))
        return out


@dataclass(frozen=True, slots=True)
class Plan:
    routes: Mapping[str, Sequence[int]]  # worker id -> order ids in visiting order
    unassigned: Sequence[int]


@dataclass(frozen=True, slots=True)
class Visit:
    order_id: int
    worker_id: str
    start: datetime
    on_time: bool


@dataclass(frozen=True, slots=True)
class PlanStats:
    travel_km: float
    on_time: float  # share of all orders served inside their window
    unassigned: int
    late: int
    max_orders_per_worker: int
    continuity: float  # share of orders with a preferred worker that got them
    visits: tuple[Visit, ...]


def schedule(
    worker: PlanWorker, orders: Sequence[Order], travel: TravelModel
) -> tuple[list[Visit], float]:
    """Visits with start times along one route, and the route's km (home to home)."""
    if not orders:
        return [], 0.0
    lat = np.array([worker.start.lat] + [o.where.lat for o in orders] + [worker.end.lat])
    lon = np.array([worker.start.lon] + [o.where.lon for o in orders] + [worker.end.lon])
    legs = travel.distance_km(lat[:-1], lon[:-1], lat[1:], lon[1:])
    t = worker.shift_start
    visits = []
    for o, km in zip(orders, legs[:-1], strict=True):
        arrive = t + timedelta(seconds=float(km) / worker.speed_kmh * 3600.0)
        start = max(arrive, o.window_start)
        visits.append(Visit(o.order_id, worker.worker_id, start, start <= o.window_end))
        t = start + o.duration
    return visits, float(legs.sum())


def evaluate(problem: PlanProblem, plan: Plan) -> PlanStats:
    """The plan's figures over the new orders; travel counts every route whole (held
    visits included)."""
    by_id = {o.order_id: o for o in (*problem.orders, *problem.held)}
    held = {o.order_id for o in problem.held}
    workers = {w.worker_id: w for w in problem.workers}
    visits: list[Visit] = []
    km = 0.0
    most = 0
    for wid, seq in plan.routes.items():
        v, d = schedule(workers[wid], [by_id[i] for i in seq], problem.travel)
        visits.extend(x for x in v if x.order_id not in held)
        km += d
        most = max(most, sum(i not in held for i in seq))
    n = len(problem.orders) or 1
    wanted = [o for o in problem.orders if o.preferred_worker]
    served_by = {v.order_id: v.worker_id for v in visits}
    kept = sum(1 for o in wanted if served_by.get(o.order_id) == o.preferred_worker)
    return PlanStats(
        travel_km=km,
        on_time=sum(v.on_time for v in visits) / n,
        unassigned=len(plan.unassigned),
        late=sum(not v.on_time for v in visits),
        max_orders_per_worker=most,
        continuity=kept / len(wanted) if wanted else 1.0,
        visits=tuple(visits),
    )


def greedy_plan(problem: PlanProblem) -> Plan:
    """Baseline: orders by window opening; each to the nearest qualified worker who is on
    time (else the earliest arrival), has not declined it and can still reach their next
    held visit in time, appended to the end of that worker's route. Held visits join
    their worker's route as the day reaches them."""
    ws = list(problem.workers)
    cap = problem.capacities()
    at = _Route(
        lat=np.array([w.start.lat for w in ws]),
        lon=np.array([w.start.lon for w in ws]),
        free=np.array([w.shift_start.timestamp() for w in ws]),
        speed=np.array([w.speed_kmh for w in ws]),
        routes={w.worker_id: [] for w in ws},
        ids=[w.worker_id for w in ws],
    )
    end = np.array([w.shift_end.timestamp() for w in ws])
    left = np.array([cap[w.worker_id] for w in ws])
    masks = np.array([skill_mask(w.skills) for w in ws], dtype=np.int64)
    district = np.array([w.district for w in ws], dtype=object)
    ids = np.array(at.ids, dtype=object)
    held = _Held(problem.held, at)
    unassigned: list[int] = []
    for o in sorted(problem.orders, key=lambda o: (o.window_start, o.priority, o.order_id)):
        held.serve_until(o.window_start.timestamp(), at, problem.travel)
        need = skill_mask(o.skills)
        km = problem.travel.distance_km(at.lat, at.lon, np.float64(o.where.lat),
                                        np.float64(o.where.lon))  # fmt: skip
        start = np.maximum(at.free + km / at.speed * 3600.0, o.window_start.timestamp())
        dur = o.duration.total_seconds()
        ok = ((masks & need) == need) & (left > 0) & (start + dur <= end) & (district == o.district)
        ok &= held.in_time(start + dur, o.where, at.speed, problem.travel)
        if o.declined_by:
            ok &= ~np.isin(ids, list(o.declined_by))
        if not ok.any():
            unassigned.append(o.order_id)
            continue
        on_time = ok & (start <= o.window_end.timestamp())
        i = int(
            np.argmin(np.where(on_time, km, np.inf))
            if on_time.any()
            else np.argmin(np.where(ok, start, np.inf))
        )
        at.visit(i, o, float(start[i]))
        left[i] -= 1
    held.serve_until(np.inf, at, problem.travel)
    return Plan({k: v for k, v in at.routes.items() if v}, unassigned)


@dataclass(slots=True)
class _Route:
    """Where each worker's route has got to in the greedy plan (arrays by worker)."""

    lat: Floats
    lon: Floats
    free: Floats  # epoch seconds
    speed: Floats
    routes: dict[str, list[int]]
    ids: list[str]

    def visit(self, i: int, o: Order, start: float) -> None:
        self.routes[self.ids[i]].append(o.order_id)
        self.free[i] = start + o.duration.total_seconds()
        self.lat[i], self.lon[i] = o.where.lat, o.where.lon


class _Held:
    """The visits workers hold, for the greedy plan: each joins its worker's route when
    the day reaches it, and a new order must leave the worker time to get to the next."""

    def __init__(self, held: Sequence[Order], at: _Route) -> None:
        index = {w: i for i, w in enumerate(at.ids)}
        self.stops = sorted(((index[h.held_by], h) for h in held if h.held_by in index),
                            key=lambda x: (x[1].window_start, x[1].order_id))  # fmt: skip
        self.queues: list[list[Order]] = [[] for _ in at.ids]
        for i, h in self.stops:
            self.queues[i].append(h)
        self.done = 0
        self.at = np.full(len(at.ids), np.inf)  # when each worker's next one starts
        self.lat, self.lon = at.lat.copy(), at.lon.copy()  # and where
        for i in range(len(at.ids)):
            self._next(i)

    def _next(self, i: int) -> None:
        q = self.queues[i]
        self.at[i] = q[0].window_start.timestamp() if q else np.inf
        if q:
            self.lat[i], self.lon[i] = q[0].where.lat, q[0].where.lon

    def serve_until(self, t: float, at: _Route, travel: TravelModel) -> None:
        """Put the held visits that start by ``t`` into their workers' routes."""
        while self.done < len(self.stops):
            i, h = self.stops[self.done]
            if h.window_start.timestamp() > t:
                return
            km = float(travel.distance_km(at.lat[i], at.lon[i], np.float64(h.where.lat),
                                          np.float64(h.where.lon)))  # fmt: skip
            at.visit(i, h, max(at.free[i] + km / at.speed[i] * 3600.0, self.at[i]))
            self.queues[i].pop(0)
            self._next(i)
            self.done += 1

    def in_time(self, done_at: Floats, where: Point, speed: Floats, travel: TravelModel) -> Any:
        """Per worker: whether, done at ``done_at`` at ``where``, they reach their next
        held visit by its start (always, with none left)."""
        if not self.stops:
            return True
        km = travel.distance_km(self.lat, self.lon, np.float64(where.lat), np.float64(where.lon))
        return done_at + km / speed * 3600.0 <= self.at


def working_day(
    shifts: Sequence[tuple[datetime, datetime]],
) -> tuple[datetime, datetime, list[tuple[datetime, datetime]]]:
    """A worker's shifts in a day (any order, overlapping or not) as one span: the first
    start, the last end, and the breaks between them (a split shift's midday)."""
    spans = sorted(s for s in shifts if s[1] > s[0])
    if not spans:
        raise ValueError("no shift")
    merged = [list(spans[0])]
    for a, b in spans[1:]:
        if a <= merged[-1][1]:  # overlaps or touches the previous one
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    gaps = [(x[1], y[0]) for x, y in itertools.pairwise(merged)]
    return merged[0][0], merged[-1][1], gaps


def by_district(
    problem: PlanProblem,
) -> dict[str, tuple[list[Order], list[PlanWorker], list[Order]]]:
    """Per district: its new orders, its workers, and the visits those workers hold."""
    out: dict[str, tuple[list[Order], list[PlanWorker], list[Order]]] = {}
    for o in problem.orders:
        out.setdefault(o.district, ([], [], []))[0].append(o)
    home = {}
    for w in problem.workers:
        out.setdefault(w.district, ([], [], []))[1].append(w)
        home[w.worker_id] = w.district
    for h in problem.held:
        if h.held_by in home:
            out[home[h.held_by]][2].append(h)
    return out
