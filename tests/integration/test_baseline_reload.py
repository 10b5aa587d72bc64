"""The engine's periodic reloads against the real PostgreSQL: decisions go on while the
baselines or the profiles are read, and the baselines are recomputed only when the
summarised days they come from have changed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

import alerts.engine
from alerts.detectors.engine import Tick
from alerts.detectors.news2 import VitalParam
from alerts.engine import AlertEngine
from eldercare.protocol import DeviceEvent, EventType
from eldercare.settings import Settings
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
from tests.support import Clock, copy_telemetry, eventually, register_bands

NOW = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai: days before are due


async def seeded_engine(db_url: str, dev: str) -> tuple[AlertEngine, Clock, int]:
    """An engine over a resident with 8 days of heart rate at 70 (every 10 min), loaded."""
    [resident] = await register_bands(db_url, [dev])
    times = [NOW - timedelta(minutes=10 * i) for i in range(1, 8 * 144)]
    rows = [(t, dev, 10_000 + i, resident, 70 + (i % 3) - 1, True) for i, t in enumerate(times)]
    await copy_telemetry(db_url, ("time", "device_id", "seq", "resident_id", "hr", "worn"), rows)
    clock = Clock(NOW)
    engine = AlertEngine(Settings(database_url=db_url), fall_model=None, clock=clock)
    await engine.on_batch(IngestedBatch())  # the start: profiles and baselines
    assert engine.profiles[resident].baselines[VitalParam.HR].median == 70.0
    return engine, clock, resident


@pytest.mark.parametrize(
    ("job", "table"),
    [
        # the reload's first read is of the summarised days
        (AlertEngine.reload_baselines, "daily_summary_days"),
        # the refresh reads the registry, safe zones included
        (AlertEngine.refresh, "resident_geofences"),
    ],
)
async def test_an_sos_is_decided_while_a_periodic_reload_reads(
    db_url: str, topic_prefix: str, job: Callable[[AlertEngine], Awaitable[None]], table: str
) -> None:
    dev = f"{topic_prefix}-rl"
    engine, clock, resident = await seeded_engine(db_url, dev)
    async with await psycopg.AsyncConnection.connect(db_url) as blocker:
        # hold a table the job reads: it waits on this lock until the lock is released
        await blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        running = asyncio.create_task(job(engine))

        async def job_waits() -> bool:
            async with await psycopg.AsyncConnection.connect(db_url) as conn:
                cur = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                row = await cur.fetchone()
                return row is not None and row[0] >= 1

        await eventually(job_waits)
        ts = int(clock.at.timestamp() * 1000)
        sos = DeviceEvent(device_id=dev, seq=1, ts=ts, type=EventType.SOS)
        # before, both held the decision lock for all of their run: this waited for them
        await asyncio.wait_for(engine.on_batch(IngestedBatch(events=[Accepted(sos, resident)])), 20)
        assert not running.done()
        await blocker.rollback()
    await asyncio.wait_for(running, 20)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT type FROM alerts WHERE resident_id = %s", (resident,))
        assert [r[0] for r in await cur.fetchall()] == ["sos"]
    assert engine.profiles[resident].baselines[VitalParam.HR].median == 70.0
    await engine.close()


async def test_the_baselines_are_recomputed_only_when_their_days_change(
    db_url: str, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-rc"
    engine, clock, resident = await seeded_engine(db_url, dev)
    try:
        held = engine.baselines
        clock.at = NOW + timedelta(hours=1)  # the hourly reload, same summarised days
        await engine.reload_baselines()
        assert engine.baselines is held
        # the next day: one more day summarised, the window moves, so they are recomputed
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            cur = await conn.execute("SELECT count(*) FROM daily_summary_days")
            before = await cur.fetchone()
        clock.at = NOW + timedelta(days=1)
        await engine.reload_baselines()
        assert engine.baselines is not held
        assert engine.profiles[resident].baselines[VitalParam.HR].median == 70.0
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            cur = await conn.execute("SELECT count(*) FROM daily_summary_days")
            after = await cur.fetchone()
        assert before is not None
        assert after is not None
        assert after[0] == before[0] + 1
    finally:
        await engine.close()


async def test_readings_are_decided_between_slices_of_a_full_tick(
    db_url: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    devs = [f"{topic_prefix}-t{i}" for i in range(4)]
    residents = await register_bands(db_url, devs)
    engine = AlertEngine(Settings(database_url=db_url), fall_model=None, clock=Clock(NOW))
    await engine.on_batch(IngestedBatch())
    order: list[str] = []
    real_step = alerts.engine.step

    def recording_step(*args: Any, **kwargs: Any) -> Any:
        order.append("tick" if isinstance(args[2], Tick) else "reading")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(alerts.engine, "step", recording_step)
    monkeypatch.setattr(alerts.engine, "TICK_SLICE", 1)
    ts = int(NOW.timestamp() * 1000)
    sos = DeviceEvent(device_id=devs[0], seq=1, ts=ts, type=EventType.SOS)
    try:
        tick = asyncio.create_task(engine.tick(everyone=True))
        reading = asyncio.create_task(
            engine.on_batch(IngestedBatch(events=[Accepted(sos, residents[0])]))
        )
        await asyncio.gather(tick, reading)
    finally:
        await engine.close()
    assert sorted(order) == ["reading", "tick", "tick", "tick", "tick"]
    # before, the whole tick held the lock: the reading came after every resident's tick
    assert order.index("reading") < len(order) - 1


async def test_a_failing_background_reload_keeps_the_baselines_held(
    db_url: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, clock, resident = await seeded_engine(db_url, f"{topic_prefix}-fr")

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the reload")

    monkeypatch.setattr(alerts.engine_baselines, "load_baselines", broken)
    held = engine.baselines
    clock.at = NOW + timedelta(days=1)  # a new day: the reload gets as far as the read
    try:
        engine._reload_in_background()
        task = engine._baselines.task
        assert task is not None
        await asyncio.wait_for(task, 20)  # ends, logged, without raising
        assert engine.baselines is held
        assert engine.profiles[resident].baselines[VitalParam.HR].median == 70.0
        # and the engine still decides
        ts = int(clock.at.timestamp() * 1000)
        sos = DeviceEvent(device_id=f"{topic_prefix}-fr", seq=1, ts=ts, type=EventType.SOS)
        await engine.on_batch(IngestedBatch(events=[Accepted(sos, resident)]))
        assert engine.states[resident].open_alerts()
    finally:
        await engine.close()
