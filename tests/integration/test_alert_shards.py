"""Several alert engines, each owning a shard of the residents, on one database:
every resident's alert is raised once, by its own engine; escalation and restart
stay within the shard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.engine import AlertEngine
from alerts.falls import load_model
from alerts.shard import Shard
from eldercare.protocol import DeviceEvent, EventType
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
from tests.support import Clock, ingest_settings, register_bands, rows

MODEL = load_model()


async def test_two_shards_split_the_residents_and_each_alert_is_raised_once(
    db_url: str, topic_prefix: str
) -> None:
    devs = [f"{topic_prefix}-sh{i}" for i in range(8)]
    residents = await register_bands(db_url, devs)
    t0 = datetime.now(UTC).replace(microsecond=0)
    clock = Clock(t0)

    def engine(shard: str) -> AlertEngine:
        settings = ingest_settings(db_url, "mqtt://127.0.0.1:1", alert_shard=shard)
        return AlertEngine(settings, fall_model=MODEL, clock=clock)

    engines = [engine("0/2"), engine("1/2")]
    presses = IngestedBatch(events=[
        Accepted(DeviceEvent(device_id=d, seq=1, ts=int(t0.timestamp() * 1000),
                             type=EventType.SOS), r)
        for d, r in zip(devs, residents, strict=True)
    ])  # fmt: skip
    try:
        for e in engines:  # both read the whole ingested stream
            await e.on_batch(presses)
        got = await rows(db_url, "SELECT resident_id, count(*) FROM alerts WHERE type = 'sos'"
                         " AND resident_id = ANY(%s) GROUP BY 1", residents)  # fmt: skip
        assert sorted(got) == [(r, 1) for r in sorted(residents)]
        for k, e in enumerate(engines):
            mine = {r for r in residents if r % 2 == k}
            assert set(e.states) == mine
            assert set(e.profiles) <= {r for r in e.profiles if Shard(k, 2).owns(r)}
        # the press repeated is an update of the owner's open alert, never a second alert
        clock.at = t0 + timedelta(minutes=3)
        escalated = [[c.alert.resident_id for c in await e.escalate()] for e in engines]
        assert sorted(escalated[0] + escalated[1]) == sorted(residents)  # each once
        assert all(r % 2 == k for k, ids in enumerate(escalated) for r in ids)
    finally:
        for e in engines:
            await e.close()
    # a restarted shard takes back only its own open alerts
    again = engine("1/2")
    try:
        await again.on_batch(IngestedBatch())
        held = {r for r, s in again.states.items() if s.open_alerts()}
        assert held == {r for r in residents if r % 2 == 1}
    finally:
        await again.close()
