"""The dispatch outbox publishes every committed order event, whenever it commits.

An event's id is taken when it is written, and its transaction may commit after
others with higher ids have been published. Before 2026-12-03 the outbox read back
only 200 ids behind the highest it had published, and from where it had stopped
after a restart: an event committed behind more than 200 others, or while the
service was down behind one it had published, was never published (a worker's
offer, an order's cancellation). Now the ids it skipped are kept as gaps, read
again at every poll, and dropped only once no transaction that could still fill
them is running (dispatch/outbox_gaps.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiomqtt
import psycopg

from dispatch.runner import DispatchRunner
from eldercare.topics import DISPATCH
from tests.conftest import Broker
from tests.integration.dispatch_support import HOME, east, seed, settings_for
from tests.integration.test_dispatch_database_away import offered_emergency
from tests.integration.test_dispatch_service import CARE, running
from tests.support import eventually


@contextlib.asynccontextmanager
async def published(broker: Broker) -> AsyncIterator[set[int]]:
    """The ids of the events published on the dispatch topic meanwhile."""
    seen: set[int] = set()
    async with aiomqtt.Client("127.0.0.1", broker.port) as watcher:
        await watcher.subscribe(DISPATCH, qos=1)

        async def watch() -> None:
            async for m in watcher.messages:
                seen.add(int(json.loads(bytes(m.payload))["event_id"]))  # type: ignore[arg-type]

        reader = asyncio.create_task(watch())
        try:
            yield seen
        finally:
            reader.cancel()


async def add_event(conn: psycopg.AsyncConnection[object], order_id: int) -> int:
    """An event written (not committed) in ``conn``'s transaction, as dispatch.store
    writes one: after the transaction's first write, so it already has its xid."""
    await conn.execute("SELECT pg_current_xact_id()")
    cur = await conn.execute(
        "INSERT INTO work_order_events (order_id, at, kind, to_state, actor)"
        " VALUES (%s, now(), 'noted', 'offered', 'test') RETURNING id",
        (order_id,),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


async def test_an_event_committed_behind_hundreds_of_others_is_published(
    db_url: str, broker: Broker
) -> None:
    [rid] = await seed(db_url, now=datetime.now(UTC), residents=[HOME],
                       workers=[("W1", east(0.5), CARE)])  # fmt: skip
    async with running(DispatchRunner(settings_for(db_url, broker))), published(broker) as seen:
        order_id = await offered_emergency(db_url, broker, rid)
        async with (
            await psycopg.AsyncConnection.connect(db_url) as held,
            await psycopg.AsyncConnection.connect(db_url) as other,
        ):
            late = await add_event(held, order_id)
            for _ in range(3):  # 300 events after it, committed and published
                ids = [await add_event(other, order_id) for _ in range(100)]
                await other.commit()

                async def sent(ids: list[int] = ids) -> bool:
                    return seen.issuperset(ids)

                await eventually(sent, timeout=60)
            assert late not in seen
            await held.commit()

        async def late_sent() -> bool:
            return late in seen

        await eventually(late_sent, timeout=30)


async def test_an_event_committed_while_the_service_is_down_is_published_after(
    db_url: str, broker: Broker
) -> None:
    [rid] = await seed(db_url, now=datetime.now(UTC), residents=[HOME],
                       workers=[("W1", east(0.5), CARE)])  # fmt: skip
    settings = settings_for(db_url, broker)
    async with (
        await psycopg.AsyncConnection.connect(db_url) as held,
        await psycopg.AsyncConnection.connect(db_url) as other,
    ):
        async with running(DispatchRunner(settings)), published(broker) as seen:
            order_id = await offered_emergency(db_url, broker, rid)
            late = await add_event(held, order_id)
            after = await add_event(other, order_id)
            await other.commit()

            async def after_sent() -> bool:
                return after in seen

            await eventually(after_sent, timeout=30)
        await held.commit()  # while the service is down
    async with published(broker) as seen_next, running(DispatchRunner(settings)):

        async def late_sent() -> bool:
            return late in seen_next

        await eventually(late_sent, timeout=30)
        assert after not in seen_next  # published once, before the restart
