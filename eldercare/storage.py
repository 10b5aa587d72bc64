"""Storage upkeep for both paths: TimescaleDB policies, or daily partitions and
retention on plain PostgreSQL. Retention has the same meaning on both paths:
raw telemetry older than ``raw_retention_days`` is dropped, hourly rollups are
kept for ``rollup_retention_days``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from eldercare.db import StoragePath, storage_path
from eldercare.logs import get_logger

log = get_logger(__name__)
_MAINTENANCE_LOCK = 0x0E1DE2CA13


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    raw_days: int
    compress_after_days: int
    rollup_days: int
    imu_days: int
    partitions_ahead_days: int


def partition_name(day: date) -> str:
    return f"telemetry_p{day:%Y%m%d}"


def partitions_to_drop(existing: list[date], *, today: date, keep_days: int) -> list[date]:
    """Days whose whole partition lies before the retention horizon (pure)."""
    horizon = today - timedelta(days=keep_days)
    return sorted(d for d in existing if d < horizon)


async def existing_partitions(conn: psycopg.AsyncConnection[TupleRow]) -> set[date]:
    cur = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'telemetry'"
    )
    days: set[date] = set()
    for (relname,) in await cur.fetchall():
        name = str(relname)
        if name.startswith("telemetry_p") and len(name) == 19:
            days.add(datetime.strptime(name[11:], "%Y%m%d").replace(tzinfo=UTC).date())
    return days


async def ensure_partitions(conn: psycopg.AsyncConnection[TupleRow], days: set[date]) -> None:
    """Create the daily partitions that are missing (idempotent, safe across processes).

    On the TimescaleDB path the hypertable makes its own chunks: nothing to do.
    """
    if days and await storage_path(conn) is StoragePath.TIMESCALE:
        return
    for day in sorted(days):
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF telemetry FOR VALUES FROM ({}) TO ({})"
            ).format(sql.Identifier(partition_name(day)), sql.Literal(start), sql.Literal(end))
        )
    await conn.commit()


async def apply_timescale_policies(
    conn: psycopg.AsyncConnection[TupleRow], policy: RetentionPolicy
) -> None:
    """(Re)set compression, retention and continuous-aggregate policies from Settings."""
    statements: list[tuple[str, tuple[object, ...]]] = [
        ("SELECT remove_compression_policy('telemetry', if_exists => true)", ()),
        (
            "SELECT add_compression_policy('telemetry', %s::interval)",
            (timedelta(days=policy.compress_after_days),),
        ),
        ("SELECT remove_retention_policy('telemetry', if_exists => true)", ()),
        (
            "SELECT add_retention_policy('telemetry', %s::interval)",
            (timedelta(days=policy.raw_days),),
        ),
        ("SELECT remove_continuous_aggregate_policy('vitals_hourly', if_exists => true)", ()),
        (
            "SELECT add_continuous_aggregate_policy('vitals_hourly', start_offset => %s::interval,"
            " end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes')",
            (timedelta(days=min(policy.raw_days, 7)),),
        ),
        ("SELECT remove_retention_policy('vitals_hourly', if_exists => true)", ()),
        (
            "SELECT add_retention_policy('vitals_hourly', %s::interval)",
            (timedelta(days=policy.rollup_days),),
        ),
    ]
    for statement, params in statements:
        await conn.execute(statement, params)
    await conn.commit()


async def maintain(
    conn: psycopg.AsyncConnection[TupleRow],
    path: StoragePath,
    policy: RetentionPolicy,
    *,
    now: datetime,
) -> dict[str, int]:
    """One round of upkeep; only one process does it at a time. Returns what it did."""
    cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_MAINTENANCE_LOCK,))
    row = await cur.fetchone()
    if row is None or not row[0]:
        await conn.rollback()
        return {}
    done = {"partitions_created": 0, "partitions_dropped": 0, "rollups_deleted": 0}
    imu = await conn.execute(
        "DELETE FROM imu_windows WHERE time < %s", (now - timedelta(days=policy.imu_days),)
    )
    done["imu_deleted"] = imu.rowcount
    if path is StoragePath.PLAIN:
        today = now.date()
        existing = await existing_partitions(conn)
        ahead = {today + timedelta(days=i) for i in range(-1, policy.partitions_ahead_days + 1)}
        missing = ahead - existing
        for day in partitions_to_drop(sorted(existing), today=today, keep_days=policy.raw_days):
            await conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(partition_name(day)))
            )
            done["partitions_dropped"] += 1
        old = await conn.execute(
            "DELETE FROM vitals_hourly WHERE bucket < %s",
            (now - timedelta(days=policy.rollup_days),),
        )
        done["rollups_deleted"] = old.rowcount
        await conn.commit()
        await ensure_partitions(conn, missing)
        done["partitions_created"] = len(missing)
    else:
        await conn.commit()
    if any(done.values()):
        log.info("storage_maintained", path=path.value, **done)
    return done
