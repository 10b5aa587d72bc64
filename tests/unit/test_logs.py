"""Logging outlives the stream it was configured with (eldercare/logs.py)."""

from __future__ import annotations

import io
import json
import sys

import pytest
import structlog

from eldercare.logs import configure_logging, get_logger


@pytest.fixture(autouse=True)
def _restore_structlog() -> object:
    yield
    structlog.reset_defaults()


def test_a_log_line_after_the_configured_stream_closed_goes_to_the_current_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Until 2026-12-04 the line raised ValueError (I/O operation on closed file) in the
    service that logged it: a CLI command run in-process under pytest's capture had
    configured logging with a stream pytest closed afterwards."""
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO", json=True)
    log = get_logger("test")
    log.info("before", n=1)
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    log.info("after", n=2)
    line = json.loads(second.getvalue().strip().splitlines()[-1])
    assert (line["event"], line["n"], line["level"]) == ("after", 2, "info")


def test_levels_below_the_configured_one_are_not_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("WARNING", json=True)
    log = get_logger("test")
    log.info("quiet")
    log.warning("loud")
    events = [json.loads(x)["event"] for x in out.getvalue().splitlines()]
    assert events == ["loud"]
