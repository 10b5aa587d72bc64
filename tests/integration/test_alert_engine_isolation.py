"""A detector defect met on one resident's input stops nobody else's alerts.

Standing in for a defect not yet found, the detectors' ``step`` is made to raise on
one resident's inputs only (a replacement of our own code, not of PostgreSQL or the
broker). Before, the exception ended the batch: the other residents' alerts in it
were lost, and the standalone engine exited, to meet the same batch again after its
restart (a poison batch that blocked every resident's alerts). An SOS press on which
the step fails still goes through the SOS detector alone (since 2026-12-03).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts import engine as engine_module
from alerts.engine import AlertEngine
from eldercare.protocol import DeviceEvent, EventType
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
from tests.conftest import Broker
from tests.integration.engine_support import MODEL, alerts_of
from tests.support import NOW_MS, Clock, eventually, ingest_settings, register_bands


async def test_one_residents_defect_is_skipped_and_everyone_elses_alerts_are_raised(
    db_url: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    devs = [f"{topic_prefix}-iso{i}" for i in range(3)]
    residents = await register_bands(db_url, devs)
    broken = residents[1]
    real = engine_module.step

    def step(profile: Any, state: Any, item: Any, **kwargs: Any) -> Any:
        if profile.resident_id == broken:
            raise ZeroDivisionError("a defect")
        return real(profile, state, item, **kwargs)

    monkeypatch.setattr(engine_module, "step", step)
    engine = AlertEngine(ingest_settings(db_url, "mqtt://127.0.0.1:1"), fall_model=MODEL)
    now = NOW_MS()
    presses = [
        Accepted(DeviceEvent(device_id=dev, seq=1, ts=now, type=EventType.SOS), rid)
        for dev, rid in zip(devs, residents, strict=True)
    ]
    try:
        await engine.on_batch(IngestedBatch(events=presses))
        # the broken resident's press too: after the failed step, the SOS detector alone
        for rid in residents:
            assert [a[1:4] for a in await alerts_of(db_url, rid)] == [("sos", "critical", "open")]
        assert engine.step_failures == 1
        fall = Accepted(DeviceEvent(device_id=devs[1], seq=2, ts=now, type=EventType.FALL), broken)
        await engine.on_batch(IngestedBatch(events=[fall]))  # not an SOS: skipped
        assert [a[1] for a in await alerts_of(db_url, broken)] == ["sos"]
        assert engine.step_failures == 2
        await engine.tick(everyone=True)  # the time-driven rules skip it the same way
        assert engine.step_failures == 3
    finally:
        await engine.close()


async def test_a_defect_met_by_a_tick_does_not_stop_the_timers(
    db_url: str, broker: Broker, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Escalation made to raise (a defect not yet found): the tick loop logs it and goes
    on, so a band's held fall report is still raised when its 30 s are up. Before
    2026-12-04 the loop ended, and with it every timer of every resident."""
    dev = f"{topic_prefix}-tk"
    (resident,) = await register_bands(db_url, [dev])

    def due_escalations(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a defect")

    monkeypatch.setattr(engine_module, "due_escalations", due_escalations)
    t0 = datetime.now(UTC)
    clock = Clock(t0)
    engine = AlertEngine(ingest_settings(db_url, broker.url), fall_model=MODEL, clock=clock,
                         tick_s=0.02, escalate_every=1)  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        await engine.started.wait()
        fall = DeviceEvent(device_id=dev, seq=1, ts=int(t0.timestamp() * 1000),
                           type=EventType.FALL)  # fmt: skip
        await engine.on_batch(IngestedBatch(events=[Accepted(fall, resident)]))

        async def failed() -> bool:
            return engine.tick_failures >= 2

        await eventually(failed)
        clock.at = t0 + timedelta(seconds=31)

        async def raised() -> bool:
            return [a[1] for a in await alerts_of(db_url, resident)] == ["fall"]

        await eventually(raised)
        assert not task.done()
    finally:
        stop.set()
        await task
        await engine.close()
