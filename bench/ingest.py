"""Ingest benchmark: many simulated wristbands -> real Mosquitto -> real ingest -> PostgreSQL.

    python bench/ingest.py [--rate 25000] [--duration 30] [--bands 5000] [--publishers 2]

Starts a private Mosquitto from deploy/mosquitto/mosquitto.conf, a fresh database,
and `eldercare ingest` as its own process (as deployed). Publisher processes send
QoS 1 telemetry at the target rate (a reading's ts is its publish time); a
subscriber on the internal topic, where ingest hands on each batch after commit,
times publish -> commit. At the end every published reading is counted in the
database. Prints the figures; the last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
import uuid

import msgspec
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench.common import (
    BenchBroker,
    cpu_seconds,
    drop_database,
    fresh_database,
    percentile,
    postgres_cpu_seconds,
    rss_mb,
)
from bench.rawpub import RawPublisher, paced
from eldercare.migrate import migrate
from eldercare.protocol import Telemetry, encode
from eldercare.registry import NewResident, add_residents, provision_wristbands
from eldercare.topics import INGESTED, Channel, device_topic


def _client(port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=name,
                    protocol=mqtt.MQTTv311)  # fmt: skip
    c.max_inflight_messages_set(2000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port, keepalive=60)
    return c


def publisher(
    port: int,
    devices: list[str],
    *,
    rate: float,
    duration: float,
    start_at: float,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    """Send round-robin over its bands at ``rate`` msg/s; reports how many the broker acked."""
    pub = RawPublisher("127.0.0.1", port, f"bench-pub-{uuid.uuid4().hex[:6]}")
    topics = [device_topic(d, Channel.TELEMETRY) for d in devices]
    seqs = [0] * len(devices)
    state = {"i": 0}

    def burst(n: int) -> None:
        now_ms = int(time.time() * 1000)
        ts, ps = [], []
        for _ in range(n):
            k = state["i"] % len(devices)
            state["i"] += 1
            seqs[k] += 1
            ts.append(topics[k])
            ps.append(encode(Telemetry(device_id=devices[k], seq=seqs[k], ts=now_ms,
                                       hr=60 + seqs[k] % 50, spo2=95 + seqs[k] % 5,
                                       steps=seqs[k] * 3, battery_pct=90, worn=True)))  # fmt: skip
        pub.publish_many(ts, ps)

    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.monotonic()
    sent = paced(rate, duration, burst)
    seconds = time.monotonic() - t0
    pub.wait_acked(60)
    out.put({"sent": sent, "acked": pub.acked, "seconds": seconds, "cpu": time.process_time()})
    pub.close()


class CommitWatcher:
    """Subscribes to the internal topic: each message is a batch committed by ingest."""

    def __init__(self, port: int) -> None:
        self.latencies_ms: list[float] = []
        self.committed = 0
        self.last_commit = 0.0
        self._decoder = msgspec.json.Decoder(list[dict[str, object]])
        self.client = _client(port, f"bench-watch-{uuid.uuid4().hex[:6]}")
        self.client.on_message = self._on_message
        self.client.subscribe(INGESTED, qos=0)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time() * 1000
        items = self._decoder.decode(msg.payload)
        for item in items:
            if item["channel"] == "telemetry":
                self.latencies_ms.append(now - item["message"]["ts"])  # type: ignore[index,operator]
        self.committed += len(items)
        self.last_commit = time.time()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def register(db_url: str, devices: list[str]) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        ids = await add_residents(conn, [NewResident(name="bench", birth_year=1940)] * len(devices))
        await provision_wristbands(conn, list(zip(devices, ids, strict=True)))
        await conn.commit()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=25000, help="target readings/s (all publishers)")
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--bands", type=int, default=5000)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--batch-max", type=int, default=4000)
    ap.add_argument("--batch-age-ms", type=int, default=100)
    ap.add_argument(
        "--protocol",
        choices=["5", "3.1.1"],
        default="5",
        help="MQTT protocol of the ingest service",
    )
    args = ap.parse_args()

    broker = BenchBroker()
    db_url = fresh_database()
    ingest: subprocess.Popen[bytes] | None = None
    try:
        migrate(db_url)
        devices = [f"BENCH{i:06d}" for i in range(args.bands)]
        asyncio.run(register(db_url, devices))
        env = {**os.environ, "ELDERCARE_DATABASE_URL": db_url, "ELDERCARE_MQTT_URL": broker.url,
               "ELDERCARE_INGEST_BATCH_MAX": str(args.batch_max),
               "ELDERCARE_INGEST_BATCH_MAX_AGE_MS": str(args.batch_age_ms),
               "ELDERCARE_LOG_LEVEL": "WARNING", "ELDERCARE_INGEST_CLIENT_ID": "bench-ingest",
               "ELDERCARE_MQTT_PROTOCOL": args.protocol}  # fmt: skip
        ingest = subprocess.Popen([sys.executable, "-m", "eldercare.cli", "ingest"], env=env)
        watcher = CommitWatcher(broker.port)
        probe_deadline = time.monotonic() + 30
        while time.monotonic() < probe_deadline:  # wait until ingest has subscribed
            with psycopg.connect(db_url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = 'eldercare-ingest'"
                ).fetchone()
            if row and row[0]:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        cpu0 = cpu_seconds(ingest.pid)
        broker_cpu0, pg_cpu0 = cpu_seconds(broker.proc.pid), postgres_cpu_seconds()
        out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        share = [devices[i :: args.publishers] for i in range(args.publishers)]
        start_at = time.time() + 0.5
        procs = [
            mp.Process(
                target=publisher,
                args=(broker.port, share[i]),
                kwargs={
                    "rate": args.rate / args.publishers,
                    "duration": args.duration,
                    "start_at": start_at,
                    "out": out,
                },
            )
            for i in range(args.publishers)
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=args.duration + 120) for _ in procs]
        for p in procs:
            p.join()
        sent = sum(r["sent"] for r in results)
        acked = sum(r["acked"] for r in results)
        deadline = time.monotonic() + 120
        while watcher.committed < acked and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = watcher.last_commit - start_at
        cpu = cpu_seconds(ingest.pid) - cpu0
        broker_cpu = cpu_seconds(broker.proc.pid) - broker_cpu0
        pg_cpu = postgres_cpu_seconds() - pg_cpu0
        pub_cpu = sum(r["cpu"] for r in results)
        rss = rss_mb(ingest.pid)
        watcher.close()
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT count(*), count(DISTINCT (device_id, seq)) FROM telemetry"
            ).fetchone()
        assert row is not None
        rows, distinct = int(row[0]), int(row[1])
        result = {
            "target_rate": args.rate,
            "published": sent,
            "broker_acked": acked,
            "publish_rate": round(sent / max(r["seconds"] for r in results)),
            "msgs_per_s": round(distinct / elapsed) if elapsed > 0 else 0,
            "p50_ms": round(percentile(watcher.latencies_ms, 0.50), 1),
            "p99_ms": round(percentile(watcher.latencies_ms, 0.99), 1),
            "lost": acked - distinct,
            "duplicated": rows - distinct,
            "rss_mb": round(rss, 1),
            # where the time goes: CPU microseconds per reading, by process
            "cpu_us_per_msg": {
                "ingest": round(cpu / max(distinct, 1) * 1e6, 1),
                "postgres": round(pg_cpu / max(distinct, 1) * 1e6, 1),
                "mosquitto": round(broker_cpu / max(distinct, 1) * 1e6, 1),
                "load_generator": round(pub_cpu / max(distinct, 1) * 1e6, 1),
            },
            "seconds": round(elapsed, 1),
        }
        print(json.dumps(result))
        return 0
    finally:
        if ingest is not None:
            ingest.terminate()
            ingest.wait(30)
        broker.close()
        drop_database(db_url)


if __name__ == "__main__":
    sys.exit(main())
