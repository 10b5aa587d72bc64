"""Escalation on the real database: decided on the worker actually offered, and the
15-minute SLA counted in real time whatever the session's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dispatch import service
from dispatch.assign import AssignSettings
from dispatch.fleet_cache import FleetCache
from tests.integration.dispatch_support import HOME, east, open_alert, seed

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CARE = frozenset({"caregiver"})


async def test_escalates_on_the_worker_offered_when_the_best_is_taken_meanwhile(
    db_url: str,
) -> None:
    """The fleet view is up to 2 s old: the nearest worker set off for a bath meanwhile,
    the database refuses their booking, and the emergency goes to a worker 30 minutes
    away. Before 2026-12-04 escalation was decided on the nearest (2 minutes): none."""
    rids = await seed(
        db_url,
        now=T0,
        residents=[HOME, east(0.3)],
        workers=[
            ("NEAR", east(0.5), frozenset({"caregiver", "bathing"})),
            ("FAR", east(7.0), CARE),
        ],
    )
    alert_id = await open_alert(db_url, rids[0], at=T0)
    stale = AssignSettings(fleet=FleetCache(max_age_s=3600.0))
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        seen = await service.candidates_for_alert(conn, alert_id, now=T0, settings=stale)
        assert seen[0]["worker_id"] == "NEAR"  # the view the decision will use
        bath, _ = await service.book_order(
            conn,
            resident_id=rids[1],
            service_type="bathing",
            window_start=T0,
            window_end=T0 + timedelta(hours=1),
            actor="operator:1",
            now=T0,
        )
        await service.assign_order(conn, bath.id, "NEAR", actor="operator:1", now=T0)
        for step in (service.accept, service.en_route):  # under way: never released
            await step(conn, bath.id, worker_id="NEAR", actor="worker:NEAR", now=T0)

        done = await service.dispatch_alert(
            conn, alert_id, actor="dispatcher", now=T0, settings=stale
        )
        assert done.order.worker_id == "FAR"
        assert done.candidate is not None
        assert done.candidate.eta_s > 15 * 60
        assert done.escalated
        events = await service.order_events(conn, done.order.id)
        assert [e["kind"] for e in events] == ["created", "escalated", "offered"]
        assert events[1]["detail"]["best_eta_s"] == pytest.approx(done.candidate.eta_s)


@pytest.mark.parametrize(
    "opened",
    [
        datetime(2026, 11, 1, 5, 55, tzinfo=UTC),  # 01:55 EDT, clocks go back at 02:00
        datetime(2026, 3, 8, 6, 55, tzinfo=UTC),  # 01:55 EST, clocks go forward at 02:00
    ],
    ids=["fall_back", "spring_forward"],
)
async def test_the_sla_is_real_time_in_a_session_zone_with_dst(
    db_url: str, opened: datetime
) -> None:
    """The database returns times in the session's zone, and Python subtracts two times
    of one zone on the wall clock: before 2026-12-04 a 43-minute arrival on a DST night
    in New York was not escalated."""
    [rid] = await seed(db_url, now=opened, workers=[("FAR", east(10.0), CARE)])
    alert_id = await open_alert(db_url, rid, at=opened)
    now = opened + timedelta(seconds=5)
    async with await psycopg.AsyncConnection.connect(
        db_url, options="-c TimeZone=America/New_York"
    ) as conn:
        done = await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=now)
        assert done.candidate is not None
        assert done.candidate.eta_s > 40 * 60
        assert done.escalated
        assert done.order.sla_due_at is not None
        assert done.order.sla_due_at - opened == timedelta(minutes=15)
        events = await service.order_events(conn, done.order.id)
        assert events[1]["kind"] == "escalated"
        assert events[1]["detail"]["sla_s"] == 900.0 - 5  # from the order, made 5 s in
