"""Load mode: thousands of bands in compressed time, paced to a target message rate.

The fleet's natural rate is sum(1 / interval) messages per simulated second;
the simulated span is chosen so the run never runs out of messages, and is
placed in the past (ending now) so every timestamp is one ingest accepts.
The result is one JSON object: target and achieved rate (PUBACKed messages
per wall second), CPU seconds and CPU microseconds per message.
"""

from __future__ import annotations

import asyncio
import time

from simulators.fleet import Fleet
from simulators.runner import RunStats, run
from simulators.scenario import Scenario
from simulators.transport import MqttProtocol, MqttTransport

MAX_SPAN_S = 29 * 86_400  # ingest keeps 30 days of raw readings


def natural_rate(fleet: Fleet) -> float:
    """Telemetry messages per simulated second of the whole fleet."""
    return sum(1 / p.interval_s for p in fleet.profiles)


def span_for(fleet: Fleet, *, rate: float, duration_s: float) -> float:
    """Simulated seconds that hold ``rate * duration_s`` messages, with a margin."""
    per_s = max(natural_rate(fleet), 1e-9)
    return min(MAX_SPAN_S, max(60.0, rate * duration_s * 1.25 / per_s))


async def load_test(
    fleet: Fleet,
    url: str,
    *,
    rate: float,
    duration_s: float,
    protocol: MqttProtocol = "3.1.1",
    connections: int = 4,
    scenario: Scenario | None = None,
    stop: asyncio.Event | None = None,
) -> RunStats:
    span = span_for(fleet, rate=rate, duration_s=duration_s)
    start_ms = int(time.time() * 1000 - span * 1000)
    sim = fleet.simulate(duration_s=span, start=start_ms, scenario=scenario)
    transport = MqttTransport(url, protocol=protocol, per_band=False, connections=connections)
    await transport.start()
    try:
        return await run(sim, transport, speed=None, rate=rate, stop=stop,
                         wall_limit_s=duration_s)  # fmt: skip
    finally:
        await transport.close()
