"""`eldercare demo`: the platform end to end on one machine with nothing installed.

With no ELDERCARE_DATABASE_URL / ELDERCARE_MQTT_URL it starts an embedded
PostgreSQL and an embedded MQTT broker (see eldercare.embedded), registers a
simulated fleet through the registry, runs ingest, streams the fleet in real
time with a scenario of emergencies, and prints live counts.

Dispatch closes the loop: virtual service workers (simulators.workers) are
registered near the residents, the dispatch service turns each critical alert
into an emergency work order offered to the worker who can arrive first, and
the virtual workers accept (or reject), travel, check in and complete, which
resolves the alert: fall -> alert -> offer -> accept -> arrival -> resolved.
Workers move ``WORKER_TIME_SCALE`` times faster than real time so that a loop
fits in a short demo; the scenario adds a fall a few seconds in.

The API and the web pages run too (eldercare.demo_web, 127.0.0.1:8000 unless
``--api-port`` says otherwise, 0 for none), with one user per role whose
passwords are printed at start and who are disabled when it stops. Bad options
and a busy API port are refused before anything starts, and so is a database
(ELDERCARE_DATABASE_URL) that already holds an earlier demo's residents, and a
second demo on the embedded PostgreSQL while one runs (it would drop the first one's
database; eldercare.embedded).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import yaml

from alerts.engine import AlertEngine
from alerts.falls.model import load_model
from dispatch.runner import DispatchRunner
from eldercare.demo_web import start_web
from eldercare.embedded import embedded_broker, embedded_postgres
from eldercare.settings import Settings
from eldercare.waiting import stopped_within
from ingest.handoff import IngestedBatch
from ingest.service import IngestService, prepare_database
from simulators.fleet import Fleet
from simulators.record import clear_retained, status_topics
from simulators.runner import run
from simulators.scenario import Scenario
from simulators.transport import MqttTransport, TransportError
from simulators.workers import Behaviour, VirtualWorkers, resident_homes, seed_workers

DEMO_HOME = Path.home() / ".eldercare"
DEMO_PREFIX = "DEMO"  # the demo fleet's device ids: DEMO-000000 ...
WORKER_TIME_SCALE = 120.0  # virtual workers' simulated seconds per wall second
UVICORN_STARTUP_FAILURE = 3  # uvicorn.server.STARTUP_FAILURE: it calls sys.exit with it
EARLY_FALL = {
    "type": "fall",
    "at": 4,
    "bands": 1,
    "params": {"direction": "forward", "origin": "standing", "long_lie": True},
}


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


_LOOP_QUERY = (
    "SELECT o.id, a.id, a.type, o.declined_by, extract(epoch FROM o.accepted_at - a.opened_at),"
    " extract(epoch FROM o.arrived_at - a.opened_at),"
    " a.state FROM work_orders o JOIN alerts a ON a.id = o.alert_id"
    " WHERE o.state = 'completed' AND o.id > %s ORDER BY o.id"
)


class _Loops:
    """Prints each emergency loop once it has closed (the order completed)."""

    def __init__(self) -> None:
        self.last = 0
        self.closed = 0

    async def report(self, conn: psycopg.AsyncConnection) -> None:
        cur = await conn.execute(_LOOP_QUERY, (self.last,))
        for oid, aid, kind, declined, accept_s, arrive_s, state in await cur.fetchall():
            self.last = max(self.last, int(oid))
            self.closed += state == "resolved"
            rejected = f" (rejected by {len(declined)} first)" if declined else ""
            print(
                f"loop: {kind} alert {aid} -> order {oid} offered -> accepted by worker{rejected}"
                f" {float(accept_s) * WORKER_TIME_SCALE:.0f} s -> arrived"
                f" {float(arrive_s) * WORKER_TIME_SCALE / 60:.1f} min after the alert"
                f" (simulated time) -> alert {state}",
                flush=True,
            )


async def _report(
    settings: Settings,
    service: IngestService,
    counts: _Counts,
    bands: int,
    stop: asyncio.Event,
    *,
    loops: _Loops,
) -> None:
    started = time.monotonic()
    last = 0
    url = settings.require_database_url()
    while not stop.is_set():
        await stopped_within(stop, 2.0)
        async with await psycopg.AsyncConnection.connect(url) as conn:
            cur = await conn.execute(
                "SELECT count(*) FILTER (WHERE online), count(*) FROM device_state"
            )
            online, seen = await cur.fetchone() or (0, 0)
            cur = await conn.execute(
                "SELECT type, count(*) FROM alerts WHERE closed_at IS NULL GROUP BY type ORDER BY 1"
            )
            alerts = " ".join(f"{t}:{n}" for t, n in await cur.fetchall()) or "-"
            cur = await conn.execute(
                "SELECT state, count(*) FROM work_orders GROUP BY 1 ORDER BY 1"
            )
            orders = " ".join(f"{t}:{n}" for t, n in await cur.fetchall()) or "-"
            await loops.report(conn)
        stored = service.stats.stored
        events = " ".join(f"{k}:{v}" for k, v in sorted(counts.events.items())) or "-"
        print(
            f"[{time.monotonic() - started:6.0f}s] bands online {online}/{bands} (seen {seen})"
            f"  stored {stored} (+{(stored - last) / 2:.0f}/s)"
            f"  dead letters {sum(service.stats.dead_letters.values())}"
            f"  events {events}  open alerts {alerts}  work orders {orders}",
            flush=True,
        )
        last = stored


async def _demo(
    settings: Settings, *, bands: int, duration_s: float | None, seed: int, api_port: int
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    counts = _Counts()
    if await prepare_database(settings, stop) is None:
        return
    url = settings.require_database_url()
    await refuse_an_earlier_demo(url)
    fleet = Fleet.create(seed=seed, bands=bands, prefix=DEMO_PREFIX, interval_s=10)
    await fleet.register(url)
    homes, districts = await resident_homes(url)
    crew = await seed_workers(
        url,
        homes,
        count=max(3, bands // 2),
        now=datetime.now(UTC),
        seed=seed,
        districts=districts,
        spread_km=1.0,
    )
    web = await start_web(settings, port=api_port, worker_id=crew[0].worker_id if crew else None)
    async with web:  # the API stops and the demo accounts are disabled, come what may
        engine = AlertEngine(settings, fall_model=load_model())
        service = IngestService(settings, handlers=[counts.on_batch, engine.on_batch])
        ingest = asyncio.create_task(service.run(stop), name="ingest")
        alerts = asyncio.create_task(engine.run(stop), name="alerts")
        dispatcher = DispatchRunner(settings)
        dispatching = asyncio.create_task(dispatcher.run(stop), name="dispatch")
        workers = VirtualWorkers(
            settings.mqtt_url or "",
            crew,
            seed=seed,
            behaviour=Behaviour(time_scale=WORKER_TIME_SCALE),
        )
        working = asyncio.create_task(workers.run(stop), name="virtual-workers")
        await asyncio.wait(
            {dispatching, asyncio.create_task(dispatcher.ready.wait())},
            return_when=asyncio.FIRST_COMPLETED,
        )
        if dispatching.done():
            dispatching.result()
        await asyncio.wait(
            {ingest, asyncio.create_task(service.ready.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        if ingest.done():
            ingest.result()
        print(
            f"registered {bands} residents and wristbands and {len(crew)} virtual workers;"
            " streaming (Ctrl-C stops) ...",
            flush=True,
        )
        scenario = _scenario()
        loops = _Loops()
        transport = MqttTransport(
            settings.mqtt_url or "", protocol=settings.mqtt_protocol, per_band=False, connections=2
        )
        await transport.start()
        reporter = asyncio.create_task(_report(settings, service, counts, bands, stop, loops=loops))
        sim = fleet.simulate(duration_s=duration_s or 7 * 86_400, start=None, scenario=scenario)
        try:
            await run(sim, transport, speed=1.0, stop=stop)
        finally:
            stop.set()
            await transport.close(drain_timeout_s=5)
            for task in (reporter, ingest, alerts, dispatching, working):
                await task
            await _clear_statuses(settings, fleet)
    _summary(service, workers, loops, dispatcher)


def _scenario() -> Scenario:
    """The packaged emergencies, and a fall early enough to see in a short run."""
    scenario_file = resources.files("simulators") / "scenarios" / "emergencies.yaml"
    plan = (
        yaml.safe_load(scenario_file.read_text(encoding="utf-8")) if scenario_file.is_file() else {}
    )
    plan["events"] = [EARLY_FALL, *(plan.get("events") or [])]
    return Scenario.from_dict(plan, where="demo")


async def _clear_statuses(settings: Settings, fleet: Fleet) -> None:
    """Delete the demo bands' retained status messages from the broker. Real bands leave
    theirs, but these bands stop with the demo: before 2026-12-04 an ingest on that
    broker whose database does not hold the demo's bands dead-lettered each one as an
    unknown band, at every subscription. A broker already gone has nothing to keep."""
    topics = status_topics(p.device_id for p in fleet.profiles)
    with contextlib.suppress(TransportError, OSError):
        await clear_retained(settings.mqtt_url or "", topics, protocol=settings.mqtt_protocol)


def _summary(
    service: IngestService, workers: VirtualWorkers, loops: _Loops, dispatcher: DispatchRunner
) -> None:
    print(f"demo stopped: {service.summary()}", flush=True)
    s = workers.stats
    print(
        f"dispatch stopped: {{'offers': {s.offers}, 'accepted': {s.accepted},"
        f" 'rejected': {s.rejected}, 'arrived': {s.arrived}, 'completed': {s.completed},"
        f" 'loops_closed': {loops.closed}, 'events_published': {dispatcher.published}}}",
        flush=True,
    )


class DemoError(RuntimeError):
    """The demo cannot start as asked; the message says why (no traceback)."""


async def refuse_an_earlier_demo(url: str) -> None:
    """Refuse a database that already holds an earlier demo's residents.

    The demo registers its own fleet (``DEMO-000000`` ...); run a second time against
    the same real database it failed in a UniqueViolation traceback. (The embedded
    database is made afresh on every run, so only ELDERCARE_DATABASE_URL can hit this.)
    """
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM residents WHERE external_ref LIKE %s",
            (f"sim:{DEMO_PREFIX}-%",),
        )
        row = await cur.fetchone()
    earlier = int(row[0]) if row else 0
    if earlier:
        raise DemoError(
            f"this database already holds {earlier} residents of an earlier demo"
            f" (sim:{DEMO_PREFIX}-...); the demo registers its own: point"
            " ELDERCARE_DATABASE_URL at a fresh database, or leave it unset for an"
            " embedded one"
        )


def check_api_port(port: int, host: str = "127.0.0.1") -> None:
    """Refuse a port the API could not listen on, before anything is started.

    Until 2026-12-04 a busy ``--api-port`` was found only by uvicorn, after
    PostgreSQL and the broker had started and the fleet was registered, and it
    ended the demo with uvicorn's SystemExit and a long traceback.
    """
    if not port:
        return
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server binds
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DemoError(
                    f"port {port} is in use on {host}: choose another with --api-port,"
                    " or --api-port 0 for no web"
                ) from None
            raise DemoError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _quiet_startup_exit(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """uvicorn's task ended with SystemExit: reported as a DemoError, not a traceback."""
    if not isinstance(context.get("exception"), SystemExit):
        loop.default_exception_handler(context)


def run_demo(*, bands: int, duration_s: float | None, seed: int, api_port: int = 8000) -> int:
    check_api_port(api_port)
    settings = Settings()
    with _services(settings) as live, asyncio.Runner() as runner:
        runner.get_loop().set_exception_handler(_quiet_startup_exit)
        try:
            runner.run(
                _demo(live, bands=bands, duration_s=duration_s, seed=seed, api_port=api_port)
            )
        except SystemExit as exc:  # uvicorn's start-up failure: the port was taken meanwhile
            if exc.code != UVICORN_STARTUP_FAILURE or not api_port:
                raise
            raise DemoError(f"the API could not listen on 127.0.0.1:{api_port}") from None
    return 0
