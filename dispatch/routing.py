"""Day planning, the shared part: the problem, a plan, its evaluation, the greedy baseline.

A plan assigns and sequences the day's orders per worker. Every planner
(:mod:`dispatch.planner` with PyVRP, :func:`greedy_plan` here) returns a
:class:`Plan` of visit sequences, and :func:`evaluate` recomputes the schedule
of every route the same way (leave home at the shift start or when free, wait
for a window to open, serve, travel on, return home), so the figures compare.

Workers serve their own district (their service area) only; an order of a
district with no worker stays unassigned. Re-planning after an emergency is the
same call with :class:`PlanWorker` starting where and when the worker is free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from dispatch.emergency import skill_mask
from dispatch.model import Order, Point, Worker
from dispatch.travel import HaversineTravel, TravelModel


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

    def capacities(self) -> dict[str, int]:
        """Per worker: own capacity, capped at ``fairness_slack`` x the district's share."""
        orders: dict[str, int] = {}
        workers: dict[str, int] = {}
        for o in self.orders:
            orders[o.district] = orders.get(o.district, 0) + 1
        for w in self.workers:
            workers[w.district] = workers.get(w.district, 0) + 1
        out = {}
        for w in self.workers:
            share = orders.get(w.district, 0) / workers[w.district]
            out[w.worker_id] = min(w.capacity, max(1, math.ceil(share * self.fairness_slack)))
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
    by_id = {o.order_id: o for o in problem.orders}
    workers = {w.worker_id: w for w in problem.workers}
    visits: list[Visit] = []
    km = 0.0
    for wid, seq in plan.routes.items():
        v, d = schedule(workers[wid], [by_id[i] for i in seq], problem.travel)
        visits.extend(v)
        km += d
    n = len(problem.orders) or 1
    wanted = [o for o in problem.orders if o.preferred_worker]
    served_by = {v.order_id: v.worker_id for v in visits}
    kept = sum(1 for o in wanted if served_by.get(o.order_id) == o.preferred_worker)
    return PlanStats(
        travel_km=km,
        on_time=sum(v.on_time for v in visits) / n,
        unassigned=len(plan.unassigned),
        late=sum(not v.on_time for v in visits),
        max_orders_per_worker=max((len(s) for s in plan.routes.values()), default=0),
        continuity=kept / len(wanted) if wanted else 1.0,
        visits=tuple(visits),
    )


def greedy_plan(problem: PlanProblem) -> Plan:
    """Baseline: orders by window opening; each to the nearest qualified worker who is on
    time (else the earliest arrival) and has not declined it, appended to the end of that
    worker's route."""
    ws = list(problem.workers)
    cap = problem.capacities()
    lat = np.array([w.start.lat for w in ws])
    lon = np.array([w.start.lon for w in ws])
    free = np.array([w.shift_start.timestamp() for w in ws])
    end = np.array([w.shift_end.timestamp() for w in ws])
    speed = np.array([w.speed_kmh for w in ws])
    left = np.array([cap[w.worker_id] for w in ws])
    masks = np.array([skill_mask(w.skills) for w in ws], dtype=np.int64)
    district = np.array([w.district for w in ws], dtype=object)
    ids = np.array([w.worker_id for w in ws], dtype=object)
    routes: dict[str, list[int]] = {w.worker_id: [] for w in ws}
    unassigned: list[int] = []
    for o in sorted(problem.orders, key=lambda o: (o.window_start, o.priority, o.order_id)):
        need = skill_mask(o.skills)
        km = problem.travel.distance_km(lat, lon, np.float64(o.where.lat), np.float64(o.where.lon))
        start = np.maximum(free + km / speed * 3600.0, o.window_start.timestamp())
        dur = o.duration.total_seconds()
        ok = ((masks & need) == need) & (left > 0) & (start + dur <= end) & (district == o.district)
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
        routes[ws[i].worker_id].append(o.order_id)
        free[i] = start[i] + dur
        lat[i], lon[i] = o.where.lat, o.where.lon
        left[i] -= 1
    return Plan({k: v for k, v in routes.items() if v}, unassigned)


def by_district(problem: PlanProblem) -> dict[str, tuple[list[Order], list[PlanWorker]]]:
    out: dict[str, tuple[list[Order], list[PlanWorker]]] = {}
    for o in problem.orders:
        out.setdefault(o.district, ([], []))[0].append(o)
    for w in problem.workers:
        out.setdefault(w.district, ([], []))[1].append(w)
    return out
