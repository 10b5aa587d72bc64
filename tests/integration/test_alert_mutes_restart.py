"""A condition an operator closed while it held is not raised again by a restart
(alerts.restart_mutes), through ingest, the real broker and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from alerts.detectors import AlertType, Severity
from alerts.lifecycle import Outcome
from alerts.store import acknowledge, dispatch, resolve
from eldercare.protocol import Telemetry, encode
from eldercare.topics import Channel, device_topic
from tests.conftest import Broker
from tests.integration.engine_support import alerts_of, running_engine
from tests.support import (
    NOW_MS,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    running_ingest,
    scalar,
)

MIN = 60_000
OPERATOR = "operator:7"


def pulses(dev: str, t0: int, minutes: range, hr: int) -> list[tuple[str, bytes]]:
    """A heart rate each minute of ``minutes`` after ``t0`` (band clock, ms)."""
    return [(device_topic(dev, Channel.TELEMETRY),
             encode(Telemetry(device_id=dev, seq=i, ts=t0 + i * MIN, hr=hr, worn=True)))
            for i in minutes]  # fmt: skip


async def heart_alerts(db_url: str, resident: int) -> list[tuple[str, str]]:
    """(severity, state) of the resident's heart-rate alerts, oldest first."""
    return [(a[2], a[3]) for a in await alerts_of(db_url, resident) if a[1] == "vital_hr_high"]


async def test_a_condition_an_operator_closed_while_it_held_stays_muted_across_a_restart(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """Two residents' heart rates of 118/min raise a medium alert each. An operator closes
    the first while it holds. The second is dispatched, the rate comes down (the engine
    notes the clear on the dispatched alert) and the operator closes it after that. After
    a restart both rates are 118 again: the first raises nothing, the second is raised
    afresh; the first going up to 150 is worse than it was closed at, and is raised."""
    held, ended = f"{topic_prefix}-hd", f"{topic_prefix}-en"
    residents = await register_bands(db_url, [held, ended])
    settings = ingest_settings(db_url, broker.url)
    t0 = NOW_MS() - 60 * MIN

    async def ids() -> list[int]:
        return [(await alerts_of(db_url, r))[0][0] for r in residents]

    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        publish_all(broker.url, [*pulses(held, t0, range(10), 118),
                                 *pulses(ended, t0, range(10), 118)])  # fmt: skip

        async def raised() -> bool:
            return all([await heart_alerts(db_url, r) == [("medium", "open")] for r in residents])

        await eventually(raised)
        first, second = await ids()
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            now = datetime.now(UTC)
            await acknowledge(conn, first, actor=OPERATOR, at=now)
            await resolve(conn, first, outcome=Outcome.ACTIONABLE, actor=OPERATOR, at=now)
            await acknowledge(conn, second, actor=OPERATOR, at=now)
            await dispatch(conn, second, actor=OPERATOR, at=now)
        publish_all(broker.url, pulses(ended, t0, range(10, 25), 70))

        async def noted() -> bool:
            d = await scalar(db_url, "SELECT detail FROM alerts WHERE id = %s", second)
            return isinstance(d, dict) and "detector_cleared" in d

        await eventually(noted)  # a dispatched alert is kept open: the clear is noted on it
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await resolve(conn, second, outcome=Outcome.ACTIONABLE, actor=OPERATOR,
                          at=datetime.now(UTC))  # fmt: skip

    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        publish_all(broker.url, [*pulses(held, t0, range(10, 25), 118),
                                 *pulses(ended, t0, range(25, 40), 118)])  # fmt: skip

        async def decided() -> bool:
            state = engine.states.get(residents[0])
            holds = state is not None and AlertType.VITAL_HR_HIGH in state.vitals.open
            return holds and len(await heart_alerts(db_url, residents[1])) == 2

        await eventually(decided)
        assert await heart_alerts(db_url, residents[0]) == [("medium", "resolved")]
        assert engine.states[residents[0]].muted == {AlertType.VITAL_HR_HIGH: Severity.MEDIUM}
        assert await heart_alerts(db_url, residents[1]) == [
            ("medium", "resolved"),
            ("medium", "open"),
        ]
        publish_all(broker.url, pulses(held, t0, range(25, 45), 150))

        async def worse() -> bool:
            got = await heart_alerts(db_url, residents[0])
            return got == [("medium", "resolved"), ("high", "open")]

        await eventually(worse)
