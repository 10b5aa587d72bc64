"""End to end: a simulated fleet registered through the registry, published through
Mosquitto, stored by the real ingest service, with no dead letters but the windows of
the band the scenario misconfigures."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import msgspec
import psycopg
import pytest

from eldercare.protocol import Rejected, decode
from simulators.cli import simulate_main
from simulators.fleet import Fleet
from simulators.record import clear_retained, status_topics
from simulators.runner import run
from simulators.scenario import Scenario
from simulators.transport import MqttTransport
from simulators.uplink import Publish
from tests.conftest import Broker
from tests.support import eventually, ingest_settings, rows, running_ingest, scalar


async def test_fleet_is_registered_published_and_stored(
    db_url: str, broker: Broker, topic_prefix: str, tmp_path: Path
) -> None:
    fleet = Fleet.create(seed=12, bands=5, prefix=topic_prefix)
    ids = await fleet.register(db_url)
    assert sorted(ids) == [p.device_id for p in fleet.profiles]
    scenario = Scenario.load("simulators/scenarios/emergencies.yaml")
    sim = fleet.simulate(duration_s=1200, start=int(time.time() * 1000) - 1_200_000,
                         scenario=scenario)  # fmt: skip
    expected = list(sim.messages())
    unique = {(m.topic.rsplit("/", 1)[1], msgspec.json.decode(m.payload).get("seq"), m.device_id)
              for m in expected}  # fmt: skip
    async with running_ingest(ingest_settings(db_url, broker.url)) as service:
        transport = MqttTransport(broker.url, protocol="5", per_band=True,
                                  credentials=fleet.credentials)  # fmt: skip
        await transport.start()
        try:
            stats = await run(sim, transport, speed=None, truth_path=tmp_path / "truth.jsonl")
        finally:
            await transport.close()

        async def all_committed() -> bool:
            return service.stats.committed >= stats.published

        await eventually(all_committed)
    await clear_retained(broker.url, status_topics(ids))  # the broker is shared by the session

    stored = await scalar(db_url, "SELECT count(*) FROM telemetry")
    assert stored == sum(1 for ch, _, _ in unique if ch == "telemetry")
    # (other tests' leftovers on the shared broker may be dead letters); ours are only the
    # movement windows of the band the scenario sends linear acceleration from 00:15
    (wrong,) = [e.device_id for e in sim.truth() if e.type == "imu_misconfigured"]
    limits = ingest_settings(db_url, broker.url).limits()
    refused = [
        m for m in expected
        if isinstance(decode(m.topic, m.payload, now_ms=m.t_ms, limits=limits), Rejected)
    ]  # fmt: skip
    # (none, some runs: its windows fall at random times, the first maybe past 00:20)
    assert {(m.device_id, m.topic.rsplit("/", 1)[1]) for m in refused} <= {(wrong, "imu")}
    mine = await rows(db_url, "SELECT device_id, reason FROM dead_letters WHERE device_id LIKE %s",
                      f"{topic_prefix}%")  # fmt: skip
    assert mine == [(wrong, "invalid")] * len(refused)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT DISTINCT device_id, resident_id FROM telemetry")
        assert dict(await cur.fetchall()) == ids
    truth = [json.loads(x) for x in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert truth
    assert all(t["resident_id"] == ids[t["device_id"]] for t in truth)
    assert all(isinstance(m, Publish) for m in expected)


def test_cli_output_mode_needs_no_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, truth = tmp_path / "stream.jsonl", tmp_path / "truth.jsonl"
    argv = ["--bands", "3", "--seed", "4", "--duration", "900", "--start", "2025-03-01T00:00:00Z",
            "--scenario", "simulators/scenarios/emergencies.yaml", "--output", str(out),
            "--truth", str(truth)]  # fmt: skip
    assert simulate_main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["messages"] == len(out.read_text().splitlines()) > 0
    first = out.read_text()
    assert simulate_main(argv) == 0
    assert out.read_text() == first  # same seed, same start: same bytes


def test_cli_load_mode_reports_the_rate(broker: Broker, topic_prefix: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    argv = ["--bands", "500", "--interval", "10", "--load", "--rate", "2000", "--duration", "1.5",
            "--no-register", "--mqtt-url", broker.url, "--prefix", topic_prefix]  # fmt: skip
    assert simulate_main(argv) == 0
    bands = (f"{topic_prefix}-{i:06d}" for i in range(500))
    asyncio.run(clear_retained(broker.url, status_topics(bands)))
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["mode"] == "load"
    assert result["target_rate"] == 2000
    assert result["acked"] == result["published"] > 1000
    assert result["achieved_rate"] > 500


def test_cli_refuses_to_run_without_a_database_unless_told(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    code = simulate_main(["--bands", "1", "--mqtt-url", broker.url, "--database-url", ""])
    assert code == 2
    assert "--database-url" in capsys.readouterr().err
