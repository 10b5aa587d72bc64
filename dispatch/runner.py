"""`eldercare dispatch`: the dispatch service.

* Listens to alerts (``eldercare/v1/internal/alerts``): a raised alert of a
  configured severity (critical by default) and type gets an emergency work
  order offered to the worker who can arrive first (:func:`dispatch_alert`).
* Listens to the workers' phones: ``eldercare/v1/workers/<id>/answers``
  (``{"order_id", "action": accept|reject|en_route|check_in|check_out, ...}``),
  ``.../location`` (``{"lat", "lon"}``) and ``.../status`` (``{"status"}``). The
  worker is the one in the topic (the broker's ACL lets a phone write only its
  own topics). Bad messages are logged and dropped, never fatal (:mod:`dispatch.inbox`).
* Every second: offers past their time-out go back and emergencies are
  offered to the next candidate; every ``dispatch_retry_s``: emergencies still
  waiting for a worker, and orders displaced by one, are offered again, and
  open alerts of the configured kinds without an order (raised while this
  service was down) are dispatched (:mod:`dispatch.timers`).
* Publishes every change: the ``work_order_events`` table is the outbox (the
  API writes there too); each new row goes out on ``eldercare/v1/internal/dispatch``
  and each offer (and each cancellation, pre-emption or time-out of the
  worker's order) also on the worker's own ``.../offers`` topic; an emergency's
  acceptance and completion also publish the alert's move (dispatched, resolved)
  on ``eldercare/v1/internal/alerts``, as the engine and the API publish theirs.
  Rows are read by id, and ids skipped because their transaction had not committed
  are read again until filled or abandoned, so an event committed late is not
  missed; how far it got is kept in ``dispatch_outbox``, so a restart publishes
  what happened while the service was down (:mod:`dispatch.outbox`).

This module is the shell around them: the connection pool, the MQTT session and
its reconnects, the timers' loops, and retrying a message while the database is
away.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import psycopg
from psycopg_pool import AsyncConnectionPool

from dispatch import timers
from dispatch.assign import assign_settings
from dispatch.fleet_cache import FleetCache
from dispatch.inbox import Inbox
from dispatch.model import load_catalogue
from dispatch.outbox import Outbox
from dispatch.roster import sync_catalogue
from dispatch.rotation import Rotation
from eldercare.db import open_pool
from eldercare.logs import get_logger
from eldercare.migrate import migrate
from eldercare.mqtt_client import aiomqtt_client
from eldercare.settings import Settings
from eldercare.topics import ALERTS, ROOT
from eldercare.waiting import backoff_delay, stopped_within

log = get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class DispatchRunner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.assign = assign_settings(settings, fleet=FleetCache(max_age_s=2.0))
        self.ready = asyncio.Event()
        self.published = 0
        self.db_retries = 0  # messages tried again while the database was away
        self._holding = False  # a message waits for the database (see _handle, tick)
        self._rotation = Rotation()  # where each retry queue's page ended (dispatch.rotation)
        self._inbox = Inbox(settings, self.assign, self._conn)
        self._outbox = Outbox()
        self._pool: AsyncConnectionPool | None = None
        # the deployment's identity, kept across reconnects and restarts: the broker holds
        # its session, so what phones and the alert topic send while the service restarts
        # waits there for it. Before 2026-12-03 each process added a random suffix: those
        # messages waited in a session nobody read again (a worker's "accept" lost, the
        # offer timed out and went to a second worker). Two instances need two ids.
        self._identifier = settings.dispatch_client_id
        self._client: aiomqtt.Client | None = None

    # -- inputs ----------------------------------------------------------------------------

    @property
    def locations_dropped(self) -> int:
        """Worker positions dropped unread: within ``inbox.LOCATION_EVERY_S`` of the last."""
        return self._inbox.locations_dropped

    @property
    def answers_dropped(self) -> int:
        """Worker answers and status changes dropped unread: over a phone's allowance
        (``inbox.ANSWERS_BURST`` at once, then ``inbox.ANSWERS_PER_S`` a second), asked
        once per message (:meth:`Inbox.admit`), not again when it is retried."""
        return self._inbox.answers_dropped

    def wants(self, alert: dict[str, Any]) -> bool:
        return self._inbox.wants(alert)

    async def on_alert(self, alert: dict[str, Any]) -> None:
        await self._inbox.on_alert(alert)

    async def on_worker(self, worker_id: str, channel: str, body: dict[str, Any]) -> None:
        await self._inbox.on_worker(worker_id, channel, body)

    # -- timers ----------------------------------------------------------------------------

    async def tick(self) -> None:
        """Time out offers (re-offering emergencies).

        Not while a message waits for the database: it may be a worker's "accept" that
        came in time. Before 2026-12-03, after an outage longer than an offer's time-out,
        this timer could run first when the database came back, give the emergency to
        a second worker, and the held accept was then refused: two workers sent, the
        first already on the way."""
        if self._holding:
            return
        now = _now()
        async with self._conn() as conn:
            await timers.expire_and_reoffer(conn, now=now, assign=self.assign)

    async def retry_waiting(self) -> None:
        """Offer again what waits for a worker: emergencies (past their SLA too: someone
        must still go), displaced routine orders within their window; and dispatch open
        alerts that were missed (raised while this service was down)."""
        now = _now()
        async with self._conn() as conn:
            await timers.retry_waiting(conn, now=now, settings=self.settings, assign=self.assign,
                                       rotation=self._rotation)  # fmt: skip

    # -- outbox ----------------------------------------------------------------------------

    async def publish_new(self) -> int:
        client = self._client
        if client is None:
            return 0
        async with self._conn() as conn:
            sent = await self._outbox.publish_new(conn, client)
        self.published += sent
        return sent

    # -- the shell -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _conn(self) -> Any:
        if self._pool is None:
            raise RuntimeError("the dispatch service is not running")
        async with self._pool.connection() as conn:
            yield conn

    async def _every(self, seconds: float, job: Any, stop: asyncio.Event, name: str) -> None:
        while not stop.is_set():
            try:
                await job()
            except (psycopg.Error, aiomqtt.MqttError) as exc:
                log.warning("dispatch_job_failed", job=name, error=str(exc).splitlines()[0])
            await stopped_within(stop, seconds)

    async def _listen(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Handle messages until ``stop``; a lost connection raises (and is reconnected)."""

        async def forever() -> None:
            async for message in client.messages:
                if await self._handle(message, stop):
                    _ack(client, message)

        reader = asyncio.create_task(forever(), name="dispatch-reader")
        stopper = asyncio.create_task(stop.wait(), name="dispatch-stop")
        await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if reader.done():
            reader.result()  # raises what ended it (MqttError: the broker went away)
            raise aiomqtt.MqttError("the broker closed the message stream")
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader

    async def _handle(self, message: aiomqtt.Message, stop: asyncio.Event) -> bool:
        """One message, tried again while the database is away (capped backoff, until
        ``stop``): whether it is done with, i.e. may be acknowledged. A worker's "accept"
        dropped on a database blip would be lost: the offer would then time out and go to
        a second worker while the first is on the way. The messages behind it wait, in
        order. Stopped while it waits: not done, so unacknowledged, and the broker
        delivers it again to the next session. Another database error (a constraint, bad
        data) would fail again: it is logged and the message is dropped (done). So is
        anything else a message makes the code raise (a defect), with its trace: before
        2026-12-03 one phone's 400-digit latitude ended the service for every alert and
        worker."""
        if not self._inbox.admit(message):  # a flood's excess: done with, unread
            return True
        try:
            return await self._handle_until_answered(message, stop)
        finally:
            self._holding = False

    async def _handle_until_answered(self, message: aiomqtt.Message, stop: asyncio.Event) -> bool:
        attempt = 0
        while True:
            try:
                await self._inbox.message(message)
            except psycopg.OperationalError as exc:
                self._holding = True
                attempt += 1
                self.db_retries += 1
                delay = backoff_delay(attempt, base=0.5, cap=10.0, rnd=random.random())  # noqa: S311
                log.warning("dispatch_db_unavailable", topic=str(message.topic),
                            error=str(exc).splitlines()[0], retry_in_s=round(delay, 2))  # fmt: skip
                if await stopped_within(stop, delay):
                    return False
            except psycopg.Error as exc:
                log.warning("dispatch_db_error", error=str(exc).splitlines()[0])
                return True
            except Exception:  # a defect met on one message must not end the service
                log.exception("dispatch_message_failed", topic=str(message.topic))
                return True
            else:
                return True

    async def _session(self, stop: asyncio.Event) -> None:
        endpoint = self.settings.mqtt()
        client = aiomqtt_client(
            endpoint,
            identifier=self._identifier,
            clean_session=False,  # alerts published while we reconnect are kept for us
            max_queued_incoming_messages=None,
        )
        # aiomqtt acknowledges each message on arrival; the paho client beneath it can
        # leave that to us (_ack, once handled). Before 2026-12-03 what had arrived but
        # was not handled yet when the service stopped or lost the broker was gone: a
        # worker's accept, an alert's "raised". Now the broker delivers it again.
        client._client.manual_ack_set(True)
        async with client:
            self._client = client
            await client.subscribe(ALERTS, qos=1)
            for channel in ("answers", "location", "status"):
                await client.subscribe(f"{ROOT}/workers/+/{channel}", qos=1)
            log.info("dispatch_connected")
            self.ready.set()
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._listen(client, stop), name="dispatch-listen")
                    tg.create_task(self._every(1.0, self.tick, stop, "tick"), name="dispatch-tick")
                    tg.create_task(
                        self._every(
                            self.settings.dispatch_retry_s, self.retry_waiting, stop, "retry"
                        ),
                        name="dispatch-retry",
                    )
                    tg.create_task(
                        self._every(0.2, self.publish_new, stop, "outbox"), name="dispatch-outbox"
                    )
            finally:
                self._client = None
                self.ready.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop``; reconnect to the broker with capped, jittered backoff."""
        url = self.settings.require_database_url()
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await sync_catalogue(conn, load_catalogue(self.settings.dispatch_catalogue))
            # the first start publishes from now on; a restart resumes where it stopped
            await self._outbox.resume(conn)
        self.settings.mqtt()  # a clear error now if MQTT is not configured
        self._pool = await open_pool(url, max_size=4, name="dispatch")
        attempt = 0
        try:
            while not stop.is_set():
                lost: str | None = None
                try:
                    await self._session(stop)
                except* aiomqtt.MqttError as group:
                    lost = str(group.exceptions[0])
                if lost is None:
                    return
                attempt += 1
                delay = backoff_delay(attempt, base=0.5, cap=10.0, rnd=random.random())  # noqa: S311
                log.warning("dispatch_mqtt_lost", error=lost, retry_in_s=round(delay, 2))
                await stopped_within(stop, delay)
        finally:
            await self._pool.close()
            self._pool = None


def _ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Acknowledge a handled message (QoS 1 and 2; QoS 0 has nothing to acknowledge).

    aiomqtt has no public call for it: this is paho's, on the client aiomqtt wraps, on
    this event loop (aiomqtt drives paho's socket from it)."""
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)


async def run_dispatch(settings: Settings, stop: asyncio.Event) -> None:
    await asyncio.to_thread(migrate, settings.require_database_url())
    await DispatchRunner(settings).run(stop)
