"""Alert episodes in the database across operator actions: who has been paged is kept
when a detector updates an alert, and a new fall after the old one's episode ended is
an alert of its own, not an update of a stale one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from alerts.engine import AlertEngine
from alerts.lifecycle import Outcome
from alerts.store import acknowledge, dispatch, resolve
from eldercare.protocol import DeviceEvent, EventType
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
from tests.integration.engine_support import MODEL
from tests.support import Clock, ingest_settings, register_bands, rows


def _event(dev: str, seq: int, kind: EventType, at: datetime, resident: int) -> IngestedBatch:
    press = DeviceEvent(device_id=dev, seq=seq, ts=int(at.timestamp() * 1000), type=kind)
    return IngestedBatch(events=[Accepted(press, resident)])


def _engine(db_url: str, clock: Clock) -> AlertEngine:
    return AlertEngine(ingest_settings(db_url, "mqtt://127.0.0.1:1"), fall_model=MODEL,
                       clock=clock)  # fmt: skip


async def _fall_acknowledged_long_lie_resolved(
    engine: AlertEngine, clock: Clock, dev: str, resident: int, *, dispatched: bool = False
) -> int:
    """A band's fall at the clock's time, confirmed, then its long lie; the operator
    acknowledges the fall (``dispatched``: and a worker is on the way) and resolves the
    long lie; the engine learns of it. Returns the fall alert's id."""
    t0 = clock.at
    await engine.on_batch(_event(dev, 1, EventType.FALL, t0, resident))
    for seconds in (31, 11 * 60):
        clock.at = t0 + timedelta(seconds=seconds)
        await engine.tick()
    db_url = engine.settings.require_database_url()
    ids = {t: i for i, t in await rows(db_url, "SELECT id, type FROM alerts"
                                       " WHERE resident_id = %s", resident)}  # fmt: skip
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await acknowledge(conn, ids["fall"], actor="operator:1", at=clock.at)
        if dispatched:  # as dispatch records a worker's acceptance
            await dispatch(conn, ids["fall"], actor="dispatcher", at=clock.at)
        await resolve(conn, ids["long_lie"], outcome=Outcome.ACTIONABLE, actor="operator:1",
                      at=clock.at)  # fmt: skip
    await engine.refresh()
    return ids["fall"]


async def test_a_second_press_keeps_the_escalation_so_nobody_is_paged_twice(
    db_url: str, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-esc"
    (resident,) = await register_bands(db_url, [dev])
    t0 = datetime.now(UTC).replace(microsecond=0)
    clock = Clock(t0)
    engine = _engine(db_url, clock)
    try:
        await engine.on_batch(_event(dev, 1, EventType.SOS, t0, resident))
        clock.at = t0 + timedelta(minutes=2, seconds=5)
        assert [c.note for c in await engine.escalate()] == ["escalated to supervisor (level 1)"]
        clock.at = t0 + timedelta(minutes=3)
        await engine.on_batch(_event(dev, 2, EventType.SOS, clock.at, resident))
        (detail,) = (r[0] for r in await rows(db_url, "SELECT detail FROM alerts"))
        assert detail["presses"] == 2
        assert detail["escalation"]["target"] == "supervisor"
        clock.at = t0 + timedelta(minutes=3, seconds=5)
        assert await engine.escalate() == []  # the supervisor was paged already
    finally:
        await engine.close()


async def test_a_new_fall_after_its_long_lie_was_resolved_is_a_new_alert(
    db_url: str, topic_prefix: str
) -> None:
    """The operator acknowledges the fall and resolves the long lie (help came): the
    detector's episode ends, the fall stays acknowledged. Next day's fall must be raised
    and escalated as itself, not folded into yesterday's acknowledged alert."""
    dev = f"{topic_prefix}-ll"
    (resident,) = await register_bands(db_url, [dev])
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    clock = Clock(t0)
    engine = _engine(db_url, clock)
    query = "SELECT id, type, state FROM alerts WHERE type IN ('fall', 'long_lie') ORDER BY id"
    try:
        fall = await _fall_acknowledged_long_lie_resolved(engine, clock, dev, resident)
        t1 = t0 + timedelta(days=1)
        clock.at = t1
        await engine.on_batch(_event(dev, 2, EventType.FALL, t1, resident))
        clock.at = t1 + timedelta(seconds=31)
        await engine.tick()
        assert [r[1:] for r in await rows(db_url, query)] == [
            ("fall", "auto_cleared"),  # yesterday's, superseded
            ("long_lie", "resolved"),
            ("fall", "open"),
        ]
        note = await rows(db_url, "SELECT note FROM alert_transitions WHERE alert_id = %s"
                          " ORDER BY id DESC LIMIT 1", fall)  # fmt: skip
        assert note == [("superseded",)]
        clock.at = t1 + timedelta(minutes=3)
        assert [(c.alert.type, c.alert.opened_at) for c in await engine.escalate()] == [
            ("fall", t1 + timedelta(seconds=31))
        ]
    finally:
        await engine.close()


async def test_a_new_fall_meeting_a_dispatched_one_is_kept_on_it(
    db_url: str, topic_prefix: str
) -> None:
    """Someone is on the way to that home: the dispatched alert takes the new fall."""
    dev = f"{topic_prefix}-dx"
    (resident,) = await register_bands(db_url, [dev])
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    clock = Clock(t0)
    engine = _engine(db_url, clock)
    query = "SELECT type, state, repeat_count FROM alerts WHERE type = 'fall' ORDER BY id"
    try:
        await _fall_acknowledged_long_lie_resolved(engine, clock, dev, resident,
                                                   dispatched=True)  # fmt: skip
        clock.at = t0 + timedelta(hours=1)
        await engine.on_batch(_event(dev, 2, EventType.FALL, clock.at, resident))
        clock.at += timedelta(seconds=31)
        await engine.tick()
        assert await rows(db_url, query) == [("fall", "dispatched", 2)]
    finally:
        await engine.close()
