"""Virtual service workers: phones that answer offers, travel, check in and complete.

Each virtual worker listens on its own offers topic
(``eldercare/v1/workers/<id>/offers``) and answers on ``.../answers`` the way
a person would: after a moment's thought it accepts (or sometimes rejects),
sets off, moves toward the home at its mode's speed (sometimes late: slower
than planned), reporting its location, checks in at the door, stays for the
service and checks out. ``time_scale`` speeds the whole day up for demos.

``seed_workers`` registers a roster around given homes, on shift now.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import numpy as np
import psycopg

from dispatch.model import Mode, Point, WorkerStatus, load_catalogue
from dispatch.roster import (
    NewWorker,
    add_shift,
    add_workers,
    set_location,
    set_status,
    sync_catalogue,
)
from dispatch.travel import DEFAULT_SPEEDS, haversine_km
from eldercare.mqtt_client import aiomqtt_client
from eldercare.settings import Settings, parse_mqtt_url
from eldercare.topics import parse_worker_topic, worker_topic

SKILL_SETS = (
    frozenset({"caregiver", "cleaning", "meal_delivery"}),
    frozenset({"caregiver", "bathing"}),
    frozenset({"caregiver", "nurse"}),
    frozenset({"caregiver", "escort", "driver"}),
)


@dataclass(frozen=True, slots=True)
class Behaviour:
    reject_p: float = 0.15
    late_p: float = 0.2
    late_slowdown: tuple[float, float] = (1.3, 2.0)  # a late worker takes this much longer
    think_s: tuple[float, float] = (5.0, 30.0)  # before answering an offer
    emergency_service_s: tuple[float, float] = (300.0, 900.0)
    step_s: float = 20.0  # location report interval (simulated seconds)
    time_scale: float = 1.0  # simulated seconds per wall second


@dataclass(slots=True)
class VirtualWorker:
    worker_id: str
    where: Point
    mode: Mode


@dataclass(slots=True)
class Stats:
    offers: int = 0
    accepted: int = 0
    rejected: int = 0
    arrived: int = 0
    completed: int = 0
    arrivals_s: list[float] = field(default_factory=list)  # simulated travel times


def _near(p: Point, rng: random.Random, km: float) -> Point:
    r, a = km * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    return Point(p.lat + r * math.sin(a) / 111.2, p.lon + r * math.cos(a) / 94.4)


async def seed_workers(
    db_url: str,
    homes: Sequence[Point],
    *,
    count: int,
    now: datetime,
    seed: int = 0,
    prefix: str = "VW",
    districts: Sequence[str] = (),
    spread_km: float = 1.5,
) -> list[VirtualWorker]:
    """Register ``count`` workers near the homes (in the home's district when ``districts``
    gives them), available and on an 8-hour shift."""
    rng = random.Random(seed)
    picks = [rng.randrange(len(homes)) for _ in range(count)]
    out = [
        VirtualWorker(
            f"{prefix}{i:03d}",
            _near(homes[k], rng, spread_km),
            rng.choice([Mode.EBIKE, Mode.EBIKE, Mode.BIKE, Mode.WALK]),
        )
        for i, k in enumerate(picks)
    ]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await sync_catalogue(conn, load_catalogue())
        await add_workers(
            conn,
            [
                NewWorker(
                    w.worker_id,
                    f"Virtual worker {i}",
                    districts[k] if districts else "",
                    rng.choice(SKILL_SETS),
                    w.where,
                    mode=w.mode,
                )
                for i, (w, k) in enumerate(zip(out, picks, strict=True))
            ],
        )
        for w in out:
            await add_shift(conn, w.worker_id, now - timedelta(hours=1), now + timedelta(hours=8))
            await set_status(conn, w.worker_id, WorkerStatus.AVAILABLE, now=now)
            await set_location(conn, w.worker_id, w.where, now=now)
    return out


class VirtualWorkers:
    def __init__(
        self,
        mqtt_url: str,
        workers: Sequence[VirtualWorker],
        *,
        behaviour: Behaviour | None = None,
        seed: int = 0,
    ) -> None:
        self.mqtt_url = mqtt_url
        self.workers = {w.worker_id: w for w in workers}
        self.behaviour = behaviour or Behaviour()
        self.rng = random.Random(seed)
        self.stats = Stats()
        self.ready = asyncio.Event()
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._client: aiomqtt.Client | None = None

    async def _sleep(self, simulated_s: float) -> None:
        await asyncio.sleep(max(0.0, simulated_s) / self.behaviour.time_scale)

    async def _send(self, worker_id: str, channel: str, body: dict[str, Any]) -> None:
        if self._client is not None:
            await self._client.publish(
                worker_topic(worker_id, channel), json.dumps(body).encode(), qos=1
            )

    async def _job(self, w: VirtualWorker, offer: dict[str, Any]) -> None:
        b, order_id = self.behaviour, int(offer["order_id"])
        home = Point(float(offer["home"]["lat"]), float(offer["home"]["lon"]))
        await self._sleep(self.rng.uniform(*b.think_s))
        if self.rng.random() < b.reject_p:
            self.stats.rejected += 1
            await self._send(
                w.worker_id, "answers", {"order_id": order_id, "action": "reject", "reason": "busy"}
            )
            return
        self.stats.accepted += 1
        await self._send(w.worker_id, "answers", {"order_id": order_id, "action": "accept"})
        await self._send(w.worker_id, "answers", {"order_id": order_id, "action": "en_route"})
        here, there = w.where, home
        km = 1.3 * float(
            haversine_km(
                np.float64(here.lat),
                np.float64(here.lon),
                np.float64(there.lat),
                np.float64(there.lon),
            )
        )
        slow = self.rng.uniform(*b.late_slowdown) if self.rng.random() < b.late_p else 1.0
        travel_s = km / DEFAULT_SPEEDS[w.mode] * 3600.0 * slow
        steps = max(1, math.ceil(travel_s / b.step_s))
        start = w.where
        for k in range(1, steps + 1):
            await self._sleep(travel_s / steps)
            f = k / steps
            w.where = Point(
                start.lat + (home.lat - start.lat) * f, start.lon + (home.lon - start.lon) * f
            )
            await self._send(w.worker_id, "location", {"lat": w.where.lat, "lon": w.where.lon})
        self.stats.arrived += 1
        self.stats.arrivals_s.append(travel_s)
        await self._send(
            w.worker_id,
            "answers",
            {"order_id": order_id, "action": "check_in", "lat": home.lat, "lon": home.lon},
        )
        order = offer.get("order") or {}
        if order.get("kind") == "emergency":
            stay = self.rng.uniform(*b.emergency_service_s)
        else:
            stay = float(order.get("duration_min", 30)) * 60.0
        await self._sleep(stay)
        await self._send(
            w.worker_id,
            "answers",
            {
                "order_id": order_id,
                "action": "check_out",
                "outcome": "helped",
                "notes": "virtual visit",
            },
        )
        self.stats.completed += 1

    def _on_offer(self, worker_id: str, offer: dict[str, Any]) -> None:
        w = self.workers.get(worker_id)
        if w is None:
            return
        previous = self._jobs.get(worker_id)
        if offer.get("kind") != "offered":  # cancelled, pre-empted or timed out: drop it
            if previous is not None and previous.get_name() == f"vw-{offer.get('order_id')}":
                previous.cancel()
            return
        self.stats.offers += 1
        if previous is not None and not previous.done():
            previous.cancel()  # pre-empted: the emergency comes first
        self._jobs[worker_id] = asyncio.create_task(
            self._job(w, offer), name=f"vw-{offer.get('order_id')}"
        )

    async def run(self, stop: asyncio.Event) -> None:
        endpoint = parse_mqtt_url(self.mqtt_url)
        async with aiomqtt_client(
            endpoint,
            identifier=f"virtual-workers-{uuid.uuid4().hex[:6]}",
            max_queued_incoming_messages=None,
        ) as client:
            self._client = client
            await client.subscribe(worker_topic("+", "offers"), qos=1)
            self.ready.set()

            async def read() -> None:
                async for m in client.messages:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        worker = parse_worker_topic(str(m.topic))
                        if worker is not None and worker[1] == "offers":
                            self._on_offer(worker[0], json.loads(bytes(m.payload)))

            reader = asyncio.create_task(read())
            await stop.wait()
            reader.cancel()
            for job in self._jobs.values():
                job.cancel()
            await asyncio.gather(reader, *self._jobs.values(), return_exceptions=True)
            self._client = None


async def resident_homes(db_url: str, *, limit: int = 5_000) -> tuple[list[Point], list[str]]:
    """The registered residents' homes and their districts."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT home_lat, home_lon, district FROM residents WHERE home_lat IS NOT NULL"
            " AND home_lon IS NOT NULL ORDER BY resident_id LIMIT %s",
            (limit,),
        )
        rows = await cur.fetchall()
    return [Point(float(a), float(b)) for a, b, _ in rows], [str(d) for _, _, d in rows]


def simulate_main(settings: Settings, *, count: int, seed: int, time_scale: float) -> int:
    """`eldercare workers simulate`: virtual workers near the registered residents."""
    from eldercare.cli import run_until_signalled  # noqa: PLC0415 - the CLI imports us lazily

    db_url, mqtt_url = settings.require_database_url(), settings.mqtt_url or ""
    settings.mqtt()  # a clear error when MQTT is not configured

    async def main(stop: asyncio.Event) -> None:
        homes, districts = await resident_homes(db_url)
        if not homes:
            raise ValueError("no residents with a home location: register residents first")
        crew = await seed_workers(
            db_url, homes, count=count, now=datetime.now(UTC), seed=seed, districts=districts
        )
        await VirtualWorkers(
            mqtt_url, crew, behaviour=Behaviour(time_scale=time_scale), seed=seed
        ).run(stop)

    run_until_signalled(main)
    return 0
