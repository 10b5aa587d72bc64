"""Live updates: the internal alert and dispatch topics fanned out to WebSocket clients.

One MQTT subscription per API process (``eldercare/v1/internal/alerts`` and
``.../dispatch``); each message is offered to every connected client whose
scope covers it: the centre gets alerts and order changes of its district,
a family its residents' events, a worker their own offers and orders. Each
client has a bounded queue; a client that falls that far behind is
disconnected (close code 1013, try again) rather than slowing everyone.
Without a broker (tests, single process) changes are fanned out locally.
Each event about a resident pushed to a client is written to the audit log, as
a read would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from api.alert_view import transition_for, user_ids
from api.audit import AuditWriter
from api.family_view import coarsen
from api.identity import user_roles
from api.order_view import WHOLE, event_for
from api.principal import Principal, Role
from api.problems import Problem
from api.schemas import MAX_ID
from eldercare.bounded import remember
from eldercare.logs import get_logger
from eldercare.mqtt_client import aiomqtt_client
from eldercare.settings import parse_mqtt_url
from eldercare.topics import ALERTS, DISPATCH

log = get_logger(__name__)
CLIENT_QUEUE = 256
# residents' districts and users' roles held per process: a city's residents with some
# alert or order fit (~125 bytes each, ~31 MB full); past it the oldest go (eldercare.bounded)
CACHED = 250_000


@dataclass(eq=False, slots=True)
class LiveClient:
    principal: Principal
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)


def classify(topic: str, data: dict[str, Any]) -> str:
    """The ``kind`` a client sees: alert, offer (to a worker), order, or event."""
    if topic == ALERTS:
        return "alert"
    if topic == DISPATCH:
        kind = str(data.get("kind", data.get("type", "")))
        return "offer" if "offer" in kind else "order"
    return "event"


def resident_of(data: dict[str, Any]) -> int | None:
    """The resident a message is about: alerts carry it, dispatch events in their order."""
    resident = data.get("resident_id")
    order = data.get("order")
    if resident is None and isinstance(order, dict):
        resident = order.get("resident_id")
    # a positive bigint (not a bool): anything else, a message not of ours, is no one's
    return resident if type(resident) is int and 1 <= resident <= MAX_ID else None


def visible(p: Principal, kind: str, data: dict[str, Any], district: str | None) -> bool:
    """Pure: may ``p`` see this message? ``district``: the resident's, when known."""
    resident = resident_of(data)
    if p.role is Role.ADMIN:
        return True
    if p.role is Role.FAMILY:
        return kind != "offer" and resident in p.resident_ids
    if p.role is Role.WORKER:
        # only a frame that names a worker: str() of a missing one was "None", a valid
        # worker id, whose holder got every alert city-wide (found by review 2026-12-04)
        worker = data.get("worker_id")
        return bool(p.worker_id) and isinstance(worker, str) and worker == p.worker_id
    if p.role in (Role.OPERATOR, Role.SUPERVISOR):
        return district is not None and district == p.district
    return False  # API keys do not subscribe


