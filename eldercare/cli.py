"""The `eldercare` command line: one entry point for every service and tool."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from eldercare.logs import configure_logging
from eldercare.settings import Settings


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def run_until_signalled(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run a service until SIGINT/SIGTERM, then let it drain and close."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def cmd_migrate(args: argparse.Namespace) -> int:
    from eldercare.migrate import migrate

    settings = _settings()
    path, applied = migrate(settings.require_database_url(), prefer=args.storage)
    print(json.dumps({"storage": path.value, "applied": applied}))
    return 0


def cmd_doctor(_args: argparse.Namespace) -> int:
    from eldercare.doctor import doctor, healthy

    settings = _settings()
    report = asyncio.run(doctor(settings))
    for key, value in report.items():
        print(f"{key:<22} {value}")
    return 0 if healthy(report) else 1


def cmd_ingest(_args: argparse.Namespace) -> int:
    from ingest.service import IngestService

    settings = _settings()
    run_until_signalled(IngestService(settings).run)
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from alerts.engine import run_engine

    settings = _settings()
    if args.shard is not None:  # validated like the environment variable
        settings = Settings.model_validate({**settings.model_dump(), "alert_shard": args.shard})

    async def main(stop: asyncio.Event) -> None:
        await run_engine(settings, stop)

    run_until_signalled(main)
    return 0


def cmd_dispatch(args: argparse.Namespace) -> int:
    from dispatch.day import plan_main
    from dispatch.runner import run_dispatch

    settings = _settings()
    if args.action == "plan":
        return plan_main(
            settings,
            day=args.date,
            district=args.district,
            seconds=args.seconds,
            recurring=not args.no_recurring,
        )

    async def main(stop: asyncio.Event) -> None:
        await run_dispatch(settings, stop)

    run_until_signalled(main)
    return 0


def cmd_workers_add(args: argparse.Namespace) -> int:
    from dispatch.roster_file import add_workers_file

    return add_workers_file(_settings(), args.file)


def cmd_workers_simulate(args: argparse.Namespace) -> int:
    from simulators.workers import simulate_main

    settings = _settings()
    return simulate_main(settings, count=args.count, seed=args.seed, time_scale=args.time_scale)


def cmd_falls_score(args: argparse.Namespace) -> int:
    from alerts.falls.cli import score_main

    return score_main(list(args.paths), model_path=args.model)


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.cli import simulate_main

    configure_logging("WARNING")
    return simulate_main(list(args.simulate_args))


def cmd_demo(args: argparse.Namespace) -> int:
    from eldercare.demo import run_demo

    configure_logging("WARNING")
    return run_demo(
        bands=args.bands, duration_s=args.duration, seed=args.seed, api_port=args.api_port
    )


def cmd_wristband_list(_args: argparse.Namespace) -> int:
    from eldercare.registry_cli import list_bands

    return list_bands(_settings())


def cmd_wristband_passwd(_args: argparse.Namespace) -> int:
    from eldercare.registry_cli import password_file

    return password_file(_settings())


def cmd_wristband_pair(args: argparse.Namespace) -> int:
    from eldercare.registry_cli import pair

    return pair(_settings(), args.device_id, args.resident_id)


def cmd_wristband_revoke(args: argparse.Namespace) -> int:
    from eldercare.registry_cli import revoke

    return revoke(_settings(), args.device_id)


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from eldercare.dead_letters import report

    return report(_settings(), hours=args.hours, device_id=args.device, limit=args.limit)


def cmd_register(args: argparse.Namespace) -> int:
    from eldercare.registry_cli import register_file

    return register_file(_settings(), args.file)


def cmd_api(args: argparse.Namespace) -> int:
    from api.cli import serve

    return serve(_settings(), host=args.host, port=args.port)


def cmd_user_add(args: argparse.Namespace) -> int:
    from api.cli import add_user

    return add_user(_settings(), username=args.username, role=args.role,
                    display_name=args.display_name, district=args.district,
                    worker_id=args.worker_id, residents=args.resident,
                    password_env=args.password_env)  # fmt: skip


def cmd_user_disable(args: argparse.Namespace) -> int:
    from api.cli import disable_user_named

    return disable_user_named(_settings(), username=args.username)


def cmd_apikey_add(args: argparse.Namespace) -> int:
    from api.cli import add_api_key

    return add_api_key(_settings(), name=args.name, scopes=args.scope, district=args.district)


def _add_band_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`eldercare register`, `eldercare wristband ...`, `eldercare dead-letters`."""
    p = sub.add_parser("register", help="register residents and wristbands from a JSON file")
    p.add_argument("file")
    p.set_defaults(func=cmd_register)

    bands = sub.add_parser("wristband", help="the wristband registry").add_subparsers(
        dest="wristband_cmd", required=True
    )
    p = bands.add_parser("list")
    p.set_defaults(func=cmd_wristband_list)
    p = bands.add_parser("pair", help="pair a band (from stock, or moved) with a resident")
    p.add_argument("device_id")
    p.add_argument("resident_id", type=_count)
    p.set_defaults(func=cmd_wristband_pair)
    p = bands.add_parser("revoke")
    p.add_argument("device_id")
    p.set_defaults(func=cmd_wristband_revoke)
    p = bands.add_parser("passwd-file", help="print a Mosquitto password_file of active bands")
    p.set_defaults(func=cmd_wristband_passwd)

    p = sub.add_parser("dead-letters", help="what ingest refused lately, per band and reason")
    # a negative or zero look-back listed nothing, as if ingest had refused nothing
    p.add_argument("--hours", type=_hours, default=24.0, help="look back this far (default 24)")
    p.add_argument("--device", help="one band's device id")
    p.add_argument("--limit", type=_count, default=100, help="at most this many lines")
    p.set_defaults(func=cmd_dead_letters)


