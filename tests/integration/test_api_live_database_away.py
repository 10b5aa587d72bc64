"""The live feed while the database is away: messages keep coming, and it recovers.

Before 2026-12-03 the hub's one lookup (the resident's district) raised when the
database was away and ended the hub's subscription task: every live client got
nothing more until the API restarted.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from psycopg_pool import AsyncConnectionPool

from api.live import LiveClient, LiveHub
from api.principal import Principal, Role
from eldercare.migrate import migrate
from eldercare.topics import ALERTS
from tests.api_support import seed
from tests.conftest import Broker, PrivatePostgres
from tests.support import publish_all


async def _frame(client: LiveClient) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(client.queue.get(), 30))
    return frame


async def test_the_live_feed_goes_on_without_the_database_and_recovers(
    private_postgres: PrivatePostgres, broker: Broker
) -> None:
    url = private_postgres.admin_url
    migrate(url)
    s = await seed(url)
    resident = s.residents["a1"]
    change = {"kind": "acknowledged", "alert_id": s.alerts["a1"], "resident_id": resident,
              "state": "acknowledged", "actor": f"user:{s.users['operator']}",
              "note": "rang the daughter"}  # fmt: skip
    message = [(ALERTS, json.dumps(change).encode())]
    async with (
        AsyncConnectionPool(url, min_size=1, max_size=2, timeout=2.0, open=False) as pool,
        LiveHub(pool, mqtt_url=broker.url) as hub,
    ):
        await asyncio.wait_for(hub.ready.wait(), 20)
        admin = hub.join(Principal.build(actor="user:1", role=Role.ADMIN, user_id=1))
        family = hub.join(
            Principal.build(actor="user:50", role=Role.FAMILY, user_id=50, resident_ids=(resident,))
        )
        await asyncio.to_thread(private_postgres.stop)
        publish_all(broker.url, message)
        assert (await _frame(admin))["data"] == change
        away = (await _frame(family))["data"]
        assert (away["actor"], away["note"]) == ("staff", "")  # no role to name them by

        await asyncio.to_thread(private_postgres.start)
        publish_all(broker.url, message)
        assert (await _frame(admin))["data"] == change
        back = (await _frame(family))["data"]
        assert (back["actor"], back["note"]) == ("operator", "")
