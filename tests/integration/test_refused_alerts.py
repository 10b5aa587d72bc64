"""What ingest refuses still reaches the alert engine: an SOS press in a message refused
for another field is raised, and a band whose movement windows are all refused raises
``imu_refused`` (the fall detector is off for its wearer) until one is accepted.

Real broker, ingest and database; the engine reads ingest's internal topic (standalone)
or is ingest's handler (in process, as in ``eldercare demo``)."""

from __future__ import annotations

import json
from typing import Any

from eldercare.protocol import EventType
from eldercare.topics import Channel, device_topic
from tests.conftest import Broker
from tests.integration.engine_support import alerts_of, event, fall_window, running_engine
from tests.integration.test_dead_letters_report import without_gravity
from tests.support import (
    NOW_MS,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    rows,
    running_ingest,
)


def sos_refused(dev: str, seq: int, ts: int, lat: float) -> tuple[str, bytes]:
    """An SOS press decode refuses whole: its fix out of range, or its clock far ahead."""
    payload = {"v": 1, "device_id": dev, "seq": seq, "ts": ts, "type": "sos",
               "loc": {"lat": lat, "lon": 120.5, "acc_m": 8.0, "src": "gps"}}  # fmt: skip
    return device_topic(dev, Channel.EVENTS), json.dumps(payload).encode()


async def _detail(db_url: str, resident: int, kind: str) -> dict[str, Any]:
    (row,) = await rows(db_url, "SELECT detail FROM alerts WHERE resident_id = %s AND type = %s",
                        resident, kind)  # fmt: skip
    detail: dict[str, Any] = row[0]
    return detail


async def test_an_sos_refused_for_another_field_is_raised_and_kept_as_a_dead_letter(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    bad_fix, fast_clock = f"{topic_prefix}-rs", f"{topic_prefix}-rc"
    residents = await register_bands(db_url, [bad_fix, fast_clock])
    settings = ingest_settings(db_url, broker.url, ingest_publish_internal=True)
    async with running_engine(settings, consume=True), running_ingest(settings):
        ahead = NOW_MS() + 3_600_000
        publish_all(broker.url, [sos_refused(bad_fix, 7, NOW_MS(), lat=200.0),
                                 sos_refused(fast_clock, 3, ahead, lat=32.4)])  # fmt: skip

        async def raised() -> bool:
            shown = [[a[1:4] for a in await alerts_of(db_url, r)] for r in residents]
            return shown == [[("sos", "critical", "open")]] * 2

        await eventually(raised)
    detail = await _detail(db_url, residents[0], "sos")
    assert detail["presses"] == 1
    assert detail["location"] is None  # the refused fix is not used
    assert (await _detail(db_url, residents[1], "sos"))["location"]["lat"] == 32.4
    dead = await rows(db_url, "SELECT device_id, reason, detail FROM dead_letters"
                      " WHERE device_id = ANY(%s) ORDER BY device_id",
                      [bad_fix, fast_clock])  # fmt: skip
    assert [(d, reason) for d, reason, _ in dead] == [
        (fast_clock, "future_timestamp"),
        (bad_fix, "invalid"),
    ]
    assert "loc.lat" in dead[1][2]


async def test_refused_movement_windows_raise_imu_refused_until_one_is_accepted(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev, ok = f"{topic_prefix}-ri", f"{topic_prefix}-rk"
    resident, other = await register_bands(db_url, [dev, ok])
    settings = ingest_settings(db_url, broker.url)
    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]) as ingest,
    ):
        now = NOW_MS()
        publish_all(broker.url, [without_gravity(dev, 1, now - 20_000),
                                 event(ok, 1, EventType.IM_OK, now)])  # fmt: skip

        async def committed(n: int) -> bool:
            return ingest.stats.committed == n

        await eventually(lambda: committed(2))
        assert await alerts_of(db_url, resident) == []  # one refused window may be a one-off
        publish_all(broker.url, [without_gravity(dev, 2, now - 10_000)])

        async def raised() -> bool:
            return [a[1:4] for a in await alerts_of(db_url, resident)] == [
                ("imu_refused", "medium", "open")
            ]

        await eventually(raised)
        detail = await _detail(db_url, resident, "imu_refused")
        assert detail["response"] == "band_configuration"
        assert detail["windows_refused"] == 2
        assert detail["refused_reason"] == "invalid"
        assert "gravity removed?" in detail["refused_detail"]
        assert detail["devices"] == [dev]

        publish_all(broker.url, [fall_window(dev, 3, now)])  # a window in g with gravity

        async def cleared() -> bool:
            return [a[1:4] for a in await alerts_of(db_url, resident)][:1] == [
                ("imu_refused", "medium", "auto_cleared")
            ]

        await eventually(cleared)
    assert await alerts_of(db_url, other) == []
