"""Which wristbands exist: an in-memory directory of the registry, kept fresh.

Loaded whole at start (100,000 bands is a few MB), refreshed periodically for
pairing changes and revocations, and looked up on a miss so a band provisioned
a second ago is accepted; misses are remembered briefly so a flood from an
unknown device costs one query, not one per message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import psycopg
from psycopg.rows import TupleRow

from ingest.rows import DeviceInfo

_QUERY = "SELECT device_id, resident_id, revoked_at IS NOT NULL FROM wristbands"


class DeviceDirectory:
    def __init__(self, *, negative_ttl_s: float = 30.0) -> None:
        self._known: dict[str, DeviceInfo] = {}
        self._misses: dict[str, float] = {}
        self._negative_ttl_s = negative_ttl_s

    def lookup(self, device_id: str) -> DeviceInfo | None:
        return self._known.get(device_id)

    def __len__(self) -> int:
        return len(self._known)

    async def load_all(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        cur = await conn.execute(_QUERY)
        self._known = {
            str(d): DeviceInfo(int(r) if r is not None else None, bool(rev))
            for d, r, rev in await cur.fetchall()
        }
        self._misses.clear()
        await conn.rollback()

    async def resolve_missing(
        self, conn: psycopg.AsyncConnection[TupleRow], device_ids: Iterable[str]
    ) -> None:
        """Look up ids not in the directory (skipping recent misses)."""
        now = time.monotonic()
        wanted = [
            d for d in set(device_ids)
            if d not in self._known and self._misses.get(d, 0.0) < now
        ]  # fmt: skip
        if not wanted:
            return
        cur = await conn.execute(_QUERY + " WHERE device_id = ANY(%s)", (wanted,))
        for d, r, rev in await cur.fetchall():
            self._known[str(d)] = DeviceInfo(int(r) if r is not None else None, bool(rev))
        await conn.rollback()
        for d in wanted:
            if d not in self._known:
                self._misses[d] = now + self._negative_ttl_s
