"""`eldercare simulate`: run a fleet, a load test, a recording or a replay.

    eldercare simulate --bands 20 --scenario simulators/scenarios/emergencies.yaml \
        --truth truth.jsonl --duration 3600 --speed 10
    eldercare simulate --bands 10000 --interval 10 --load --rate 1000 --duration 60
    eldercare simulate --record stream.jsonl --duration 60
    eldercare simulate --replay stream.jsonl --speed 5
    eldercare simulate --bands 5 --duration 600 --output stream.jsonl   # no broker

Every mode prints one JSON line of results on stdout and returns 0 on success,
1 on a failure (broker or database unreachable), 2 on bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from eldercare.registry import RegistryError
from simulators.fleet import DEFAULT_PREFIX, Fleet
from simulators.load import load_test
from simulators.record import DEFAULT_FILTER, Recorded, record, replay
from simulators.runner import run
from simulators.scenario import Scenario, ScenarioError
from simulators.transport import MqttTransport, TransportError

PER_BAND_MAX = 50  # above this many bands, multiplex them over a few connections


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="eldercare simulate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--bands", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenario", help="scenario YAML (simulators/scenarios/*.yaml)")
    ap.add_argument("--truth", help="write the ground truth (JSONL) here")
    ap.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second; 0 = as fast as possible",
    )
    ap.add_argument(
        "--duration",
        type=float,
        default=3600.0,
        help="simulated seconds (load, record: wall seconds)",
    )
    ap.add_argument(
        "--start",
        help="simulated start, ISO 8601 (default: now, or for speed > 1"
        " now minus the duration so every timestamp is in the past)",
    )
    ap.add_argument("--interval", type=int, help="every band's reporting interval (10-60 s)")
    ap.add_argument("--mqtt-url", default=os.environ.get("ELDERCARE_MQTT_URL"))
    ap.add_argument("--mqtt-protocol", choices=("3.1.1", "5"), default="3.1.1")
    ap.add_argument("--database-url", default=os.environ.get("ELDERCARE_DATABASE_URL"))
    ap.add_argument(
        "--no-register",
        action="store_true",
        help="do not register the fleet (it already is, or no ingest listens)",
    )
    ap.add_argument("--prefix", default=DEFAULT_PREFIX, help="device id prefix")
    ap.add_argument(
        "--connections",
        type=int,
        default=4,
        help=f"shared MQTT connections when multiplexing (> {PER_BAND_MAX} bands)",
    )
    ap.add_argument(
        "--per-band",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"one MQTT client per band (default: if at most {PER_BAND_MAX} bands)",
    )
    ap.add_argument("--output", help="write the generated stream as a recording; no broker")
    ap.add_argument("--record", help="record the live stream matching --topic to this file")
    ap.add_argument("--topic", default=DEFAULT_FILTER, help="topic filter for --record")
    ap.add_argument("--replay", help="replay a recording at --speed")
    ap.add_argument("--load", action="store_true", help="load test: pace by --rate")
    ap.add_argument("--rate", type=float, default=1000.0, help="target messages per second")
    return ap  # fmt: skip


def simulate_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = asyncio.run(_main(args))
    except (ScenarioError, ValueError) as exc:
        print(f"eldercare simulate: {exc}", file=sys.stderr)
        return 2
    except (TransportError, RegistryError, psycopg.Error, OSError) as exc:
        print(f"eldercare simulate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            break
    return stop


def _need(value: str | None, what: str) -> str:
    if not value:
        raise ValueError(f"{what} is required (option or environment)")
    return value


def _start(args: argparse.Namespace, speed: float | None) -> datetime:
    if args.start:
        start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
        return start if start.tzinfo else start.replace(tzinfo=UTC)
    now = datetime.now(UTC).replace(microsecond=0)
    if speed is None or speed > 1:
        return now - timedelta(seconds=args.duration)
    return now


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    speed = args.speed if args.speed > 0 else None
    stop = _stop_on_signals()
    if args.record:
        url = _need(args.mqtt_url, "--mqtt-url")
        n = await record(url, args.record, topic_filter=args.topic, duration_s=args.duration,
                         stop=stop)  # fmt: skip
        return {"mode": "record", "messages": n, "file": args.record}
    if args.replay:
        url = _need(args.mqtt_url, "--mqtt-url")
        n = await replay(url, args.replay, speed=speed, protocol=args.mqtt_protocol,
                         connections=args.connections, stop=stop)  # fmt: skip
        return {"mode": "replay", "messages": n, "file": args.replay}

    scenario = Scenario.load(args.scenario) if args.scenario else None
    fleet = Fleet.create(seed=args.seed, bands=args.bands, prefix=args.prefix,
                         interval_s=args.interval)  # fmt: skip
    if scenario is not None:  # before anything is registered or connected
        scenario.check_fleet(len(fleet))
    if args.output:
        sim = fleet.simulate(duration_s=args.duration, start=_start(args, speed),
                             scenario=scenario)  # fmt: skip
        n = write_stream(sim.messages(), args.output, start_ms=sim.start_ms)
        if args.truth:
            sim.write_truth(args.truth)
        return {"mode": "output", "messages": n, "episodes": len(sim.episodes)}

    url = _need(args.mqtt_url, "--mqtt-url")
    if not args.no_register:
        await fleet.register(_need(args.database_url, "--database-url (or --no-register)"))
    if args.load:
        stats = await load_test(fleet, url, rate=args.rate, duration_s=args.duration,
                                protocol=args.mqtt_protocol, connections=args.connections,
                                scenario=scenario, stop=stop)  # fmt: skip
        return {"mode": "load", **stats.as_dict()}
    per_band = args.per_band if args.per_band is not None else args.bands <= PER_BAND_MAX
    transport = MqttTransport(
        url,
        protocol=args.mqtt_protocol,
        per_band=per_band,
        connections=args.connections,
        credentials=fleet.credentials,
    )
    await transport.start()
    try:
        sim = fleet.simulate(duration_s=args.duration, start=_start(args, speed),
                             scenario=scenario)  # fmt: skip
        stats = await run(sim, transport, speed=speed, stop=stop, truth_path=args.truth)
    finally:
        await transport.close()
    return {"mode": "simulate", **stats.as_dict()}


def write_stream(messages: Any, path: str | Path, *, start_ms: int) -> int:
    """Write generated messages in the recording format (``t`` = simulated offset)."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as f:
        for m in messages:
            rec = Recorded((m.t_ms - start_ms) / 1000, m.topic, m.payload, m.qos, m.retain)
            f.write(rec.line() + "\n")
            n += 1
    return n


if __name__ == "__main__":
    raise SystemExit(simulate_main(sys.argv[1:]))
