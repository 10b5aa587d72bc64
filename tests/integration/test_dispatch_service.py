"""The dispatch service with virtual workers over a real broker and database: a raised
critical alert becomes an offer on the worker's topic, the virtual worker accepts, travels,
checks in and out by MQTT, and the alert ends resolved; every change is published."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import psycopg

from dispatch.runner import DispatchRunner
from dispatch.service import book_order
from eldercare.topics import ALERTS, DISPATCH, worker_topic
from simulators.workers import Behaviour, VirtualWorkers, seed_workers
from tests.conftest import Broker
from tests.integration.dispatch_support import HOME, east, open_alert, seed, settings_for
from tests.support import eventually, scalar

CARE = frozenset({"caregiver"})


@contextlib.asynccontextmanager
async def running(*services: DispatchRunner | VirtualWorkers) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(stop)) for s in services]
    try:
        for s, t in zip(services, tasks, strict=True):
            waiter = asyncio.create_task(s.ready.wait())
            done, _ = await asyncio.wait(
                {waiter, t}, timeout=30, return_when=asyncio.FIRST_COMPLETED
            )
            if t in done:
                t.result()
            assert waiter in done, "service did not start"
        await asyncio.sleep(0.2)  # SUBACKs follow
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def test_alert_to_resolution_through_mqtt(db_url: str, broker: Broker) -> None:
    now = datetime.now(UTC)
    [rid] = await seed(db_url, now=now, residents=[HOME])
    workers = await seed_workers(db_url, [east(0.4)], count=3, now=now, spread_km=0.3, seed=3)
    settings = settings_for(db_url, broker)
    runner = DispatchRunner(settings)
    fast = Behaviour(
        reject_p=0.0, late_p=0.0, think_s=(1, 2), emergency_service_s=(60, 60), time_scale=200.0
    )
    virtual = VirtualWorkers(broker.url, workers, behaviour=fast, seed=1)
    seen: list[dict[str, object]] = []
    alert_moves: list[dict[str, object]] = []
    async with running(runner, virtual), aiomqtt.Client("127.0.0.1", broker.port) as watcher:
        await watcher.subscribe(DISPATCH, qos=1)
        await watcher.subscribe(ALERTS, qos=1)

        async def watch() -> None:
            async for m in watcher.messages:
                with contextlib.suppress(ValueError):  # the test's own "{not json"
                    body = json.loads(bytes(m.payload))  # type: ignore[arg-type]
                    (alert_moves if m.topic.matches(ALERTS) else seen).append(body)

        reader = asyncio.create_task(watch())
        alert_id = await open_alert(db_url, rid, at=now)
        noise = {"kind": "raised", "alert_id": alert_id, "severity": "low", "type": "fall"}
        async with aiomqtt.Client("127.0.0.1", broker.port) as pub:
            await pub.publish(ALERTS, b"{not json", qos=1)  # dropped, not fatal
            await pub.publish(ALERTS, json.dumps(noise).encode(), qos=1)  # not auto-dispatched
            await pub.publish(ALERTS, json.dumps({**noise, "severity": "critical"}).encode(), qos=1)

        async def resolved() -> bool:
            return await scalar(db_url, "SELECT state FROM alerts WHERE id = %s", alert_id) == (
                "resolved"
            )

        await eventually(resolved, timeout=60)
        await eventually(lambda: _kinds_seen(seen, {"completed"}), timeout=20)
        await eventually(lambda: _kinds_seen(alert_moves, {"dispatched", "resolved"}), timeout=20)
        reader.cancel()
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT state, worker_id, arrived_at IS NOT NULL FROM work_orders WHERE alert_id = %s",
            (alert_id,),
        )
        rows = await cur.fetchall()
    assert len(rows) == 1
    assert rows[0][0] == "completed"
    assert rows[0][2]
    kinds = [e["kind"] for e in seen]
    for k in ("created", "offered", "accepted", "en_route", "arrived", "completed"):
        assert k in kinds
    assert virtual.stats.completed == 1
    assert runner.published >= 6
    # the alert's moves that dispatch made are published as the alert's own changes
    moves = {m["kind"]: m for m in alert_moves if m.get("alert_id") == alert_id}
    accepted = next(e for e in seen if e["kind"] == "accepted")
    assert moves["dispatched"]["actor"] == accepted["actor"] == f"worker:{accepted['worker_id']}"
    assert moves["dispatched"]["at"] == accepted["at"]
    assert moves["resolved"]["state"] == "resolved"
    assert moves["resolved"]["outcome"] == "actionable"
    assert str(moves["resolved"]["note"]).startswith("work order ")


async def _kinds_seen(seen: list[dict[str, object]], kinds: set[str]) -> bool:
    return kinds <= {str(e["kind"]) for e in seen}


async def test_alert_closed_before_arrival_cancels_the_order_and_tells_the_worker(
    db_url: str, broker: Broker
) -> None:
    now = datetime.now(UTC)
    [rid] = await seed(db_url, now=now, residents=[HOME], workers=[("W1", east(0.5), CARE)])
    settings = settings_for(db_url, broker)
    runner = DispatchRunner(settings)
    phone: list[dict[str, object]] = []
    async with running(runner), aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(worker_topic("W1", "offers"), qos=1)

        async def listen() -> None:
            async for m in client.messages:
                phone.append(json.loads(bytes(m.payload)))  # type: ignore[arg-type]  # noqa: PERF401

        reader = asyncio.create_task(listen())
        alert_id = await open_alert(db_url, rid, at=now)
        raised = {
            "kind": "raised",
            "alert_id": alert_id,
            "severity": "critical",
            "type": "sos",
            "closed_at": None,
            "state": "open",
        }
        await client.publish(ALERTS, json.dumps(raised).encode(), qos=1)
        await eventually(lambda: _kinds_seen(phone, {"offered"}))
        closed = {
            **raised,
            "kind": "false_alarm",
            "state": "false_alarm",
            "closed_at": datetime.now(UTC).isoformat(),
        }
        await client.publish(ALERTS, json.dumps(closed).encode(), qos=1)
        await eventually(lambda: _kinds_seen(phone, {"cancelled"}))
        reader.cancel()
    state = await scalar(db_url, "SELECT state FROM work_orders WHERE alert_id = %s", alert_id)
    assert state == "cancelled"
    assert await scalar(db_url, "SELECT status FROM service_workers WHERE worker_id = 'W1'") == (
        "available"
    )


async def test_reconnects_after_the_broker_restarts(db_url: str, tmp_path: Path) -> None:
    own = Broker(tmp_path)
    own.start()
    try:
        now = datetime.now(UTC)
        [rid] = await seed(db_url, now=now, residents=[HOME], workers=[("W1", east(0.5), CARE)])
        settings = settings_for(db_url, own)
        runner = DispatchRunner(settings)
        async with running(runner):
            own.stop()
            await eventually(_cleared(runner), timeout=30)  # it noticed
            own.start()
            await eventually(_set(runner), timeout=60)  # and came back
            alert_id = await open_alert(db_url, rid, at=now)
            raised = {
                "kind": "raised",
                "alert_id": alert_id,
                "severity": "critical",
                "type": "sos",
                "closed_at": None,
            }
            async with aiomqtt.Client("127.0.0.1", own.port) as pub:
                await pub.publish(ALERTS, json.dumps(raised).encode(), qos=1)

            async def offered() -> bool:
                return (
                    await scalar(
                        db_url, "SELECT state FROM work_orders WHERE alert_id = %s", alert_id
                    )
                    == "offered"
                )

            await eventually(offered, timeout=30)
    finally:
        own.stop()


def _cleared(runner: DispatchRunner) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not runner.ready.is_set()

    return check


def _set(runner: DispatchRunner) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return runner.ready.is_set()

    return check


async def test_eldercare_workers_simulate_registers_and_stops_cleanly(
    db_url: str, broker: Broker
) -> None:
    await seed(db_url, now=datetime.now(UTC), residents=[HOME, east(1.0)])
    env = {
        **os.environ,
        "ELDERCARE_DATABASE_URL": db_url,
        "ELDERCARE_MQTT_URL": broker.url,
        "ELDERCARE_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eldercare.cli",
        "workers",
        "simulate",
        "--count",
        "3",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def registered() -> bool:
            n = await scalar(
                db_url,
                "SELECT count(*) FROM service_workers WHERE status ="
                " 'available' AND lat IS NOT NULL",
            )
            return n == 3

        await eventually(registered, timeout=60)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]


async def test_alerts_raised_while_the_service_was_down_are_dispatched(
    db_url: str, broker: Broker
) -> None:
    now = datetime.now(UTC)
    rids = await seed(
        db_url,
        now=now,
        residents=[HOME, east(0.2)],
        workers=[("W1", east(0.5), CARE), ("W2", east(0.6), CARE)],
    )
    missed = await open_alert(db_url, rids[0], at=now)
    minor = await open_alert(db_url, rids[1], at=now, type_="low_battery")
    await scalar(db_url, "UPDATE alerts SET severity = 'low' WHERE id = %s RETURNING id", minor)
    settings = settings_for(db_url, broker, dispatch_retry_s=0.3)
    async with running(DispatchRunner(settings)):

        async def offered() -> bool:
            return (
                await scalar(db_url, "SELECT state FROM work_orders WHERE alert_id = %s", missed)
                == "offered"
            )

        await eventually(offered, timeout=30)
    assert await scalar(db_url, "SELECT count(*) FROM work_orders WHERE alert_id = %s", minor) == 0


async def test_a_restart_publishes_what_happened_while_down(db_url: str, broker: Broker) -> None:
    now = datetime.now(UTC)
    [rid] = await seed(db_url, now=now, residents=[HOME])
    settings = settings_for(db_url, broker)
    async with running(DispatchRunner(settings)):
        pass  # the first start marks where publishing begins
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        order, _ = await book_order(
            conn,
            resident_id=rid,
            service_type="welfare_visit",
            window_start=now,
            window_end=now + timedelta(hours=2),
            actor="operator:1",
        )
    seen: list[dict[str, object]] = []
    async with aiomqtt.Client("127.0.0.1", broker.port) as watcher:
        await watcher.subscribe(DISPATCH, qos=1)

        async def watch() -> None:
            async for m in watcher.messages:
                seen.append(json.loads(bytes(m.payload)))  # type: ignore[arg-type]  # noqa: PERF401

        reader = asyncio.create_task(watch())
        restarted = DispatchRunner(settings)
        async with running(restarted):
            await eventually(lambda: _kinds_seen(seen, {"created"}))
        reader.cancel()
    assert [e["order_id"] for e in seen if e["kind"] == "created"] == [order.id]
    assert restarted.published == 1


async def test_eldercare_dispatch_command_serves_and_stops_on_sigterm(
    db_url: str, broker: Broker
) -> None:
    now = datetime.now(UTC)
    [rid] = await seed(db_url, now=now, residents=[HOME], workers=[("W1", east(0.5), CARE)])
    env = {
        **os.environ,
        "ELDERCARE_DATABASE_URL": db_url,
        "ELDERCARE_MQTT_URL": broker.url,
        "ELDERCARE_DISPATCH_CLIENT_ID": f"dispatch-{uuid.uuid4().hex[:6]}",
        "ELDERCARE_DISPATCH_RETRY_S": "0.3",
        "ELDERCARE_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eldercare.cli",
        "dispatch",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        alert_id = await open_alert(db_url, rid, at=now)  # found by the catch-up

        async def offered() -> bool:
            return (
                await scalar(db_url, "SELECT state FROM work_orders WHERE alert_id = %s", alert_id)
                == "offered"
            )

        await eventually(offered, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
