"""Putting a worker on an order: the shell around the pure decision (:mod:`dispatch.emergency`).

:func:`offer_best` loads the fleet, ranks the qualified workers by arrival and
offers to the first whose booking the database accepts (a candidate another
dispatcher took meanwhile raises :class:`WorkerBusy`, and the next is tried).
Emergencies may pre-empt interruptible work; re-slotting a displaced or
declined routine order never does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from dispatch import joins
from dispatch.declines import Decline, still_excluded
from dispatch.emergency import (
    Candidate,
    EmergencyPolicy,
    Escalate,
    FleetSnapshot,
    rank,
)
from dispatch.fleet_cache import FleetCache
from dispatch.lifecycle import InvalidTransition
from dispatch.model import Catalogue, OrderKind, OrderState, Point, ServiceType
from dispatch.roster import load_fleet
from dispatch.store import (
    AlertAlreadyClosed,
    DispatchError,
    OrderChange,
    StoredOrder,
    WorkerBusy,
    create_order,
    get_order,
    offer,
    record_escalation,
)
from dispatch.travel import HaversineTravel, TravelModel
from eldercare.settings import Settings

Conn = psycopg.AsyncConnection[TupleRow]
DISPATCHER = "dispatcher"


@dataclass(frozen=True, slots=True)
class AssignSettings:
    policy: EmergencyPolicy = field(default_factory=EmergencyPolicy)
    offer_timeout_s: float = 60.0  # emergencies: answer within a minute or the next is asked
    routine_offer_timeout_s: float = 900.0
    tries: int = 5  # candidates tried when the database refuses a booking
    travel: TravelModel = field(default_factory=HaversineTravel)
    fleet: FleetCache | None = None  # the service keeps one; None: read the fleet each time


def assign_settings(settings: Settings, *, fleet: FleetCache | None = None) -> AssignSettings:
    """The deployment's SLA and emergency offer time-out (``ELDERCARE_DISPATCH_SLA_S``,
    ``ELDERCARE_DISPATCH_OFFER_TIMEOUT_S``), for the dispatch service and the API alike."""
    return AssignSettings(
        policy=EmergencyPolicy(sla_s=settings.dispatch_sla_s),
        offer_timeout_s=settings.dispatch_offer_timeout_s,
        fleet=fleet,
    )


@dataclass(frozen=True, slots=True)
class Assignment:
    order: StoredOrder
    changes: list[OrderChange]
    candidate: Candidate | None
    escalated: bool


async def catalogue_from_db(conn: Conn) -> Catalogue:
    cur = await conn.execute(
        "SELECT code, name, duration_min, skills, interruptible, emergency FROM service_types"
    )
    rows = await cur.fetchall()
    await conn.commit()
    return Catalogue(
        {
            r[0]: ServiceType(r[0], r[1], int(r[2]), frozenset(r[3]), bool(r[4]), bool(r[5]))
            for r in rows
        }
    )


async def resident_home(conn: Conn, resident_id: int) -> Point:
    cur = await conn.execute(
        "SELECT home_lat, home_lon FROM residents WHERE resident_id = %s", (resident_id,)
    )
    row = await cur.fetchone()
    await conn.commit()
    if row is None or row[0] is None or row[1] is None:
        raise DispatchError(f"resident {resident_id} has no home location on record")
    return Point(float(row[0]), float(row[1]))


async def candidates(
    conn: Conn, order: StoredOrder, *, now: datetime, settings: AssignSettings, limit: int = 10
) -> list[Candidate]:
    """Those who have not declined the order, best first. For an emergency, also not those
    who failed an earlier order of its alert; and when nobody else is left, those who
    declined come back once they have cooled down (:mod:`dispatch.declines`)."""
    emergency = order.kind == OrderKind.EMERGENCY
    exclude = set(order.declined_by)
    declines: list[Decline] = []
    if emergency and order.alert_id is not None:
        declines = await _declines(conn, order.id, order.alert_id)
        exclude |= {d.worker_id for d in declines}
    ranked = await rank_for(
        conn,
        order.resident_id,
        order.service_type,
        emergency=emergency,
        exclude=sorted(exclude),
        now=now,
        settings=settings,
        limit=limit,
    )
    if ranked or not emergency or not exclude:
        return ranked
    cooling = still_excluded(exclude, declines, now=now, policy=settings.policy)
    if cooling == exclude:
        return ranked
    return await rank_for(
        conn,
        order.resident_id,
        order.service_type,
        emergency=True,
        exclude=sorted(cooling),
        now=now,
        settings=settings,
        limit=limit,
    )


async def _declines(conn: Conn, order_id: int, alert_id: int) -> list[Decline]:
    """The offers of this emergency rejected or let time out, and the earlier orders of its
    alert that a worker failed or that were dropped other than by an operator (an
    operator's cancel is a choice of who goes, not the worker's)."""
    cur = await conn.execute(
        "SELECT e.worker_id, e.kind, e.at FROM work_order_events e"
        " JOIN work_orders o ON o.id = e.order_id WHERE o.alert_id = %(alert)s"
        " AND e.worker_id IS NOT NULL AND ((e.order_id = %(order)s"
        "   AND e.kind IN ('rejected', 'timed_out'))"
        " OR (e.order_id < %(order)s AND (e.kind = 'failed'"
        "   OR (e.kind = 'cancelled' AND e.actor NOT LIKE 'operator:%%'))))",
        {"alert": alert_id, "order": order_id},
    )
    rows = await cur.fetchall()
    await conn.commit()
    return [Decline(str(r[0]), str(r[1]), r[2]) for r in rows]


async def rank_for(
    conn: Conn,
    resident_id: int,
    service_type: str | None,
    *,
    emergency: bool,
    exclude: list[str],
    now: datetime,
    settings: AssignSettings,
    limit: int,
) -> list[Candidate]:
    """The qualified workers for this resident and service (None: the emergency service)."""
    if settings.fleet is not None:
        catalogue, fleet = await settings.fleet.get(
            conn, catalogue_from_db, now=now, travel=settings.travel
        )
    else:
        catalogue = await catalogue_from_db(conn)
        workers, commitments = await load_fleet(conn, catalogue, now=now)
        fleet = FleetSnapshot.build(
            workers, commitments=commitments, now=now, travel=settings.travel
        )
    service = catalogue[service_type] if service_type else catalogue.emergency_type()
    home = await resident_home(conn, resident_id)
    policy = settings.policy if emergency else EmergencyPolicy(allow_preemption=False)
    return rank(
        fleet,
        home,
        required=service.skills,
        policy=policy,
        exclude=exclude,
        limit=limit,
        travel=settings.travel,
    )


async def offer_best(
    conn: Conn,
    order_id: int,
    *,
    now: datetime,
    settings: AssignSettings,
    worker_id: str | None = None,
    actor: str = DISPATCHER,
) -> Assignment:
    """Offer the order to ``worker_id`` or the best candidate; escalate an emergency that
    nobody can reach within its SLA (an ``escalated`` event; someone is still sent)."""
    order = await get_order(conn, order_id)
    if OrderState(order.state) is not OrderState.CREATED:
        raise DispatchError(f"order {order_id} is {order.state}, not waiting for a worker")
    if order.alert_id is not None:
        await _refuse_closed_alerts(conn, order)
    ranked = await candidates(conn, order, now=now, settings=settings, limit=200)
    if worker_id is not None:
        ranked = [c for c in ranked if c.worker_id == worker_id]
        if not ranked:
            raise DispatchError(
                f"worker {worker_id!r} cannot take order {order_id} now"
                " (skills, shift, status or declined)"
            )
    emergency = order.kind == OrderKind.EMERGENCY
    changes: list[OrderChange] = []
    escalated = False
    timeout = settings.offer_timeout_s if emergency else settings.routine_offer_timeout_s
    for c in ranked[: settings.tries]:
        # escalation is decided on the worker actually offered: the ranking is by arrival,
        # so one refused by the database is followed by a later one (before 2026-12-04 it
        # was decided on the best ranked, and an offer to a later worker past the SLA,
        # the best having been taken meanwhile, was never escalated)
        if emergency and not escalated:
            escalated = await _escalate(conn, _verdict(order, c, now=now, settings=settings),
                                        changes, actor=actor, now=now)  # fmt: skip
        if emergency:  # booked from when they can leave (after non-interruptible work)
            start = now + timedelta(seconds=c.wait_s)
            until = now + timedelta(seconds=c.eta_s, minutes=order.duration_min)
        else:  # in UTC: the session's zone would add across a DST change on the wall clock
            start = max(now + timedelta(seconds=c.eta_s), order.window_start.astimezone(UTC))
            until = start + timedelta(minutes=order.duration_min)
        detail = {
            "eta_s": round(c.eta_s),
            "distance_km": round(c.distance_km, 2),
            "preempts_order_id": c.preempts_order_id,
        }
        try:
            made = await offer(
                conn,
                order_id,
                c.worker_id,
                actor=actor,
                now=now,
                booked_from=start,
                booked_until=until,
                expires_at=now + timedelta(seconds=timeout),
                preempt=emergency,
                detail=detail,
            )
        except WorkerBusy:
            continue
        changes.extend(made)
        if settings.fleet is not None:
            settings.fleet.invalidate()  # this worker is taken now
        return Assignment(made[-1].order, changes, c, escalated)
    if emergency and not escalated:  # nobody could be offered: nobody is coming
        escalated = await _escalate(conn, _verdict(order, None, now=now, settings=settings),
                                    changes, actor=actor, now=now)  # fmt: skip
    return Assignment(await get_order(conn, order_id), changes, None, escalated)


async def _escalate(
    conn: Conn, verdict: Escalate | None, changes: list[OrderChange], *, actor: str, now: datetime
) -> bool:
    """Record the escalation (once per order) if there is one; whether there is."""
    if verdict is None or verdict.order_id is None:
        return False
    detail: dict[str, Any] = {
        "targets": list(verdict.targets),
        "best_eta_s": verdict.best_eta_s,
        "sla_s": verdict.sla_s,
    }
    change = await record_escalation(conn, verdict.order_id, actor=actor, now=now, detail=detail)
    if change is not None:
        changes.append(change)
    return True


def _verdict(
    order: StoredOrder, offered: Candidate | None, *, now: datetime, settings: AssignSettings
) -> Escalate | None:
    """Escalate if the worker offered (None: nobody) arrives past the order's SLA, counting
    the time already spent. In UTC: the database returns times in the session's zone, and
    Python subtracts two times of one zone on the wall clock, an hour off across a DST
    change (before 2026-12-04 a 43-minute arrival was not escalated on such a night)."""
    created = order.created_at.astimezone(UTC)
    sla = settings.policy.sla_s
    if order.sla_due_at is not None:
        sla = (order.sla_due_at.astimezone(UTC) - created).total_seconds()
    elapsed = (now.astimezone(UTC) - created).total_seconds()
    if offered is None or elapsed + offered.eta_s > sla:
        return Escalate(order.id, None if offered is None else offered.eta_s, sla)
    return None


async def _refuse_closed_alerts(conn: Conn, order: StoredOrder) -> None:
    """:class:`AlertAlreadyClosed` if every alert the order answers is closed (a false
    alarm, resolved): an offer made now would send someone for nothing. An alert that
    joined it (:mod:`dispatch.joins`) still open keeps it going."""
    cur = await conn.execute(
        "SELECT a.state, a.closed_at IS NOT NULL FROM alert_orders ao"
        " JOIN alerts a ON a.id = ao.alert_id WHERE ao.order_id = %s"
        " ORDER BY a.id = %s DESC",  # the order's own alert first
        (order.id, order.alert_id),
    )
    states = await cur.fetchall()
    await conn.commit()
    if states and all(closed for _, closed in states):
        raise AlertAlreadyClosed(order.alert_id or 0, str(states[0][0]))


async def emergency_for_alert(
    conn: Conn,
    alert_id: int,
    *,
    now: datetime,
    actor: str,
    settings: AssignSettings,
    join: bool = True,
) -> tuple[StoredOrder, bool]:
    """The live emergency order of an alert, made now (``True``) if there is none.

    With ``join``, an alert whose resident already has a live emergency order for
    another alert joins that order instead of getting one of its own
    (:mod:`dispatch.joins`): one visit for a fall, its long lie and an SOS."""
    cur = await conn.execute(
        "SELECT resident_id, opened_at, type, state, closed_at IS NOT NULL FROM alerts"
        " WHERE id = %s",
        (alert_id,),
    )
    row = await cur.fetchone()
    await conn.commit()
    if row is None:
        raise DispatchError(f"no alert {alert_id}")
    if row[4]:  # a false alarm, or resolved: an order made now would send someone for nothing
        raise AlertAlreadyClosed(alert_id, str(row[3]))
    resident_id, alert_type = int(row[0]), str(row[2])
    catalogue = await catalogue_from_db(conn)
    service = catalogue.emergency_type()
    opened: datetime = row[1].astimezone(UTC)  # 15 minutes of real time, whatever the DST
    sla_due = opened + timedelta(seconds=settings.policy.sla_s)
    async with conn.transaction():
        await joins.lock_resident(conn, resident_id)
        cur = await conn.execute(
            f"SELECT 1 FROM work_orders WHERE alert_id = %s AND state IN {joins.NOT_FINAL}",
            (alert_id,),
        )
        if join and await cur.fetchone() is None:  # no order of its own under way
            joined = await joins.joined_order(conn, alert_id)
            if joined is None:
                joined = await joins.join_live_order(
                    conn, alert_id, resident_id, alert_type, now=now, actor=actor
                )
            if joined is not None:
                return joined, False
        return await create_order(
            conn,
            kind=OrderKind.EMERGENCY,
            resident_id=resident_id,
            service=service,
            window_start=opened,
            window_end=sla_due,
            actor=actor,
            now=now,
            priority=1,
            alert_id=alert_id,
            sla_due_at=sla_due,
            notes=f"alert {alert_id}: {alert_type}",
        )


async def dispatch_alert(
    conn: Conn,
    alert_id: int,
    *,
    now: datetime,
    actor: str,
    settings: AssignSettings,
    worker_id: str | None = None,
) -> Assignment:
    order, _created = await emergency_for_alert(
        conn, alert_id, now=now, actor=actor, settings=settings, join=worker_id is None
    )
    if OrderState(order.state) is not OrderState.CREATED:
        return Assignment(order, [], None, False)  # already on offer or on its way
    try:
        return await offer_best(
            conn, order.id, now=now, settings=settings, worker_id=worker_id, actor=actor
        )
    except (InvalidTransition, DispatchError):
        # another operator (or the dispatch service) offered it meanwhile: their offer
        # stands, and this caller gets the order as it is now, as if it had come second
        current = await get_order(conn, order.id)
        if OrderState(current.state) is OrderState.CREATED:
            raise
        return Assignment(current, [], None, False)
