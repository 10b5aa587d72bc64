"""One emergency visit per home: a resident's second critical alert (a fall's long lie,
an SOS pressed while help is on its way) joins the live emergency order already sent
for the first, instead of taking a second worker from someone else's emergency."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from dispatch import service, timers
from dispatch.assign import AssignSettings
from dispatch.inbox import Inbox
from eldercare.settings import Settings
from tests.integration.dispatch_support import HOME, east, open_alert, seed
from tests.support import rows

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
CARE = frozenset({"caregiver"})
WORKERS = [("W1", east(0.5), CARE), ("W2", east(1.0), CARE), ("W3", east(1.5), CARE)]


async def _close(conn: Any, alert_id: int, state: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE alerts SET state = %s, closed_at = %s, updated_at = %s WHERE id = %s",
        (state, at, at, alert_id),
    )
    await conn.commit()


def _inbox(db_url: str) -> Inbox:
    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[Any]:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            yield conn

    return Inbox(Settings(environment="test", database_url=db_url), AssignSettings(), connect)


async def test_a_long_lie_joins_the_falls_order_and_follows_it(db_url: str) -> None:
    """Before 2026-12-04 the long lie got an order of its own, offered to W2 while W1
    was already on the way: two workers for one person on the floor."""
    [rid] = await seed(db_url, now=T0, workers=WORKERS)
    fall = await open_alert(db_url, rid, at=T0)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        order = (await service.dispatch_alert(conn, fall, actor="dispatcher", now=T0)).order
        assert order.worker_id == "W1"
        await service.accept(conn, order.id, worker_id="W1", actor="worker:W1", now=T0)
        t = T0 + timedelta(minutes=10)
        long_lie = await open_alert(db_url, rid, at=t, type_="long_lie")
        joined = (await service.dispatch_alert(conn, long_lie, actor="dispatcher", now=t)).order
        assert joined.id == order.id
        # a second dispatch of the same alert (a redelivered message) changes nothing
        again = (await service.dispatch_alert(conn, long_lie, actor="dispatcher", now=t)).order
        assert again.id == order.id
        progress = await service.alert_progress(conn, long_lie, now=t)
        assert progress is not None
        assert progress["worker_id"] == "W1"
        assert progress["order_id"] == order.id
        [moved] = await service.alert_moved_by(
            conn, joined, kind="joined", actor="dispatcher", at=t,
            detail={"alert_id": long_lie, "type": "long_lie"},
        )  # fmt: skip
        assert (moved.kind, moved.alert.id) == ("dispatched", long_lie)
        t += timedelta(minutes=2)
        await service.en_route(conn, order.id, worker_id="W1", actor="worker:W1", now=t)
        await service.check_in(conn, order.id, worker_id="W1", actor="worker:W1", now=t,
                               lat=HOME.lat, lon=HOME.lon, radius_m=200)  # fmt: skip
        t += timedelta(minutes=20)
        done = await service.check_out(conn, order.id, worker_id="W1", actor="worker:W1", now=t)
        resolved = await service.alert_moved_by(
            conn, done, kind="completed", actor="worker:W1", at=t
        )
        await conn.commit()
        assert sorted(c.alert.id for c in resolved) == [fall, long_lie]
    orders = await rows(db_url, "SELECT id, state, worker_id FROM work_orders ORDER BY id")
    assert orders == [(order.id, "completed", "W1")]
    alerts = await rows(db_url, "SELECT type, state FROM alerts ORDER BY id")
    assert alerts == [("fall", "resolved"), ("long_lie", "resolved")]
    events = await rows(
        db_url, "SELECT kind, detail->>'type' FROM work_order_events WHERE kind = 'joined'"
    )
    assert events == [("joined", "long_lie")]
    # the worker page shows the order's notes: the worker knows of the long lie
    notes = await rows(db_url, "SELECT notes FROM work_orders")
    assert notes == [(f"alert {fall}: fall\nalert {long_lie}: long_lie",)]


async def test_an_sos_keeps_the_worker_coming_when_the_fall_is_cancelled(db_url: str) -> None:
    """The wearer cancels the fall ("I'm OK") but had pressed SOS meanwhile: the worker
    keeps coming for the SOS, and is called off only once every alert is closed."""
    [rid] = await seed(db_url, now=T0, workers=WORKERS)
    fall = await open_alert(db_url, rid, at=T0)
    inbox = _inbox(db_url)
    settings = Settings(environment="test", database_url=db_url)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        order = (await service.dispatch_alert(conn, fall, actor="dispatcher", now=T0)).order
        sos = await open_alert(db_url, rid, at=T0 + timedelta(seconds=20), type_="sos")
        await inbox.on_alert({"kind": "raised", "severity": "critical", "type": "sos",
                              "alert_id": sos})  # fmt: skip
        t = T0 + timedelta(seconds=40)
        await _close(conn, fall, "auto_cleared", t)
        await inbox.on_alert({"alert_id": fall, "closed_at": t.isoformat(),
                              "state": "auto_cleared"})  # fmt: skip
        await timers.retry_waiting(conn, now=t, settings=settings, assign=AssignSettings())
        assert await rows(db_url, "SELECT state FROM work_orders") == [("offered",)]
        await service.accept(conn, order.id, worker_id="W1", actor="worker:W1", now=t)
        assert await rows(db_url, "SELECT state FROM alerts WHERE id = %s", sos) == [
            ("dispatched",)
        ]
        t += timedelta(minutes=1)
        await _close(conn, sos, "false_alarm", t)
        await inbox.on_alert({"alert_id": sos, "closed_at": t.isoformat(),
                              "state": "false_alarm"})  # fmt: skip
    assert await rows(db_url, "SELECT state FROM work_orders") == [("cancelled",)]


@pytest.mark.parametrize("via", ["inbox", "timers"])
async def test_the_order_is_cancelled_when_its_last_alert_closes(db_url: str, via: str) -> None:
    [rid] = await seed(db_url, now=T0, workers=WORKERS)
    fall = await open_alert(db_url, rid, at=T0)
    settings = Settings(environment="test", database_url=db_url)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await service.dispatch_alert(conn, fall, actor="dispatcher", now=T0)
        sos = await open_alert(db_url, rid, at=T0, type_="sos")
        await service.dispatch_alert(conn, sos, actor="dispatcher", now=T0)
        t = T0 + timedelta(minutes=1)
        await _close(conn, sos, "false_alarm", t)  # the joined one first: the fall holds
        await timers.retry_waiting(conn, now=t, settings=settings, assign=AssignSettings())
        assert await rows(db_url, "SELECT state FROM work_orders") == [("offered",)]
        await _close(conn, fall, "false_alarm", t)
        if via == "inbox":
            await _inbox(db_url).on_alert({"alert_id": fall, "closed_at": t.isoformat(),
                                           "state": "false_alarm"})  # fmt: skip
        else:
            await timers.retry_waiting(conn, now=t, settings=settings, assign=AssignSettings())
    assert await rows(db_url, "SELECT state FROM work_orders") == [("cancelled",)]


async def test_a_failed_order_is_replaced_by_one_order_for_both_alerts(db_url: str) -> None:
    [rid] = await seed(db_url, now=T0, workers=WORKERS)
    fall = await open_alert(db_url, rid, at=T0)
    settings = Settings(environment="test", database_url=db_url)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        order = (await service.dispatch_alert(conn, fall, actor="dispatcher", now=T0)).order
        await service.accept(conn, order.id, worker_id="W1", actor="worker:W1", now=T0)
        long_lie = await open_alert(db_url, rid, at=T0, type_="long_lie")
        await service.dispatch_alert(conn, long_lie, actor="dispatcher", now=T0)
        t = T0 + timedelta(minutes=3)
        await service.fail_order(conn, order.id, actor="worker:W1", reason="flat tyre", now=t)
        for _ in range(2):  # a second pass finds nothing more to do
            t += timedelta(seconds=5)
            await timers.retry_waiting(conn, now=t, settings=settings, assign=AssignSettings())
    live = await rows(
        db_url, "SELECT id, worker_id FROM work_orders WHERE state <> 'failed' ORDER BY id"
    )
    assert len(live) == 1
    assert live[0][1] != "W1"
    on_it = await rows(
        db_url, "SELECT alert_id FROM alert_orders WHERE order_id = %s ORDER BY alert_id",
        live[0][0],
    )  # fmt: skip
    assert on_it == [(fall,), (long_lie,)]


async def test_an_operator_who_names_a_worker_sends_a_second_one(db_url: str) -> None:
    [rid] = await seed(db_url, now=T0, workers=WORKERS)
    fall = await open_alert(db_url, rid, at=T0)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await service.dispatch_alert(conn, fall, actor="dispatcher", now=T0)
        sos = await open_alert(db_url, rid, at=T0, type_="sos")
        second = await service.dispatch_alert(conn, sos, "W3", actor="operator:1", now=T0)
    assert second.order.alert_id == sos
    assert second.order.worker_id == "W3"
    assert len(await rows(db_url, "SELECT id FROM work_orders")) == 2


async def test_another_residents_emergency_is_not_joined(db_url: str) -> None:
    a, b = await seed(db_url, residents=[HOME, east(0.2)], now=T0, workers=WORKERS)
    first = await open_alert(db_url, a, at=T0)
    second = await open_alert(db_url, b, at=T0)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        one = (await service.dispatch_alert(conn, first, actor="dispatcher", now=T0)).order
        two = (await service.dispatch_alert(conn, second, actor="dispatcher", now=T0)).order
    assert one.id != two.id
    assert {one.worker_id, two.worker_id} == {"W1", "W2"}