class LiveHub:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        mqtt_url: str | None,
        audit: AuditWriter | None = None,
        family_location_decimals: int = 3,
    ) -> None:
        self._pool = pool
        self._decimals = family_location_decimals  # families' locations: as the status view
        self._audit = audit
        self._mqtt_url = mqtt_url
        self._clients: set[LiveClient] = set()
        self._districts: OrderedDict[int, str] = OrderedDict()  # resident -> district
        self._user_roles: OrderedDict[int, str] = OrderedDict()  # roles rarely change
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def __aenter__(self) -> LiveHub:
        if self._mqtt_url:
            self._task = asyncio.create_task(self._subscribe(), name="live-hub")
        else:
            self.ready.set()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def connected(self) -> int:
        return len(self._clients)

    def join(self, principal: Principal) -> LiveClient:
        client = LiveClient(principal)
        self._clients.add(client)
        return client

    def leave(self, client: LiveClient) -> None:
        self._clients.discard(client)

    async def publish_alert(self, data: dict[str, Any]) -> None:
        """Tell every API process (and the console) about an operator's change."""
        payload = msgspec.json.encode(data)
        client = self._client
        if client is not None:
            try:
                await client.publish(ALERTS, payload, qos=1)
            except aiomqtt.MqttError as exc:
                log.warning("live_publish_failed", error=str(exc))
            else:
                return
        await self.deliver(ALERTS, payload)

    async def _district(self, resident_id: object) -> str | None:
        if not isinstance(resident_id, int):
            return None
        found = self._districts.get(resident_id)
        if found is None:
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT district FROM residents WHERE resident_id = %s", (resident_id,)
                )
                row = await cur.fetchone()
            if row is None:
                return None
            name = sys.intern(str(row[0]))  # one string per district, not per resident
            found = remember(self._districts, resident_id, name, limit=CACHED)
        return found

    async def deliver(self, topic: str, payload: bytes) -> int:
        """Offer one internal message to every client allowed to see it; returns how many."""
        try:
            data = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            log.warning("live_bad_message", topic=topic)
            return 0
        if not isinstance(data, dict) or not self._clients:
            return 0
        kind = classify(topic, data)
        try:
            district = await self._district(resident_of(data))
        except psycopg.Error as exc:  # away (PoolTimeout is one): the centre misses it
            log.warning("live_district_unknown", error=type(exc).__name__)
            district = None
        frame = msgspec.json.encode({"kind": kind, "data": data})
        roles: dict[int, str] | None = None  # staff's roles, looked up for the first family
        resident = resident_of(data)
        resource = f"{kind}:{data.get('alert_id') or data.get('order_id') or '-'}"
        now = datetime.now(UTC)
        sent = 0
        for client in list(self._clients):
            if not visible(client.principal, kind, data, district):
                continue
            out = frame
            if client.principal.role not in WHOLE:  # each their own view
                if roles is None and topic == ALERTS:
                    roles = await self._roles(data.get("actor"))
                out = self._own_frame(client.principal, topic, kind, data, roles or {})
            try:
                client.queue.put_nowait(out)
                sent += 1
            except asyncio.QueueFull:
                client.overflowed.set()
                continue
            if self._audit is not None and resident is not None:  # a health event, pushed
                with contextlib.suppress(Problem):  # a full audit queue: drop the client
                    self._audit.record(
                        client.principal, "live_event", resource, at=now, resident_id=resident
                    )
                    continue
                client.overflowed.set()
        return sent

    def _own_frame(
        self, me: Principal, topic: str, kind: str, data: dict[str, Any], roles: dict[int, str]
    ) -> bytes:
        """A change as a family member or a worker sees it (an order's: api.order_view;
        an alert's: api.alert_view), a family's locations coarsened."""
        if topic == DISPATCH:
            order = data.get("order")
            worker = order.get("worker_id") if isinstance(order, dict) else None
            seen = event_for(me, worker, data)
        else:
            seen = transition_for(me, data, roles)
        if not me.full_precision:
            seen = coarsen(seen, self._decimals)
        return msgspec.json.encode({"kind": kind, "data": seen})

    async def _roles(self, actor: object) -> dict[int, str]:
        """The role of the user behind ``actor`` (``user:7``), cached like districts: an
        uncached lookup while the database is away waits for the pool, holding the feed."""
        ids = user_ids([actor])
        missing = [i for i in ids if i not in self._user_roles]
        if missing:
            try:
                async with self._pool.connection() as conn:
                    found = await user_roles(conn, missing)
            except psycopg.Error as exc:  # the database away: shown as "staff"
                log.warning("live_roles_unknown", error=type(exc).__name__)
                return {}
            for user, role in found.items():
                remember(self._user_roles, user, role, limit=CACHED)
        return {i: r for i in ids if (r := self._user_roles.get(i))}

    async def _offer(self, topic: str, payload: bytes) -> None:
        try:
            await self.deliver(topic, payload)
        except Exception:  # a fault with one message must not end everyone's live feed
            log.exception("live_deliver_failed", topic=topic)

    async def _subscribe(self) -> None:
        endpoint = parse_mqtt_url(self._mqtt_url or "")
        delay = 0.5
        while True:
            try:
                async with aiomqtt_client(
                    endpoint,
                    identifier=f"eldercare-api-{uuid.uuid4().hex[:8]}",
                ) as client:
                    await client.subscribe([(ALERTS, 1), (DISPATCH, 1)])
                    self._client = client
                    self.ready.set()
                    delay = 0.5
                    async for message in client.messages:
                        payload = message.payload
                        if isinstance(payload, bytes | bytearray):
                            await self._offer(str(message.topic), bytes(payload))
            except aiomqtt.MqttError as exc:
                self._client = None
                log.warning("live_broker_lost", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)
