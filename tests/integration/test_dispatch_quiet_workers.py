"""A worker whose phone has gone quiet (two emergency offers in a row missed, nothing
else heard from them) is set off shift, so the next emergency near them does not wait
out a minute on their phone too. Before 2026-12-04 each one did, all shift long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dispatch import service, timers
from dispatch.assign import AssignSettings
from dispatch.model import WorkerStatus
from dispatch.roster import set_location
from tests.integration.dispatch_support import HOME, east, open_alert, seed
from tests.support import scalar

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
CARE = frozenset({"caregiver"})
WORKERS = [("W1", east(0.3), CARE), ("W2", east(2.0), CARE), ("W3", east(3.0), CARE),
           ("W4", east(4.0), CARE)]  # fmt: skip


async def _status(db_url: str) -> object:
    return await scalar(db_url, "SELECT status FROM service_workers WHERE worker_id = 'W1'")


async def _why(db_url: str) -> object:
    return await scalar(db_url, "SELECT status_note FROM service_workers WHERE worker_id = 'W1'")


@pytest.mark.parametrize("heard_between", [False, True])
async def test_a_worker_who_misses_two_emergencies_in_a_row_is_set_aside(
    db_url: str, heard_between: bool
) -> None:
    a, b, c = await seed(db_url, residents=[HOME, east(0.1), east(0.2)], now=T0,
                         workers=WORKERS)  # fmt: skip
    assign = AssignSettings()  # emergency offers time out after 60 s
    async with await psycopg.AsyncConnection.connect(db_url) as conn:

        async def dispatch(rid: int, at: datetime) -> str | None:
            alert = await open_alert(db_url, rid, at=at)
            done = await service.dispatch_alert(conn, alert, actor="dispatcher", now=at)
            return done.order.worker_id

        assert await dispatch(a, T0) == "W1"  # the nearest; the phone is in a bag
        t = T0 + timedelta(seconds=61)
        await timers.expire_and_reoffer(conn, now=t, assign=assign)  # one miss: not yet
        assert await scalar(
            db_url, "SELECT status FROM service_workers WHERE worker_id = 'W1'"
        ) == ("available")
        if heard_between:  # the phone reports a position: it is on, only not answered
            await set_location(conn, "W1", east(0.3), now=t + timedelta(seconds=30))
        t += timedelta(minutes=2)
        assert await dispatch(b, t) == "W1"  # the next emergency near them
        t += timedelta(seconds=61)
        await timers.expire_and_reoffer(conn, now=t, assign=assign)
        assert await _status(db_url) == ("available" if heard_between else "off_shift")
        # the worker page says why (before 2026-12-04: "off shift", no reason)
        assert await _why(db_url) == ("" if heard_between else "missed_offers")
        third = await dispatch(c, t + timedelta(seconds=5))
        back = await service.worker_status(conn, "W1", WorkerStatus.AVAILABLE, actor="worker:W1")
        assert (back.status, back.status_note) == ("available", "")
    # W2 and W3 hold the first two offers: the quiet W1 is passed over for W4
    assert third == ("W1" if heard_between else "W4")


async def test_a_worker_who_answered_in_between_is_not_set_aside(db_url: str) -> None:
    a, b, c = await seed(db_url, residents=[HOME, east(0.1), east(0.2)], now=T0,
                         workers=WORKERS)  # fmt: skip
    assign = AssignSettings()
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        alerts = [await open_alert(db_url, rid, at=T0) for rid in (a, b, c)]
        first = (await service.dispatch_alert(conn, alerts[0], actor="dispatcher", now=T0)).order
        t = T0 + timedelta(seconds=61)
        await timers.expire_and_reoffer(conn, now=t, assign=assign)  # missed
        second = (await service.dispatch_alert(conn, alerts[1], actor="dispatcher", now=t)).order
        assert second.worker_id == "W1"
        await service.reject(conn, second.id, worker_id="W1", actor="worker:W1", now=t)
        third = (await service.dispatch_alert(conn, alerts[2], actor="dispatcher", now=t)).order
        assert third.worker_id == "W1"
        t += timedelta(seconds=61)
        await timers.expire_and_reoffer(conn, now=t, assign=assign)  # missed, after a no
        assert first.id != third.id
    assert await _status(db_url) == "available"
