"""A simulated fleet over a real Mosquitto: protocol v1 on the wire, the stream the seed
promises, ground truth that matches, and a replay that reproduces each device byte for byte."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from eldercare.protocol import DeviceEvent, Limits, Rejected, StatusReport, decode
from eldercare.topics import parse_device_topic
from simulators.fleet import Fleet
from simulators.record import Recorded, Recorder, clear_retained, read_recording, replay
from simulators.runner import run
from simulators.scenario import Scenario
from simulators.transport import MqttProtocol, MqttTransport
from simulators.uplink import Link
from tests.conftest import Broker

SCENARIO = Scenario.from_dict({
    "name": "broker",
    "background": {"reconnects_per_day": 0},
    "events": [
        {"type": "sos", "at": 30, "bands": [0]},
        {"type": "fall", "at": 45, "bands": [1], "params": {"long_lie": True}},
        {"type": "device_offline", "at": 60, "bands": [2], "duration_s": 300},
    ],
})  # fmt: skip


def _device(rec: Recorded) -> str:
    parsed = parse_device_topic(rec.topic)
    return parsed.device_id if parsed else ""


def _per_device(recs: list[Recorded]) -> dict[str, list[tuple[str, bytes, bool]]]:
    out: dict[str, list[tuple[str, bytes, bool]]] = defaultdict(list)
    for r in recs:
        out[_device(r)].append((r.topic, r.payload, r.retain))
    return dict(out)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_fleet_on_the_wire_and_replayed(
    broker: Broker, topic_prefix: str, tmp_path: Path, protocol: MqttProtocol
) -> None:
    fleet = Fleet.create(seed=3, bands=4, prefix=topic_prefix, interval_s=20)
    start_ms = int(time.time() * 1000) - 900_000
    sim = fleet.simulate(duration_s=900, start=start_ms, scenario=SCENARIO)
    expected = list(sim.messages())
    downs = sum(1 for o in sim.outputs() if isinstance(o, Link) and not o.up)
    assert downs == 1
    mine = lambda r: _device(r).startswith(topic_prefix)  # noqa: E731

    async with Recorder(broker.url, tmp_path / "live.jsonl", keep=True) as rec:
        transport = MqttTransport(broker.url, protocol=protocol, per_band=True)
        await transport.start()
        try:
            stats = await run(sim, transport, speed=None, truth_path=tmp_path / "truth.jsonl")
        finally:
            await transport.close()
        assert stats.completed
        assert stats.acked == stats.published
        assert await rec.wait_for(len(expected) + downs, timeout_s=20, predicate=mine)
        live = rec.kept(mine)
    assert len(live) == len(expected) + downs

    # protocol v1 throughout, as ingest decodes it
    now = int(time.time() * 1000)
    decoded = [decode(r.topic, r.payload, now_ms=now, limits=Limits()) for r in live]
    assert not [d for d in decoded if isinstance(d, Rejected)]
    wills = [d for d in decoded if isinstance(d, StatusReport) and d.state == "offline"]
    assert len(wills) == downs
    assert wills[0].device_id == fleet.profiles[2].device_id

    # the seed's stream, byte for byte and in order per device (plus the broker's last will)
    got = _per_device([r for r in live if b'"offline"' not in r.payload])
    want: dict[str, list[tuple[str, bytes, bool]]] = defaultdict(list)
    for m in expected:
        want[m.device_id].append((m.topic, m.payload, m.retain))
    assert got == dict(want)

    # ground truth names what the wire shows
    truth = (tmp_path / "truth.jsonl").read_text().splitlines()
    assert len(truth) == 3
    sos = [d for d in decoded if isinstance(d, DeviceEvent) and d.type == "sos"]
    assert [s.device_id for s in sos] == [fleet.profiles[0].device_id]
    assert any(r.topic.endswith("/imu") and _device(r) == fleet.profiles[1].device_id for r in live)

    # replay the recording: every device's stream again, byte for byte
    recording = tmp_path / "mine.jsonl"
    recording.write_text("".join(r.line() + "\n" for r in read_recording(tmp_path / "live.jsonl")
                                 if mine(r)))  # fmt: skip
    retained = {r.topic for r in live if r.retain}
    await clear_retained(broker.url, retained)
    async with Recorder(broker.url, tmp_path / "again.jsonl", keep=True) as again:
        assert await replay(broker.url, recording, speed=None, protocol=protocol) == len(live)
        assert await again.wait_for(len(live), timeout_s=20, predicate=mine)
        assert _per_device(again.kept(mine)) == _per_device(live)
    await clear_retained(broker.url, retained)  # leave the shared broker as we found it
