"""Load the running API over HTTP: the family status view and the operators' alert list.

Starts the API as ONE uvicorn worker process (uvloop, httptools) against a
freshly seeded database, logs in family members and an operator, then drives
each endpoint with concurrent keep-alive HTTP/1.1 clients (raw asyncio
sockets, so the load generator costs little CPU next to the server on the
same machine). Reports requests per second and latency percentiles; the last
line of stdout is one JSON object.

    .venv/bin/python bench/api.py [--residents 2000] [--connections 32] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.identity import create_user
from api.principal import Role
from bench.common import (
    cpu_seconds,
    drop_database,
    free_port,
    fresh_database,
    percentile,
    postgres_cpu_seconds,
)
from dispatch.model import load_catalogue
from dispatch.roster import sync_catalogue
from eldercare.migrate import migrate

DISTRICTS = ("Rucheng", "Chengnan", "Dongchen", "Dingyan", "Baipu")
PASSWORD = secrets.token_urlsafe(12)  # a throwaway database's users


async def seed(url: str, *, residents: int, families: int) -> list[int]:
    """Residents with a band's latest state, open and closed alerts, a past and an
    upcoming service each, and users."""
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await sync_catalogue(conn, load_catalogue())
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO residents (name, birth_year, district, home_lat, home_lon,"
                " conditions) VALUES (%s, %s, %s, %s, %s, %s)",
                [(f"Resident {i}", 1935 + i % 20, DISTRICTS[i % 5], 32.38, 120.56,
                  ["hypertension"] if i % 3 == 0 else []) for i in range(residents)],
            )  # fmt: skip
            cur2 = await conn.execute("SELECT resident_id FROM residents ORDER BY resident_id")
            ids = [int(r[0]) for r in await cur2.fetchall()]
            await cur.executemany(
                "INSERT INTO device_state (device_id, resident_id, last_seen, vitals_at, hr, spo2,"
                " bp_sys, skin_temp_c, steps_at, steps, battery_pct, worn, loc_at, lat, lon,"
                " loc_acc_m) VALUES (%s, %s, %s, %s, %s, 97, 125, 33.1, %s, 800, 70, true, %s,"
                " 32.381, 120.563, 10)",
                [(f"WB{rid:06d}", rid, now, now, 60 + rid % 40, now, now) for rid in ids],
            )
            rows = []
            for k, rid in enumerate(ids):
                for j in range(3):  # history: closed alerts
                    at = now - timedelta(days=j + 1, minutes=k % 60)
                    rows.append((rid, f"type{j}", "medium", "resolved", at, at, at))
                if k % 10 == 0:  # 10 % of residents have an open alert
                    rows.append((rid, "sos", "critical", "open", now, now, None))
            await cur.executemany(
                "INSERT INTO alerts (resident_id, type, severity, state, opened_at, updated_at,"
                " closed_at, outcome) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(*r, None if r[6] is None else "actionable") for r in rows],
            )
            # services: one past (completed) and one upcoming (booked) order per resident
            await cur.executemany(
                "INSERT INTO work_orders (kind, resident_id, service_type, district, state,"
                " window_start, window_end, duration_min, outcome, created_by, created_at,"
                " updated_at, completed_at) VALUES ('booked', %s, 'cleaning', %s, %s, %s, %s, 90,"
                " %s, 'bench', %s, %s, %s)",
                [row for k, rid in enumerate(ids) for row in (
                    (rid, DISTRICTS[k % 5], "completed", now - timedelta(days=2),
                     now - timedelta(days=2, hours=-3), "done", now, now, now - timedelta(days=2)),
                    (rid, DISTRICTS[k % 5], "created", now + timedelta(days=1),
                     now + timedelta(days=1, hours=3), None, now, now, None))],
            )  # fmt: skip
        await conn.commit()
        await create_user(conn, username="operator", password=PASSWORD, role=Role.OPERATOR,
                          district=DISTRICTS[0])  # fmt: skip
        for i in range(families):
            await create_user(conn, username=f"family{i}", password=PASSWORD, role=Role.FAMILY,
                              resident_ids=[ids[i]])  # fmt: skip
        await conn.commit()
        await conn.execute("ANALYZE")
        await conn.commit()
    return ids


def start_api(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ELDERCARE_DATABASE_URL": url,
        "ELDERCARE_ENVIRONMENT": "production",
        "ELDERCARE_API_SECRET_KEY": secrets.token_urlsafe(32),
        "ELDERCARE_LOG_LEVEL": "WARNING",
        "ELDERCARE_LOG_JSON": "true",
        "ELDERCARE_DB_POOL_MAX": os.environ.get("ELDERCARE_DB_POOL_MAX", "8"),
    }
    env.pop("ELDERCARE_MQTT_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.asgi:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--loop", "uvloop", "--http", "httptools",
         "--no-access-log", "--log-level", "warning"],
        env=env, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if proc.poll() is not None:
            raise RuntimeError("the API exited at start")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the API did not start")


def request_bytes(path: str, token: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Accept: application/json\r\n\r\n").encode()  # fmt: skip


async def one_client(port: int, requests: list[bytes], *, offset: int, stop_at: float,
                     record_from: float, latencies: list[float],
                     errors: list[int]) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while (start := time.perf_counter()) < stop_at:
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if start >= record_from:
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


async def load(port: int, requests: list[bytes], *, connections: int, duration: float,
               warmup: float) -> dict[str, float]:  # fmt: skip
    latencies: list[float] = []
    errors: list[int] = []
    now = time.perf_counter()
    record_from, stop_at = now + warmup, now + warmup + duration
    await asyncio.gather(*(one_client(port, requests, offset=k * 7, stop_at=stop_at,
                                      record_from=record_from, latencies=latencies,
                                      errors=errors) for k in range(connections)))  # fmt: skip
    ms = [x * 1000 for x in latencies]
    return {
        "rps": round(len(latencies) / duration, 1),
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "errors": len(errors),
        "requests": len(latencies),
    }


def login(base: str, username: str) -> str:
    r = httpx.post(f"{base}/auth/token", data={"username": username, "password": PASSWORD})
    r.raise_for_status()
    return str(r.json()["access_token"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--families", type=int, default=64)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--profile", default=None,
                        help="py-spy (if installed) samples the API during the status load"
                        " into this file (collapsed stacks)")  # fmt: skip
    args = parser.parse_args()

    url = fresh_database("ec_bench_api")
    try:
        migrate(url)
        ids = asyncio.run(seed(url, residents=args.residents, families=args.families))
        port = free_port()
        api = start_api(url, port)
        base = f"http://127.0.0.1:{port}"
        try:
            family = [(ids[i], login(base, f"family{i}")) for i in range(args.families)]
            operator = login(base, "operator")
            status_reqs = [request_bytes(f"/residents/{rid}/status", tok) for rid, tok in family]
            alert_reqs = [request_bytes("/alerts?state=open&limit=50", operator)]
            spy = None
            if args.profile:
                spy = subprocess.Popen(["py-spy", "record", "--pid", str(api.pid), "--format",
                                        "raw", "-o", args.profile, "-d",
                                        str(int(args.duration + args.warmup)), "-r", "200"],
                                       stdout=subprocess.DEVNULL)  # fmt: skip
            cpu0, pg0 = cpu_seconds(api.pid), postgres_cpu_seconds()
            status = asyncio.run(load(port, status_reqs, connections=args.connections,
                                      duration=args.duration, warmup=args.warmup))  # fmt: skip
            cpu1, pg1 = cpu_seconds(api.pid), postgres_cpu_seconds()
            if spy is not None:
                spy.wait(60)
            alerts = asyncio.run(load(port, alert_reqs, connections=args.connections,
                                      duration=args.duration, warmup=args.warmup))  # fmt: skip
            cpu2, pg2 = cpu_seconds(api.pid), postgres_cpu_seconds()
        finally:
            api.terminate()
            api.wait(20)
        span = args.duration + args.warmup
        print(
            f"family status: {status}  api cpu {(cpu1 - cpu0) / span:.2f} cores,"
            f" postgres {(pg1 - pg0) / span:.2f} cores"
        )
        print(
            f"alert list:    {alerts}  api cpu {(cpu2 - cpu1) / span:.2f} cores,"
            f" postgres {(pg2 - pg1) / span:.2f} cores"
        )
        result = {
            "status_rps": status["rps"], "status_p50_ms": status["p50_ms"],
            "status_p99_ms": status["p99_ms"], "status_errors": status["errors"],
            "alerts_rps": alerts["rps"], "alerts_p50_ms": alerts["p50_ms"],
            "alerts_p99_ms": alerts["p99_ms"], "alerts_errors": alerts["errors"],
            "connections": args.connections, "residents": args.residents, "workers": 1,
            "cpus": os.cpu_count(),
        }  # fmt: skip
        print(json.dumps(result))
    finally:
        if not args.keep_db:
            drop_database(url)


if __name__ == "__main__":
    main()
