"""The alert engine's publisher: alert changes on ``eldercare/v1/internal/alerts``, in order,
across broker restarts.

The engine persists every change before it hands it here, so the database always
holds the record; this module makes sure subscribers (the dispatch service, the
API's live updates) hear of it too. Its connection is its own: when the broker
goes away the engine keeps deciding and persisting, the changes wait here in
order, and they are sent as soon as the connection is back (capped, jittered
backoff, as ingest and dispatch reconnect). Before, a broker restart left the
engine raising alerts that nobody was told of until the engine itself restarted.

What waits is bounded (:data:`BACKLOG_MAX` changes, the oldest dropped first,
counted and logged): a broker down for a day must not grow the engine without
limit, and what is dropped is still in the database, where the dispatch service
catches up on open critical alerts by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Final

import aiomqtt

from alerts.store import AlertChange
from eldercare.logs import get_logger
from eldercare.mqtt_client import aiomqtt_client
from eldercare.settings import MqttEndpoint
from eldercare.topics import ALERTS
from eldercare.waiting import backoff_delay, stopped_within

log = get_logger(__name__)
BACKLOG_MAX: Final = 10_000  # changes kept while the broker is away (~hours of a city's alerts)


class AlertPublisher:
    """Publish alert changes in order; hold them while the broker is away.

    ``connected`` is set while a connection is up. Outside :meth:`run` (the engine
    as an in-process handler only) :meth:`publish` sends nothing: the database
    holds the record.
    """

    def __init__(self, connected: asyncio.Event | None = None) -> None:
        self.connected = connected if connected is not None else asyncio.Event()
        self.published = 0
        self.dropped = 0
        self._client: aiomqtt.Client | None = None
        self._waiting: deque[AlertChange] = deque()
        self._sending = asyncio.Lock()  # one drain at a time keeps the order
        self._running = False

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def hold(self, changes: Iterable[AlertChange]) -> None:
        """Keep changes to send once connected (e.g. those persisted at start)."""
        self._waiting.extend(changes)
        over = len(self._waiting) - BACKLOG_MAX
        if over > 0:
            for _ in range(over):
                self._waiting.popleft()
            self.dropped += over
            log.warning("alert_backlog_full", dropped=over, kept=BACKLOG_MAX)

    def open(self) -> None:
        """From now on changes are kept to be sent (:meth:`run` connects and sends them)."""
        self._running = True

    def close(self) -> None:
        self._running = False

    async def publish(self, changes: Iterable[AlertChange]) -> None:
        """Send ``changes`` after any still waiting; keep what cannot be sent now."""
        if not self._running:
            return  # not running (a handler only): the database holds the record
        self.hold(changes)
        if self._sending.locked():
            return  # a drain is under way (a reconnect's): it sends these too, in order
        await self._drain()

    async def _drain(self) -> None:
        async with self._sending:
            while self._waiting and (client := self._client) is not None:
                change = self._waiting[0]
                payload = json.dumps(change.to_json(), default=str, separators=(",", ":"))
                try:
                    await client.publish(ALERTS, payload.encode(), qos=1)
                except aiomqtt.MqttError as exc:
                    log.warning("alert_publish_failed", alert_id=change.alert.id,
                                error=str(exc), waiting=len(self._waiting))  # fmt: skip
                    return  # the connection's watcher notices; sent after the reconnect
                self._waiting.popleft()
                self.published += 1

    async def run(self, endpoint: MqttEndpoint, stop: asyncio.Event) -> None:
        """Stay connected until ``stop``: reconnect with backoff, then send what waited."""
        self.open()
        attempt = 0
        try:
            while not stop.is_set():
                error = "the broker closed the connection"
                try:
                    async with aiomqtt_client(
                        endpoint, identifier=f"eldercare-alerts-{uuid.uuid4().hex[:8]}"
                    ) as client:
                        self._client = client
                        attempt = 0
                        await self._drain()
                        self.connected.set()
                        if await _stopped_or_lost(client, stop):
                            return
                except aiomqtt.MqttError as exc:
                    error = str(exc)
                finally:
                    self._client = None
                    self.connected.clear()
                if stop.is_set():
                    return
                attempt += 1
                delay = backoff_delay(attempt, base=0.5, cap=10.0, rnd=random.random())  # noqa: S311
                log.warning("alert_broker_lost", error=error, retry_in_s=round(delay, 2),
                            waiting=len(self._waiting))  # fmt: skip
                await stopped_within(stop, delay)
        finally:
            self.close()


async def _stopped_or_lost(client: aiomqtt.Client, stop: asyncio.Event) -> bool:
    """Wait for ``stop`` (True) or the connection's end (False)."""

    async def until_lost() -> None:
        async for _ in client.messages:  # nothing is subscribed: it ends only by a disconnect
            pass

    lost = asyncio.create_task(until_lost(), name="alerts-publisher-watch")
    stopped = asyncio.create_task(stop.wait(), name="alerts-publisher-stop")
    try:
        await asyncio.wait({lost, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (lost, stopped):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
    return stop.is_set()
