"""Waiting between attempts: jittered backoff, and a pause that a stop ends at once.

Every service's loops (ingest, the alert engine and its publisher, dispatch, the
demo, the simulators) wait this way, so that SIGTERM is heard within the pause,
whatever the pause is for (a reconnect, a database outage, a periodic job).
"""

from __future__ import annotations

import asyncio


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0, rnd: float) -> float:
    """Full-jitter exponential backoff (pure: ``rnd`` in [0, 1) comes from the caller)."""
    return min(cap, base * (2.0 ** min(attempt, 16))) * (0.5 + rnd / 2)


async def stopped_within(stop: asyncio.Event, delay: float) -> bool:
    """Wait ``delay`` seconds, or less if ``stop`` is set meanwhile; is it set?

    A cancel of the caller always propagates. ``asyncio.wait_for`` (Python 3.11) drops
    one that arrives in the step where ``stop`` is set, and a stop usually sets the
    event and cancels the tasks together: before 2026-12-03 the dispatch service,
    stopped while a message waited for the database, carried on reading messages and
    never stopped."""
    if stop.is_set():
        return True
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter}, timeout=delay)
    finally:
        waiter.cancel()
    return stop.is_set()
