"""Waiting between attempts (eldercare/waiting.py): every service's pauses end at a stop."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from eldercare.waiting import backoff_delay, stopped_within


@given(st.integers(0, 10_000), st.floats(0.0, 1.0, exclude_max=True))
def test_backoff_grows_to_its_cap_with_jitter(attempt: int, rnd: float) -> None:
    delay = backoff_delay(attempt, base=0.5, cap=10.0, rnd=rnd)
    assert 0.25 * min(2.0 ** min(attempt, 16), 20.0) <= delay * (1 + 1e-12)
    assert delay <= 10.0


async def test_a_stop_ends_the_pause_at_once() -> None:
    stop = asyncio.Event()
    waiting = asyncio.create_task(stopped_within(stop, 3600))
    await asyncio.sleep(0)
    stop.set()
    assert await asyncio.wait_for(waiting, 30)  # not an hour
    assert await asyncio.wait_for(stopped_within(stop, 3600), 30)  # already stopped


async def test_a_pause_without_a_stop_says_so() -> None:
    assert not await stopped_within(asyncio.Event(), 0.01)


async def test_a_cancel_that_comes_with_the_stop_is_not_lost() -> None:
    """A service's stop sets the event and cancels its tasks in one step; the cancel
    must end the task (asyncio.wait_for, on Python 3.11, dropped it)."""
    stop = asyncio.Event()

    async def loop() -> None:
        while True:  # a reader that goes back to its messages after each pause
            await stopped_within(stop, 3600)
            await asyncio.sleep(3600)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    stop.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=30)
    assert task in done
    assert task.cancelled()
