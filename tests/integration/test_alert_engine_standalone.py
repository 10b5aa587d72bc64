"""Standalone alert engines reading ingest's internal topic: live, after being down, sharded."""

from __future__ import annotations

from eldercare.protocol import EventType
from tests.conftest import Broker
from tests.integration.engine_support import (
    alerts_of,
    event,
    running_engine,
)
from tests.support import (
    NOW_MS,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    rows,
    running_ingest,
)


async def test_a_standalone_engine_reads_the_ingested_topic(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-sa"
    (resident,) = await register_bands(db_url, [dev])
    settings = ingest_settings(db_url, broker.url, ingest_publish_internal=True)
    async with running_engine(settings, consume=True), running_ingest(settings):
        publish_all(broker.url, [event(dev, 1, EventType.SOS, NOW_MS())])

        async def raised() -> bool:
            return [a[1:4] for a in await alerts_of(db_url, resident)] == [
                ("sos", "critical", "open")
            ]

        await eventually(raised)


async def test_a_standalone_engine_raises_what_was_ingested_while_it_was_down(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """An SOS pressed while the standalone engine restarts: ingest stores and publishes
    it, the broker keeps it on the engine's session, and the engine raises it when it is
    back. Before, the engine's session began afresh and the press was never raised."""
    dev = f"{topic_prefix}-dn"
    (resident,) = await register_bands(db_url, [dev])
    settings = ingest_settings(db_url, broker.url, ingest_publish_internal=True)
    async with running_engine(settings, consume=True):
        pass  # the engine's session exists; then it stops
    async with running_ingest(settings) as ingest:
        publish_all(broker.url, [event(dev, 1, EventType.SOS, NOW_MS())])

        async def committed() -> bool:
            return ingest.stats.committed == 1

        await eventually(committed)
    assert await alerts_of(db_url, resident) == []  # nobody was deciding
    async with running_engine(settings, consume=True):

        async def raised() -> bool:
            return [a[1:4] for a in await alerts_of(db_url, resident)] == [
                ("sos", "critical", "open")
            ]

        await eventually(raised)


async def test_two_standalone_shards_each_raise_their_own_residents_alerts(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    devs = [f"{topic_prefix}-ss{i}" for i in range(6)]
    residents = await register_bands(db_url, devs)
    settings = ingest_settings(db_url, broker.url, ingest_publish_internal=True)
    shard = [settings.model_copy(update={"alert_shard": f"{k}/2"}) for k in range(2)]
    async with (
        running_engine(shard[0], consume=True) as first,
        running_engine(shard[1], consume=True) as second,
        running_ingest(settings),
    ):
        publish_all(broker.url, [event(d, 1, EventType.SOS, NOW_MS()) for d in devs])

        async def raised() -> bool:
            got = await rows(db_url, "SELECT resident_id, count(*) FROM alerts WHERE type ="
                             " 'sos' AND resident_id = ANY(%s) GROUP BY 1", residents)  # fmt: skip
            return sorted(got) == [(r, 1) for r in sorted(residents)]

        await eventually(raised)
        assert set(first.states) == {r for r in residents if r % 2 == 0}
        assert set(second.states) == {r for r in residents if r % 2 == 1}
