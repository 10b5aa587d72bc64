"""`eldercare demo` against real services (ELDERCARE_DATABASE_URL, ELDERCARE_MQTT_URL).

Until 2026-12-04 a second demo on the same database ended in a UniqueViolation
traceback (external_ref sim:DEMO-000000), and the demo's accounts (demo-admin ...)
stayed in that database with working passwords after it stopped. Now a database
that holds an earlier demo's residents is refused before anything is written, and
the demo disables its accounts when it stops.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import psycopg
import pytest

from api.security import verify_password
from simulators.fleet import Fleet
from tests.conftest import Broker, free_port, running_broker


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of the test's own: the demo's bands publish retained statuses (as real
    bands do); the demo deletes them when it stops, but one that fails half-way may not,
    and on the session's broker every later ingest test read them as messages from
    unregistered bands."""
    with running_broker(tmp_path) as b:
        yield b


def run_demo(db_url: str, mqtt_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env |= {"ELDERCARE_DATABASE_URL": db_url, "ELDERCARE_MQTT_URL": mqtt_url}
    return subprocess.run(
        [sys.executable, "-m", "eldercare.cli", "demo", "--bands", "2", *args],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def count(db_url: str, sql: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def test_a_database_with_an_earlier_demo_is_refused_before_anything_is_written(
    db_url: str, own_broker: Broker
) -> None:
    asyncio.run(Fleet.create(seed=1, bands=2, prefix="DEMO").register(db_url))  # an earlier demo
    done = run_demo(db_url, own_broker.url, "--api-port", "0", "--duration", "5")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "already holds 2 residents of an earlier demo" in done.stderr
    assert "Traceback" not in done.stderr
    assert count(db_url, "SELECT count(*) FROM residents") == 2
    assert count(db_url, "SELECT count(*) FROM service_workers") == 0


def test_the_demo_disables_its_accounts_when_it_stops(db_url: str, own_broker: Broker) -> None:
    done = run_demo(db_url, own_broker.url, "--api-port", str(free_port()), "--duration", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    printed = dict(re.findall(r"^\s+\w+\s+(demo-\w+)\s+(\S+)\s+->", done.stdout, re.MULTILINE))
    assert set(printed) == {"demo-admin", "demo-operator", "demo-family", "demo-worker"}
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT username, password_hash, disabled_at IS NOT NULL FROM users"
            " WHERE username LIKE 'demo-%'"
        ).fetchall()
    assert {name for name, _, _ in rows} == set(printed)
    for name, password_hash, disabled in rows:
        assert verify_password(printed[name], password_hash)  # the printed password ...
        assert disabled, name  # ... of an account that no longer signs in
    assert "disabled when the demo stops" in done.stdout  # and the demo says so
    # and its bands' retained statuses are gone from the broker (before 2026-12-04 they
    # stayed, and an ingest on another database dead-lettered each as an unknown band)
    assert asyncio.run(retained_statuses(own_broker)) == []


async def retained_statuses(broker: Broker) -> list[str]:
    """The device status topics holding a retained message on ``broker``: they arrive on
    subscribing, before a message published after the subscription."""
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe("eldercare/v1/devices/+/status", qos=1)
        await client.subscribe("test/marker", qos=1)
        await client.publish("test/marker", b"end", qos=1)
        got = []
        async for m in client.messages:
            if str(m.topic) == "test/marker":
                return got
            if m.retain:
                got.append(str(m.topic))
    return got
