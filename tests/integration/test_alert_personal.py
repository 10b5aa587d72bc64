"""Personal rules through the real broker and database: a clinician's thresholds picked
up without a restart, and personal baselines loaded from the resident's history."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.detectors.ambient import SkinShift
from alerts.detectors.news2 import VitalParam
from alerts.engine import AlertEngine
from alerts.thresholds import set_thresholds
from eldercare.protocol import Telemetry, encode
from eldercare.settings import Settings
from eldercare.topics import Channel, device_topic
from tests.conftest import Broker
from tests.support import (
    NOW_MS,
    Clock,
    copy_telemetry,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    running_ingest,
)

MIN = 60_000


@contextlib.asynccontextmanager
async def running_engine(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[AlertEngine]:
    """An engine that reloads profiles every tick (0.2 s), as it does every 30 s live."""
    engine = AlertEngine(settings, fall_model=None, tick_s=0.2, full_tick_every=1,
                         **({"clock": clock} if clock else {}))  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    await asyncio.wait_for(engine.ready.wait(), 20)
    try:
        yield engine
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def telemetry(dev: str, seq: int, ts: int, **vitals: float) -> tuple[str, bytes]:
    msg = Telemetry(device_id=dev, seq=seq, ts=ts, worn=True, **vitals)  # type: ignore[arg-type]
    return device_topic(dev, Channel.TELEMETRY), encode(msg)


async def alert_types(db_url: str, resident: int) -> list[tuple[str, str]]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT type, severity FROM alerts WHERE resident_id = %s ORDER BY id", (resident,)
        )
        return [(str(t), str(s)) for t, s in await cur.fetchall()]


async def test_a_clinicians_threshold_applies_without_a_restart(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-th"
    (resident,) = await register_bands(db_url, [dev])
    settings = ingest_settings(db_url, broker.url)
    t0 = NOW_MS() - 30 * MIN
    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        # heart rate 105 for 7 minutes: NEWS2 scores 1, below the default alert score 2
        publish_all(broker.url, [telemetry(dev, i, t0 + i * MIN, hr=105) for i in range(8)])
        seen = await engine_saw(engine, resident, 8)
        assert seen
        assert await alert_types(db_url, resident) == []

        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await set_thresholds(conn, resident, {"hr": {"high": [[130, 3], [100, 3]]}},
                                 set_by="clinician:17", at=datetime.now(UTC),
                                 reason="post-op, rate control")  # fmt: skip
            cur = await conn.execute(
                "SELECT set_by, reason FROM resident_alert_threshold_changes"
                " WHERE resident_id = %s",
                (resident,),
            )
            assert await cur.fetchall() == [("clinician:17", "post-op, rate control")]

        async def reloaded() -> bool:
            p = engine.profiles.get(resident)
            return p is not None and p.thresholds.hr.high == ((130.0, 3), (100.0, 3))

        await eventually(reloaded)  # the periodic reload, no restart
        t1 = t0 + 10 * MIN
        publish_all(broker.url, [telemetry(dev, 8 + i, t1 + i * MIN, hr=105) for i in range(8)])

        async def raised() -> bool:
            return await alert_types(db_url, resident) == [("vital_hr_high", "high")]

        await eventually(raised)


async def engine_saw(engine: AlertEngine, resident: int, readings: int) -> bool:
    """Wait until the engine's heart-rate track holds the last of ``readings``."""

    async def done() -> bool:
        state = engine.states.get(resident)
        track = state.vitals.tracks.get(VitalParam.HR) if state else None
        return track is not None and track.runs[0] is not None and track.runs[0].count >= readings

    await eventually(done)
    return True


