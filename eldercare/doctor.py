"""`eldercare doctor`: what the platform is connected to, and which storage path."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import psycopg

from eldercare.db import storage_path
from eldercare.mqtt_client import aiomqtt_client
from eldercare.settings import MqttEndpoint, Settings

MQTT_TIMEOUT_S = 5.0  # TCP connect and CONNACK together


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
        report["mqtt"] = await mqtt_check(settings.mqtt(), protocol=settings.mqtt_protocol)
    return report


async def mqtt_check(
    endpoint: MqttEndpoint, *, protocol: str, timeout_s: float = MQTT_TIMEOUT_S
) -> str:
    """A real MQTT CONNECT with the configured credentials, then DISCONNECT.

    ``connected ...`` when the broker accepted (CONNACK 0), ``refused ...`` with the
    CONNACK reason when it answered but said no (wrong password, not authorised),
    ``unreachable ...`` when nothing answered. A bare TCP connect (before 2026-12-04)
    called a broker that refuses the platform's credentials "reachable".
    """
    where = f"{endpoint.host}:{endpoint.port}"
    as_user = f", as {endpoint.username}" if endpoint.username else ", anonymous"
    version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
    client = aiomqtt_client(
        endpoint,
        identifier=f"eldercare-doctor-{uuid.uuid4().hex[:8]}",
        protocol=version,
        timeout=timeout_s,
    )
    try:
        async with asyncio.timeout(timeout_s):
            async with client:
                pass
    except aiomqtt.MqttCodeError as exc:
        return f"refused by {where} (MQTT {protocol}{as_user}): {exc}"
    except aiomqtt.MqttError as exc:
        return f"unreachable: {where}: {exc}"
    except TimeoutError:
        return f"unreachable: {where}: no CONNACK within {timeout_s:g} s"
    return f"connected to {where} (MQTT {protocol}{as_user})"


def healthy(report: dict[str, str]) -> bool:
    """What ``eldercare doctor`` exits 0 for: the database reachable and migrated, and
    the broker accepting the configured credentials if one is configured (a health
    check can rely on the status)."""
    mqtt = report.get("mqtt", "")
    return (
        report.get("database") == "ok"
        and not report.get("storage_path", "").startswith("not migrated")
        and (mqtt.startswith("connected") or mqtt.startswith("not configured"))
    )
