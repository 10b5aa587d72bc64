"""WebSocket ``/ws?token=``: pushes ``{"kind", "data"}`` frames scoped to the user."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.deps import ApiContext, principal_for_token
from api.live import LiveHub
from api.problems import Problem

router = APIRouter()


@router.websocket("/ws")
async def live(websocket: WebSocket, token: str = "") -> None:
    ctx: ApiContext = websocket.app.state.ctx
    try:
        principal = await principal_for_token(ctx, token)
    except Problem:
        await websocket.close(code=1008, reason="a valid access token is required")
        return
    hub = ctx.hub
    if not isinstance(hub, LiveHub):
        await websocket.close(code=1013, reason="live updates are not running")
        return
    await websocket.accept()
    client = hub.join(principal)

    async def drain_incoming() -> None:
        """Clients say nothing: whatever they send (text or binary) is ignored, and this
        notices the close. (``receive_text`` raised ``KeyError`` on a binary frame,
        which dropped the socket without a close frame.)"""
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    reader = asyncio.create_task(drain_incoming())
    loop = asyncio.get_running_loop()
    recheck = max(1.0, ctx.settings.api_principal_cache_s)
    next_check = loop.time() + recheck
    try:
        while not reader.done():
            get = asyncio.create_task(client.queue.get())
            overflow = asyncio.create_task(client.overflowed.wait())
            done, pending = await asyncio.wait(
                {get, overflow, reader},
                timeout=max(0.0, next_check - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending - {reader}:
                task.cancel()
            if overflow in done:
                await websocket.close(code=1013, reason="too far behind; reconnect")
                break
            if get in done:
                await websocket.send_text(get.result().decode())
            if loop.time() >= next_check:  # is the token still good (expiry, logout)?
                next_check = loop.time() + recheck
                try:
                    await principal_for_token(ctx, token)
                except Problem:
                    await websocket.close(code=1008, reason="the token expired or was revoked")
                    break
    except WebSocketDisconnect:
        pass
    finally:
        hub.leave(client)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await reader
