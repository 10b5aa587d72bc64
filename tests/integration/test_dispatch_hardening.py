"""Dispatch against bad messages, closed alerts and operators acting at once.

Found by an audit of the dispatch service on 2026-12-03 (real PostgreSQL and
Mosquitto): one phone's message ended the service; emergencies were offered for
alerts already closed as false alarms; an operator's override gave an emergency to
an off-shift worker for 15 minutes; of operators pressing "dispatch" together all
but one got 409. Each test here failed on the code before.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import aiomqtt
import psycopg
import pytest

from alerts import store as alert_store
from dispatch import service
from dispatch.model import Mode, WorkerStatus
from dispatch.roster import NewWorker, add_workers, set_location, set_status
from dispatch.runner import DispatchRunner
from dispatch.store import DispatchError
from eldercare.topics import ALERTS, worker_topic
from tests.conftest import Broker
from tests.integration.dispatch_support import HOME, east, open_alert, seed, settings_for
from tests.integration.test_dispatch_service import running
from tests.support import eventually, rows, scalar

CARE = frozenset({"caregiver"})
HUGE = b"1" + b"0" * 400  # a JSON integer no float holds


@pytest.mark.parametrize(
    ("channel", "payload"),
    [
        ("location", b'{"lat": ' + HUGE + b', "lon": 120.0}'),
        ("answers", b'{"action": "check_in", "order_id": 1, "lat": ' + HUGE + b', "lon": 1}'),
        ("answers", b"[" * 100_000 + b"]" * 100_000),  # 200 KB, under the broker's limit
    ],
    ids=["location", "check_in", "nested"],
)
async def test_one_bad_message_from_a_phone_stops_nothing(
    db_url: str, broker: Broker, channel: str, payload: bytes
) -> None:
    now = datetime.now(UTC)
    await seed(db_url, now=now, residents=[HOME], workers=[("W1", east(0.5), CARE)])
    runner = DispatchRunner(settings_for(db_url, broker))
    async with running(runner), aiomqtt.Client("127.0.0.1", broker.port) as phone:
        await phone.publish(worker_topic("W1", channel), payload, qos=1)
        # the next message is handled: before, the service had ended on the bad one
        good = json.dumps({"lat": 32.01, "lon": 120.87}).encode()
        await phone.publish(worker_topic("W1", "location"), good, qos=1)

        async def moved() -> bool:
            lat = await scalar(db_url, "SELECT lat FROM service_workers WHERE worker_id = 'W1'")
            return lat is not None and abs(float(lat) - 32.01) < 1e-9

        await eventually(moved, timeout=30)


async def test_an_emergency_whose_alert_closed_meanwhile_is_cancelled_not_offered(
    db_url: str, broker: Broker
) -> None:
    now = datetime.now(UTC)
    [rid] = await seed(db_url, now=now, residents=[HOME])  # nobody on shift: it waits
    settings = settings_for(db_url, broker, dispatch_retry_s=0.3)
    alert_id = await open_alert(db_url, rid, at=now)
    order_state = "SELECT state FROM work_orders WHERE alert_id = %s"
    async with running(DispatchRunner(settings)):

        async def waiting() -> bool:
            return await scalar(db_url, order_state, alert_id) == "created"

        await eventually(waiting, timeout=30)
    # while the service is down, the operator calls it a false alarm and a worker starts
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await alert_store.false_alarm(conn, alert_id, actor="operator:7", at=now, note="mistake")
        await conn.commit()
        await add_workers(conn, [NewWorker("W1", "W1", "D1", CARE, east(0.5), mode=Mode.EBIKE)])
        await set_status(conn, "W1", WorkerStatus.AVAILABLE, now=now)
        await set_location(conn, "W1", east(0.5), now=now)
    async with running(DispatchRunner(settings)):

        async def cancelled() -> bool:
            return await scalar(db_url, order_state, alert_id) == "cancelled"

        await eventually(cancelled, timeout=30)  # before: offered to W1 for a false alarm
    assert await scalar(db_url, "SELECT worker_id FROM work_orders WHERE alert_id = %s",
                        alert_id) is None  # fmt: skip


async def test_a_raised_message_again_after_the_alert_closed_makes_no_new_order(
    db_url: str, broker: Broker
) -> None:
    now = datetime.now(UTC)
    [rid] = await seed(db_url, now=now, residents=[HOME], workers=[("W1", east(0.5), CARE)])
    alert_id = await open_alert(db_url, rid, at=now)
    raised = json.dumps({"kind": "raised", "alert_id": alert_id, "severity": "critical",
                         "type": "fall", "closed_at": None}).encode()  # fmt: skip
    count = "SELECT count(*) FROM work_orders WHERE alert_id = %s AND state = %s"
    runner = DispatchRunner(settings_for(db_url, broker, dispatch_retry_s=30))
    async with running(runner), aiomqtt.Client("127.0.0.1", broker.port) as pub:
        await pub.publish(ALERTS, raised, qos=1)

        async def offered() -> bool:
            return await scalar(db_url, count, alert_id, "offered") == 1

        await eventually(offered, timeout=30)
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            at = datetime.now(UTC)
            change = await alert_store.false_alarm(
                conn, alert_id, actor="operator:7", at=at, note="mistake"
            )
            await conn.commit()
        await pub.publish(ALERTS, json.dumps(change.to_json(), default=str).encode(), qos=1)

        async def cancelled() -> bool:
            return await scalar(db_url, count, alert_id, "cancelled") == 1

        await eventually(cancelled, timeout=30)
        await pub.publish(ALERTS, raised, qos=1)  # at-least-once: the same message again
        # a location behind it, handled in order: the repeat has been handled by then
        await pub.publish(worker_topic("W1", "location"), b'{"lat": 32.02, "lon": 120.86}', qos=1)

        async def after_it() -> bool:
            lat = await scalar(db_url, "SELECT lat FROM service_workers WHERE worker_id = 'W1'")
            return lat is not None and abs(float(lat) - 32.02) < 1e-9

        await eventually(after_it, timeout=30)
    # before: a second order, offered to W1, for the false alarm
    assert await scalar(db_url, "SELECT count(*) FROM work_orders WHERE alert_id = %s",
                        alert_id) == 1  # fmt: skip


async def test_an_operator_assigns_an_emergency_only_as_an_emergency(db_url: str) -> None:
    now = datetime.now(UTC)
    [rid] = await seed(db_url, now=now, residents=[HOME])  # nobody qualified: it waits
    alert_id = await open_alert(db_url, rid, at=now)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        waiting = await service.dispatch_alert(conn, alert_id, actor="operator:1", now=now)
        assert waiting.order.state == "created"
        cleaner = NewWorker("C1", "C1", "D1", frozenset({"cleaning"}), east(0.5), mode=Mode.WALK)
        carer = NewWorker("W2", "W2", "D1", CARE, east(0.8), mode=Mode.EBIKE)
        await add_workers(conn, [cleaner, carer])
        await set_status(conn, "C1", WorkerStatus.OFF_SHIFT, now=now)
        for w in ("C1", "W2"):
            await set_location(conn, w, east(0.5), now=now)
        await set_status(conn, "W2", WorkerStatus.AVAILABLE, now=now)
        # before: offered to the off-shift cleaner, expiring in 900 s (the whole SLA)
        with pytest.raises(DispatchError, match="cannot take"):
            await service.assign_order(conn, waiting.order.id, "C1", actor="operator:1", now=now)
        order = await service.assign_order(conn, waiting.order.id, "W2", actor="operator:1",
                                           now=now)  # fmt: skip
    assert order.worker_id == "W2"
    assert order.offer_expires_at is not None
    assert order.offer_expires_at - now == timedelta(seconds=60)  # an emergency's offer


async def test_operators_dispatching_one_alert_at_once_all_get_its_order(db_url: str) -> None:
    now = datetime.now(UTC)
    workers = [(f"W{i}", east(0.3 + i * 0.2), CARE) for i in range(4)]
    [rid] = await seed(db_url, now=now, residents=[HOME], workers=workers)
    alert_id = await open_alert(db_url, rid, at=now)
    conns = [await psycopg.AsyncConnection.connect(db_url) for _ in range(6)]
    go = asyncio.Event()

    async def press(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> tuple[int, str]:
        await go.wait()
        assignment = await service.dispatch_alert(conn, alert_id, actor="operator:1")
        return assignment.order.id, assignment.order.state

    try:
        presses = [asyncio.create_task(press(c)) for c in conns]
        await asyncio.sleep(0.1)
        go.set()
        # before: all but the first raised InvalidTransition (409 on the console)
        answers = await asyncio.gather(*presses)
    finally:
        for c in conns:
            await c.close()
    assert len(set(answers)) == 1, answers
    assert answers[0][1] == "offered"
    assert await scalar(db_url, "SELECT count(*) FROM work_orders WHERE alert_id = %s",
                        alert_id) == 1  # fmt: skip


async def test_an_accept_sent_while_the_service_restarts_is_applied(
    db_url: str, broker: Broker
) -> None:
    now = datetime.now(UTC)
    workers = [("W1", east(0.5), CARE), ("W2", east(1.5), CARE)]
    [rid] = await seed(db_url, now=now, residents=[HOME], workers=workers)
    settings = settings_for(db_url, broker, dispatch_retry_s=0.5)  # one id, both runs
    alert_id = await open_alert(db_url, rid, at=now)
    offered_to = "SELECT worker_id FROM work_orders WHERE alert_id = %s AND state = %s"
    async with running(DispatchRunner(settings)):  # catches up on the alert: W1 is offered

        async def offered() -> bool:
            return await scalar(db_url, offered_to, alert_id, "offered") == "W1"

        await eventually(offered, timeout=30)
    order_id = await scalar(db_url, "SELECT id FROM work_orders WHERE alert_id = %s", alert_id)
    # the service is restarting; W1's phone accepts, and the broker takes it (QoS 1)
    async with aiomqtt.Client("127.0.0.1", broker.port) as phone:
        accept = json.dumps({"action": "accept", "order_id": order_id}).encode()
        await phone.publish(worker_topic("W1", "answers"), accept, qos=1)
    async with running(DispatchRunner(settings)):  # `eldercare dispatch` started again

        async def accepted() -> bool:
            return await scalar(db_url, offered_to, alert_id, "accepted") == "W1"

        # before: the new process had a new client id and never got the accept
        await eventually(accepted, timeout=30)


async def test_cancelling_a_later_order_leaves_a_worker_on_site_on_site(db_url: str) -> None:
    now = datetime.now(UTC)
    skills = frozenset({"caregiver", "cleaning", "bathing"})
    rids = await seed(db_url, now=now, residents=[HOME, east(1.0)], workers=[("W1", HOME, skills)])
    hour = timedelta(hours=1)
    status = "SELECT status FROM service_workers WHERE worker_id = 'W1'"
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        bath, _ = await service.book_order(conn, resident_id=rids[0], service_type="bathing",
                                           window_start=now, window_end=now + hour,
                                           actor="op", now=now)  # fmt: skip
        await service.assign_order(conn, bath.id, "W1", actor="op", now=now)
        await service.accept(conn, bath.id, worker_id="W1", actor="w", now=now)
        await service.check_in(conn, bath.id, worker_id="W1", lat=HOME.lat, lon=HOME.lon,
                               actor="w", now=now)  # fmt: skip
        later, _ = await service.book_order(conn, resident_id=rids[1], service_type="cleaning",
                                            window_start=now + 3 * hour, window_end=now + 4 * hour,
                                            actor="op", now=now)  # fmt: skip
        await service.assign_order(conn, later.id, "W1", actor="op", now=now)
        assert await scalar(db_url, status) == "on_site"
        await service.cancel_order(conn, later.id, actor="family:1", now=now)
        assert await scalar(db_url, status) == "on_site"  # before: "available"
        await service.check_out(conn, bath.id, worker_id="W1", actor="w", now=now + hour)
    assert await scalar(db_url, status) == "available"  # the order they were on ended


async def emergency_behind(
    db_url: str, broker: Broker, flood: list[tuple[str, bytes]]
) -> DispatchRunner:
    """One phone publishes ``flood``, then a fall is raised on the same stream; the
    emergency must be offered to W1 (the nearer worker) and W1's accept heard. Returns
    the runner, for its counters."""
    now = datetime.now(UTC)
    workers = [("W1", east(0.5), CARE), ("W2", east(0.8), CARE)]
    [rid] = await seed(db_url, now=now, residents=[HOME], workers=workers)
    alert_id = await open_alert(db_url, rid, at=now)
    raised = json.dumps({"kind": "raised", "alert_id": alert_id, "severity": "critical",
                         "type": "fall", "closed_at": None}).encode()  # fmt: skip
    runner = DispatchRunner(settings_for(db_url, broker, dispatch_retry_s=3600))
    order_of = "SELECT id, worker_id, state FROM work_orders WHERE alert_id = %s"
    async with running(runner), aiomqtt.Client("127.0.0.1", broker.port) as phone:
        for topic, payload in flood:
            await phone.publish(topic, payload, qos=1)
        await phone.publish(ALERTS, raised, qos=1)  # behind the flood, on the same stream

        async def in_state(state: str) -> bool:
            found = await rows(db_url, order_of, alert_id)
            return bool(found) and found[0][2] == state

        await eventually(lambda: in_state("offered"), timeout=60)
        [(order, worker, _)] = await rows(db_url, order_of, alert_id)
        assert worker == "W1"
        accept = json.dumps({"order_id": order, "action": "accept"}).encode()
        await phone.publish(worker_topic("W1", "answers"), accept, qos=1)
        await eventually(lambda: in_state("accepted"), timeout=60)
    return runner


async def test_a_phone_flooding_its_location_does_not_hold_up_an_emergency(
    db_url: str, broker: Broker
) -> None:
    where = json.dumps({"lat": 32.0, "lon": 120.86}).encode()
    flood = 5_000
    runner = await emergency_behind(
        db_url, broker, [(worker_topic("W2", "location"), where)] * flood
    )
    # all but about one a second were dropped unread; before, each cost a database write
    assert runner.locations_dropped >= flood // 2


async def test_a_phone_flooding_its_answers_and_status_does_not_hold_up_an_emergency(
    db_url: str, broker: Broker
) -> None:
    """Found by the audit of 2026-12-03: each answer or status change cost a database
    write on the one stream, so 5,000 of them from one phone held an emergency up. Only
    that phone's topics are throttled: W1's accept is heard."""
    answer = json.dumps({"order_id": 999_999, "action": "reject"}).encode()
    status = json.dumps({"status": "available"}).encode()
    flood = 2_500
    pair = [(worker_topic("W2", "answers"), answer), (worker_topic("W2", "status"), status)]
    runner = await emergency_behind(db_url, broker, pair * flood)
    # all but a burst and about one a second were dropped unread
    assert runner.answers_dropped >= flood
