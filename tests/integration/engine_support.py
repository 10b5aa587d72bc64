"""The live alert engine under test: running it, what it publishes, bands' messages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import numpy as np

from alerts.engine import AlertEngine
from alerts.falls import load_model
from eldercare.protocol import DeviceEvent, EventType, ImuWindow, encode
from eldercare.settings import Settings
from eldercare.topics import ALERTS, Channel, device_topic
from tests.conftest import Broker
from tests.support import (
    rows,
)
from tests.unit.test_detect_falls import impact
from tests.unit.test_falls_signal import batch_stamped

MODEL = load_model()


@contextlib.asynccontextmanager
async def running_engine(
    settings: Settings, *, consume: bool = False
) -> AsyncIterator[AlertEngine]:
    engine = AlertEngine(settings, fall_model=MODEL)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop, consume=consume))
    ready = asyncio.create_task((engine.subscribed if consume else engine.ready).wait())
    done, _ = await asyncio.wait({task, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    assert ready in done, "the alert engine did not start"
    try:
        yield engine
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


@contextlib.asynccontextmanager
async def alert_messages(broker: Broker) -> AsyncIterator[list[dict[str, Any]]]:
    """Collect what the engine publishes on the internal alerts topic."""
    got: list[dict[str, Any]] = []
    subscriber = f"alerts-sub-{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=subscriber) as client:
        await client.subscribe(ALERTS, qos=1)

        async def collect() -> None:
            async for message in client.messages:  # endless: each message must land at once
                if isinstance(message.payload, bytes):
                    got.append(json.loads(message.payload))  # noqa: PERF401

        reader = asyncio.create_task(collect())
        try:
            yield got
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def event(dev: str, seq: int, kind: EventType, ts: int) -> tuple[str, bytes]:
    msg = DeviceEvent(device_id=dev, seq=seq, ts=ts, type=kind)
    return device_topic(dev, Channel.EVENTS), encode(msg)


def fall_window(dev: str, seq: int, ts: int) -> tuple[str, bytes]:
    """An impact and a change of orientation the shipped model scores as a fall."""
    t = np.arange(0.0, 12.0, 1 / 50)
    rng = np.random.default_rng(0)
    acc = np.where((t < 5.0)[:, None], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    acc[(t > 4.5) & (t < 4.95)] *= 0.35
    acc = acc + (4.0 * np.exp(-0.5 * ((t - 5.0) / 0.06) ** 2))[:, None] * [0.6, 0.0, 0.8]
    acc = np.round(acc + rng.normal(0.0, 0.02, acc.shape), 4)
    window = ImuWindow(device_id=dev, seq=seq, ts=ts, t_ms=[round(float(x) * 1000) for x in t],
                       ax=acc[:, 0].tolist(), ay=acc[:, 1].tolist(), az=acc[:, 2].tolist(),
                       trigger="impact")  # fmt: skip
    return device_topic(dev, Channel.IMU), encode(window)


async def alerts_of(db_url: str, resident: int) -> list[tuple[Any, ...]]:
    return await rows(db_url, "SELECT id, type, severity, state, repeat_count, outcome, closed_at"
                      " FROM alerts WHERE resident_id = %s ORDER BY id", resident)  # fmt: skip


def impact_windows(
    dev: str, ts: int, *, back_to_start: bool, batched: bool = False
) -> list[tuple[str, bytes]]:
    """A band's two impact uploads (docs/protocol.md): the early part (to 0.8 s after a
    5 g impact that turns the forearm), then the whole 10 s window: lying still, or
    (``back_to_start``) the arm back where it was and moving. ``batched``: the band
    stamps each 0.1 s batch of samples with one time, when it hands the batch over."""
    t, acc = impact(back_to_start, seed=1)
    acc = np.round(acc, 4)
    stamps = batch_stamped(t, 0.1, apart_ms=0) if batched else t
    out = []
    for seq, keep in ((1, t <= 3.3), (2, t >= 0.0)):
        t_ms = [round(float(x) * 1000) for x in stamps[keep]]
        w = ImuWindow(device_id=dev, seq=seq, ts=ts, t_ms=t_ms,
                      ax=acc[keep, 0].tolist(), ay=acc[keep, 1].tolist(),
                      az=acc[keep, 2].tolist(), trigger="impact")  # fmt: skip
        out.append((device_topic(dev, Channel.IMU), encode(w)))
    return out
