"""The emergency loop on the real database: alert -> offer -> reject -> re-offer -> accept
-> en route -> check-in near the home -> check-out; the alert follows; the report counts it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dispatch import reports, service
from dispatch.assign import AssignSettings, offer_best
from dispatch.fleet_cache import FleetCache
from dispatch.lifecycle import InvalidTransition
from dispatch.roster import add_shift
from dispatch.store import NotYourOrder, TooFarFromHome
from tests.integration.dispatch_support import HOME, east, open_alert, seed

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CARE = frozenset({"caregiver"})


async def test_emergency_loop_and_report(db_url: str) -> None:
    [rid] = await seed(
        db_url,
        now=T0,
        workers=[
            ("W1", east(0.5), CARE),
            ("W2", east(1.5), CARE),
            ("W3", east(0.2), frozenset({"cleaning"})),
        ],
    )
    alert_id = await open_alert(db_url, rid, at=T0)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        ranked = await service.candidates_for_alert(conn, alert_id, now=T0)
        assert [c["worker_id"] for c in ranked] == ["W1", "W2"]  # W3 lacks the skill
        assert ranked[0]["eta_s"] < ranked[1]["eta_s"] < 15 * 60
        cur = await conn.execute("SELECT count(*) FROM work_orders")
        assert await cur.fetchone() == (0,)  # looking is read-only
        await conn.commit()

        assert await service.alert_progress(conn, alert_id) is None
        done = await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=T0)
        order = done.order
        assert (order.state, order.worker_id, done.escalated) == ("offered", "W1", False)
        again = await service.dispatch_alert(conn, alert_id, actor="operator:1", now=T0)
        assert again.order.id == order.id  # one order per alert

        with pytest.raises(NotYourOrder):
            await service.accept(conn, order.id, worker_id="W2", actor="worker:W2", now=T0)
        t1 = T0 + timedelta(seconds=20)
        order = await service.reject(conn, order.id, worker_id="W1", actor="worker:W1", now=t1)
        assert (order.state, order.worker_id, order.declined_by) == ("offered", "W2", ["W1"])

        t2 = t1 + timedelta(seconds=30)
        order = await service.accept(conn, order.id, worker_id="W2", actor="worker:W2", now=t2)
        cur = await conn.execute("SELECT state FROM alerts WHERE id = %s", (alert_id,))
        assert await cur.fetchone() == ("dispatched",)
        await conn.commit()
        order = await service.en_route(conn, order.id, worker_id="W2", actor="worker:W2", now=t2)
        progress = await service.alert_progress(conn, alert_id)
        assert progress is not None
        assert (progress["worker_id"], progress["status"]) == ("W2", "en_route")
        assert progress["eta_s"] == pytest.approx(1.5 * 1.3 / 18 * 3600, rel=0.02)
        here = east(0.3)
        await service.worker_location(conn, "W2", here.lat, here.lon, actor="worker:W2", now=t2)
        closer = await service.alert_progress(conn, alert_id)
        assert closer is not None
        assert closer["eta_s"] < progress["eta_s"] / 4
        with pytest.raises(TooFarFromHome):
            await service.check_in(
                conn,
                order.id,
                worker_id="W2",
                lat=east(1.0).lat,
                lon=east(1.0).lon,
                actor="worker:W2",
                now=t2,
            )
        t3 = t2 + timedelta(minutes=6)
        order = await service.check_in(
            conn,
            order.id,
            worker_id="W2",
            lat=HOME.lat,
            lon=HOME.lon + 0.0005,
            actor="worker:W2",
            now=t3,
        )
        assert order.state == "on_site"
        arrived = await service.alert_progress(conn, alert_id)
        assert arrived is not None
        assert (arrived["eta_s"], arrived["status"]) == (0, "on_site")
        worker = await service.get_worker(conn, "W2")
        assert worker.status == "on_site"
        with pytest.raises(InvalidTransition):
            await service.cancel_order(conn, order.id, actor="operator:1", now=t3)
        t4 = t3 + timedelta(minutes=30)
        order = await service.check_out(
            conn,
            order.id,
            worker_id="W2",
            actor="worker:W2",
            notes="helped up, no injury",
            outcome="helped",
            now=t4,
        )
        assert (order.state, order.outcome) == ("completed", "helped")
        assert order.to_json()["service_min"] == 30.0
        cur = await conn.execute("SELECT state, outcome FROM alerts WHERE id = %s", (alert_id,))
        assert await cur.fetchone() == ("resolved", "actionable")
        await conn.commit()
        kinds = [e["kind"] for e in await service.order_events(conn, order.id)]
        assert kinds == [
            "created",
            "offered",
            "rejected",
            "offered",
            "accepted",
            "en_route",
            "arrived",
            "completed",
        ]

        report = await reports.summary(
            conn, start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=2), district="D1"
        )
        assert report["orders_by_type"] == {"emergency_help": 1}
        assert report["visits"] == 1
        assert report["service_hours"] == 0.5
        assert report["response_times"]["accept_p50_s"] == 50.0
        assert report["response_times"]["arrival_p50_s"] == 50.0 + 360.0
        assert report["response_times"]["ack_p50_s"] == 50.0  # dispatched on acceptance
        assert report["within_15_min_share"] == 1.0
        assert report["utilisation"] is None  # no shifts on record
        await add_shift(conn, "W2", T0 - timedelta(hours=1), T0 + timedelta(hours=2))
        report = await reports.summary(
            conn, start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=2), district="D1"
        )
        assert report["utilisation"] == pytest.approx(0.5 / 3, abs=0.001)  # 30 min of 3 h
        other = await reports.summary(conn, start=T0, end=T0 + timedelta(hours=2), district="D9")
        assert other["orders_by_type"] == {}
        assert other["within_15_min_share"] is None


async def test_escalates_when_nobody_can_arrive_within_the_sla(db_url: str) -> None:
    [rid] = await seed(db_url, now=T0, workers=[("FAR", east(8.0), CARE)])
    alert_id = await open_alert(db_url, rid, at=T0)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        done = await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=T0)
        assert done.escalated
        assert done.order.worker_id == "FAR"
        kinds = [e["kind"] for e in await service.order_events(conn, done.order.id)]
        assert kinds == ["created", "escalated", "offered"]


async def test_booking_is_idempotent_and_validated(db_url: str) -> None:
    [rid] = await seed(db_url, now=T0, workers=[("W1", east(0.5), CARE)])
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        args = {
            "resident_id": rid,
            "service_type": "welfare_visit",
            "actor": "family:3",
            "window_start": T0 + timedelta(hours=2),
            "window_end": T0 + timedelta(hours=4),
        }
        first, made = await service.book_order(conn, idempotency_key="k-1", now=T0, **args)  # type: ignore[arg-type]
        second, made2 = await service.book_order(conn, idempotency_key="k-1", now=T0, **args)  # type: ignore[arg-type]
        assert made
        assert not made2
        assert first.id == second.id
        with pytest.raises(service.DispatchError):
            await service.book_order(conn, **{**args, "service_type": "emergency_help"})  # type: ignore[arg-type]
        with pytest.raises(service.DispatchError):
            await service.book_order(conn, **{**args, "service_type": "juggling"})  # type: ignore[arg-type]
        order = await service.assign_order(conn, first.id, "W1", actor="operator:1", now=T0)
        assert (order.state, order.booked_from) == ("offered", T0 + timedelta(hours=2))
        rows, cursor = await service.list_orders(conn, worker_id="W1", day=T0.date())
        assert [r.id for r in rows] == [first.id]
        assert cursor is None
        cancelled = await service.cancel_order(conn, first.id, actor="family:3", now=T0)
        assert cancelled.state == "cancelled"
        with pytest.raises(service.DispatchError):  # a window that ends before it starts
            await service.book_order(conn, **{**args, "window_end": T0})  # type: ignore[arg-type]
        more = [
            (await service.book_order(conn, idempotency_key=f"p{i}", now=T0, **args))[0].id  # type: ignore[arg-type]
            for i in range(3)
        ]
        page1, cursor = await service.list_orders(conn, resident_id=rid, limit=2)
        page2, end = await service.list_orders(conn, resident_id=rid, limit=2, cursor=cursor)
        assert [o.id for o in page1 + page2] == sorted([first.id, *more], reverse=True)
        assert end is None
        listed, _ = await service.list_orders(conn, state="cancelled")
        assert [o.id for o in listed] == [first.id]


async def _on_site(
    conn: psycopg.AsyncConnection,
    rid: int,
    worker: str,
    service_type: str,  # type: ignore[type-arg]
    at: datetime,
) -> int:
    o, _ = await service.book_order(
        conn,
        resident_id=rid,
        service_type=service_type,
        window_start=at,
        window_end=at + timedelta(hours=1),
        actor="operator:1",
        now=at,
    )
    await service.assign_order(conn, o.id, worker, actor="operator:1", now=at)
    await service.accept(conn, o.id, worker_id=worker, actor=f"worker:{worker}", now=at)
    home = east(0.3)
    await service.check_in(
        conn, o.id, worker_id=worker, lat=home.lat, lon=home.lon, actor=f"worker:{worker}", now=at
    )
    return o.id


@pytest.mark.parametrize(("work", "preempted"), [("cleaning", True), ("bathing", False)])
async def test_emergency_preempts_interruptible_work_only(
    db_url: str, work: str, preempted: bool
) -> None:
    skills = frozenset({"caregiver", "cleaning", "bathing"})
    rids = await seed(
        db_url,
        now=T0,
        residents=[HOME, east(0.3)],
        workers=[
            ("NEAR", east(0.3), skills),
            ("FAR", east(3.0), CARE),
            ("SPARE", east(2.0), frozenset({"cleaning"})),
        ],
    )
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        busy_order = await _on_site(conn, rids[1], "NEAR", work, T0)
        alert_id = await open_alert(db_url, rids[0], at=T0 + timedelta(minutes=5))
        t = T0 + timedelta(minutes=5)
        ranked = await service.candidates_for_alert(conn, alert_id, now=t)
        near = next(c for c in ranked if c["worker_id"] == "NEAR")
        assert near["preempts_order_id"] == (busy_order if preempted else None)
        done = await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=t)
        displaced = await service.get_order(conn, busy_order)
        if preempted:  # 300 m plus a 2-minute handover beats 3 km
            assert done.order.worker_id == "NEAR"
            assert (displaced.state, displaced.worker_id) == ("created", None)
            events = await service.order_events(conn, busy_order)
            assert events[-1]["kind"] == "preempted"
            assert events[-1]["detail"]["by_order"] == done.order.id
            assert events[-1]["detail"]["notify"] == "family"
            # re-slotted: to the next qualified worker, never by pre-empting again
            reslot = await offer_best(conn, busy_order, now=t, settings=AssignSettings())
            assert reslot.order.worker_id == "SPARE"
            assert reslot.order.booked_from is not None
            assert reslot.order.booked_from > t
        else:  # bathing is never left: 55 more minutes there loses to 3 km
            assert done.order.worker_id == "FAR"
            assert displaced.state == "on_site"


async def test_the_fleet_cache_is_reused_and_dropped_after_an_offer(db_url: str) -> None:
    rids = await seed(
        db_url,
        now=T0,
        residents=[HOME, east(0.1)],
        workers=[("W1", east(0.5), CARE), ("W2", east(1.5), CARE)],
    )
    cache = FleetCache(max_age_s=3600.0)
    settings = AssignSettings(fleet=cache)
    a1 = await open_alert(db_url, rids[0], at=T0)
    a2 = await open_alert(db_url, rids[1], at=T0)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await service.candidates_for_alert(conn, a1, now=T0, settings=settings)
        await service.candidates_for_alert(conn, a2, now=T0, settings=settings)
        assert cache.loads == 1
        first = await service.dispatch_alert(
            conn, a1, actor="dispatcher", now=T0, settings=settings
        )
        second = await service.dispatch_alert(
            conn, a2, actor="dispatcher", now=T0, settings=settings
        )
        assert cache.loads == 2  # the offer made the view stale
        assert (first.order.worker_id, second.order.worker_id) == ("W1", "W2")


async def test_a_bath_under_way_is_finished_first_never_abandoned(db_url: str) -> None:
    skills = frozenset({"caregiver", "bathing"})
    rids = await seed(
        db_url, now=T0, residents=[HOME, east(0.3)], workers=[("ONLY", east(0.3), skills)]
    )
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        bath = await _on_site(conn, rids[1], "ONLY", "bathing", T0)
        t = T0 + timedelta(minutes=10)
        alert_id = await open_alert(db_url, rids[0], at=t)
        done = await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=t)
        assert done.order.worker_id == "ONLY"
        assert done.candidate is not None
        assert done.candidate.wait_s == pytest.approx(50 * 60, abs=1)
        assert done.order.booked_from == t + timedelta(minutes=50)  # after the bath
        assert done.escalated  # 50 minutes is past the SLA: backup is called too
        assert (await service.get_order(conn, bath)).state == "on_site"


async def _states(db_url: str, order_id: int, alert_id: int) -> tuple[str, str]:
    """The order's and the alert's state as another client sees them."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as other:
        cur = await other.execute(
            "SELECT o.state, a.state FROM work_orders o JOIN alerts a ON a.id = o.alert_id"
            " WHERE o.id = %s AND a.id = %s",
            (order_id, alert_id),
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


async def test_the_order_and_its_alert_move_together_inside_a_callers_transaction(
    db_url: str,
) -> None:
    """The API acts inside one request transaction. Nobody may see an accepted order
    while its alert is not yet dispatched (the console re-reads the alert when it
    hears "accepted"), nor a completed one with its alert still open."""
    [rid] = await seed(db_url, now=T0, workers=[("W1", east(0.5), CARE)])
    alert_id = await open_alert(db_url, rid, at=T0)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        order = (await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=T0)).order
        await conn.commit()
        t = T0
        for action, moved in (
            (service.accept, ("accepted", "dispatched")),
            (service.en_route, ("en_route", "dispatched")),
        ):
            before = await _states(db_url, order.id, alert_id)
            await conn.execute("SELECT 1")  # a request's transaction is open
            t += timedelta(seconds=30)
            await action(conn, order.id, worker_id="W1", actor="worker:W1", now=t)
            assert await _states(db_url, order.id, alert_id) == before  # nothing seen yet
            await conn.commit()
            assert await _states(db_url, order.id, alert_id) == moved
        await service.check_in(
            conn, order.id, worker_id="W1", lat=HOME.lat, lon=HOME.lon, actor="worker:W1", now=t
        )
        await conn.execute("SELECT 1")
        await service.check_out(conn, order.id, worker_id="W1", actor="worker:W1", now=t)
        assert await _states(db_url, order.id, alert_id) == ("on_site", "dispatched")
        await conn.rollback()  # the request failed after the check-out: neither moved
        assert await _states(db_url, order.id, alert_id) == ("on_site", "dispatched")
        await service.check_out(conn, order.id, worker_id="W1", actor="worker:W1", now=t)
        assert await _states(db_url, order.id, alert_id) == ("completed", "resolved")


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "offered"])
async def test_a_bath_not_started_yet_is_released_for_an_emergency(
    db_url: str, accepted: bool
) -> None:
    """A worker holding a bath that starts in 4 minutes has not left for it: they are free
    now, and the store releases the bath for an emergency. Before 2026-12-04 they were
    ranked busy until the bath's end (~66 min) and a worker 5 km away was sent."""
    rids = await seed(
        db_url,
        now=T0,
        residents=[HOME, east(0.3)],
        workers=[
            ("NEAR", east(0.5), frozenset({"caregiver", "bathing"})),
            ("FAR", east(5.0), CARE),
        ],
    )
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        bath, _ = await service.book_order(
            conn,
            resident_id=rids[1],
            service_type="bathing",
            window_start=T0 + timedelta(minutes=4),
            window_end=T0 + timedelta(hours=2),
            actor="operator:1",
            now=T0,
        )
        await service.assign_order(conn, bath.id, "NEAR", actor="operator:1", now=T0)
        if accepted:
            await service.accept(conn, bath.id, worker_id="NEAR", actor="worker:NEAR", now=T0)
        alert_id = await open_alert(db_url, rids[0], at=T0)
        ranked = await service.candidates_for_alert(conn, alert_id, now=T0)
        assert ranked[0]["worker_id"] == "NEAR"
        assert ranked[0]["preempts_order_id"] == bath.id
        assert ranked[0]["eta_s"] < 3 * 60  # 650 m by e-bike, no wait
        done = await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=T0)
        assert (done.order.worker_id, done.escalated) == ("NEAR", False)
        assert done.order.booked_from == T0
        released = await service.get_order(conn, bath.id)
        assert (released.state, released.worker_id) == ("created", None)


