"""Emergency assignment (pure): the first to arrive among the qualified, pre-emption,
escalation; a property check against brute force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.emergency import (
    Commitment,
    EmergencyPolicy,
    Escalate,
    FleetSnapshot,
    NoCandidate,
    Offer,
    decide,
    rank,
)
from dispatch.model import Mode, Point, Shift, Worker, WorkerStatus
from dispatch.travel import HaversineTravel

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
HOME = Point(32.0, 120.86)
CARE = frozenset({"caregiver"})
TRAVEL = HaversineTravel()
POLICY = EmergencyPolicy()


def approx(x: float) -> object:
    return pytest.approx(x, rel=0.01, abs=0.5)  # seconds: sub-second is noise


def east(km: float) -> Point:
    return Point(HOME.lat, HOME.lon + km / 94.4)


def worker(
    wid: str,
    km: float,
    *,
    skills: frozenset[str] = CARE,
    mode: Mode = Mode.EBIKE,
    status: WorkerStatus = WorkerStatus.AVAILABLE,
    shifts: tuple[Shift, ...] = (),
) -> Worker:
    return Worker(
        wid, "D1", skills, east(km), mode=mode, status=status, location=east(km), shifts=shifts
    )


def snapshot(
    workers: list[Worker], commitments: dict[str, Commitment] | None = None
) -> FleetSnapshot:
    return FleetSnapshot.build(workers, commitments=commitments or {}, now=NOW, travel=TRAVEL)


def test_the_first_to_arrive_wins_not_the_nearest() -> None:
    fleet = snapshot([worker("WALKER", 0.8, mode=Mode.WALK), worker("RIDER", 1.5)])
    ranked = rank(fleet, HOME, required=CARE, policy=POLICY)
    assert [c.worker_id for c in ranked] == ["RIDER", "WALKER"]
    assert ranked[0].eta_s == approx(1.5 * 1.3 / 18 * 3600)


def test_skills_shift_status_and_declines_filter_candidates() -> None:
    off = (Shift(NOW - timedelta(hours=9), NOW - timedelta(hours=1)),)
    fleet = snapshot(
        [
            worker("NURSE", 0.1, skills=frozenset({"nurse"})),
            worker("OFF", 0.2, status=WorkerStatus.OFF_SHIFT),
            worker("ENDED", 0.3, shifts=off),
            worker("DECLINED", 0.4),
            worker("OK", 5.0),
        ]
    )
    ranked = rank(fleet, HOME, required=CARE, policy=POLICY, exclude=["DECLINED"])
    assert [c.worker_id for c in ranked] == ["OK"]


def test_interruptible_work_is_preempted_and_the_rest_waits_or_is_skipped() -> None:
    later = NOW + timedelta(minutes=50)
    fleet = snapshot(
        [
            worker("CLEANING", 0.2),
            worker("BATHING", 0.3),
            worker("ON_EMERGENCY", 0.1),
            worker("FREE", 2.0),
        ],
        {
            "CLEANING": Commitment(11, True, False, later),
            "BATHING": Commitment(12, False, False, later),
            "ON_EMERGENCY": Commitment(13, False, True, later),
        },
    )
    ranked = rank(fleet, HOME, required=CARE, policy=POLICY)
    assert [c.worker_id for c in ranked] == ["CLEANING", "FREE", "BATHING"]
    assert ranked[0].preempts_order_id == 11
    assert ranked[0].eta_s >= POLICY.handover_s
    assert ranked[2].eta_s >= 50 * 60  # waits for the bath to end
    no_preempt = rank(fleet, HOME, required=CARE, policy=EmergencyPolicy(allow_preemption=False))
    assert "CLEANING" not in [c.worker_id for c in no_preempt]


def test_routine_work_not_started_is_released_for_an_emergency_only() -> None:
    """Offered or accepted, not en route: the emergency takes the worker at once (the store
    releases that order); routine re-slotting never pre-empts, so it waits for its end.
    Before 2026-12-04 such a bath counted as under way: busy until it ended."""
    later = NOW + timedelta(minutes=64)
    fleet = snapshot(
        [worker("BOOKED", 0.5), worker("FREE", 5.0)],
        {"BOOKED": Commitment(21, False, False, later, started=False)},
    )
    ranked = rank(fleet, HOME, required=CARE, policy=POLICY)
    assert [c.worker_id for c in ranked] == ["BOOKED", "FREE"]
    assert (ranked[0].preempts_order_id, ranked[0].wait_s) == (21, 0.0)
    assert ranked[0].eta_s == approx(0.5 * 1.3 / 18 * 3600)
    routine = rank(fleet, HOME, required=CARE, policy=EmergencyPolicy(allow_preemption=False))
    assert [c.worker_id for c in routine] == ["FREE", "BOOKED"]
    assert routine[1].preempts_order_id is None
    assert routine[1].wait_s == approx(64 * 60)


def test_escalates_past_the_sla_but_still_sends_someone() -> None:
    fleet = snapshot([worker("FAR", 6.0)])
    decisions = decide(fleet, HOME, order_id=7, required=CARE, policy=POLICY)
    assert isinstance(decisions[0], Offer)
    assert decisions[0].candidate.worker_id == "FAR"
    assert isinstance(decisions[1], Escalate)
    assert decisions[1].best_eta_s is not None
    near = decide(snapshot([worker("NEAR", 1.0)]), HOME, order_id=7, required=CARE, policy=POLICY)
    assert [type(d) for d in near] == [Offer]
    late = decide(
        snapshot([worker("NEAR", 1.0)]),
        HOME,
        order_id=7,
        required=CARE,
        policy=POLICY,
        elapsed_s=14 * 60,
    )
    assert [type(d) for d in late] == [Offer, Escalate]  # the SLA clock already ran


def test_nobody_qualified_escalates() -> None:
    decisions = decide(
        snapshot([worker("X", 1.0, skills=frozenset({"cleaning"}))]),
        HOME,
        order_id=1,
        required=CARE,
        policy=POLICY,
    )
    assert isinstance(decisions[0], NoCandidate)
    assert isinstance(decisions[1], Escalate)
    assert decisions[1].best_eta_s is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 8.0),
            st.sampled_from(list(Mode)),
            st.booleans(),
            st.sampled_from(["free", "cleaning", "bathing", "sos"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_best_is_the_brute_force_minimum(spec: list[tuple[float, Mode, bool, str]]) -> None:
    workers, commitments, expected = [], {}, []
    later = NOW + timedelta(minutes=30)
    for i, (km, mode, able, doing) in enumerate(spec):
        wid = f"W{i}"
        workers.append(worker(wid, km, mode=mode, skills=CARE if able else frozenset({"escort"})))
        if doing != "free":
            commitments[wid] = Commitment(i, doing == "cleaning", doing == "sos", later)
        if not able or doing == "sos":
            continue
        wait = {"free": 0.0, "cleaning": POLICY.handover_s, "bathing": 30 * 60.0}[doing]
        expected.append(km * 1.3 / TRAVEL.speed_kmh(mode) * 3600 + wait)
    ranked = rank(snapshot(workers, commitments), HOME, required=CARE, policy=POLICY, limit=100)
    assert len(ranked) == len(expected)
    if expected:
        assert ranked[0].eta_s == approx(min(expected))
        etas = [c.eta_s for c in ranked]
        assert etas == sorted(etas)
        assert np.allclose(sorted(etas), sorted(expected), rtol=0.01, atol=1.0)
