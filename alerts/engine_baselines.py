"""The residents' personal baselines as the alert engine holds them, and their reload.

The baselines come from the daily summaries of the last days
(:mod:`alerts.daily_summary`, :mod:`alerts.baselines`) and are applied to the
residents' profiles. The hourly reload reads on a connection of its own, beside the
decisions (docs/alerts.md, "The reload runs beside the decisions"), and recomputes
only when a day was summarised or the window moved.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from alerts.baselines import ResidentBaselines, load_baselines
from alerts.daily_summary import summaries_key, summarise_days
from alerts.detectors import Profile
from alerts.engine_db import RETRYABLE
from alerts.shard import Shard
from eldercare.logs import get_logger
from eldercare.settings import Settings

log = get_logger(__name__)
Key = tuple[object, ...]
Fresh = tuple[dict[int, ResidentBaselines], Key]


class HeldBaselines:
    """The baselines held, what they were computed from, and the one reload running."""

    def __init__(
        self, settings: Settings, shard: Shard, clock: Callable[[], datetime], days: float
    ) -> None:
        self.held: dict[int, ResidentBaselines] = {}
        self.key: Key | None = None  # what they were computed from
        self.task: asyncio.Task[None] | None = None  # the background reload
        self._settings = settings
        self._shard = shard
        self._clock = clock
        self._days = max(1, round(days))
        self._reading = asyncio.Lock()  # one reload's read at a time (its own connection)

    def apply(self, profiles: dict[int, Profile]) -> dict[int, Profile]:
        none = ResidentBaselines()
        return {r: self.held.get(r, none).apply(p) for r, p in profiles.items()}

    def apply_one(self, profile: Profile) -> Profile:
        return self.held.get(profile.resident_id, ResidentBaselines()).apply(profile)

    def set(self, baselines: dict[int, ResidentBaselines], key: Key | None = None) -> None:
        self.held, self.key = baselines, key
        log.info("alert_baselines_loaded", residents=len(baselines))

    async def read(self, conn: psycopg.AsyncConnection[TupleRow]) -> Fresh | None:
        """Summarise what is due, then the baselines, or None if their inputs (the window's
        summarised days) are those of the baselines held: 23 reloads of 24 a day."""
        now = self._clock()
        await summarise_days(conn, now=now, days=self._days)
        key = await summaries_key(conn, now=now, days=self._days)
        if key == self.key:
            return None
        fresh = await load_baselines(conn, now=now, days=self._days, shard=self._shard,
                                     summarise=False)  # fmt: skip
        return fresh, key

    async def read_own(self) -> Fresh | None:
        """:meth:`read` on a connection of its own, one reload at a time."""
        async with self._reading:
            url = self._settings.require_database_url()
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                return await self.read(conn)

    def start(self, reload: Callable[[], Awaitable[None]]) -> None:
        """Run ``reload`` in the background unless one still runs; decisions go on."""
        if self.task is not None and not self.task.done():
            return
        self.task = asyncio.create_task(_logged(reload), name="alerts-baselines")

    async def cancel(self) -> None:
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _logged(reload: Callable[[], Awaitable[None]]) -> None:
    try:
        await reload()
    except RETRYABLE as exc:  # the next hour tries again; the old baselines stay
        log.warning("alert_baselines_reload_failed", error=str(exc).splitlines()[0])
    except Exception:  # a bug: said loudly, and the decisions go on with the old ones
        log.exception("alert_baselines_reload_crashed")
