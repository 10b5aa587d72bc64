"""Helpers for API tests: a database seeded with two districts and a user of every role,
and the app served through httpx's ASGI transport with its lifespan running."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from fastapi import FastAPI
from psycopg.types.json import Jsonb

from api.app import create_app
from api.identity import create_user
from api.principal import Role
from eldercare.registry import EmergencyContact, NewResident, add_residents
from eldercare.settings import Settings
from eldercare.storage import ensure_partitions

DISTRICT_A = "Rucheng"
DISTRICT_B = "Chengnan"
ROLES = ("admin", "supervisor", "operator", "operator_b", "worker", "family", "family_b")


@dataclass
class Seed:
    residents: dict[str, int] = field(default_factory=dict)  # a1, a2 (district A), b1 (B)
    alerts: dict[str, int] = field(default_factory=dict)  # a1, b1: one open alert each
    users: dict[str, int] = field(default_factory=dict)


def password(name: str) -> str:
    return f"pw-{name}-long-enough"


async def seed(db_url: str, *, now: datetime | None = None) -> Seed:
    now = now or datetime.now(UTC)
    s = Seed()
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        ids = await add_residents(
            conn,
            [
                NewResident(
                    name="Wang Fang",
                    birth_year=1938,
                    district=DISTRICT_A,
                    home_lat=32.3812,
                    home_lon=120.5634,
                    living_alone=True,
                    conditions=("hypertension",),
                    emergency_contacts=(EmergencyContact("Wang Lei", "son", "138"),),
                ),
                NewResident(name="Li Na", birth_year=1941, district=DISTRICT_A),
                NewResident(name="Zhao Min", birth_year=1936, district=DISTRICT_B),
            ],
        )
        s.residents = dict(zip(("a1", "a2", "b1"), ids, strict=True))
        await conn.execute(
            "INSERT INTO device_state (device_id, resident_id, last_seen, vitals_at, hr, spo2,"
            " bp_sys, bp_dia, skin_temp_c, steps_at, steps, battery_at, battery_pct, worn_at,"
            " worn, loc_at, lat, lon, loc_acc_m) VALUES ('WB-A1', %s, %s, %s, 72, 97, 128, 80,"
            " 33.5, %s, 1234, %s, 80, %s, true, %s, 32.381234, 120.563456, 8)",
            (s.residents["a1"], now, now, now, now, now, now),
        )
        await ensure_partitions(conn, {(now - timedelta(hours=h)).date() for h in range(4)})
        for minutes in range(0, 180, 1):
            await conn.execute(
                "INSERT INTO telemetry (time, device_id, seq, resident_id, hr, spo2, steps,"
                " battery_pct, worn) VALUES (%s, 'WB-A1', %s, %s, %s, 97, %s, 90, true)",
                (
                    now - timedelta(minutes=minutes),
                    minutes,
                    s.residents["a1"],
                    60 + minutes % 20,
                    1000 - minutes,
                ),
            )
        for key in ("a1", "b1"):
            cur = await conn.execute(
                "INSERT INTO alerts (resident_id, device_id, type, severity, opened_at,"
                " updated_at, detail) VALUES (%s, NULL, 'sos', 'critical', %s, %s, %s)"
                " RETURNING id",
                (s.residents[key], now, now, Jsonb({})),
            )
            row = await cur.fetchone()
            assert row is not None
            s.alerts[key] = int(row[0])
            await conn.execute(
                "INSERT INTO alert_transitions (alert_id, at, to_state, actor, note)"
                " VALUES (%s, %s, 'open', 'engine', 'raised')",
                (s.alerts[key], now),
            )
        users: dict[str, dict[str, object]] = {
            "admin": {"role": Role.ADMIN},
            "supervisor": {"role": Role.SUPERVISOR, "district": DISTRICT_A},
            "operator": {"role": Role.OPERATOR, "district": DISTRICT_A},
            "operator_b": {"role": Role.OPERATOR, "district": DISTRICT_B},
            "worker": {"role": Role.WORKER, "worker_id": "1"},
            "family": {"role": Role.FAMILY, "resident_ids": [s.residents["a1"]]},
            "family_b": {"role": Role.FAMILY, "resident_ids": [s.residents["b1"]]},
        }
        for name, kw in users.items():
            s.users[name] = await create_user(
                conn,
                username=name.replace("_", "-"),
                password=password(name),
                **kw,  # type: ignore[arg-type]
            )
        await conn.commit()
    return s


def api_settings(db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": db_url,
        "mqtt_url": None,
        "db_pool_max": 4,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield app, client


async def login(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    r = await client.post(
        "/auth/token", data={"username": name.replace("_", "-"), "password": password(name)}
    )
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[FastAPI, str]]:
    """The app under uvicorn on a free loopback port: (app, base URL)."""
    from api.cli import serving
    from tests.conftest import free_port

    app = create_app(settings)
    async with serving(app, port=free_port(), stop_timeout_s=20) as base:
        yield app, base
