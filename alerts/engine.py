"""The live alert engine: detectors in, alert lifecycle persisted, then published.

:class:`AlertEngine` keeps one :class:`ResidentState` per resident and folds
into it every batch ingest committed (:meth:`AlertEngine.on_batch`, an ingest
handler in process, or the internal ``ingested`` topic when standalone) and a
:class:`Tick` every second for residents with a fall's timers running, and
every 30 s for everyone. Each batch of events is **persisted first** (one
transaction, :func:`alerts.store.apply_events`), **then published** as JSON on
``eldercare/v1/internal/alerts`` (QoS 1): a subscriber never hears of an alert
the database does not hold. If the database goes away, recording is tried again
until it answers (:mod:`alerts.engine_db`), and a resident's state is kept only
once what it decided is recorded (:meth:`AlertEngine._emit`).

At start the engine loads the profiles (with clinicians' thresholds,
:mod:`alerts.thresholds`), the personal baselines (:mod:`alerts.engine_baselines`)
and every alert not closed, and seeds the detectors from them and from what the
bands reported meanwhile (:mod:`alerts.evidence`, :mod:`alerts.restart`). The tick
loop refreshes the profiles and the alerts operators closed every 30 s, reloads the
baselines hourly beside the decisions, and escalates unacknowledged critical alerts
every 5 s (:class:`~alerts.lifecycle.EscalationPolicy`). docs/alerts.md, "Alert
lifecycle" and "Restart", says why each works as it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from alerts.baselines import ResidentBaselines
from alerts.detectors import (
    AlertClosed,
    AlertEvent,
    Profile,
    ResidentState,
    Tick,
    ambient,
    rebanded,
    sos_only,
    step,
)
from alerts.detectors.ambient import SkinShift
from alerts.detectors.types import ms_to_utc
from alerts.detectors.waking import vitals_night
from alerts.engine_baselines import HeldBaselines
from alerts.engine_db import RETRYABLE, EngineDatabase
from alerts.engine_states import ResidentStates
from alerts.escalation_store import record_escalations, unacknowledged
from alerts.evidence import restore_states
from alerts.falls import FallModel, load_model
from alerts.feed import FeedWatch
from alerts.lifecycle import EscalationPolicy, due_escalations
from alerts.profiles import load_profile, load_profiles
from alerts.publisher import AlertPublisher
from alerts.shard import Shard
from alerts.store import AlertChange, apply_events, open_alert_keys
from eldercare import heap
from eldercare.logs import get_logger
from eldercare.migrate import migrate
from eldercare.protocol import Telemetry
from eldercare.settings import Settings
from eldercare.waiting import stopped_within
from ingest.consumer import DurableConsumer
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted, Refusal

log = get_logger(__name__)
TICK_SLICE: Final = 1000  # residents per hold of the decision lock in a full tick (~16 ms)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ordered(batch: IngestedBatch) -> list[Accepted]:
    """By the band's time; a status without one (the last will, sent when the connection
    dropped) after the rest. Stable: each channel's own order is kept."""
    items = [*batch.status, *batch.telemetry, *batch.events, *batch.imu]
    return sorted(items, key=lambda a: (a.message.ts is None, a.message.ts or 0))