async def test_the_familys_eta_counts_the_wait_before_the_worker_can_leave(db_url: str) -> None:
    """The only worker is bathing a neighbour for the next hour: offered the emergency
    from the bath's end, they are an hour and 2 minutes away, not 2 minutes (before
    2026-12-04 the family was shown the travel time alone)."""
    skills = frozenset({"caregiver", "bathing"})
    rids = await seed(
        db_url, now=T0, residents=[HOME, east(0.3)], workers=[("ONLY", east(0.3), skills)]
    )
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await _on_site(conn, rids[1], "ONLY", "bathing", T0)
        alert_id = await open_alert(db_url, rids[0], at=T0)
        done = await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=T0)
        assert done.candidate is not None
        assert done.order.booked_from == T0 + timedelta(hours=1)
        progress = await service.alert_progress(conn, alert_id, now=T0)
        assert progress is not None
        assert progress["status"] == "offered"
        assert progress["eta_s"] == pytest.approx(done.candidate.eta_s, abs=2)
        assert progress["eta_s"] > 60 * 60
        later = await service.alert_progress(conn, alert_id, now=T0 + timedelta(minutes=50))
        assert later is not None
        assert later["eta_s"] == pytest.approx(done.candidate.eta_s - 50 * 60, abs=2)
        await service.accept(conn, done.order.id, worker_id="ONLY", actor="worker:ONLY", now=T0)
        gone = T0 + timedelta(hours=2)  # past the booked start: the travel time alone
        progress = await service.alert_progress(conn, alert_id, now=gone)
        assert progress is not None
        assert progress["eta_s"] == pytest.approx(done.candidate.eta_s - 60 * 60, abs=2)