async def seed_history(
    db_url: str, dev: str, resident: int, column: str, *, value: float, spread: float
) -> None:
    """Three days of a resident's readings of one column in ``telemetry`` (every 10 min),
    ``value`` give or take ``spread``."""
    now = datetime.now(UTC)
    times = [now - timedelta(minutes=10 * i) for i in range(1, 3 * 144)]
    rows = [(t, dev, 100_000 + i, resident, value + spread * ((i % 3) - 1), True)
            for i, t in enumerate(times)]  # fmt: skip
    await copy_telemetry(db_url, ("time", "device_id", "seq", "resident_id", column, "worn"), rows)


async def test_a_chronically_low_spo2_is_known_from_history_at_start(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    known, new = f"{topic_prefix}-kn", f"{topic_prefix}-nw"
    residents = await register_bands(db_url, [known, new])
    # COPD, stable at 92-94
    await seed_history(db_url, known, residents[0], "spo2", value=93, spread=1)
    settings = ingest_settings(db_url, broker.url)
    t0 = NOW_MS() - 20 * MIN
    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        baseline = engine.profiles[residents[0]].baselines.get(VitalParam.SPO2)
        assert baseline is not None
        assert baseline.median == 93.0
        assert VitalParam.SPO2 not in engine.profiles[residents[1]].baselines
        messages = [telemetry(d, i, t0 + i * MIN, spo2=93) for d in (known, new) for i in range(8)]
        publish_all(broker.url, messages)

        last = datetime.fromtimestamp((t0 + 7 * MIN) / 1000, UTC)

        async def both_judged() -> bool:
            tracks = [engine.states[r].vitals.tracks.get(VitalParam.SPO2)
                      for r in residents if r in engine.states]  # fmt: skip
            return len(tracks) == 2 and all(t is not None and t.last_at == last for t in tracks)

        await eventually(both_judged)

        async def newcomer_alarmed() -> bool:
            return await alert_types(db_url, residents[1]) == [("vital_spo2_low", "medium")]

        await eventually(newcomer_alarmed)  # NEWS2 alone: 93 % scores 2
        await engine.tick()  # takes the engine's lock: every batch judged above is persisted
        assert await alert_types(db_url, residents[0]) == []  # the same readings, known


async def test_on_a_hot_day_only_the_resident_warmer_than_everyone_has_a_fever(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """Four residents with wrists usually at 33.0 C; an afternoon when three read 34.6 and
    one 36.2. The engine (here counting 4 residents as enough) takes the shared 1.6 off."""
    devs = [f"{topic_prefix}-h{i}" for i in range(4)]
    residents = await register_bands(db_url, devs)
    for dev, resident in zip(devs, residents, strict=True):
        await seed_history(db_url, dev, resident, "skin_temp_c", value=33.0, spread=0.1)
    skins = [34.6, 34.6, 34.6, 36.2]
    settings = ingest_settings(db_url, broker.url)
    t0 = NOW_MS() - 50 * MIN
    clock = Clock(datetime.fromtimestamp(t0 / 1000 + 60, UTC))  # the engine's now: the readings'
    async with (
        running_engine(settings, clock) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        engine.skin = SkinShift(min_residents=4)
        assert all(VitalParam.TEMP in engine.profiles[r].baselines for r in residents)
        first = [telemetry(d, 0, t0, skin_temp_c=c) for d, c in zip(devs, skins, strict=True)]
        publish_all(broker.url, first)

        async def shift_known() -> bool:
            return engine.skin.shift_c == 1.6  # the median of 1.6, 1.6, 1.6, 3.2

        await eventually(shift_known)  # (the clock stays: no reading falls out of the window)
        publish_all(broker.url, [telemetry(d, i, t0 + i * MIN, skin_temp_c=c)
                                 for i in range(1, 45)
                                 for d, c in zip(devs, skins, strict=True)])  # fmt: skip

        async def sick_raised() -> bool:
            return await alert_types(db_url, residents[3]) == [("vital_temp_high", "medium")]

        await eventually(sick_raised)
        await engine.tick()  # takes the engine's lock: every batch judged above is persisted
        for resident in residents[:3]:
            assert await alert_types(db_url, resident) == []
