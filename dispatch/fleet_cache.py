"""The fleet as the last decision saw it, so an emergency decision costs milliseconds.

Reading 2,000 workers, their shifts and live orders from PostgreSQL and building
the numpy snapshot takes tens of milliseconds; the ranking itself a fraction of
one. The dispatch service keeps one :class:`FleetCache`: re-read when older than
``max_age_s`` (2 s) or after this process made an offer. The view is advisory:
a stale one can only make a worse first choice, never a double booking — the
database arbitrates every offer (a taken worker raises ``WorkerBusy`` and the
next candidate is tried).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from dispatch.emergency import FleetSnapshot
from dispatch.model import Catalogue
from dispatch.roster import load_fleet
from dispatch.travel import TravelModel

Conn = psycopg.AsyncConnection[TupleRow]


class FleetCache:
    def __init__(
        self, *, max_age_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._loaded_at: float | None = None
        self._value: tuple[Catalogue, FleetSnapshot] | None = None
        self.loads = 0

    def invalidate(self) -> None:
        self._loaded_at = None

    async def get(
        self,
        conn: Conn,
        catalogue: Callable[[Conn], Awaitable[Catalogue]],
        *,
        now: datetime,
        travel: TravelModel,
    ) -> tuple[Catalogue, FleetSnapshot]:
        t = self._clock()
        if (
            self._value is not None
            and self._loaded_at is not None
            and (t - self._loaded_at <= self.max_age_s)
        ):
            return self._value
        cat = await catalogue(conn)
        workers, commitments = await load_fleet(conn, cat, now=now)
        snapshot = FleetSnapshot.build(workers, commitments=commitments, now=now, travel=travel)
        self._value, self._loaded_at = (cat, snapshot), t
        self.loads += 1
        return self._value
