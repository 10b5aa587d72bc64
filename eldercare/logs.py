"""structlog configured once: ISO UTC timestamps, contextvars, JSON off a terminal.

No personal health data goes into logs: log device ids, counts and reasons,
never vitals, names or locations.
"""

from __future__ import annotations

import logging
import sys

import structlog


class _StderrLogger:
    """structlog's output, written to whatever ``sys.stderr`` is at the time of writing.

    ``PrintLoggerFactory(file=sys.stderr)`` kept the stream it was configured with: once
    that stream was closed (a CLI command run in-process, say, under pytest's capture
    of it), every later log line raised ``ValueError: I/O operation on closed file``
    in the service that logged it (until 2026-12-04 this ended the dispatch service's
    message loop and ingest's consumer in the tests that ran after such a command)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


def _stderr_logger(*_args: object) -> _StderrLogger:
    return _StderrLogger()


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
