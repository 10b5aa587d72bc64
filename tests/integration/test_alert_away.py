"""A resident away from home, through the real broker and database: the engine picks the
absence up without a restart, holds a band-upkeep alert back while it lasts, and raises
it when the centre ends the absence and it still holds (alerts/detectors/away.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from alerts.detectors.types import AlertType
from eldercare.absence import end_away, set_away
from tests.conftest import Broker
from tests.integration.test_alert_personal import alert_types, running_engine, telemetry
from tests.support import (
    NOW_MS,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    running_ingest,
)

MIN = 60_000


async def test_a_flat_band_in_hospital_is_raised_when_they_are_back(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-aw"
    (resident,) = await register_bands(db_url, [dev])
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await set_away(conn, resident, starts_at=now - timedelta(hours=1),
                       ends_at=now + timedelta(days=3), reason="hospital", actor="user:1",
                       now=now)  # fmt: skip
    settings = ingest_settings(db_url, broker.url)
    t0 = NOW_MS() - 5 * MIN
    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        publish_all(broker.url, [telemetry(dev, i, t0 + i * MIN, battery_pct=9) for i in range(3)])

        async def held() -> bool:
            state = engine.states.get(resident)
            return state is not None and AlertType.BATTERY_LOW in state.away_held

        await eventually(held)
        assert await alert_types(db_url, resident) == []  # nothing for the centre meanwhile
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            assert await end_away(conn, resident, now=datetime.now(UTC))

        async def raised() -> bool:
            return await alert_types(db_url, resident) == [("battery_low", "low")]

        await eventually(raised)  # the profile reload, then the next tick: no restart
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT detail FROM alerts WHERE resident_id = %s", (resident,))
        (detail,) = await cur.fetchone() or (None,)
    assert "held_while_away_since" in detail
