"""The real API for the browser tests: ``api.asgi`` under uvicorn on a free loopback port,
against the test's database and broker (tests/e2e/serve.py adds the /lib/ mount)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, Broker, free_port, wait_for_port


@pytest.fixture
def api_url(db_url: str, broker: Broker, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "ELDERCARE_DATABASE_URL": db_url,
        "ELDERCARE_MQTT_URL": broker.url,
        "ELDERCARE_ENVIRONMENT": "test",
    }
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "tests.e2e.serve", str(port)], cwd=REPO,
                            env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