def _add_api_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`eldercare api`, `eldercare user add`, `eldercare apikey add`."""
    p = sub.add_parser("api", help="serve the HTTP API (operators, workers, families)")
    p.add_argument("--host", default=None, help="default: ELDERCARE_API_HOST")
    p.add_argument("--port", type=int, default=None, help="default: ELDERCARE_API_PORT")
    p.set_defaults(func=cmd_api)

    users = sub.add_parser("user", help="API users").add_subparsers(dest="user_cmd", required=True)
    p = users.add_parser("add", help="add a user (the password is prompted for)")
    p.add_argument("username")
    p.add_argument("--role", required=True,
                   choices=["admin", "supervisor", "operator", "worker", "family"])  # fmt: skip
    p.add_argument("--display-name", default="")
    p.add_argument("--district", default=None, help="operators and supervisors")
    p.add_argument("--worker-id", default=None, help="service workers")
    p.add_argument("--resident", type=int, action="append", default=[],
                   help="family: a linked resident id (repeatable)")  # fmt: skip
    p.add_argument("--password-env", default=None,
                   help="read the password from this variable, not a prompt")  # fmt: skip
    p.set_defaults(func=cmd_user_add)
    p = users.add_parser("disable", help="disable an account: sessions revoked, no sign-in")
    p.add_argument("username")
    p.set_defaults(func=cmd_user_disable)

    keys = sub.add_parser("apikey", help="API keys of machine clients").add_subparsers(
        dest="apikey_cmd", required=True
    )
    p = keys.add_parser("add", help="create a scoped API key (printed once)")
    p.add_argument("name")
    p.add_argument("--scope", action="append", required=True,
                   help="e.g. residents:read, alerts:read (repeatable)")  # fmt: skip
    p.add_argument("--district", default=None)
    p.set_defaults(func=cmd_apikey_add)


def _add_alerts(sub: Any) -> None:
    p = sub.add_parser("alerts", help="run the alert engine (reads ingest's internal topic)")
    p.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="decide for residents with id mod N == K (default: $ELDERCARE_ALERT_SHARD, "
        "0/1 = everyone); run N engines for N shards",
    )
    p.set_defaults(func=cmd_alerts)


def _count(text: str) -> int:
    """A whole number >= 1 (argparse reports the error and exits 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def _positive(unit: str) -> Callable[[str], float]:
    """An argparse type: a finite number of ``unit`` > 0."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {unit}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{text} is not a number of {unit} > 0")
        return value

    return parse


_seconds = _positive("seconds")
_hours = _positive("hours")


def _port(text: str) -> int:
    """A TCP port, 0-65535 (0: none)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535, 0: none)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eldercare", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="apply database migrations (idempotent)")
    p.add_argument(
        "--storage",
        choices=["auto", "timescaledb", "plain"],
        default="auto",
        help="storage path for a new database (default: TimescaleDB if available)",
    )
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("doctor", help="check the database and broker; print the storage path")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("ingest", help="run the wristband ingest service")
    p.set_defaults(func=cmd_ingest)

    _add_alerts(sub)

    p = sub.add_parser(
        "dispatch",
        help="run the dispatch service (alerts -> work orders -> workers), or plan a day",
    )
    p.add_argument("action", nargs="?", choices=["run", "plan"], default="run")
    p.add_argument("--date", default=None, help="plan: the day (YYYY-MM-DD, default today)")
    p.add_argument("--district", default=None, help="plan: one district only")
    p.add_argument("--seconds", type=float, default=30.0, help="plan: solver time budget")
    p.add_argument("--no-recurring", action="store_true", help="plan: no recurring orders")
    p.set_defaults(func=cmd_dispatch)

    workers = sub.add_parser("workers", help="service workers").add_subparsers(
        dest="workers_cmd", required=True
    )
    p = workers.add_parser(
        "add", help="register service workers and their shifts from a JSON file (docs/dispatch.md)"
    )
    p.add_argument("file")
    p.set_defaults(func=cmd_workers_add)
    p = workers.add_parser("simulate", help="register and run virtual workers near the residents")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per second")
    p.set_defaults(func=cmd_workers_simulate)

    p = sub.add_parser(
        "simulate", help="simulated wristband fleets, scenarios, record/replay", add_help=False
    )
    p.add_argument("simulate_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("demo", help="run the whole platform with embedded services and a fleet")
    p.add_argument("--bands", type=_count, default=50, help="residents and wristbands (>= 1)")
    p.add_argument(
        "--duration", type=_seconds, default=None, help="seconds > 0 (default: until Ctrl-C)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--api-port", type=_port, default=8000, help="API and web pages on 127.0.0.1 (0: none)"
    )
    p.set_defaults(func=cmd_demo)

    falls = sub.add_parser("falls", help="the fall detector").add_subparsers(
        dest="falls_cmd", required=True
    )
    p = falls.add_parser("score", help="score wrist recordings (CSV t_s,ax_g,ay_g,az_g)")
    p.add_argument(
        "paths", nargs="+", help="CSV files t_s,ax_g,ay_g,az_g, or folders: every .csv under them"
    )
    p.add_argument("--model", default=None, help="model JSON (default: the packaged one)")
    p.set_defaults(func=cmd_falls_score)

    _add_band_parsers(sub)
    _add_api_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:  # the simulator parses its own options (and --help)
        return cmd_simulate(argparse.Namespace(simulate_args=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # inside the try: a reader gone by now is handled below too
    except BrokenPipeError:
        # The reader went away (`eldercare falls score dir | head`): stop quietly, as
        # other command-line tools do; the interpreter's last flush must not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:  # Ctrl-C in a one-shot command; services drain on SIGINT
        return 128 + signal.SIGINT
    except (ValueError, RuntimeError) as exc:
        print(f"eldercare: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not _database_failure(exc):
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"eldercare: database: {first}", file=sys.stderr)
        return 2
    return code


def _database_failure(exc: BaseException) -> bool:
    """PostgreSQL could not be used: server down, wrong host or credentials, cut off.

    psycopg is looked up, not imported: the commands that need no database (`falls
    score`) never load it, and then no exception of theirs can be one of its.
    """
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)


if __name__ == "__main__":
    sys.exit(main())
