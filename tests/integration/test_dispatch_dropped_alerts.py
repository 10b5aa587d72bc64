"""An alert still open whose emergency order failed, or was dropped by anyone but an
operator, is dispatched again by the timers: nobody else is coming."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dispatch import service, timers
from dispatch.assign import AssignSettings
from eldercare.settings import Settings
from tests.integration.dispatch_support import east, open_alert, seed
from tests.support import rows

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CARE = frozenset({"caregiver"})


@pytest.mark.parametrize(
    ("how", "actor", "again"),
    [
        ("fail", "worker:W1", True),  # fell off the bike on the way
        ("cancel", "family:3", True),
        ("cancel", "operator:1", False),  # an operator's choice: they dispatch again
    ],
)
async def test_an_open_alert_whose_order_was_dropped_is_dispatched_again(
    db_url: str, how: str, actor: str, again: bool
) -> None:
    """Before 2026-12-04 the alert stayed ``dispatched`` with nobody on the way, and a
    new fall was folded into it as an update."""
    [rid] = await seed(db_url, now=T0, workers=[("W1", east(0.5), CARE), ("W2", east(1.0), CARE)])
    alert_id = await open_alert(db_url, rid, at=T0)
    assign = AssignSettings()
    settings = Settings(environment="test", database_url=db_url)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        first = (await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=T0)).order
        for step in (service.accept, service.en_route):
            await step(conn, first.id, worker_id="W1", actor="worker:W1", now=T0)
        t = T0 + timedelta(minutes=1)
        if how == "fail":
            await service.fail_order(conn, first.id, actor=actor, reason="bike accident", now=t)
        else:
            await service.cancel_order(conn, first.id, actor=actor, now=t)
        t += timedelta(seconds=5)
        await timers.retry_waiting(conn, now=t, settings=settings, assign=assign)
        orders = await rows(
            db_url,
            "SELECT state, worker_id FROM work_orders WHERE alert_id = %s ORDER BY id",
            alert_id,
        )
        alert = await rows(db_url, "SELECT state FROM alerts WHERE id = %s", alert_id)
    dropped = "failed" if how == "fail" else "cancelled"
    if again:  # the worker who dropped it is asked last
        assert orders == [(dropped, "W1"), ("offered", "W2")]
    else:
        assert orders == [(dropped, "W1")]
    assert alert == [("dispatched",)]


async def test_a_closed_alert_whose_order_failed_is_not_dispatched_again(db_url: str) -> None:
    [rid] = await seed(db_url, now=T0, workers=[("W1", east(0.5), CARE), ("W2", east(1.0), CARE)])
    alert_id = await open_alert(db_url, rid, at=T0)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        first = (await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=T0)).order
        await service.accept(conn, first.id, worker_id="W1", actor="worker:W1", now=T0)
        t = T0 + timedelta(minutes=1)
        await service.fail_order(conn, first.id, actor="worker:W1", reason="ill", now=t)
        await conn.execute(
            "UPDATE alerts SET state = 'resolved', closed_at = %s WHERE id = %s", (t, alert_id)
        )
        await conn.commit()
        settings = Settings(environment="test", database_url=db_url)
        await timers.retry_waiting(
            conn, now=t + timedelta(seconds=5), settings=settings, assign=AssignSettings()
        )
    assert await rows(db_url, "SELECT state FROM work_orders ORDER BY id") == [("failed",)]
