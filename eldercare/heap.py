"""Keep CPython's cyclic garbage collector off a service's large, long-lived heap.

The alert engine holds a state per resident, ~14 objects each, and replaces a
resident's state with every reading. CPython's collector runs a *full*
collection whenever the objects promoted to its oldest generation grow by a
quarter, and a full collection scans every tracked object: at 100,000 residents
it stopped the whole process for 0.5-1.9 s, seven times in 30 s of 11,000
readings/s, and found no garbage at all (``bench/tick.py``, the ``stream``
figures). Those states die by reference counting; nothing in them forms cycles.

:meth:`Settler.settle` (the engine calls it after every batch and every tick;
it acts at most every ``SETTLE_EVERY_S``, 0.2 s) first collects the two young
generations, so that cyclic garbage made since the last call is reclaimed,
then freezes what survived into the permanent generation (:func:`gc.freeze`),
which no collection scans. Full collections then only see the last 0.2 s of
survivors: none in the same 30 s (freezing once a second still let a few of up
to 0.2 s through). A frozen object
that loses its last reference is still freed at once. The price: cyclic
garbage formed among objects older than the last call (a reference cycle
between long-lived objects that are then dropped together) is never
reclaimed. The engine's decisions form none (the full collections above found
nothing); measured on the whole demo in one process (ingest, engine, dispatch,
virtual workers), the garbage found by a full collection at the end was the same
after 60 s and 200 s of settling every second, and without settling (~1,500
objects of shutdown). To bound what might still accumulate, once every
``THAW_EVERY_S`` (a day) it unfreezes everything and runs one full
collection instead: one pause a day (~0.5-2.5 s at 100,000 residents), where
the collector's own schedule paused the process every few seconds.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Final

from eldercare.logs import get_logger

log = get_logger(__name__)

SETTLE_EVERY_S: Final = 0.2
THAW_EVERY_S: Final = 86_400.0


class Settler:
    """Settles the heap after each batch and tick; thaws it once every ``thaw_every_s``."""

    def __init__(
        self,
        *,
        every_s: float = SETTLE_EVERY_S,
        thaw_every_s: float = THAW_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every_s, self.thaw_every_s = every_s, thaw_every_s
        self._clock = clock
        self._thawed_at = clock()
        self._settled_at: float | None = None

    def settle(self) -> None:
        """Collect the young generations, then freeze the survivors, unless that was done
        less than ``every_s`` ago; once every ``thaw_every_s``, unfreeze and collect
        everything instead (see the module doc)."""
        now = self._clock()
        if self._settled_at is not None and now - self._settled_at < self.every_s:
            return
        self._settled_at = now
        if now - self._thawed_at >= self.thaw_every_s:
            self._thawed_at = now
            gc.unfreeze()
            started = time.perf_counter()
            found = gc.collect()
            log.info("heap_thawed", unreachable=found,
                     pause_s=round(time.perf_counter() - started, 3))  # fmt: skip
            return
        gc.collect(1)
        gc.freeze()
