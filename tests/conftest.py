"""Shared fixtures: a fresh PostgreSQL database per test, and a real Mosquitto
started from the repository's deployment settings on a free loopback port.

Set ELDERCARE_TEST_DATABASE_URL to point the suite at another server (for
example one with TimescaleDB preloaded); every test database is created and
dropped on it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg
import pytest

from eldercare.migrate import migrate

REPO = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get(
    "ELDERCARE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def create_database(admin_url: str = ADMIN_URL) -> str:
    name = f"ec_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return with_database(admin_url, name)


def drop_database(url: str, admin_url: str = ADMIN_URL) -> None:
    name = url.rpartition("/")[2]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db_url() -> Iterator[str]:
    """A fresh, migrated database."""
    url = create_database()
    migrate(url)
    try:
        yield url
    finally:
        drop_database(url)


def wait_for_port(port: int, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Broker:
    """A private Mosquitto with the deployment's limits (anonymous, loopback only)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        conf = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
        conf = conf.split("listener 1883")[0]  # keep the limits, replace listener and auth
        conf = conf.replace("/mosquitto/data/", f"{workdir}/")
        conf += f"\nlistener {self.port} 127.0.0.1\nallow_anonymous true\n"
        if os.geteuid() == 0:  # keep root, or the broker cannot write its persistence file here
            conf += "user root\n"
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(conf)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@contextlib.contextmanager
def running_broker(
    workdir: Path, *, users: Mapping[str, str] | None = None, acl: Path | None = None
) -> Iterator[Broker]:
    """A private Mosquitto in ``workdir``, stopped on leaving. With ``users`` (name ->
    password) it refuses anonymous clients and knows only them (the test skips without
    mosquitto_passwd); with ``acl``, that access list applies."""
    b = Broker(workdir)
    if users is not None:
        tool = shutil.which("mosquitto_passwd")
        if tool is None:
            pytest.skip("mosquitto_passwd is not installed")
        passwd = workdir / "passwd"
        for n, (user, password) in enumerate(sorted(users.items())):
            flags = ["-c", "-b"] if n == 0 else ["-b"]
            subprocess.run([tool, *flags, str(passwd), user, password], check=True)
        conf = b.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
        conf += f"password_file {passwd}\n"
        if acl is not None:
            conf += f"acl_file {acl}\n"
        b.conf.write_text(conf)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with running_broker(tmp_path_factory.mktemp("mosquitto")) as b:
        yield b


@pytest.fixture
def topic_prefix() -> str:
    """A unique device-id prefix, so tests sharing the broker never see each other."""
    return f"T{uuid.uuid4().hex[:8]}"


PG_BIN = Path(os.environ.get("ELDERCARE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PrivatePostgres:
    """A PostgreSQL server of the test's own, so a test can stop and restart it."""

    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        if self._as_postgres:
            shutil.chown(self.datadir.parent, "postgres")
            self.datadir.mkdir()
            shutil.chown(self.datadir, "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8")  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir}"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-w", "-l",
                  str(self.datadir / "server.log"), "-o", options, "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-w", "-m", mode, "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL server binaries in {PG_BIN}")
    # not under pytest's tmp_path: the postgres user must be able to reach it
    workdir = Path(tempfile.mkdtemp(prefix="eldercare-pg-"))
    workdir.chmod(0o755)
    pg = PrivatePostgres(workdir / "pgdata")
    pg.init()
    pg.start()
    try:
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.stop("immediate")
        shutil.rmtree(workdir, ignore_errors=True)
