"""The retry timer reaches every emergency waiting for a worker, not only the first
in queue: those first may be ones nobody can take now (dispatch/rotation.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from dispatch import service, timers
from dispatch.assign import AssignSettings
from dispatch.model import WorkerStatus
from dispatch.roster import set_status
from dispatch.rotation import Rotation
from eldercare.settings import Settings
from tests.integration.dispatch_support import east, open_alert, seed
from tests.support import rows

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
CARE = frozenset({"caregiver"})
DECLINED = 60  # more than a retry visited before 2026-12-04 (50)


async def test_an_emergency_behind_many_declined_ones_is_offered(db_url: str) -> None:
    """A surge: 60 emergencies the one worker nearby has just declined (cooling down for
    10 minutes), then one more raised while that worker was off shift. When the worker
    is back, the retry offers them the one they have not declined. Before 2026-12-04
    the retry visited only the first 50 in queue order, all declined, every time."""
    homes = [east(0.01 * i) for i in range(DECLINED + 1)]
    rids = await seed(db_url, now=T0, residents=homes, workers=[("W1", east(0.5), CARE)])
    assign = AssignSettings()
    settings = Settings(environment="test", database_url=db_url)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        for rid in rids[:DECLINED]:
            alert_id = await open_alert(db_url, rid, at=T0)
            order = (await service.dispatch_alert(conn, alert_id, actor="dispatcher", now=T0)).order
            assert order.worker_id == "W1"
            await service.reject(conn, order.id, worker_id="W1", actor="worker:W1", now=T0)
        await set_status(conn, "W1", WorkerStatus.OFF_SHIFT, now=T0)
        last_alert = await open_alert(db_url, rids[-1], at=T0)
        last = (await service.dispatch_alert(conn, last_alert, actor="dispatcher", now=T0)).order
        assert last.state == "created"  # nobody on shift
        t = T0 + timedelta(minutes=1)
        await set_status(conn, "W1", WorkerStatus.AVAILABLE, now=t)
        rotation = Rotation()
        for i in range(3):  # three retries, 30 s apart: still inside the declines' cool-down
            at = t + timedelta(seconds=30 * i)
            await timers.retry_waiting(
                conn, now=at, settings=settings, assign=assign, rotation=rotation
            )
    offered = await rows(
        db_url, "SELECT alert_id FROM work_orders WHERE state = 'offered' AND worker_id = 'W1'"
    )
    assert offered == [(last_alert,)]
    waiting = await rows(db_url, "SELECT count(*) FROM work_orders WHERE state = 'created'")
    assert waiting == [(DECLINED,)]  # the declined ones wait for the cool-down
