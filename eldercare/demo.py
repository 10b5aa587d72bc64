"""`eldercare demo`: the platform end to end on one machine with nothing installed.

With no ELDERCARE_DATABASE_URL / ELDERCARE_MQTT_URL it starts an embedded
PostgreSQL and an embedded MQTT broker (see eldercare.embedded), registers a
simulated fleet through the registry, runs ingest, streams the fleet in real
time with a scenario of emergencies, and prints live counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import psycopg

from alerts.engine import AlertEngine
from alerts.falls.model import load_model
from eldercare.embedded import embedded_broker, embedded_postgres
from eldercare.settings import Settings
from ingest.handoff import IngestedBatch
from ingest.service import IngestService, prepare_database
from simulators.fleet import Fleet
from simulators.runner import run
from simulators.scenario import Scenario
from simulators.transport import MqttTransport

DEMO_HOME = Path.home() / ".eldercare"


@contextlib.contextmanager
def _services(settings: Settings) -> Iterator[Settings]:
    with contextlib.ExitStack() as stack:
        updates: dict[str, object] = {}
        if not settings.database_url:
            print("starting embedded PostgreSQL ...", flush=True)
            updates["database_url"] = stack.enter_context(
                embedded_postgres(DEMO_HOME / "demo-pgdata", database="eldercare_demo")
            )
        if not settings.mqtt_url:
            print("starting embedded MQTT broker (amqtt, MQTT 3.1.1) ...", flush=True)
            updates["mqtt_url"] = stack.enter_context(embedded_broker())
            updates["mqtt_protocol"] = "3.1.1"
        yield settings.model_copy(update=updates)


class _Counts:
    def __init__(self) -> None:
        self.events: dict[str, int] = {}

    def on_batch(self, batch: IngestedBatch) -> None:
        for a in batch.events:
            kind = str(getattr(a.message, "type", "?"))
            self.events[kind] = self.events.get(kind, 0) + 1


async def _report(settings: Settings, service: IngestService, counts: _Counts, bands: int,
                  stop: asyncio.Event) -> None:  # fmt: skip
    started = time.monotonic()
    last = 0
    url = settings.require_database_url()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)
        async with await psycopg.AsyncConnection.connect(url) as conn:
            cur = await conn.execute(
                "SELECT count(*) FILTER (WHERE online), count(*) FROM device_state"
            )
            online, seen = await cur.fetchone() or (0, 0)
            cur = await conn.execute(
                "SELECT type, count(*) FROM alerts WHERE closed_at IS NULL GROUP BY type ORDER BY 1"
            )
            alerts = " ".join(f"{t}:{n}" for t, n in await cur.fetchall()) or "-"
        stored = service.stats.stored
        events = " ".join(f"{k}:{v}" for k, v in sorted(counts.events.items())) or "-"
        print(f"[{time.monotonic() - started:6.0f}s] bands online {online}/{bands} (seen {seen})"
              f"  stored {stored} (+{(stored - last) / 2:.0f}/s)"
              f"  dead letters {sum(service.stats.dead_letters.values())}"
              f"  events {events}  open alerts {alerts}", flush=True)  # fmt: skip
        last = stored


async def _demo(settings: Settings, *, bands: int, duration_s: float | None, seed: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    counts = _Counts()
    await prepare_database(settings)
    fleet = Fleet.create(seed=seed, bands=bands, prefix="DEMO", interval_s=10)
    await fleet.register(settings.require_database_url())
    engine = AlertEngine(settings, fall_model=load_model())
    service = IngestService(settings, handlers=[counts.on_batch, engine.on_batch])
    ingest = asyncio.create_task(service.run(stop), name="ingest")
    alerts = asyncio.create_task(engine.run(stop), name="alerts")
    await asyncio.wait({ingest, asyncio.create_task(service.ready.wait())},
                       return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    if ingest.done():
        ingest.result()
    print(f"registered {bands} residents and wristbands; streaming (Ctrl-C stops) ...", flush=True)
    scenario_file = resources.files("simulators") / "scenarios" / "emergencies.yaml"
    scenario = Scenario.load(str(scenario_file)) if scenario_file.is_file() else None
    transport = MqttTransport(settings.mqtt_url or "", protocol=settings.mqtt_protocol,
                              per_band=False, connections=2)  # fmt: skip
    await transport.start()
    reporter = asyncio.create_task(_report(settings, service, counts, bands, stop))
    sim = fleet.simulate(duration_s=duration_s or 7 * 86_400, start=None, scenario=scenario)
    try:
        await run(sim, transport, speed=1.0, stop=stop)
    finally:
        stop.set()
        await transport.close(drain_timeout_s=5)
        await reporter
        await ingest
        await alerts
    print(f"demo stopped: {service.summary()}", flush=True)


def run_demo(*, bands: int, duration_s: float | None, seed: int) -> int:
    settings = Settings()
    with _services(settings) as live:
        asyncio.run(_demo(live, bands=bands, duration_s=duration_s, seed=seed))
    return 0
