"""Run a simulation against a broker: pace simulated time against the wall clock.

``speed`` maps simulated to real time (1.0: real time, 60: an hour a minute,
None: as fast as the broker takes it); ``rate`` instead paces by message
count (load tests). Backpressure: when more than ``max_pending`` messages
wait for a PUBACK the runner stops generating until the broker catches up,
so a slow broker slows the simulation instead of filling memory.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eldercare.waiting import stopped_within
from simulators.fleet import Simulation
from simulators.transport import MqttTransport
from simulators.uplink import Link, Publish

_CHECK_EVERY = 256


@dataclass(slots=True)
class RunStats:
    bands: int = 0
    published: int = 0
    acked: int = 0
    links: int = 0
    episodes: int = 0
    sim_start_ms: int = 0
    sim_reached_ms: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    target_rate: float | None = None
    achieved_rate: float = 0.0
    cpu_us_per_message: float = 0.0
    completed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def run(
    sim: Simulation,
    transport: MqttTransport,
    *,
    speed: float | None = 1.0,
    rate: float | None = None,
    stop: asyncio.Event | None = None,
    truth_path: str | Path | None = None,
    max_pending: int = 20_000,
    wall_limit_s: float | None = None,
) -> RunStats:
    """Publish the simulation through ``transport``; writes the ground truth it reached."""
    stats = RunStats(bands=len(sim.fleet), sim_start_ms=sim.start_ms, target_rate=rate,
                     sim_reached_ms=sim.start_ms)  # fmt: skip
    wall0 = time.monotonic()
    cpu0 = time.process_time()
    completed = True
    for n, out in enumerate(sim.outputs(), start=1):
        if n % _CHECK_EVERY == 0 or speed is not None:
            if stop is not None and stop.is_set():
                completed = False
                break
            elapsed = time.monotonic() - wall0
            if wall_limit_s is not None and elapsed >= wall_limit_s:
                completed = False
                break
            due = _due(out.t_ms - sim.start_ms, stats.published, speed=speed, rate=rate)
            if due is not None and due - elapsed > 0.002:
                await _sleep_or_stop(due - elapsed, stop)
            elif n % _CHECK_EVERY == 0:
                await asyncio.sleep(0)
            await backpressure(transport, max_pending)
        stats.sim_reached_ms = out.t_ms
        if isinstance(out, Link):
            await transport.link(out)
            stats.links += 1
        elif isinstance(out, Publish):
            transport.publish(out)
            stats.published += 1
    else:
        stats.sim_reached_ms = sim.end_ms
    await transport.drain(timeout_s=60)
    stats.wall_s = time.monotonic() - wall0
    stats.cpu_s = time.process_time() - cpu0
    stats.published = transport.published  # with the wills published on bands' behalf
    stats.acked = transport.acked
    stats.completed = completed
    stats.achieved_rate = stats.acked / stats.wall_s if stats.wall_s > 0 else 0.0
    stats.cpu_us_per_message = stats.cpu_s / max(1, stats.published) * 1e6
    reached = sim.end_ms if completed else stats.sim_reached_ms + 1
    stats.episodes = len(sim.truth(until_ms=reached))
    if truth_path is not None:
        sim.write_truth(truth_path, until_ms=reached)
    return stats


def _due(
    offset_ms: int, published: int, *, speed: float | None, rate: float | None
) -> float | None:
    if rate is not None and rate > 0:
        return published / rate
    if speed is not None and speed > 0:
        return offset_ms / 1000 / speed
    return None


async def _sleep_or_stop(seconds: float, stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    await stopped_within(stop, seconds)


async def backpressure(transport: MqttTransport, max_pending: int) -> None:
    """Wait while the broker is behind (paho's thread sets no asyncio event to await)."""
    while transport.pending > max_pending:  # noqa: ASYNC110
        await asyncio.sleep(0.002)
