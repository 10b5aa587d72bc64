"""Messages into the dispatch service: alerts, and the worker phones' answers.

* An alert on ``eldercare/v1/internal/alerts``: a raised alert of a configured
  severity and type (:meth:`Inbox.wants`) gets an emergency order offered to
  the worker who can arrive first; a closed one cancels its order unless the
  worker is already at the door.
* ``eldercare/v1/workers/<id>/answers`` (accept, reject, en_route, check_in,
  check_out), ``.../location`` and ``.../status``, applied as the worker named
  in the topic.

Bad messages are logged and dropped (:meth:`Inbox.message`): not JSON, too
large (``MAX_MESSAGE_BYTES``) or too deep to read, numbers out of range, fields of
the wrong type. Database errors propagate to ``dispatch.runner``, which retries
while the database is away.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiomqtt

from dispatch import service
from dispatch.assign import AssignSettings
from dispatch.joins import OTHER_ALERTS_CLOSED
from dispatch.store import DispatchError
from dispatch.throttle import Throttle
from dispatch.timers import NOT_AT_THE_DOOR, cancel_for_closed_alert
from eldercare.logs import get_logger
from eldercare.settings import Settings
from eldercare.topics import ALERTS, parse_worker_topic

log = get_logger(__name__)
WORKER_ACTIONS = ("accept", "reject", "en_route", "check_in", "check_out")
# an answer, a location or an alert change is a few hundred bytes; a phone can publish up
# to the broker's 1 MiB on its own topics
MAX_MESSAGE_BYTES = 64 * 1024
# a phone's position is kept at most this often; the rest of a burst is dropped unread, so
# one phone flooding its location topic cannot hold up the alerts and answers behind it
# (all share one stream: ~1 ms each, 20,000 locations held an emergency up for 21 s)
LOCATION_EVERY_S = 1.0
# a phone's answers and status changes: 60 at once (a phone back online flushing its
# queue sends a handful), then five a second (a simulated worker at 1,000x real time
# sends ~3); the rest dropped unread (dispatch.throttle)
ANSWERS_BURST = 60
ANSWERS_PER_S = 5.0
_LOCATIONS_KEPT = 100_000  # workers remembered for that; beyond it, start over
# what a message can make Python raise while it is read: OverflowError (a 400-digit
# latitude to float), RecursionError (arrays nested 100,000 deep), UnicodeDecodeError
# and JSONDecodeError (ValueError)
_BAD_INPUT = (ValueError, KeyError, TypeError, ArithmeticError, RecursionError, DispatchError)


def parse_object(payload: Any) -> dict[str, Any]:
    raw = bytes(payload)
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {len(raw)} bytes (max {MAX_MESSAGE_BYTES})")
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise TypeError("not a JSON object")
    return body


class Inbox:
    """Acts on one message at a time, on a connection from ``connect``."""

    def __init__(
        self,
        settings: Settings,
        assign: AssignSettings,
        connect: Callable[[], AbstractAsyncContextManager[Any]],
    ) -> None:
        self.settings = settings
        self.assign = assign
        self._conn = connect
        self.locations_dropped = 0
        self.answers_dropped = 0  # answers and status changes over ANSWERS_BURST/_PER_S
        self._answers = Throttle(ANSWERS_BURST, ANSWERS_PER_S)
        self._throttled: set[str] = set()  # keys dropped since their last heard message
        self._location_at: dict[str, float] = {}  # worker -> monotonic time of the last kept

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
        cancels its emergency order unless the worker is already at the door, or another
        alert on the order is still open (:mod:`dispatch.joins`)."""
        async with self._conn() as conn:
            cur = await conn.execute(
                f"SELECT o.id FROM work_orders o WHERE o.state IN {NOT_AT_THE_DOOR}"
                " AND o.id IN (SELECT order_id FROM alert_orders WHERE alert_id = %s)"
                f" AND {OTHER_ALERTS_CLOSED} ORDER BY o.id LIMIT 1",
                (alert_id, alert_id),
            )
            row = await cur.fetchone()
            await conn.commit()
            if row is not None:
                await cancel_for_closed_alert(conn, int(row[0]), alert_id=alert_id,
                                              alert_state=state)  # fmt: skip

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
        if action not in WORKER_ACTIONS or not isinstance(order_id, int):
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

    def _too_soon(self, worker_id: str) -> bool:
        """Another position of this worker within ``LOCATION_EVERY_S`` of the last kept."""
        last = self._location_at.get(worker_id)
        if last is not None and time.monotonic() - last < LOCATION_EVERY_S:
            self.locations_dropped += 1
            return True
        return False

    def _over_limit(self, worker_id: str, channel: str) -> bool:
        """An answer or status change beyond this phone's allowance: dropped unread,
        counted, and logged once per run of drops (not once per message)."""
        key = f"{worker_id}/{channel}"
        if self._answers.allow(key, time.monotonic()):
            self._throttled.discard(key)
            return False
        self.answers_dropped += 1
        if key not in self._throttled:
            if len(self._throttled) >= _LOCATIONS_KEPT:
                self._throttled.clear()
            self._throttled.add(key)
            log.warning("dispatch_worker_throttled", worker_id=worker_id, channel=channel,
                        burst=ANSWERS_BURST, per_s=ANSWERS_PER_S)  # fmt: skip
        return True

    def _kept_location(self, worker_id: str) -> None:
        if len(self._location_at) >= _LOCATIONS_KEPT:
            self._location_at.clear()
        self._location_at[worker_id] = time.monotonic()

    def admit(self, message: aiomqtt.Message) -> bool:
        """Whether to hear ``message`` at all: a worker's position within
        ``LOCATION_EVERY_S`` of the last kept, or an answer or status change beyond the
        phone's allowance, is dropped unread. Asked once per message, before any retry:
        a message let through and held while the database is away must not be dropped
        on its second try (an "accept" lost)."""
        worker = parse_worker_topic(str(message.topic))
        if worker is None:
            return True
        worker_id, channel = worker
        if channel == "location":
            return not self._too_soon(worker_id)
        return not self._over_limit(worker_id, channel)

    async def message(self, message: aiomqtt.Message) -> None:
        """Act on an admitted message (:meth:`admit`); bad input is logged and dropped."""
        topic = str(message.topic)
        worker = parse_worker_topic(topic)
        try:
            body = parse_object(message.payload)
            if topic == ALERTS:
                await self.on_alert(body)
                return
            if worker is not None:
                worker_id, channel = worker
                await self.on_worker(worker_id, channel, body)
                if channel == "location":  # a bad one does not count
                    self._kept_location(worker_id)
        except _BAD_INPUT as exc:
            log.warning("dispatch_message_rejected", topic=topic, error=str(exc)[:200])
