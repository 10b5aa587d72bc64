"""Simulator cost: can 10,000 bands at a 10 s interval run on one core beside the platform?

    python bench/simulator.py [--bands 10000] [--interval 10] [--duration 30]

Streams a fleet in real time (speed 1) at QoS 1 through a private Mosquitto
(nobody subscribed: this measures the simulator) and reports the share of one
core the simulator process used, and CPU per message. Last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BenchBroker
from simulators.fleet import Fleet
from simulators.runner import run
from simulators.transport import MqttTransport


async def measure(url: str, *, bands: int, interval_s: int, duration_s: float) -> dict[str, object]:
    fleet = Fleet.create(seed=1, bands=bands, prefix="SIMB", interval_s=interval_s)
    transport = MqttTransport(url, protocol="3.1.1", per_band=False, connections=4)
    await transport.start()
    cpu0, wall0 = time.process_time(), time.monotonic()
    try:
        sim = fleet.simulate(duration_s=duration_s, start=None)
        stats = await run(sim, transport, speed=1.0, wall_limit_s=duration_s)
    finally:
        await transport.close()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    return {
        "bands": bands,
        "interval_s": interval_s,
        "wall_s": round(wall, 1),
        "published": stats.published,
        "acked": stats.acked,
        "msgs_per_s": round(stats.acked / wall, 1),
        "core_share": round(cpu / wall, 3),
        "cpu_us_per_msg": round(cpu / max(stats.published, 1) * 1e6, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bands", type=int, default=10_000)
    ap.add_argument("--interval", type=int, default=10)
    ap.add_argument("--duration", type=float, default=30)
    args = ap.parse_args()
    broker = BenchBroker()
    try:
        result = asyncio.run(measure(broker.url, bands=args.bands, interval_s=args.interval,
                                     duration_s=args.duration))  # fmt: skip
    finally:
        broker.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
