"""Through the engine and PostgreSQL, on an injected clock: a silence of the whole feed
(a broker or ingest outage) is not sixty bands going offline at once; a band that stays
silent once the feed is back is. Before 2026-12-04 the outage raised sixty alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.engine import AlertEngine
from alerts.feed import MIN_RESIDENTS
from eldercare.protocol import Telemetry
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
from tests.integration.engine_support import MODEL
from tests.support import Clock, ingest_settings, register_bands, rows


def readings(bands: dict[str, int], at: datetime) -> IngestedBatch:
    ms = int(at.timestamp() * 1000)
    return IngestedBatch(telemetry=[
        Accepted(Telemetry(device_id=d, seq=ms // 1000, ts=ms, hr=72), rid)
        for d, rid in bands.items()
    ])  # fmt: skip


async def test_a_feed_outage_raises_no_device_offline_a_band_still_silent_after_does(
    db_url: str, topic_prefix: str
) -> None:
    devices = [f"{topic_prefix}-f{i:02d}" for i in range(MIN_RESIDENTS + 10)]
    bands = dict(zip(devices, await register_bands(db_url, devices), strict=True))
    t0 = datetime.now(UTC).replace(microsecond=0)
    clock = Clock(t0)
    engine = AlertEngine(ingest_settings(db_url, "mqtt://127.0.0.1:1"), fall_model=MODEL,
                         clock=clock)  # fmt: skip
    offline = "SELECT count(*) FROM alerts WHERE type = 'device_offline'"
    try:
        await engine.on_batch(readings(bands, t0))  # every band heard (60 s interval)
        clock.at = t0 + timedelta(minutes=12)  # nothing at all for 12 minutes
        await engine.tick(everyone=True)
        assert await rows(db_url, offline) == [(0,)]
        # the feed is back; every band but one reports every minute again
        back = clock.at
        silent, *rest = devices
        for minute in range(7):
            clock.at = back + timedelta(minutes=minute)
            await engine.on_batch(readings({d: bands[d] for d in rest}, clock.at))
            await engine.tick(everyone=True)
            if minute <= 4:  # within its own limit (5 min) since the feed came back
                assert await rows(db_url, offline) == [(0,)], minute
        got = await rows(db_url, "SELECT resident_id FROM alerts WHERE type = 'device_offline'")
        assert got == [(bands[silent],)]
    finally:
        await engine.close()
