"""What bands reported since a fall, read back from the database at a restart.

The I/O half of :func:`alerts.restart.with_evidence`: for each band with a fall
episode, its step counters from the last report before the impact on, its
"I'm OK" presses and the reports of it being off the wrist since the impact
(band clock, as the impact time). A few bands at start-up: one query each.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from alerts.restart import FallEvidence

Conn = psycopg.AsyncConnection[TupleRow]


async def load_fall_evidence(conn: Conn, since: Mapping[str, datetime]) -> dict[str, FallEvidence]:
    """``since``: band id -> impact time (from :func:`alerts.restart.fall_devices`)."""
    out: dict[str, FallEvidence] = {}
    for device_id, impact_at in since.items():
        cur = await conn.execute(
            "(SELECT time, steps, worn FROM telemetry WHERE device_id = %(d)s AND time < %(t)s"
            "  AND steps IS NOT NULL ORDER BY time DESC LIMIT 1)"
            " UNION ALL"
            " (SELECT time, steps, worn FROM telemetry WHERE device_id = %(d)s AND time >= %(t)s"
            "  ORDER BY time, seq)",
            {"d": device_id, "t": impact_at},
        )
        rows = await cur.fetchall()
        cur = await conn.execute(
            "SELECT time FROM device_events WHERE device_id = %s AND type = 'im_ok'"
            " AND time >= %s ORDER BY time",
            (device_id, impact_at),
        )
        oks = await cur.fetchall()
        out[device_id] = FallEvidence(
            counters=tuple((r[0], int(r[1])) for r in rows if r[1] is not None),
            im_ok_at=tuple(r[0] for r in oks),
            off_wrist_at=tuple(r[0] for r in rows if r[2] is False and r[0] >= impact_at),
        )
    await conn.commit()
    return out
