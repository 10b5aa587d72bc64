"""`eldercare dispatch`: the dispatch service.

* Listens to alerts (``eldercare/v1/internal/alerts``): a raised alert of a
  configured severity (critical by default) and type gets an emergency work
  order offered to the worker who can arrive first (:func:`dispatch_alert`).
* Listens to the workers' phones: ``eldercare/v1/workers/<id>/answers``
  (``{"order_id", "action": accept|reject|en_route|check_in|check_out, ...}``),
  ``.../location`` (``{"lat", "lon"}``) and ``.../status`` (``{"status"}``). The
  worker is the one in the topic (the broker's ACL lets a phone write only its
  own topics). Bad messages are logged and dropped, never fatal.
* Every second: offers past their time-out go back and emergencies are
  offered to the next candidate; every ``dispatch_retry_s``: emergencies still
  waiting for a worker, and orders displaced by one, are offered again, and
  open alerts of the configured kinds without an order (raised while this
  service was down) are dispatched.
* Publishes every change: the ``work_order_events`` table is the outbox (the
  API writes there too); each new row goes out on ``eldercare/v1/internal/dispatch``
  and each offer (and each cancellation, pre-emption or time-out of the
  worker's order) also on the worker's own ``.../offers`` topic; an emergency's
  acceptance and completion also publish the alert's move (dispatched, resolved)
  on ``eldercare/v1/internal/alerts``, as the engine and the API publish theirs.
  Rows are read by id with a look-back, so one committed late behind a higher id
  is not missed; how far it got is kept in ``dispatch_outbox``, so a restart
  publishes what happened while the service was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import psycopg
from psycopg_pool import AsyncConnectionPool

from dispatch import service
from dispatch.assign import AssignSettings, offer_best
from dispatch.emergency import EmergencyPolicy
from dispatch.fleet_cache import FleetCache
from dispatch.model import load_catalogue
from dispatch.roster import sync_catalogue
from dispatch.store import DispatchError, expire_offers
from eldercare.db import open_pool
from eldercare.logs import get_logger
from eldercare.migrate import migrate
from eldercare.mqtt_client import aiomqtt_client
from eldercare.settings import Settings
from eldercare.topics import ALERTS, DISPATCH, ROOT, worker_topic
from ingest.mqtt_source import backoff_delay

log = get_logger(__name__)
_LOOK_BACK = 200
_TELL_WORKER = frozenset({"cancelled", "preempted", "timed_out"})
_WORKER_ACTIONS = ("accept", "reject", "en_route", "check_in", "check_out")


def _object(payload: Any) -> dict[str, Any]:
    body = json.loads(bytes(payload))
    if not isinstance(body, dict):
        raise TypeError("not a JSON object")
    return body


def _now() -> datetime:
    return datetime.now(UTC)


class DispatchRunner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.assign = AssignSettings(
            policy=EmergencyPolicy(sla_s=settings.dispatch_sla_s),
            offer_timeout_s=settings.dispatch_offer_timeout_s,
            fleet=FleetCache(max_age_s=2.0),
        )
        self.ready = asyncio.Event()
        self.published = 0
        self.db_retries = 0  # messages tried again while the database was away
        self._last_event = 0
        self._floor = 0  # published before this process started
        self._seen: deque[int] = deque(maxlen=4 * _LOOK_BACK)
        self._pool: AsyncConnectionPool | None = None
        # one identity per process, kept across reconnects (the broker holds its session)
        self._identifier = f"{settings.dispatch_client_id}-{uuid.uuid4().hex[:6]}"
        self._client: aiomqtt.Client | None = None

    # -- inputs ----------------------------------------------------------------------------

    def wants(self, alert: dict[str, Any]) -> bool:
        s = self.settings
        return (
            alert.get("kind") == "raised"
            and alert.get("severity") in s.dispatch_auto_severities
            and (not s.dispatch_auto_types or alert.get("type") in s.dispatch_auto_types)
            and isinstance(alert.get("alert_id"), int)
        )

    async def on_alert(self, alert: dict[str, Any]) -> None:
        if alert.get("closed_at") and isinstance(alert.get("alert_id"), int):
            await self._alert_closed(int(alert["alert_id"]), str(alert.get("state")))
            return
        if not self.wants(alert):
            return
        async with self._conn() as conn:
            done = await service.dispatch_alert(
                conn, int(alert["alert_id"]), actor="dispatcher", settings=self.assign
            )
        c = done.candidate
        log.info(
            "dispatch_decision",
            alert_id=alert["alert_id"],
            order_id=done.order.id,
            worker_id=c.worker_id if c else None,
            eta_s=round(c.eta_s) if c else None,
            preempts=c.preempts_order_id if c else None,
            escalated=done.escalated,
        )

    async def _alert_closed(self, alert_id: int, state: str) -> None:
        """A closed alert (cancelled by the wearer, a false alarm, resolved by an operator)
        cancels its emergency order unless the worker is already at the door."""
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT id FROM work_orders WHERE alert_id = %s"
                " AND state IN ('created', 'offered', 'accepted', 'en_route')",
                (alert_id,),
            )
            row = await cur.fetchone()
            await conn.commit()
            if row is not None:
                with contextlib.suppress(DispatchError, ValueError):  # moved on meanwhile
                    await service.cancel_order(
                        conn, int(row[0]), actor="dispatcher", reason=f"alert {state}"
                    )
                    log.info("dispatch_cancelled", alert_id=alert_id, order_id=int(row[0]))

    async def on_worker(self, worker_id: str, channel: str, body: dict[str, Any]) -> None:
        actor = f"worker:{worker_id}"
        async with self._conn() as conn:
            if channel == "location":
                await service.worker_location(
                    conn, worker_id, float(body["lat"]), float(body["lon"]), actor=actor
                )
            elif channel == "status":
                await service.worker_status(conn, worker_id, str(body["status"]), actor=actor)
            elif channel == "answers":
                await self._answer(conn, worker_id, actor, body)

    async def _answer(self, conn: Any, worker_id: str, actor: str, body: dict[str, Any]) -> None:
        action, order_id = body.get("action"), body.get("order_id")
        if action not in _WORKER_ACTIONS or not isinstance(order_id, int):
            raise DispatchError(f"bad answer {action!r} for order {order_id!r}")
        kw: dict[str, Any] = {"worker_id": worker_id, "actor": actor}
        if action == "accept":
            await service.accept(conn, order_id, **kw)
        elif action == "reject":
            await service.reject(
                conn, order_id, reason=str(body.get("reason", "")), settings=self.assign, **kw
            )
        elif action == "en_route":
            await service.en_route(conn, order_id, **kw)
        elif action == "check_in":
            await service.check_in(
                conn,
                order_id,
                lat=float(body["lat"]),
                lon=float(body["lon"]),
                radius_m=self.settings.dispatch_check_in_radius_m,
                **kw,
            )
        else:
            await service.check_out(
                conn,
                order_id,
                notes=str(body.get("notes", "")),
                outcome=str(body.get("outcome", "done")),
                **kw,
            )

    async def _message(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        try:
            body = _object(message.payload)
            if topic == ALERTS:
                await self.on_alert(body)
                return
            parts = topic.split("/")
            if len(parts) == 5 and parts[2] == "workers":
                await self.on_worker(parts[3], parts[4], body)
        except (ValueError, KeyError, TypeError, DispatchError) as exc:
            log.warning("dispatch_message_rejected", topic=topic, error=str(exc))

    # -- timers ----------------------------------------------------------------------------

    async def tick(self) -> None:
        """Time out offers (re-offering emergencies), and retry what waits for a worker."""
        now = _now()
        async with self._conn() as conn:
            for change in await expire_offers(conn, now=now):
                if change.order.kind == "emergency":
                    await self._reoffer(conn, change.order.id, now)

    async def retry_waiting(self) -> None:
        """Offer again what waits for a worker: emergencies (past their SLA too: someone
        must still go), displaced routine orders within their window; and dispatch open
        alerts that were missed (raised while this service was down)."""
        now = _now()
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT id FROM work_orders o WHERE state = 'created' AND ((kind = 'emergency'"
                "   AND created_at > %(now)s - interval '1 day')"
                " OR (window_end > %(now)s AND EXISTS (SELECT 1 FROM work_order_events e"
                "   WHERE e.order_id = o.id AND e.kind = 'preempted')))"
                " ORDER BY priority, id LIMIT 50",
                {"now": now},
            )
            ids = [int(r[0]) for r in await cur.fetchall()]
            await conn.commit()
            for order_id in ids:
                await self._reoffer(conn, order_id, now)
            for alert_id in await self._missed_alerts(conn, now):
                with contextlib.suppress(DispatchError, ValueError):
                    await service.dispatch_alert(
                        conn, alert_id, actor="dispatcher", now=now, settings=self.assign
                    )
                    log.info("dispatch_caught_up", alert_id=alert_id)

    async def _missed_alerts(self, conn: Any, now: datetime) -> list[int]:
        s = self.settings
        cur = await conn.execute(
            "SELECT a.id FROM alerts a WHERE a.closed_at IS NULL"
            " AND a.state IN ('open', 'acknowledged') AND a.severity = ANY(%s)"
            " AND (cardinality(%s::text[]) = 0 OR a.type = ANY(%s))"
            " AND a.opened_at > %s - interval '1 day'"
            " AND NOT EXISTS (SELECT 1 FROM work_orders o WHERE o.alert_id = a.id)"
            " ORDER BY a.opened_at LIMIT 50",
            (s.dispatch_auto_severities, s.dispatch_auto_types, s.dispatch_auto_types, now),
        )
        ids = [int(r[0]) for r in await cur.fetchall()]
        await conn.commit()
        return ids

    async def _reoffer(self, conn: Any, order_id: int, now: datetime) -> None:
        with contextlib.suppress(DispatchError, ValueError):
            await offer_best(conn, order_id, now=now, settings=self.assign)

    # -- outbox ----------------------------------------------------------------------------

    async def publish_new(self) -> int:
        client = self._client
        if client is None:
            return 0
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT e.id, e.order_id, e.at, e.kind, e.from_state, e.to_state, e.worker_id,"
                " e.actor, e.detail, r.home_lat, r.home_lon FROM work_order_events e"
                " JOIN work_orders o ON o.id = e.order_id JOIN residents r USING (resident_id)"
                " WHERE e.id > %s ORDER BY e.id LIMIT 500",
                (max(self._floor, self._last_event - _LOOK_BACK),),
            )
            rows = await cur.fetchall()
            await conn.commit()
            sent = 0
            for eid, oid, at, kind, frm, to, wid, actor, detail, lat, lon in rows:
                if eid in self._seen:
                    continue
                stored = await service.get_order(conn, oid)
                order = stored.to_json()
                event = {
                    "kind": kind,
                    "event_id": eid,
                    "order_id": oid,
                    "at": at.isoformat(),
                    "from_state": frm,
                    "to_state": to,
                    "worker_id": wid,
                    "actor": actor,
                    "detail": detail,
                    "order": order,
                }
                await client.publish(DISPATCH, json.dumps(event).encode(), qos=1)
                if kind == "offered" and wid:
                    offer = {**event, "home": {"lat": lat, "lon": lon}}
                    await client.publish(
                        worker_topic(wid, "offers"), json.dumps(offer).encode(), qos=1
                    )
                elif kind in _TELL_WORKER and wid:  # the phone drops the job
                    await client.publish(
                        worker_topic(wid, "offers"), json.dumps(event).encode(), qos=1
                    )
                moved = await service.alert_moved_by(conn, stored, kind=kind, actor=actor, at=at)
                if moved is not None:  # the alert's own subscribers hear of it too
                    payload = json.dumps(moved.to_json(), default=str, separators=(",", ":"))
                    await client.publish(ALERTS, payload.encode(), qos=1)
                self._seen.append(eid)
                self._last_event = max(self._last_event, eid)
                sent += 1
            if sent:
                await conn.execute(
                    "UPDATE dispatch_outbox SET last_event_id = greatest(last_event_id, %s),"
                    " updated_at = now() WHERE name = 'dispatch'",
                    (self._last_event,),
                )
                await conn.commit()
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

    async def _listen(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Handle messages until ``stop``; a lost connection raises (and is reconnected)."""

        async def forever() -> None:
            async for message in client.messages:
                await self._handle(message, stop)

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

    async def _handle(self, message: aiomqtt.Message, stop: asyncio.Event) -> None:
        """One message, tried again while the database is away (capped backoff, until
        ``stop``). The broker took its acknowledgement on arrival, so a worker's
        "accept" dropped on a database blip would be lost: the offer would then time out
        and go to a second worker while the first is on the way. The messages behind it
        wait, in order. Another database error (a constraint, bad data) would fail
        again: it is logged and the message is dropped."""
        attempt = 0
        while True:
            try:
                await self._message(message)
            except psycopg.OperationalError as exc:
                attempt += 1
                self.db_retries += 1
                delay = backoff_delay(attempt, base=0.5, cap=10.0, rnd=random.random())  # noqa: S311
                log.warning("dispatch_db_unavailable", topic=str(message.topic),
                            error=str(exc).splitlines()[0], retry_in_s=round(delay, 2))  # fmt: skip
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
            except psycopg.Error as exc:
                log.warning("dispatch_db_error", error=str(exc).splitlines()[0])
                return
            else:
                return

    async def _session(self, stop: asyncio.Event) -> None:
        endpoint = self.settings.mqtt()
        async with aiomqtt_client(
            endpoint,
            identifier=self._identifier,
            clean_session=False,  # alerts published while we reconnect are kept for us
            max_queued_incoming_messages=None,
        ) as client:
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
            await conn.execute(
                "INSERT INTO dispatch_outbox (name, last_event_id) SELECT 'dispatch',"
                " coalesce(max(id), 0) FROM work_order_events ON CONFLICT (name) DO NOTHING"
            )
            cur = await conn.execute(
                "SELECT last_event_id FROM dispatch_outbox WHERE name = 'dispatch'"
            )
            row = await cur.fetchone()
            await conn.commit()
            self._last_event = self._floor = int(row[0]) if row else 0
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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            await self._pool.close()
            self._pool = None


async def run_dispatch(settings: Settings, stop: asyncio.Event) -> None:
    await asyncio.to_thread(migrate, settings.require_database_url())
    await DispatchRunner(settings).run(stop)
