"""`eldercare demo` refuses bad options and a busy API port before starting anything.

Until 2026-12-04 `--api-port 70000` or `-1` ended in an OverflowError, `--bands 0`
in "empty range for randrange()", and a busy `--api-port` in uvicorn's SystemExit
with a 43-line traceback, after PostgreSQL and the broker had been started.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import eldercare.demo
from eldercare.cli import main


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the demo gets as far as starting (or running) anything."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        pytest.fail("the demo started its services")

    monkeypatch.setattr(eldercare.demo, "_services", refuse)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-port", "70000"], "--api-port: 70000 is not a port"),
        (["--api-port", "-1"], "--api-port: -1 is not a port"),
        (["--api-port", "http"], "--api-port: 'http' is not a port number"),
        (["--bands", "0"], "--bands: 0 is less than 1"),
        (["--bands", "-3"], "--bands: -3 is less than 1"),
        (["--duration", "0"], "--duration: 0 is not a number of seconds > 0"),
        (["--duration", "nan"], "--duration: nan is not a number of seconds > 0"),
    ],
)
def test_bad_demo_options_exit_2_with_a_message(
    nothing_starts: None, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["demo", *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_busy_api_port_is_refused_before_anything_starts(
    nothing_starts: None, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--api-port", str(busy_port), "--bands", "1"]) == 2
    assert f"port {busy_port} is in use" in capsys.readouterr().err


def test_a_busy_api_port_exits_2_without_a_traceback(busy_port: int, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env["HOME"] = str(tmp_path)  # were anything started, it would be here, not in ~/.eldercare
    done = subprocess.run(
        [sys.executable, "-m", "eldercare.cli", "demo", "--api-port", str(busy_port),
         "--bands", "1", "--duration", "5"],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"port {busy_port} is in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert "starting embedded" not in done.stdout  # nothing was started
    assert not (tmp_path / ".eldercare").exists()
