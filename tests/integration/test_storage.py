"""Storage on both paths: migrations, partitions and retention (plain PostgreSQL)
or TimescaleDB policies, and `eldercare doctor` saying which path it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from eldercare.db import StoragePath, storage_path
from eldercare.doctor import doctor, healthy
from eldercare.migrate import migrate, migrations_for
from eldercare.settings import Settings
from eldercare.storage import RetentionPolicy, ensure_partitions, existing_partitions, maintain
from ingest.service import prepare_database
from tests.conftest import Broker, create_database, drop_database

POLICY = RetentionPolicy(raw_days=30, compress_after_days=7, rollup_days=400, imu_days=90,
                         partitions_ahead_days=3)  # fmt: skip


async def _path(db_url: str) -> StoragePath:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        return await storage_path(conn)


async def test_migrations_are_idempotent(db_url: str) -> None:
    path, applied = migrate(db_url)
    assert applied == []
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        versions = [r[0] for r in await cur.fetchall()]
    assert versions == [m.version for m in migrations_for(path)]


async def test_plain_path_creates_partitions_ahead_and_drops_them_past_retention(
    db_url: str,
) -> None:
    if await _path(db_url) is not StoragePath.PLAIN:
        pytest.skip("TimescaleDB path: retention is a TimescaleDB policy")
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await maintain(conn, StoragePath.PLAIN, POLICY, now=now)
        days = await existing_partitions(conn)
        wanted = {(now + timedelta(days=d)).date() for d in range(-1, 4)}
        assert wanted <= days
        old = (now - timedelta(days=45)).date()
        await ensure_partitions(conn, {old})
        await conn.execute(
            "INSERT INTO telemetry (time, device_id, seq, hr)"
            " VALUES (%s, 'X', 1, 70), (%s, 'X', 2, 71)",
            (now - timedelta(days=45), now),
        )
        await conn.execute(
            "INSERT INTO vitals_hourly VALUES (1, %s, 1, 1, 70, 70, 70, 0, 0, NULL, NULL,"
            " 0, 0, NULL, NULL, 0, 0, NULL, NULL, 0, 0, NULL, NULL, NULL)",
            (now - timedelta(days=500),),
        )
        await conn.commit()
        done = await maintain(conn, StoragePath.PLAIN, POLICY, now=now)
        assert done["partitions_dropped"] == 1
        assert done["rollups_deleted"] == 1
        assert old not in await existing_partitions(conn)
        cur = await conn.execute("SELECT seq FROM telemetry")
        assert [r[0] for r in await cur.fetchall()] == [2]  # the recent reading stays


async def test_timescale_path_sets_compression_retention_and_aggregate_policies(
    db_url: str,
) -> None:
    if await _path(db_url) is not StoragePath.TIMESCALE:
        pytest.skip("plain PostgreSQL path: no TimescaleDB here")
    settings = Settings(database_url=db_url, raw_retention_days=21, compress_after_days=3)
    await prepare_database(settings)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs"
            " WHERE hypertable_name IN ('telemetry', 'vitals_hourly')"
            " OR proc_name = 'policy_refresh_continuous_aggregate'"
        )
        jobs = {(r[0], r[1]): r[2] for r in await cur.fetchall()}
    assert jobs[("policy_compression", "telemetry")]["compress_after"] == "3 days"
    assert jobs[("policy_retention", "telemetry")]["drop_after"] == "21 days"
    assert any(p == "policy_refresh_continuous_aggregate" for p, _ in jobs)


async def test_doctor_names_the_storage_path(db_url: str) -> None:
    report = await doctor(Settings(database_url=db_url, mqtt_url=None))
    assert report["database"] == "ok"
    path = await _path(db_url)
    assert report["storage_path"].startswith(path.value)
    assert report["mqtt"].startswith("not configured")


async def test_doctor_is_healthy_only_when_what_is_configured_answers(
    db_url: str, broker: Broker
) -> None:
    assert healthy(await doctor(Settings(database_url=db_url, mqtt_url=broker.url)))
    assert healthy(await doctor(Settings(database_url=db_url, mqtt_url=None)))
    assert not healthy(await doctor(Settings(database_url=db_url, mqtt_url="mqtt://127.0.0.1:1")))
    assert not healthy(await doctor(Settings(database_url=None, mqtt_url=broker.url)))
    unmigrated = create_database()
    try:
        report = await doctor(Settings(database_url=unmigrated, mqtt_url=broker.url))
        assert report["storage_path"].startswith("not migrated")
        assert not healthy(report)
    finally:
        drop_database(unmigrated)
