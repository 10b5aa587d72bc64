"""Day planning with PyVRP (a state-of-the-art VRP solver, iterated local search).

The day is split by district (a worker's service area), and each district is
one VRP with time windows: every worker a vehicle of their own type starting
and ending at home, inside their shift, with a capacity (their orders per day,
capped at a fair share, see :meth:`PlanProblem.capacities`); every order an
optional client with a large prize (so the solver leaves out only what cannot
fit) and its service window and duration.

Each worker has a routing *profile* of their own, which carries three things:
their travel times at their mode's speed; the orders they lack the skills for,
made unreachable (a distance and duration no prize pays for); and continuity
of care, a discount on the distance into the residents they served before, so
the solver keeps the same worker for the same resident when it costs little.
Travel km is reported from the true distances (:func:`dispatch.routing.evaluate`).

A visit a worker already holds (a re-plan later in the day) is a client of that
worker's profile only, with its booked start as its window and a prize ten times any
order's: the solver plans the new orders around it. It takes none of the vehicle's
capacity, which counts new orders only and is already reduced by the visits held
(:meth:`PlanProblem.capacities`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyvrp
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.stop import MaxRuntime

from dispatch.model import Order, may_plan
from dispatch.routing import Plan, PlanProblem, PlanWorker, by_district

FORBIDDEN = 10**7  # metres (10,000 km) or seconds (115 days) no prize pays for
PRIZE_M = 1_000_000  # visiting an order is worth 1,000 km of travel
HELD_PRIZE_M = 50 * PRIZE_M  # keeping a held visit is worth ten of the best order's


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    seconds: float = 30.0  # total solver time, shared by districts in proportion to orders
    continuity_bonus_m: int = 1_500
    seed: int = 1


def _secs(t: datetime, t0: datetime) -> int:
    return max(0, round((t - t0).total_seconds()))


def _district_plan(
    orders: Sequence[Order],
    workers: Sequence[PlanWorker],
    *,
    problem: PlanProblem,
    capacity: dict[str, int],
    seconds: float,
    settings: PlannerSettings,
    held: Sequence[Order] = (),
) -> Plan:
    if not workers:
        return Plan({}, [o.order_id for o in orders])
    if not orders:
        return Plan({}, [])
    new = len(orders)
    orders = [*orders, *held]  # the held visits are clients too, after the new orders
    t0 = min(w.shift_start for w in workers)
    nw = len(workers)
    lat = np.array([w.start.lat for w in workers] + [o.where.lat for o in orders])
    lon = np.array([w.start.lon for w in workers] + [o.where.lon for o in orders])
    km = problem.travel.matrix_km(lat, lon)
    base_m = np.rint(km * 1000).astype(np.int64)
    locations = [pyvrp.Location(float(x), float(y)) for x, y in zip(lon, lat, strict=True)]
    depots = [pyvrp.Depot(i) for i in range(nw)]
    clients = [
        pyvrp.Client(
            nw + j,
            delivery=[1 if j < new else 0],
            service_duration=round(o.duration.total_seconds()),
            tw_early=_secs(o.window_start, t0),
            tw_late=_secs(o.window_end, t0),
            prize=PRIZE_M * (6 - o.priority) if j < new else HELD_PRIZE_M,
            required=False,
        )
        for j, o in enumerate(orders)
    ]
    dist_mats, dur_mats, types = [], [], []
    for k, w in enumerate(workers):
        dist = base_m.copy()
        dur = np.rint(km / w.speed_kmh * 3600.0).astype(np.int64)
        full = capacity[w.worker_id] == 0  # holds their day's worth: nothing new
        for j, o in enumerate(orders):
            col = nw + j
            if not may_plan(w.worker_id, w.skills, o) or (full and j < new):
                dist[:, col] = FORBIDDEN
                dur[:, col] = FORBIDDEN
            elif o.preferred_worker == w.worker_id:
                dist[:, col] = np.maximum(dist[:, col] - settings.continuity_bonus_m, 0)
        np.fill_diagonal(dist, 0)
        np.fill_diagonal(dur, 0)
        dist_mats.append(dist)
        dur_mats.append(dur)
        types.append(
            pyvrp.VehicleType(
                1,
                capacity=[capacity[w.worker_id]],
                start_depot=k,
                end_depot=k,
                tw_early=_secs(w.shift_start, t0),
                tw_late=_secs(w.shift_end, t0),
                profile=k,
                name=w.worker_id,
            )
        )
    # pyvrp's stubs spell a matrix as ndarray[int]; ours are int64 arrays, which it takes
    data = pyvrp.ProblemData(locations, clients, depots, types, dist_mats, dur_mats)  # type: ignore[arg-type]
    with warnings.catch_warnings():  # a tight district makes PyVRP warn; the plan says so
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        result = pyvrp.solve(data, MaxRuntime(seconds), seed=settings.seed, collect_stats=False)
    routes: dict[str, list[int]] = {}
    placed: set[int] = set()
    held_ids = {o.order_id for o in orders[new:]}
    for route in result.best.routes():
        w = workers[route.vehicle_type()]
        seq = [orders[a.idx] for a in route.schedule() if a.is_client()]
        ok = [o.order_id for o in seq if may_plan(w.worker_id, w.skills, o)]  # never trust blindly
        ok = _within_capacity(ok, held_ids, capacity[w.worker_id])
        if ok:
            routes[w.worker_id] = ok
            placed.update(ok)
    return Plan(routes, [o.order_id for o in orders[:new] if o.order_id not in placed])


def _within_capacity(route: list[int], held: set[int], room: int) -> list[int]:
    """The route with its new orders past ``room`` left out: PyVRP only penalises a
    route over its capacity, and the best solution it finds may be one."""
    kept = []
    for order_id in route:
        if order_id in held:
            kept.append(order_id)
        elif room > 0:
            kept.append(order_id)
            room -= 1
    return kept


def plan_day(problem: PlanProblem, settings: PlannerSettings | None = None) -> Plan:
    """Assign and sequence the orders per worker, district by district."""
    s = settings or PlannerSettings()
    capacity = problem.capacities()
    total = max(1, len(problem.orders))
    routes: dict[str, Sequence[int]] = {}
    unassigned: list[int] = []
    for _district, (orders, workers, held) in sorted(by_district(problem).items()):
        seconds = max(0.5, s.seconds * len(orders) / total)
        part = _district_plan(orders, workers, problem=problem, capacity=capacity,
                              seconds=seconds, settings=s, held=held)  # fmt: skip
        routes.update(part.routes)
        unassigned.extend(part.unassigned)
    return Plan(routes, unassigned)
