"""Daily telemetry partitions made on demand (plain PostgreSQL): two sessions making the
same one at the same moment (two ingest processes, or ingest and its upkeep)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from eldercare.protocol import Telemetry, encode
from eldercare.storage import partition_name
from eldercare.topics import Channel, device_topic
from tests.conftest import Broker
from tests.support import (
    NOW_MS,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    running_ingest,
    scalar,
)

MAKE_PARTITION = sql.SQL("CREATE TABLE {} PARTITION OF telemetry FOR VALUES FROM ({}) TO ({})")
WRITER_WAITS_ON_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND application_name = 'eldercare-ingest' AND wait_event_type = 'Lock'"
)


async def test_a_partition_made_by_another_session_meanwhile_does_not_stop_ingest(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """The writer finds a late reading's day missing and makes its partition while
    another session is making it too: it waits for that one's commit, gets
    DuplicateTable, and takes the partition as made. Before 2026-12-04 the error ended
    ingest (its TaskGroup), and again after each restart while the message came back."""
    dev = f"{topic_prefix}-pt"
    await register_bands(db_url, [dev])
    now = NOW_MS()
    late = now - 20 * 86_400_000  # store and forward: a day without a partition yet
    day = datetime.fromtimestamp(late / 1000, UTC).date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    topic = device_topic(dev, Channel.TELEMETRY)
    async with running_ingest(ingest_settings(db_url, broker.url)) as service:
        publish_all(broker.url, [(topic, encode(Telemetry(device_id=dev, seq=1, ts=now)))])

        async def first() -> bool:  # the writer has loaded the partitions there are
            return service.stats.committed >= 1

        await eventually(first)
        async with await psycopg.AsyncConnection.connect(db_url) as other:
            await other.execute(MAKE_PARTITION.format(
                sql.Identifier(partition_name(day)), sql.Literal(start),
                sql.Literal(start + timedelta(days=1))))  # fmt: skip
            publish_all(broker.url, [(topic, encode(Telemetry(device_id=dev, seq=2, ts=late)))])

            async def writer_waits() -> bool:
                return await scalar(db_url, WRITER_WAITS_ON_A_LOCK) == 1

            await eventually(writer_waits)
            await other.commit()

        async def second() -> bool:
            return service.stats.committed >= 2

        await eventually(second)
    assert await scalar(db_url, "SELECT count(*) FROM telemetry") == 2
    assert await scalar(db_url, "SELECT count(*) FROM dead_letters") == 0
