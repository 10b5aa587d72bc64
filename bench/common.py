"""Shared by the benchmarks: a private broker from the deployment config, a fresh
database, and process sampling. Benchmarks are not tests: they print figures,
the last line as JSON."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("ELDERCARE_BENCH_DATABASE_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BenchBroker:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="eldercare-bench-mqtt-"))
        self.port = free_port()
        conf = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
        conf = conf.split("listener 1883")[0].replace("/mosquitto/data/", f"{self.dir}/")
        conf = conf.replace("persistence true", "persistence false")
        conf += f"\nlistener {self.port} 127.0.0.1\nallow_anonymous true\n"
        (self.dir / "mosquitto.conf").write_text(conf)
        self.proc = subprocess.Popen(
            [
                shutil.which("mosquitto") or "/usr/sbin/mosquitto",
                "-c",
                str(self.dir / "mosquitto.conf"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def fresh_database(prefix: str = "ec_bench") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return ADMIN_URL.rpartition("/")[0] + "/" + name


def drop_database(url: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {url.rpartition('/')[2]} WITH (FORCE)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # peak resident set
            return int(line.split()[1]) / 1024
    return 0.0


def history_args(doc: str | None, *, residents: int, interval_s: int) -> argparse.Namespace:
    """The command line of a bench over synthetic history: residents, days, interval."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--residents", type=int, default=residents)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--interval-s", type=int, default=interval_s)
    return ap.parse_args()


def report(out: dict[str, Any]) -> None:
    """Each figure on a line of its own, then all of them as the last line of JSON."""
    for k, v in out.items():
        print(f"{k}: {v}")
    print(json.dumps(out))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def postgres_cpu_seconds() -> float:
    """CPU used so far by every PostgreSQL server process on this machine."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            total += cpu_seconds(int(proc.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


async def seed_history(
    db_url: str,
    fleet: Any,
    resident_ids: dict[str, int],
    *,
    start: datetime,
    days: float,
    background: Any,
    seed: int,
) -> int:
    """Write ``days`` of the fleet's ordinary telemetry, ending at ``start``, into ``telemetry``.

    The residents' own recent history, as a running platform would hold it (the
    alert engine computes personal baselines from it at start). Same people
    (profiles), a different behaviour seed (``seed``) and no episodes, so the
    history never replays the evaluated days. Returns the rows written.
    """
    import msgspec

    from eldercare.protocol import Telemetry
    from eldercare.storage import ensure_partitions
    from simulators.device import Band
    from simulators.uplink import Publish as SimPublish

    start_ms = round(start.timestamp() * 1000)
    begin_ms = start_ms - round(days * 86_400_000)
    bands = [Band(p, seed=seed, episodes=[], background=background) for p in fleet.profiles]
    rows: list[tuple[Any, ...]] = []
    for band in bands:
        rid = resident_ids[band.device_id]
        for out in band.outputs(begin_ms, start_ms):
            if not isinstance(out, SimPublish) or not out.topic.endswith("/telemetry"):
                continue
            m = msgspec.json.decode(out.payload, type=Telemetry)
            at = datetime.fromtimestamp(out.t_ms / 1000, UTC)
            rows.append((at, m.device_id, m.seq, rid, m.hr, m.spo2, m.bp_sys, m.bp_dia,
                         m.skin_temp_c, m.steps, m.battery_pct, m.worn, at))  # fmt: skip
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await ensure_partitions(conn, {r[0].date() for r in rows})
        async with (
            conn.cursor() as cur,
            cur.copy(
                "COPY telemetry (time, device_id, seq, resident_id, hr, spo2, bp_sys, bp_dia,"
                " skin_temp_c, steps, battery_pct, worn, received_at) FROM STDIN"
            ) as copy,
        ):
            for r in rows:
                await copy.write_row(r)
        await conn.commit()
    return len(rows)
