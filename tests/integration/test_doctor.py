"""`eldercare doctor` checks the broker with a real MQTT CONNECT as the configured user.

Until 2026-12-04 it opened a bare TCP connection, so a broker that refuses the
platform's credentials was reported "reachable" and the command exited 0; README
promises exit 1 when the broker is down, and a broker that refuses the service
is down for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from eldercare.doctor import doctor, healthy
from eldercare.settings import Settings
from tests.conftest import Broker, running_broker

USER = "eldercare-ingest"
PASSWORD = "test-only-password"


@pytest.fixture(scope="module")
def password_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A private Mosquitto that refuses anonymous clients and knows one user."""
    with running_broker(tmp_path_factory.mktemp("doctor-broker"), users={USER: PASSWORD}) as b:
        yield b


def url(broker: Broker, password: str | None) -> str:
    credentials = f"{USER}:{password}@" if password is not None else ""
    return f"mqtt://{credentials}127.0.0.1:{broker.port}"


def run_doctor(db_url: str, mqtt_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env |= {"ELDERCARE_DATABASE_URL": db_url, "ELDERCARE_MQTT_URL": mqtt_url}
    return subprocess.run(
        [sys.executable, "-m", "eldercare.cli", "doctor"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_doctor_exits_1_when_the_broker_refuses_the_password(
    db_url: str, password_broker: Broker
) -> None:
    done = run_doctor(db_url, url(password_broker, "WRONG"))
    assert done.returncode == 1, done.stdout + done.stderr
    mqtt_line = next(line for line in done.stdout.splitlines() if line.startswith("mqtt "))
    assert "refused" in mqtt_line, mqtt_line
    assert "reachable" not in mqtt_line, mqtt_line


def test_doctor_exits_0_when_the_broker_accepts_the_password(
    db_url: str, password_broker: Broker
) -> None:
    done = run_doctor(db_url, url(password_broker, PASSWORD))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"connected to 127.0.0.1:{password_broker.port}" in done.stdout


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_doctor_names_the_connack_reason(
    db_url: str, password_broker: Broker, protocol: str
) -> None:
    for password in ("WRONG", None):  # a wrong password, and none (anonymous refused)
        settings = Settings(
            database_url=db_url, mqtt_url=url(password_broker, password), mqtt_protocol=protocol
        )
        report = await doctor(settings)
        assert report["mqtt"].startswith("refused by"), report["mqtt"]
        assert "[code:" in report["mqtt"], report["mqtt"]  # the CONNACK reason code
        assert not healthy(report)
    report = await doctor(
        Settings(
            database_url=db_url,
            mqtt_url=url(password_broker, PASSWORD),
            mqtt_protocol=protocol,
        )
    )
    assert report["mqtt"].startswith("connected"), report["mqtt"]
    assert healthy(report)
