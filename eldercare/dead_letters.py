"""`eldercare dead-letters`: what ingest refused lately, per band and reason.

Ingest keeps every message it cannot accept in ``dead_letters`` with its reason
(docs/protocol.md). A band model that sends what the protocol refuses (m/s^2,
acceleration without gravity, a clock hours ahead, a wrong topic) has *all* such
messages refused, and nothing else tells anyone that this band's readings, or its
fall detection, are missing. This report does: one JSON line per band and reason,
with how many, the first and last time, and the latest detail. Payloads are not
printed (they hold readings).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO

import psycopg
from psycopg.rows import TupleRow

from eldercare.settings import Settings

_QUERY = """
WITH recent AS (
    SELECT id, received_at, device_id, reason, detail FROM dead_letters
    WHERE received_at >= %(since)s AND (%(device)s::text IS NULL OR device_id = %(device)s)
), counts AS (
    SELECT device_id, reason, count(*) AS n, min(received_at) AS first, max(received_at) AS last
    FROM recent GROUP BY device_id, reason
), latest AS (
    SELECT DISTINCT ON (device_id, reason) device_id, reason, detail
    FROM recent ORDER BY device_id, reason, received_at DESC, id DESC
)
SELECT c.device_id, c.reason, c.n, c.first, c.last, l.detail
FROM counts c JOIN latest l
  ON l.device_id IS NOT DISTINCT FROM c.device_id AND l.reason = c.reason
ORDER BY c.n DESC, c.device_id NULLS LAST, c.reason
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class Refused:
    """What ingest refused of one band (``None``: no device id could be read) for one
    reason since the report's start."""

    device_id: str | None
    reason: str
    count: int
    first: datetime
    last: datetime
    detail: str  # the latest one's

    def as_json(self) -> str:
        return json.dumps({
            "device_id": self.device_id, "reason": self.reason, "count": self.count,
            "first": self.first.isoformat(), "last": self.last.isoformat(),
            "detail": self.detail,
        }, ensure_ascii=False)  # fmt: skip


async def refused(
    conn: psycopg.AsyncConnection[TupleRow],
    *,
    since: datetime,
    device_id: str | None = None,
    limit: int = 100,
) -> list[Refused]:
    """Groups of dead letters received since ``since``, the largest first."""
    params = {"since": since, "device": device_id, "limit": limit}
    cur = await conn.execute(_QUERY, params)
    return [Refused(*row) for row in await cur.fetchall()]


def report(
    settings: Settings,
    *,
    hours: float,
    device_id: str | None = None,
    limit: int = 100,
    out: TextIO | None = None,
) -> int:
    """Print one JSON line per band and reason: 0 (a report, not a check), or 1 with the
    reason on stderr when the database cannot answer."""
    stream = sys.stdout if out is None else out
    since = datetime.now(UTC) - timedelta(hours=hours)

    async def go() -> list[Refused]:
        url = settings.require_database_url()
        async with await psycopg.AsyncConnection.connect(url, connect_timeout=10) as conn:
            return await refused(conn, since=since, device_id=device_id, limit=limit)

    try:
        groups = asyncio.run(go())
    except psycopg.errors.UndefinedTable:
        print("no dead_letters table: run `eldercare migrate`", file=sys.stderr)
        return 1
    except psycopg.OperationalError as exc:
        print(f"database unreachable: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    for group in groups:
        print(group.as_json(), file=stream)
    return 0
