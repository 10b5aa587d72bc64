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
                f"/alerts/{s.alerts['a1']}/acknowledge",
                json={"note": "rang the daughter"},
                headers=bearer(tokens["operator"]),
            )
            assert r.status_code == 200
            frame = await next_frame(op_ws)
            assert frame["kind"] == "alert"
            assert frame["data"]["alert_id"] == s.alerts["a1"]
            assert frame["data"]["state"] == "acknowledged"
            assert frame["data"]["actor"] == f"user:{s.users['operator']}"
            assert frame["data"]["note"] == "rang the daughter"
            # a family: the operator by role, without the note they typed (api.alert_view)
            seen = (await next_frame(fam_ws))["data"]
            assert seen == {**frame["data"], "actor": "operator", "note": ""}

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
            # a family sees its parent's order change without the workers who turned it
            # down or let the offer lapse, nor staff ids (api.order_view)
            order = {"id": 5, "resident_id": s.residents["a1"], "worker_id": None,
                     "declined_by": ["2"], "created_by": "operator:3"}  # fmt: skip
            lapsed = {"kind": "timed_out", "order_id": 5, "worker_id": "2", "actor": "dispatcher",
                      "detail": {"eta_s": 300, "preempts_order_id": 9}, "order": order}  # fmt: skip
            publish_all(broker.url, [(DISPATCH, json.dumps(lapsed).encode())])
            seen = (await next_frame(fam_ws))["data"]
            shown = {"id": 5, "resident_id": s.residents["a1"], "worker_id": None,
                     "created_by": "operator"}  # fmt: skip
            assert seen == {**lapsed, "worker_id": None, "detail": {}, "order": shown}

            # logging out ends the live session too (checked every cache period)
            r = await client.post("/auth/logout", headers=bearer(tokens["family"]))
            assert r.status_code == 204
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(fam_ws.recv(), 20)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1008


async def test_families_get_the_coarse_location_and_odd_clients_are_handled(
    db_url: str, broker: Broker
) -> None:
    """Found by fuzzing (2026-12-03): an SOS's detail showed a family the exact fix that
    their status view coarsens, through GET /alerts/{id} and live frames; a binary frame
    from a client dropped its socket (KeyError); a NUL in a key reached the database."""
    s = await seed(db_url)
    fix = {"lat": 32.365618, "lon": 120.56236, "acc_m": 23.0, "src": "gps"}
    await scalar(db_url, "UPDATE alerts SET detail = %s::jsonb WHERE id = %s RETURNING id",
                 json.dumps({"location": fix, "presses": 1}), s.alerts["a1"])  # fmt: skip
    coarse = {"lat": 32.366, "lon": 120.562, "acc_m": 111.0, "src": "gps"}
    settings = api_settings(db_url, mqtt_url=broker.url)
    async with served(settings) as (app, base), httpx.AsyncClient(base_url=base) as client:
        await asyncio.wait_for(app.state.ctx.hub.ready.wait(), 20)
        tokens = {n: await token(client, n) for n in ("operator", "family")}
        alert = f"/alerts/{s.alerts['a1']}"
        seen = {
            n: (await client.get(alert, headers=bearer(tokens[n]))).json()["detail"] for n in tokens
        }
        assert seen == {"operator": {"location": fix, "presses": 1},
                        "family": {"location": coarse, "presses": 1}}  # fmt: skip

        ws_base = base.replace("http://", "ws://") + "/ws?token="
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(ws_base + "eck_%00aaaaaaa_x"):
                pass
        assert refused.value.response.status_code == 403
        async with (
            websockets.connect(ws_base + tokens["operator"]) as op_ws,
            websockets.connect(ws_base + tokens["family"]) as fam_ws,
        ):
            hub = app.state.ctx.hub

            async def registered() -> bool:
                return bool(hub.connected == 2)

            await eventually(registered)
            await fam_ws.send(b"\x00")  # ignored: the socket stays
            await fam_ws.send("hello")
            r = await client.post(f"{alert}/acknowledge", headers=bearer(tokens["operator"]))
            assert r.status_code == 200
            assert (await next_frame(op_ws))["data"]["detail"]["location"] == fix
            assert (await next_frame(fam_ws))["data"]["detail"]["location"] == coarse
