"""`eldercare doctor`: what the platform is connected to, and which storage path."""

from __future__ import annotations

import socket

import psycopg

from eldercare.db import storage_path
from eldercare.settings import Settings


async def doctor(settings: Settings) -> dict[str, str]:
    report: dict[str, str] = {}
    if not settings.database_url:
        report["database"] = "not configured (ELDERCARE_DATABASE_URL)"
    else:
        try:
            async with await psycopg.AsyncConnection.connect(
                settings.database_url, connect_timeout=5
            ) as conn:
                cur = await conn.execute("SHOW server_version")
                row = await cur.fetchone()
                report["database"] = "ok"
                report["postgresql"] = str(row[0]) if row else "?"
                cur = await conn.execute(
                    "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
                )
                ext = await cur.fetchone()
                report["timescaledb"] = str(ext[0]) if ext else "not installed in this database"
                try:
                    path = await storage_path(conn)
                    report["storage_path"] = path.value + (
                        " (hypertable, compression, retention, continuous aggregates)"
                        if ext
                        else " (native partitioning, service-maintained rollups)"
                    )
                except (RuntimeError, psycopg.errors.UndefinedTable):
                    await conn.rollback()
                    report["storage_path"] = "not migrated: run `eldercare migrate`"
                    return report
                for table in ("residents", "wristbands", "device_state", "dead_letters"):
                    cur = await conn.execute(f"SELECT count(*) FROM {table}")
                    n = await cur.fetchone()
                    report[table] = str(n[0]) if n else "?"
        except psycopg.Error as exc:
            report["database"] = f"unreachable: {str(exc).splitlines()[0]}"
    if not settings.mqtt_url:
        report["mqtt"] = "not configured (ELDERCARE_MQTT_URL)"
    else:
        endpoint = settings.mqtt()
        try:
            with socket.create_connection((endpoint.host, endpoint.port), timeout=3):
                report["mqtt"] = f"reachable at {endpoint.host}:{endpoint.port}"
        except OSError as exc:
            report["mqtt"] = f"unreachable: {exc}"
    return report


def healthy(report: dict[str, str]) -> bool:
    """What ``eldercare doctor`` exits 0 for: the database reachable and migrated, and
    the broker reachable if one is configured (a health check can rely on the status)."""
    return (
        report.get("database") == "ok"
        and not report.get("storage_path", "").startswith("not migrated")
        and not report.get("mqtt", "").startswith("unreachable")
    )
