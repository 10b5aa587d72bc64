"""Day planning: every plan (PyVRP and greedy) is valid, PyVRP beats greedy on travel on a
small day, the schedule arithmetic is right, and greedy never double-books."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.model import Order, Point
from dispatch.planner import PlannerSettings, plan_day
from dispatch.routing import (
    Plan,
    PlanProblem,
    PlanWorker,
    evaluate,
    greedy_plan,
    schedule,
    working_day,
)
from dispatch.travel import HaversineTravel

DAY = datetime(2026, 11, 24, tzinfo=UTC)
CENTRE = Point(32.0, 120.86)
TRAVEL = HaversineTravel()
SKILLS = [frozenset({"caregiver", "cleaning"}), frozenset({"caregiver", "bathing"})]


def pt(rng: random.Random) -> Point:
    return Point(CENTRE.lat + rng.uniform(-0.015, 0.015), CENTRE.lon + rng.uniform(-0.018, 0.018))


def day(n_orders: int, n_workers: int, seed: int) -> PlanProblem:
    rng = random.Random(seed)
    workers = [
        PlanWorker(
            f"W{i}",
            f"D{i % 2}",
            SKILLS[i % 2],
            h := pt(rng),
            h,
            18.0,
            DAY + timedelta(hours=8),
            DAY + timedelta(hours=17),
            10,
        )
        for i in range(n_workers)
    ]
    orders = []
    for j in range(n_orders):
        start = DAY + timedelta(hours=8, minutes=30 * rng.randrange(14))
        need = rng.choice(
            [frozenset({"caregiver"}), frozenset({"cleaning"}), frozenset({"bathing"})]
        )
        able = [w.worker_id for w in workers if need <= w.skills and w.district == f"D{j % 2}"]
        orders.append(
            Order(
                j + 1,
                100 + j,
                "x",
                pt(rng),
                start,
                start + timedelta(hours=2),
                timedelta(minutes=rng.choice([20, 30, 45])),
                need,
                preferred_worker=rng.choice(able) if able and j % 3 == 0 else None,
                district=f"D{j % 2}",
            )
        )
    return PlanProblem(orders, workers, TRAVEL)


def assert_valid(problem: PlanProblem, plan: Plan) -> None:
    workers = {w.worker_id: w for w in problem.workers}
    orders = {o.order_id: o for o in problem.orders}
    held = {o.order_id: o for o in problem.held}
    placed = [i for seq in plan.routes.values() for i in seq]
    assert len(placed) == len(set(placed)), "an order is in two routes"
    assert set(placed) - set(held) | set(plan.unassigned) == set(orders)
    assert not set(placed) & set(plan.unassigned)
    capacity = problem.capacities()
    for wid, seq in plan.routes.items():
        w = workers[wid]
        assert sum(i not in held for i in seq) <= capacity[wid]
        for i in seq:
            if i in held:
                assert held[i].held_by == wid, "a held visit moved to another worker"
                continue
            assert orders[i].skills <= w.skills, "an unqualified worker"
            assert orders[i].district == w.district, "outside the service area"
            assert wid not in orders[i].declined_by, "given to a worker who declined it"
        stops = {**orders, **held}
        visits, _ = schedule(w, [stops[i] for i in seq], problem.travel)
        for a, b in itertools.pairwise(visits):  # never two places at once
            assert a.start + stops[a.order_id].duration <= b.start
        for v in visits:  # a held visit stays at its booked time
            if v.order_id in held:
                assert v.start == held[v.order_id].window_start, "a held visit moved"


@pytest.mark.parametrize("seed", [1, 2])
def test_pyvrp_plan_is_valid_and_travels_less_than_greedy(seed: int) -> None:
    problem = day(80, 8, seed)
    greedy = greedy_plan(problem)
    solved = plan_day(problem, PlannerSettings(seconds=2.0, seed=seed))
    assert_valid(problem, greedy)
    assert_valid(problem, solved)
    g, s = evaluate(problem, greedy), evaluate(problem, solved)
    assert s.travel_km < g.travel_km
    assert s.on_time >= g.on_time
    assert s.continuity >= g.continuity


def test_an_order_nobody_may_serve_stays_unassigned() -> None:
    problem = day(10, 4, 3)
    odd = Order(
        999,
        1,
        "x",
        CENTRE,
        DAY + timedelta(hours=9),
        DAY + timedelta(hours=10),
        timedelta(minutes=30),
        frozenset({"nurse"}),
        district="D0",
    )
    problem = PlanProblem([*problem.orders, odd], problem.workers, TRAVEL)
    assert 999 in plan_day(problem, PlannerSettings(seconds=0.5)).unassigned
    assert 999 in greedy_plan(problem).unassigned


@pytest.mark.parametrize("seed", [4, 5])
def test_an_order_is_never_planned_for_a_worker_who_declined_it(seed: int) -> None:
    """Before 2026-12-04 the planner did not read ``declined_by``: a planned visit a
    worker rejected or let time out was planned for that worker again."""
    base = day(40, 6, seed)
    declined = []
    for o in base.orders:
        able = sorted(w.worker_id for w in base.workers
                      if o.skills <= w.skills and w.district == o.district)  # fmt: skip
        # its preferred worker (continuity would pull the plan to them), else the first
        chosen = {o.preferred_worker} if o.preferred_worker else set(able[:1])
        declined.append(replace(o, declined_by=frozenset(chosen)))
    problem = PlanProblem(declined, base.workers, TRAVEL)
    for plan in (greedy_plan(problem), plan_day(problem, PlannerSettings(seconds=1.0, seed=seed))):
        assert_valid(problem, plan)
        assert len(plan.unassigned) < len(problem.orders)  # the others still take the work
    # declined by every worker who could serve it: nobody is given it
    o = declined[0]
    able = frozenset(w.worker_id for w in base.workers if o.skills <= w.skills)
    alone = PlanProblem([replace(o, declined_by=able)], base.workers, TRAVEL)
    assert plan_day(alone, PlannerSettings(seconds=0.5)).unassigned == [o.order_id]
    assert greedy_plan(alone).unassigned == [o.order_id]


def test_schedule_waits_for_the_window_and_counts_the_way_home() -> None:
    home = CENTRE
    away = Point(CENTRE.lat, CENTRE.lon + 1.8 / 94.4 / 1.3)  # 1.8 road km east
    w = PlanWorker(
        "W",
        "D",
        frozenset({"caregiver"}),
        home,
        home,
        18.0,
        DAY + timedelta(hours=8),
        DAY + timedelta(hours=17),
        5,
    )
    o = Order(
        1,
        1,
        "x",
        away,
        DAY + timedelta(hours=9),
        DAY + timedelta(hours=10),
        timedelta(minutes=30),
        frozenset({"caregiver"}),
    )
    visits, km = schedule(w, [o], TRAVEL)
    assert visits[0].start == DAY + timedelta(hours=9)  # arrived 08:06, waited
    assert visits[0].on_time
    assert km == pytest.approx(3.6, rel=0.01)
    late = Order(
        2,
        1,
        "x",
        away,
        DAY + timedelta(hours=7),
        DAY + timedelta(hours=8),
        timedelta(minutes=30),
        frozenset(),
    )
    assert not schedule(w, [late], TRAVEL)[0][0].on_time


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 60), st.integers(1, 6), st.integers(0, 10_000))
def test_greedy_never_double_books(n_orders: int, n_workers: int, seed: int) -> None:
    problem = day(n_orders, n_workers, seed)
    assert_valid(problem, greedy_plan(problem))


def with_held(problem: PlanProblem, seed: int) -> PlanProblem:
    """``problem`` with each worker holding two visits booked earlier (a re-plan)."""
    rng = random.Random(seed)
    held = []
    for k, w in enumerate(problem.workers):
        for n, hour in enumerate(rng.sample([9, 11, 13, 15], 2)):
            at = DAY + timedelta(hours=hour, minutes=rng.choice([0, 15]))
            held.append(Order(10_000 + 10 * k + n, 900 + k, "x", pt(rng), at, at,
                              timedelta(minutes=rng.choice([30, 45, 60])),
                              district=w.district, held_by=w.worker_id))  # fmt: skip
    return PlanProblem(problem.orders, problem.workers, TRAVEL, held=held)


@pytest.mark.parametrize("seed", [6, 7])
def test_a_replan_fits_new_orders_around_the_visits_workers_hold(seed: int) -> None:
    """Before 2026-12-04 a re-plan saw every worker free all day: new visits were
    planned over the ones they held, and the database refused them."""
    problem = with_held(day(40, 6, seed), seed)
    for plan in (greedy_plan(problem), plan_day(problem, PlannerSettings(seconds=1.0, seed=seed))):
        assert_valid(problem, plan)
        for h in problem.held:
            assert h.order_id in plan.routes[str(h.held_by)]
        stats = evaluate(problem, plan)
        assert {v.order_id for v in stats.visits} <= {o.order_id for o in problem.orders}
        assert len(stats.visits) + stats.unassigned == len(problem.orders)
        assert stats.unassigned < len(problem.orders) // 2  # the gaps still take work


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 5), st.integers(0, 10_000))
def test_greedy_never_double_books_around_held_visits(
    n_orders: int, n_workers: int, seed: int
) -> None:
    problem = with_held(day(n_orders, n_workers, seed), seed)
    assert_valid(problem, greedy_plan(problem))


def test_a_workers_shifts_make_one_day_with_its_breaks() -> None:
    h = [DAY + timedelta(hours=x) for x in range(24)]
    assert working_day([(h[14], h[18]), (h[8], h[12])]) == (h[8], h[18], [(h[12], h[14])])
    # overlapping and touching shifts are one stretch of work
    assert working_day([(h[8], h[11]), (h[10], h[12]), (h[12], h[13])]) == (h[8], h[13], [])
    assert working_day([(h[8], h[9]), (h[10], h[11]), (h[12], h[13])])[2] == [
        (h[9], h[10]), (h[11], h[12]),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no shift"):
        working_day([])


def test_a_worker_holding_their_days_capacity_is_given_nothing_new() -> None:
    """Before 2026-12-04 a re-plan gave a worker who already held their ten visits a
    day up to a full share of new ones on top."""
    base = day(12, 2, 9)
    full = replace(base.workers[0], capacity=3)
    workers = [full, replace(base.workers[1], district=full.district, skills=full.skills)]
    orders = [replace(o, district=full.district, skills=frozenset({"caregiver"}),
                      declined_by=frozenset()) for o in base.orders]  # fmt: skip
    held = [Order(20_000 + n, 900, "x", full.start, at, at, timedelta(minutes=20),
                  district=full.district, held_by=full.worker_id)
            for n, at in enumerate(DAY + timedelta(hours=h) for h in (9, 12, 15))]  # fmt: skip
    problem = PlanProblem(orders, workers, TRAVEL, held=held)
    assert problem.capacities()[full.worker_id] == 0
    for plan in (greedy_plan(problem), plan_day(problem, PlannerSettings(seconds=0.5))):
        assert_valid(problem, plan)
        assert [i for i in plan.routes.get(full.worker_id, []) if i < 20_000] == []
        assert plan.routes[workers[1].worker_id]  # the other worker takes the work
