"""The engine's sets of residents with a fall's timers running and with an alert open,
against the real PostgreSQL.

The 1 s tick visits only the first, the check for alerts closed by operators only the
second (a city's every resident would cost ~0.1 s under the decision lock each time).
These tests fail if a set misses a resident: an alert closed by an operator would never
be forgotten, so the next press would update the closed alert instead of raising a new
one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from alerts.detectors.types import AlertType, Severity
from alerts.engine import AlertEngine
from alerts.engine_states import pending
from alerts.lifecycle import Outcome
from alerts.store import resolve
from eldercare.protocol import DeviceEvent, EventType, Telemetry
from eldercare.registry import provision_wristbands, revoke_wristband
from eldercare.settings import Settings
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
from tests.support import Clock, register_bands, rows

NOW = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)


def held(engine: AlertEngine) -> set[int]:
    """Residents holding an alert open; both kept sets checked against every state."""
    assert engine._book.pending == {r for r, s in engine.states.items() if pending(s)}
    assert engine._book.holding == {r for r, s in engine.states.items() if s.holds_open()}
    return engine._book.holding


async def press(engine: AlertEngine, dev: str, resident: int, seq: int, clock: Clock) -> None:
    ts = int(clock.at.timestamp() * 1000)
    sos = DeviceEvent(device_id=dev, seq=seq, ts=ts, type=EventType.SOS)
    await engine.on_batch(IngestedBatch(events=[Accepted(sos, resident)]))


async def close_open(db_url: str, resident: int, at: datetime) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT id FROM alerts WHERE resident_id = %s AND state = 'open'", (resident,)
        )
        (alert_id,) = await cur.fetchone() or (None,)
        assert alert_id is not None
        await resolve(conn, alert_id, outcome=Outcome.ACTIONABLE, actor="operator:1", at=at)


async def test_a_closed_alert_is_forgotten_before_and_after_a_restart(
    db_url: str, topic_prefix: str
) -> None:
    devs = [f"{topic_prefix}-p{i}" for i in range(3)]
    residents = await register_bands(db_url, devs)
    clock = Clock(NOW)
    settings = Settings(database_url=db_url)
    engine = AlertEngine(settings, fall_model=None, clock=clock)
    await engine.on_batch(IngestedBatch())
    assert held(engine) == set()

    await press(engine, devs[1], residents[1], 1, clock)
    assert held(engine) == {residents[1]}
    await engine.tick(everyone=True)  # a full tick writes every state: the set stays right
    assert held(engine) == {residents[1]}

    clock.at += timedelta(seconds=30)
    await close_open(db_url, residents[1], clock.at)
    await engine.escalate()  # learns of the close
    assert held(engine) == set()
    clock.at += timedelta(seconds=30)
    await press(engine, devs[1], residents[1], 2, clock)  # a new alert, not an update
    query = "SELECT state FROM alerts WHERE resident_id = %s ORDER BY id"
    assert [r[0] for r in await rows(db_url, query, residents[1])] == ["resolved", "open"]
    await engine.close()

    again = AlertEngine(settings, fall_model=None, clock=clock)
    await again.on_batch(IngestedBatch())  # the open SOS is restored from the database
    assert held(again) == {residents[1]}
    clock.at += timedelta(seconds=30)
    await close_open(db_url, residents[1], clock.at)
    await again.refresh()
    assert held(again) == set()
    clock.at += timedelta(seconds=30)
    await press(again, devs[1], residents[1], 3, clock)
    assert [r[0] for r in await rows(db_url, query, residents[1])] == [
        "resolved", "resolved", "open",
    ]  # fmt: skip
    await again.close()


async def test_an_alert_a_full_tick_raises_is_pending_and_forgotten_when_closed(
    db_url: str, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-silent"
    (resident,) = await register_bands(db_url, [dev])
    clock = Clock(NOW)
    engine = AlertEngine(Settings(database_url=db_url), fall_model=None, clock=clock)
    reading = Telemetry(device_id=dev, seq=1, ts=int(NOW.timestamp() * 1000), hr=70, worn=True)
    await engine.on_batch(IngestedBatch(telemetry=[Accepted(reading, resident)]))
    assert held(engine) == set()
    clock.at += timedelta(hours=2)  # silent far past its interval
    await engine.tick(everyone=True)
    query = "SELECT type, state FROM alerts WHERE resident_id = %s ORDER BY id"
    assert await rows(db_url, query, resident) == [("device_offline", "open")]
    assert held(engine) == {resident}
    await close_open(db_url, resident, clock.at)
    await engine.escalate()
    # closed while the band is still silent: muted, held until the condition ends
    assert engine.states[resident].muted == {AlertType.DEVICE_OFFLINE: Severity.MEDIUM}
    assert held(engine) == {resident}
    back = Telemetry(device_id=dev, seq=2, ts=int(clock.at.timestamp() * 1000), hr=70, worn=True)
    await engine.on_batch(IngestedBatch(telemetry=[Accepted(back, resident)]))
    assert held(engine) == set()
    assert await rows(db_url, query, resident) == [("device_offline", "resolved")]
    await engine.close()


async def test_a_replaced_band_is_forgotten_so_the_new_one_going_silent_is_raised(
    db_url: str, topic_prefix: str
) -> None:
    """Band A goes silent; the operator closes its offline alert (muted while A stays
    silent) and replaces it: A revoked, B paired. The engine forgets A when it reloads
    the registry, so B going silent later is raised (before 2026-12-04 A was tracked for
    good and its muted alert hid B's)."""
    old, new = f"{topic_prefix}-a", f"{topic_prefix}-b"
    (resident,) = await register_bands(db_url, [old])
    clock = Clock(NOW)
    engine = AlertEngine(Settings(database_url=db_url), fall_model=None, clock=clock)
    query = "SELECT type, state, device_id FROM alerts WHERE resident_id = %s ORDER BY id"
    try:
        first = Telemetry(device_id=old, seq=1, ts=int(NOW.timestamp() * 1000), hr=70, worn=True)
        await engine.on_batch(IngestedBatch(telemetry=[Accepted(first, resident)]))
        clock.at += timedelta(hours=1)
        await engine.tick(everyone=True)
        assert await rows(db_url, query, resident) == [("device_offline", "open", old)]
        await close_open(db_url, resident, clock.at)
        await engine.escalate()  # learns of the close: muted while A is silent
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            await revoke_wristband(conn, old)
            await provision_wristbands(conn, [(new, resident)])
            await conn.commit()
        await engine.refresh()
        assert set(engine.states[resident].devices.devices) == set()
        assert AlertType.DEVICE_OFFLINE not in engine.states[resident].muted
        ts = int(clock.at.timestamp() * 1000)
        reading = Telemetry(device_id=new, seq=1, ts=ts, hr=70, worn=True)
        await engine.on_batch(IngestedBatch(telemetry=[Accepted(reading, resident)]))
        clock.at += timedelta(hours=1)  # B silent
        await engine.tick(everyone=True)
        assert await rows(db_url, query, resident) == [
            ("device_offline", "resolved", old),
            ("device_offline", "open", new),
        ]
    finally:
        await engine.close()
