"""The API's live updates across a broker restart: the hub reconnects, and what is
published on the alerts topic afterwards reaches the operator's open WebSocket."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import websockets

from eldercare.topics import ALERTS
from tests.api_support import api_settings, seed, served
from tests.conftest import Broker
from tests.integration.test_api_live import token
from tests.support import eventually, publish_all


async def test_live_updates_resume_after_the_broker_restarts(db_url: str, tmp_path: Path) -> None:
    own = Broker(tmp_path)
    own.start()
    try:
        s = await seed(db_url)
        settings = api_settings(db_url, mqtt_url=own.url)
        async with served(settings) as (app, base), httpx.AsyncClient(base_url=base) as client:
            hub = app.state.ctx.hub
            await asyncio.wait_for(hub.ready.wait(), 20)
            ws_url = (
                base.replace("http://", "ws://") + "/ws?token=" + await token(client, "operator")
            )
            async with websockets.connect(ws_url) as ws:

                async def registered() -> bool:
                    return bool(hub.connected == 1)

                await eventually(registered)
                await asyncio.to_thread(own.stop)
                await asyncio.to_thread(own.start)
                alert = {"kind": "updated", "alert_id": s.alerts["a1"],
                         "resident_id": s.residents["a1"], "state": "open"}  # fmt: skip

                async def heard() -> bool:
                    # published until the hub, reconnected and subscribed again, passes it on
                    publish_all(own.url, [(ALERTS, json.dumps(alert).encode())])
                    try:
                        frame = await asyncio.wait_for(ws.recv(), 1.0)
                    except TimeoutError:
                        return False
                    return bool(json.loads(frame)["data"]["alert_id"] == s.alerts["a1"])

                await eventually(heard, timeout=60)
    finally:
        own.stop()
