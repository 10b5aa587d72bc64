"""An emergency every nearby worker declined is offered again once they have cooled down
(a time-out after a minute, a reject after ten): someone must still go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from dispatch import service, timers
from dispatch.assign import AssignSettings
from eldercare.settings import Settings
from tests.integration.dispatch_support import east, open_alert, seed

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CARE = frozenset({"caregiver"})


async def test_an_emergency_everyone_declined_is_offered_again_after_a_cool_down(
    db_url: str,
) -> None:
    """Before 2026-12-04 it waited in ``created`` for a day, both workers available."""
    [rid] = await seed(db_url, now=T0, workers=[("W1", east(0.5), CARE), ("W2", east(1.0), CARE)])
    alert_id = await open_alert(db_url, rid, at=T0)
    assign = AssignSettings()  # time-outs after 60 s; cool-downs 60 s and 600 s
    settings = Settings(environment="test", database_url=db_url)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:

        async def tick(t: datetime) -> tuple[str, str | None]:
            await timers.expire_and_reoffer(conn, now=t, assign=assign)
            await timers.retry_waiting(conn, now=t, settings=settings, assign=assign)
            o = await service.get_order(conn, order_id)
            return o.state, o.worker_id

        done = await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=T0)
        order_id = done.order.id
        assert done.order.worker_id == "W1"
        t = T0 + timedelta(seconds=10)
        o = await service.reject(conn, order_id, worker_id="W1", actor="worker:W1", now=t)
        assert o.worker_id == "W2"
        t += timedelta(seconds=61)  # W2 lets it time out; W1 said no 61 s ago
        assert await tick(t) == ("created", None)
        t += timedelta(seconds=30)
        assert await tick(t) == ("created", None)  # W2 missed it only 30 s ago
        t += timedelta(seconds=31)
        assert await tick(t) == ("offered", "W2")  # a missed offer: asked again
        o = await service.reject(conn, order_id, worker_id="W2", actor="worker:W2", now=t)
        assert (o.state, o.worker_id) == ("created", None)  # W1 said no 2 minutes ago
        t = T0 + timedelta(seconds=10 + 600)
        assert await tick(t) == ("offered", "W1")  # ten minutes after their no
        order = await service.get_order(conn, order_id)
        assert sorted(order.declined_by) == ["W1", "W2"]  # each once
        kinds = [e["kind"] for e in await service.order_events(conn, order_id)]
        assert kinds.count("escalated") == 1  # when nobody was left, the first time
