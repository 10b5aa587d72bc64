"""Emergency assignment (pure): who can be at the resident's door first, and what to do.

The fleet is held as numpy arrays (:class:`FleetSnapshot`, built once per
decision batch by the shell and updated as workers report), so a decision over
2,000 workers on shift is one vectorised pass: road distance, travel time at
the worker's mode speed, plus the wait before they can leave.

Who counts, and how long they need before they can set off:

* available: 0 s;
* on interruptible work (cleaning, shopping, a welfare visit ...), on site or
  en route to it: ``handover_s`` to hand the job over safely; taking such a
  worker **pre-empts** that order, which is re-slotted and its family told;
* on non-interruptible work (bathing, nursing): the rest of that service;
* holding routine work not started yet (offered or accepted, not en route): 0 s,
  and taking them releases it, as the store does (before 2026-12-04 an accepted
  bath starting within 5 minutes counted as busy until it ended, ~66 min);
* on an emergency already, or off shift, or without the skills, or having
  declined this order: not a candidate.

The decision is an event value: :class:`Offer` to the best candidate, plus an
:class:`Escalate` when even the best cannot arrive within the SLA (someone
still goes, and backup, the family key-holder and the emergency services are
called rather than waiting), or :class:`NoCandidate`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from dispatch.model import SKILLS, Point, Worker, WorkerStatus
from dispatch.travel import Floats, HaversineTravel, TravelModel

_BIT: Final = {skill: 1 << i for i, skill in enumerate(sorted(SKILLS))}
ESCALATION_TARGETS: Final = ("backup_workers", "family_keyholder", "emergency_services")

# what a worker is doing, as a code in the snapshot; RELEASABLE: routine work offered or
# accepted but not under way (an emergency releases it; routine work waits for its end)
FREE, INTERRUPTIBLE, BUSY, EMERGENCY, OFF, RELEASABLE = 0, 1, 2, 3, 4, 5


def skill_mask(skills: Iterable[str]) -> int:
    mask = 0
    for s in skills:
        mask |= _BIT[s]
    return mask


@dataclass(frozen=True, slots=True)
class Commitment:
    """The live order a worker is on (or heading to) now."""

    order_id: int
    interruptible: bool
    emergency: bool
    ends_at: datetime  # when the service is expected to end
    started: bool = True  # en route or on site; False: offered or accepted only


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    ids: tuple[str, ...]
    lat: Floats
    lon: Floats
    speed_kmh: Floats
    skills: npt.NDArray[np.int64]
    doing: npt.NDArray[np.int8]
    busy_s: Floats  # non-interruptible work: seconds until it ends
    current_order: npt.NDArray[np.int64]  # -1: none

    @classmethod
    def build(
        cls,
        workers: Iterable[Worker],
        *,
        commitments: Mapping[str, Commitment],
        now: datetime,
        travel: TravelModel,
    ) -> FleetSnapshot:
        ws = list(workers)
        n = len(ws)
        doing = np.full(n, FREE, dtype=np.int8)
        busy = np.zeros(n)
        current = np.full(n, -1, dtype=np.int64)
        for i, w in enumerate(ws):
            c = commitments.get(w.worker_id)
            if w.status is WorkerStatus.OFF_SHIFT or (w.shifts and not w.on_shift(now)):
                doing[i] = OFF
            elif c is not None:
                current[i] = c.order_id
                if c.emergency:
                    doing[i] = EMERGENCY
                elif not c.started:
                    doing[i] = RELEASABLE
                    busy[i] = max(0.0, (c.ends_at - now).total_seconds())
                elif c.interruptible:
                    doing[i] = INTERRUPTIBLE
                else:
                    doing[i] = BUSY
                    busy[i] = max(0.0, (c.ends_at - now).total_seconds())
        where = [w.where() for w in ws]
        return cls(
            ids=tuple(w.worker_id for w in ws),
            lat=np.array([p.lat for p in where], dtype=np.float64),
            lon=np.array([p.lon for p in where], dtype=np.float64),
            speed_kmh=np.array([travel.speed_kmh(w.mode) for w in ws], dtype=np.float64),
            skills=np.array([skill_mask(w.skills) for w in ws], dtype=np.int64),
            doing=doing,
            busy_s=busy,
            current_order=current,
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    worker_id: str
    eta_s: float
    distance_km: float
    preempts_order_id: int | None
    wait_s: float = 0.0  # before they can set off (the rest of non-interruptible work)


@dataclass(frozen=True, slots=True)
class Offer:
    order_id: int | None
    candidate: Candidate


@dataclass(frozen=True, slots=True)
class Escalate:
    order_id: int | None
    best_eta_s: float | None
    sla_s: float
    targets: tuple[str, ...] = ESCALATION_TARGETS


@dataclass(frozen=True, slots=True)
class NoCandidate:
    order_id: int | None
    reason: str


Decision = Offer | Escalate | NoCandidate


@dataclass(frozen=True, slots=True)
class EmergencyPolicy:
    sla_s: float = 15 * 60.0  # the 15-minute service circle
    handover_s: float = 120.0  # to leave interruptible work safely
    allow_preemption: bool = True
    # when nobody else is left, an emergency goes back to those who declined it, this long
    # after their last decline (see dispatch.declines)
    timed_out_again_s: float = 60.0  # missed the offer: may well be free now
    rejected_again_s: float = 600.0  # said no, or failed an earlier order of the alert


def rank(
    fleet: FleetSnapshot,
    at: Point,
    *,
    required: Collection[str],
    policy: EmergencyPolicy,
    exclude: Collection[str] = (),
    limit: int = 10,
    travel: TravelModel | None = None,
) -> list[Candidate]:
    """The qualified workers by arrival time, best first (vectorised over the fleet)."""
    model = travel or HaversineTravel()
    need = skill_mask(required)
    ok = (fleet.skills & need) == need
    ok &= (fleet.doing != OFF) & (fleet.doing != EMERGENCY)
    if not policy.allow_preemption:
        ok &= fleet.doing != INTERRUPTIBLE
    if exclude:
        ok &= ~np.isin(np.asarray(fleet.ids, dtype=object), list(exclude))
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return []
    km = model.distance_km(fleet.lat[idx], fleet.lon[idx], np.float64(at.lat), np.float64(at.lon))
    doing = fleet.doing[idx]
    # work not started is left where it is, no handover; without pre-emption it is kept
    # and the worker waits for its end, as for work under way
    released = (doing == RELEASABLE) & policy.allow_preemption
    wait = np.where(
        doing == INTERRUPTIBLE, policy.handover_s, np.where(released, 0.0, fleet.busy_s[idx])
    )
    preempting = (doing == INTERRUPTIBLE) | released
    eta = km / fleet.speed_kmh[idx] * 3600.0 + wait
    k = min(limit, idx.size)
    top = np.argpartition(eta, k - 1)[:k] if idx.size > k else np.arange(idx.size)
    top = top[np.argsort(eta[top], kind="stable")]
    out: list[Candidate] = []
    for j in top:
        i = int(idx[j])
        preempts = int(fleet.current_order[i]) if preempting[j] else None
        waits = 0.0 if preempts is not None else float(wait[j])
        out.append(Candidate(fleet.ids[i], float(eta[j]), float(km[j]), preempts, waits))
    return out


def decide(
    fleet: FleetSnapshot,
    at: Point,
    *,
    order_id: int | None,
    required: Collection[str],
    policy: EmergencyPolicy,
    exclude: Collection[str] = (),
    elapsed_s: float = 0.0,
    travel: TravelModel | None = None,
) -> list[Decision]:
    """Offer to the first who can arrive; escalate too if that is past the SLA.

    ``elapsed_s``: the SLA clock already used (time since the alert opened).
    """
    best = rank(
        fleet, at, required=required, policy=policy, exclude=exclude, limit=1, travel=travel
    )
    if not best:
        return [
            NoCandidate(order_id, "no qualified worker on shift"),
            Escalate(order_id, None, policy.sla_s),
        ]
    out: list[Decision] = [Offer(order_id, best[0])]
    if elapsed_s + best[0].eta_s > policy.sla_s:
        out.append(Escalate(order_id, best[0].eta_s, policy.sla_s))
    return out