class AlertEngine:
    """Detectors, persistence and publication for every resident (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        *,
        fall_model: FallModel | None,
        clock: Callable[[], datetime] = _utcnow,
        tick_s: float = 1.0,
        full_tick_every: int = 30,
        escalate_every: int = 5,
        escalation: EscalationPolicy | None = None,
        baseline_days: float = 7.0,
        baseline_every: int = 3600,
    ) -> None:
        self.settings = settings
        self.shard = Shard.parse(settings.alert_shard)
        self.fall_model = fall_model
        self.profiles: dict[int, Profile] = {}
        self._book = ResidentStates()
        self.ready = asyncio.Event()  # loaded and (in run) connected to the broker
        self._publisher = AlertPublisher(connected=self.ready)
        self.subscribed = asyncio.Event()  # standalone: reading the ingested topic
        self.step_failures = 0  # inputs a detector raised on (skipped; see _step_failed)
        self.tick_failures = 0  # ticks that met a defect (logged; the next one runs)
        self._db = EngineDatabase(settings)
        self.started = asyncio.Event()  # in run: loaded and deciding (the broker maybe not yet)
        self._clock = clock
        self._tick_s = tick_s
        self._full_tick_every = max(1, full_tick_every)
        self._escalate_every = max(1, escalate_every)
        self.escalation = escalation or EscalationPolicy()
        self._baselines = HeldBaselines(settings, self.shard, clock, baseline_days)
        self.skin = SkinShift()  # hot weather: the wrist-temperature rise everyone shares
        self._feed = FeedWatch(started=clock())  # a platform outage is not every band's
        self._baseline_every = max(1, baseline_every)  # ticks between reloads
        self._lock = asyncio.Lock()  # one decision at a time: states and the connection
        self._loaded = False
        self._heap = heap.Settler()  # after each batch and tick: see eldercare/heap.py

    # -- inputs ---------------------------------------------------------------------------

    async def on_batch(self, batch: IngestedBatch) -> None:
        """Ingest handler: fold the new readings in, persist, publish."""
        async with self._lock:
            await self._ensure_loaded()
            now = self._clock()
            self._feed.heard(now)
            events: list[AlertEvent] = []
            fresh: dict[int, ResidentState] = {}  # kept once the events are recorded
            # what ingest refused first: a window accepted in the same batch has the last word
            items: list[Accepted | Refusal] = [*batch.refused, *_ordered(batch)]
            for item in items:
                resident_id = item.resident_id
                if resident_id is None or not self.shard.owns(resident_id):
                    continue
                profile = self.profiles.get(resident_id) or await self._profile(resident_id)
                if profile is None:
                    continue
                state = fresh.get(resident_id) or self.states.get(resident_id) or ResidentState()
                try:
                    state, evs = self._fold(profile, state, item, now)
                except Exception as exc:  # a defect met on one reading stops nobody else's alerts
                    what = type(item.message if isinstance(item, Accepted) else item).__name__
                    self._step_failed(resident_id, what, exc)
                    state, evs = self._sos_only(profile, state, item, now)  # nor an SOS
                    if not evs:
                        continue
                fresh[resident_id] = state
                events += evs
            await self._emit(events, fresh)
        self._heap.settle()

    async def tick(self, *, everyone: bool = False) -> None:
        """Time-driven rules: residents with a fall's timers running, or everyone.

        In slices of ``TICK_SLICE`` residents, each under the decision lock: the full
        tick of a city's engine (~5 us per resident, 0.5 s at 100,000) would otherwise
        keep every reading waiting that long every 30 s.

        After a tick, as after a batch, the states that survived are frozen out of the
        garbage collector's reach (:mod:`eldercare.heap`): its full collections of a
        city's states stopped the process for up to 2.6 s.
        """
        async with self._lock:
            await self._ensure_loaded()
            now = self._clock()
            if everyone:
                self.skin.update(now)
            ids = list(self.profiles) if everyone else sorted(self._book.pending)
            tick = Tick(now, feed_since=self._feed.feed_since(now, len(self.profiles)))
        for start in range(0, len(ids), TICK_SLICE):
            await asyncio.sleep(0)  # the waiting readings go first: a free lock never yields
            async with self._lock:
                events: list[AlertEvent] = []
                fresh: dict[int, ResidentState] = {}
                for resident_id in ids[start : start + TICK_SLICE]:
                    profile = self.profiles.get(resident_id)
                    if profile is None:
                        continue
                    old = self.states.get(resident_id)
                    try:
                        state, evs = step(profile, old or ResidentState(), tick, now=now,
                                          fall_model=self.fall_model)  # fmt: skip
                    except Exception as exc:  # as in on_batch: one resident's, not everyone's
                        self._step_failed(resident_id, "Tick", exc)
                        continue
                    if state is not old:
                        fresh[resident_id] = state
                    events += evs
                await self._emit(events, fresh)
        self._heap.settle()

    def _fold(
        self, profile: Profile, state: ResidentState, item: Accepted | Refusal, now: datetime
    ) -> tuple[ResidentState, list[AlertEvent]]:
        m = item.message if isinstance(item, Accepted) else None
        if (isinstance(m, Telemetry) and m.skin_temp_c is not None and m.worn is not False
                and self.skin.due(profile.resident_id, m.ts)):  # fmt: skip
            self._observe_skin(profile, m.ts, m.skin_temp_c)
        return step(profile, state, item, now=now, fall_model=self.fall_model,
                    skin_shift_c=self.skin.shift_c)  # fmt: skip

    def _sos_only(
        self, profile: Profile, state: ResidentState, item: Accepted | Refusal, now: datetime
    ) -> tuple[ResidentState, list[AlertEvent]]:
        """After a failed step: an SOS press still goes through the SOS detector alone."""
        try:
            return sos_only(profile, state, item, now)
        except Exception as exc:
            self._step_failed(profile.resident_id, "sos_only", exc)
            return state, []

    def _step_failed(self, resident_id: int, what: str, exc: Exception) -> None:
        """A detector raised: that input is skipped and the resident's state kept as it
        was, so one defect can neither stop the engine nor, replayed after a restart,
        block the stream for everyone (a poison batch). Counted and logged (the type
        only: a message could carry readings)."""
        self.step_failures += 1
        log.error("alert_step_failed", resident_id=resident_id, input=what,
                  error_type=type(exc).__name__)  # fmt: skip

    def _observe_skin(self, profile: Profile, ts: int, skin_c: float) -> None:
        at = ms_to_utc(ts)
        dev = ambient.deviation(skin_c, profile, night=vitals_night(at, profile))
        self.skin.observe(profile.resident_id, ts, dev)

    async def refresh(self) -> None:
        """Reload profiles, and tell the detectors about alerts closed elsewhere.

        The registry is read and the profiles built without the decision lock, on a
        connection of the tick's own; the swap and the closed alerts take the lock.
        """
        baselines, old = self.baselines, self.profiles
        fresh = self._baselines.apply(await self._own_profiles(await self._db.side_connection()))
        repaired = [r for r, p in fresh.items() if (was := old.get(r)) and was.bands != p.bands]
        async with self._lock:
            if baselines is not self.baselines:  # a reload swapped them in meanwhile
                fresh = self._baselines.apply(fresh)
            self.profiles = fresh
            self._forget_closed(await self._own_open_alert_keys(await self._db.connection()))
            await self._rebanded(repaired)

    async def _rebanded(self, residents: list[int]) -> None:
        """Forget, in the states of ``residents`` (whose bands changed), the bands no
        longer theirs (:func:`~alerts.detectors.rebanded`)."""
        now, events, states = self._clock(), [], {}
        for resident_id in residents:
            state, profile = self.states.get(resident_id), self.profiles.get(resident_id)
            if state is not None and profile is not None:
                states[resident_id], evs = rebanded(profile, state, now)
                events += evs
        if states:
            await self._emit(events, states)

    @property
    def baselines(self) -> dict[int, ResidentBaselines]:
        """Every resident's personal baselines, as applied to the profiles."""
        return self._baselines.held

    @property
    def db_retries(self) -> int:
        """Failed attempts to record decisions (:meth:`EngineDatabase.until_answered`)."""
        return self._db.retries

    async def reload_baselines(self) -> None:
        """Recompute every resident's personal baselines from the database (hourly).

        Beside the decisions, not in their way: the day's summary and the baselines are
        read on a connection of their own, without the decision lock, in chunks computed in
        a worker thread (:func:`alerts.baselines.load_baselines`); only the swap of the
        finished baselines into the profiles takes the lock. At 5,000 residents a reload takes
        20-30 s, during which an SOS used to wait for all of it (``bench/reload.py``).
        """
        fresh = await self._baselines.read_own()
        if fresh is not None:
            async with self._lock:
                self._set_baselines(*fresh)

    def _set_baselines(
        self, baselines: dict[int, ResidentBaselines], key: tuple[object, ...] | None = None
    ) -> None:
        self._baselines.set(baselines, key)
        self.profiles = self._baselines.apply(self.profiles)

    def _reload_in_background(self) -> None:
        """Start the hourly reload unless one still runs; the tick goes on meanwhile."""
        self._baselines.start(self.reload_baselines)

    async def escalate(self) -> list[AlertChange]:
        """Escalate unacknowledged critical alerts that are due; persist, then publish.

        Also tells the detectors about alerts operators closed meanwhile (same query).
        """
        async with self._lock:
            conn = await self._db.connection()
            now = self._clock()
            self._forget_closed(await self._own_open_alert_keys(conn))
            waiting = [u for r, u in await unacknowledged(conn, self.escalation.severities)
                       if self.shard.owns(r)]  # fmt: skip
            due = due_escalations(waiting, now=now, policy=self.escalation)
            changes = await record_escalations(conn, due, at=now)
            for change in changes:
                log.info("alert_escalated", alert_id=change.alert.id, note=change.note)
            await self._publish(changes)
            return changes

    def _forget_closed(self, still_open: set[tuple[int, str]]) -> None:
        """Step :class:`AlertClosed` for what the detectors hold but the database closed;
        ``still_open``: (resident, type) of the alerts not closed."""
        now = self._clock()
        for resident_id, held, closed in self._book.closed_elsewhere(still_open):
            profile, state = self.profiles.get(resident_id, Profile(resident_id)), held
            for alert_type in closed:
                state, _ = step(profile, state, AlertClosed(alert_type), now=now)
            self._keep(resident_id, state)

    @property
    def states(self) -> dict[int, ResidentState]:
        """Every resident's detector state (:mod:`alerts.engine_states`)."""
        return self._book.states

    def _keep(self, resident_id: int, state: ResidentState) -> None:
        self._book.keep(resident_id, state)

    # -- the shell --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, consume: bool = False) -> None:
        """Publish on MQTT and tick until ``stop``; ``consume``: read the ingested topic.

        Changes decided from the first step on are published, those of batches handed
        in before the broker is reached included: they wait, in order, until it is.
        """
        self._db.stopping = stop
        self._publisher.open()
        try:
            async with self._lock:
                await self._ensure_loaded()
            endpoint = self.settings.mqtt()
            held = sum(len(s.open_alerts()) for s in self.states.values())
            log.info("alert_engine_started", residents=len(self.profiles), open_alerts=held,
                     shard=str(self.shard))  # fmt: skip
            self.started.set()
            # the publisher keeps its own connection, reconnecting while decisions go on
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._publisher.run(endpoint, stop), name="alerts-publisher")
                tg.create_task(self._tick_loop(stop), name="alerts-tick")
                if consume:
                    tg.create_task(self._consume(stop), name="alerts-consume")
        finally:
            self._publisher.close()
            self.started.clear()
            await self.close()

    async def close(self) -> None:
        await self._baselines.cancel()
        await self._db.drop(side=True)

    async def _tick_loop(self, stop: asyncio.Event) -> None:
        n = 0
        while not await stopped_within(stop, self._tick_s):
            n += 1
            everyone = n % self._full_tick_every == 0
            try:
                if everyone:
                    await self.refresh()
                if n % self._baseline_every == 0:
                    self._reload_in_background()
                await self.tick(everyone=everyone)
                if n % self._escalate_every == 0:
                    await self.escalate()
            except RETRYABLE as exc:
                await self._db.drop(side=True)
                log.warning("alert_tick_failed", error=str(exc).splitlines()[0])
            except Exception as exc:  # a defect: logged, and the next tick tries again
                # Before 2026-12-04 it ended the loop, and with it the run: readings taken
                # but no timer (long lie, offline, escalation) for anyone, until a restart
                # that met the same defect. The error's type only: no health data in logs.
                await self._db.drop(side=True)
                self.tick_failures += 1
                log.error("alert_tick_defect", error_type=type(exc).__name__)  # noqa: TRY400

    async def _consume(self, stop: asyncio.Event) -> None:
        """The ingested topic on this shard's persistent session (ingest.consumer): what
        ingest publishes while the engine is down waits at the broker, and a batch is
        acked only once its alerts are persisted."""
        consumer = DurableConsumer(self.settings.mqtt_url or "", client_id=self.client_id,
                                   protocol=self.settings.mqtt_protocol,
                                   subscribed=self.subscribed)  # fmt: skip
        try:
            await consumer.run(self.on_batch, stop)
        except RETRYABLE:
            if not stop.is_set():
                raise
            # stopped while the database was away: that batch stays unacked and nothing
            # of it was kept (_emit), so the next start decides it again
            log.warning("alert_engine_stopped_unrecorded")

    @property
    def client_id(self) -> str:
        """This shard's MQTT client id: its session on the broker (one engine per shard)."""
        return f"{self.settings.alerts_client_id}-{self.shard.index}-of-{self.shard.count}"

    async def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        conn = await self._db.connection()
        self.profiles = await self._own_profiles(conn)
        fresh = await self._baselines.read(conn)
        if fresh is not None:
            self._set_baselines(*fresh)
        states, events = await restore_states(conn, self.profiles, now=self._clock(),
                                              shard=self.shard)  # fmt: skip
        # what the bands reported while the engine was down (a red heart rate after a
        # fall): persisted before the states are used, published once connected
        self._publisher.hold(await self._record(events) if events else [])
        self._book.replace_all(states)
        self._loaded = True

    async def _own_profiles(self, conn: psycopg.AsyncConnection[TupleRow]) -> dict[int, Profile]:
        return await load_profiles(conn, self.shard)

    async def _own_open_alert_keys(
        self, conn: psycopg.AsyncConnection[TupleRow]
    ) -> set[tuple[int, str]]:
        return {(r, t) for r, t in await open_alert_keys(conn) if self.shard.owns(r)}

    async def _profile(self, resident_id: int) -> Profile | None:
        profile = self.profiles.get(resident_id)
        if profile is None:  # registered after the engine loaded the registry
            profile = await self._db.until_answered(lambda conn: load_profile(conn, resident_id))
            if profile is not None:
                profile = self._baselines.apply_one(profile)
                self.profiles[resident_id] = profile
        return profile

    async def _emit(self, events: list[AlertEvent], states: dict[int, ResidentState]) -> None:
        """Record ``events``, then keep the ``states`` that decided them, then publish.

        In that order: a detector state that holds an alert as raised while the database
        has no such alert would never raise it again. If recording fails (the engine
        stopped during an outage) nothing is kept, and the same inputs, or the next
        tick, decide again: the standalone engine gets the unacked batch once more.
        """
        changes = await self._record(events) if events else []
        for resident_id, state in states.items():
            self._keep(resident_id, state)
        if changes:
            await self._publish(changes)

    async def _record(self, events: list[AlertEvent]) -> list[AlertChange]:
        changes = await self._persist(events)
        for change in changes:
            a = change.alert
            log.info("alert_change", kind=change.kind, alert_id=a.id, resident_id=a.resident_id,
                     type=a.type, severity=a.severity, state=a.state)  # fmt: skip
        return changes

    async def _persist(self, events: list[AlertEvent]) -> list[AlertChange]:
        """Record ``events`` in one transaction, waiting out an outage
        (:meth:`EngineDatabase.until_answered`)."""
        return await self._db.until_answered(lambda conn: apply_events(conn, events))

    async def _publish(self, changes: list[AlertChange]) -> None:
        await self._publisher.publish(changes)

    @property
    def published(self) -> int:
        """Alert changes published on the alerts topic so far."""
        return self._publisher.published


async def run_engine(settings: Settings, stop: asyncio.Event) -> None:
    """`eldercare alerts`: a standalone engine reading ingest's internal topic."""
    await asyncio.to_thread(migrate, settings.require_database_url())
    engine = AlertEngine(settings, fall_model=load_model())
    await engine.run(stop, consume=True)
