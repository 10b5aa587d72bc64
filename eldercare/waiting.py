"""Waiting between attempts: jittered backoff, and a pause that a stop ends at once.

Every service's loops (ingest, the alert engine and its publisher, dispatch, the
demo, the simulators) wait this way, so that SIGTERM is heard within the pause,
whatever the pause is for (a reconnect, a database outage, a periodic job).
"""

from __future__ import annotations

import asyncio
import contextlib


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0, rnd: float) -> float:
    """Full-jitter exponential backoff (pure: ``rnd`` in [0, 1) comes from the caller)."""
    return min(cap, base * (2.0 ** min(attempt, 16))) * (0.5 + rnd / 2)


async def stopped_within(stop: asyncio.Event, delay: float) -> bool:
    """Wait ``delay`` seconds, or less if ``stop`` is set meanwhile; is it set?"""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
    return stop.is_set()
