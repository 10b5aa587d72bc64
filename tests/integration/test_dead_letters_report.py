"""`eldercare dead-letters`: what ingest refused, per band and reason, from the real
dead_letters table filled by a real ingest through the broker."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from eldercare.dead_letters import refused, report
from eldercare.protocol import ImuWindow, Telemetry, encode
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


def without_gravity(dev: str, seq: int, ts: int) -> tuple[str, bytes]:
    """A band that reports linear acceleration: a resting wrist reads ~0 g."""
    n = 100
    window = ImuWindow(device_id=dev, seq=seq, ts=ts, t_ms=[i * 20 for i in range(n)],
                       ax=[0.01 * (i % 3) for i in range(n)], ay=[0.02] * n,
                       az=[-0.01 * (i % 2) for i in range(n)])  # fmt: skip
    return device_topic(dev, Channel.IMU), encode(window)


async def test_the_report_groups_refused_messages_by_band_and_reason(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev, good = f"{topic_prefix}-lin", f"{topic_prefix}-ok"
    ghost = f"{topic_prefix}-ghost"
    await register_bands(db_url, [dev, good])
    now = NOW_MS()
    messages = [
        *(without_gravity(dev, seq, now - 10_000 + seq) for seq in range(1, 4)),
        (device_topic(dev, Channel.TELEMETRY), b"{not json"),
        (device_topic(good, Channel.TELEMETRY),
         encode(Telemetry(device_id=good, seq=1, ts=now, hr=70))),
        (device_topic(ghost, Channel.TELEMETRY),
         encode(Telemetry(device_id=ghost, seq=1, ts=now, hr=70))),
    ]  # fmt: skip
    settings = ingest_settings(db_url, broker.url)
    async with running_ingest(settings, handlers=[]):
        publish_all(broker.url, messages)

        async def kept() -> bool:
            return await scalar(db_url, "SELECT count(*) FROM dead_letters") == 5

        await eventually(kept)

    since = datetime.now(UTC) - timedelta(hours=1)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        groups = await refused(conn, since=since)
        assert [(g.device_id, g.reason, g.count) for g in groups] == [
            (dev, "invalid", 3),  # the largest first, then by band
            (ghost, "unknown_device", 1),
            (dev, "malformed", 1),
        ]
        assert "gravity removed?" in groups[0].detail
        assert groups[0].first <= groups[0].last
        assert [g.reason for g in await refused(conn, since=since, device_id=ghost)] == [
            "unknown_device"
        ]
        assert await refused(conn, since=datetime.now(UTC) + timedelta(minutes=1)) == []
        assert len(await refused(conn, since=since, limit=1)) == 1

    out = io.StringIO()
    assert await asyncio.to_thread(report, settings, hours=1, out=out) == 0  # the CLI's path
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["device_id"], x["reason"], x["count"]) for x in lines] == [
        (g.device_id, g.reason, g.count) for g in groups
    ]
    assert "payload" not in lines[0]  # readings stay in the database


async def test_an_unmigrated_database_is_named_not_a_traceback(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("DROP TABLE dead_letters")
    settings = ingest_settings(db_url, "mqtt://127.0.0.1:1")
    assert await asyncio.to_thread(report, settings, hours=1) == 1
    assert "run `eldercare migrate`" in capsys.readouterr().err
