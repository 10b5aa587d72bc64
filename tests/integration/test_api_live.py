"""WebSocket live updates through the real broker, scoped per user."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from eldercare.topics import DISPATCH
from tests.api_support import api_settings, bearer, password, seed, served
from tests.conftest import Broker
from tests.support import eventually, publish_all, scalar


async def token(client: httpx.AsyncClient, name: str) -> str:
    r = await client.post(
        "/auth/token", data={"username": name.replace("_", "-"), "password": password(name)}
    )
    assert r.status_code == 200
    return str(r.json()["access_token"])


async def next_frame(ws: Any) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 20))
    return frame


async def test_live_updates_are_scoped(db_url: str, broker: Broker) -> None:
    s = await seed(db_url)
    settings = api_settings(db_url, mqtt_url=broker.url)
    async with served(settings) as (app, base), httpx.AsyncClient(base_url=base) as client:
        await asyncio.wait_for(app.state.ctx.hub.ready.wait(), 20)
        tokens = {
            n: await token(client, n)
            for n in ("operator", "operator_b", "family", "family_b", "worker")
        }
        ws_base = base.replace("http://", "ws://") + "/ws?token="
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(ws_base + "nope"):
                pass
        async with (
            websockets.connect(ws_base + tokens["operator"]) as op_ws,
            websockets.connect(ws_base + tokens["family"]) as fam_ws,
            websockets.connect(ws_base + tokens["family_b"]) as fam_b_ws,
            websockets.connect(ws_base + tokens["worker"]) as worker_ws,
        ):
            hub = app.state.ctx.hub

            async def all_registered() -> bool:  # the server registers a socket after accepting
                return bool(hub.connected == 4)

            await eventually(all_registered)
            r = await client.post(
                f"/alerts/{s.alerts['a1']}/acknowledge", headers=bearer(tokens["operator"])
            )
            assert r.status_code == 200
            frame = await next_frame(op_ws)
            assert frame["kind"] == "alert"
            assert frame["data"]["alert_id"] == s.alerts["a1"]
            assert frame["data"]["state"] == "acknowledged"
            assert (await next_frame(fam_ws))["data"]["alert_id"] == s.alerts["a1"]

            async def pushed_event_audited() -> bool:
                await app.state.ctx.audit.flush()
                n = await scalar(
                    db_url,
                    "SELECT count(*) FROM audit_log WHERE action = 'live_event' AND actor = %s",
                    f"user:{s.users['family']}",
                )
                return n == 1

            await eventually(pushed_event_audited)

            r = await client.post(
                f"/alerts/{s.alerts['b1']}/acknowledge", headers=bearer(tokens["operator_b"])
            )
            assert r.status_code == 200
            # family_b's first frame is b1's: a1's change never reached them
            assert (await next_frame(fam_b_ws))["data"]["alert_id"] == s.alerts["b1"]

            offer = {
                "kind": "offered",
                "order_id": 5,
                "worker_id": "1",
                "resident_id": s.residents["a1"],
            }
            other = {**offer, "worker_id": "2", "order_id": 4}
            publish_all(
                broker.url,
                [(DISPATCH, json.dumps(other).encode()), (DISPATCH, json.dumps(offer).encode())],
            )
            got = await next_frame(worker_ws)
            assert got == {"kind": "offer", "data": offer}

            # logging out ends the live session too (checked every cache period)
            r = await client.post("/auth/logout", headers=bearer(tokens["family"]))
            assert r.status_code == 204
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(fam_ws.recv(), 20)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1008
