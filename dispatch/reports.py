"""The figures the centre reports, per district and period (one SQL pass each).

* ``orders_by_type``: orders whose window starts in the period, by service type;
* ``service_hours``: time on site (check-in to check-out) of completed orders;
* ``visits``: completed orders (a check-in and a check-out);
* ``response_times``: medians from the alert opening to its acknowledgement (its
  first acknowledged or dispatched transition), to a worker's acceptance of the
  emergency order, and to the worker's arrival (check-in);
* ``within_15_min_share``: emergency orders whose worker arrived within 15
  minutes of the alert, of all emergency orders of the period (not arrived: not within);
* ``utilisation``: time on site of all orders over the workers' shift hours in
  the period (None without shifts on record).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import TupleRow

Conn = psycopg.AsyncConnection[TupleRow]


def _num(v: float | Decimal | None) -> float | None:
    return None if v is None else round(float(v), 1)


async def summary(
    conn: Conn, *, start: datetime, end: datetime, district: str | None = None
) -> dict[str, Any]:
    p = {"a": start, "b": end, "d": district}
    in_scope = "(%(d)s::text IS NULL OR o.district = %(d)s)"
    cur = await conn.execute(
        "SELECT service_type, count(*) FROM work_orders o WHERE window_start >= %(a)s"
        f" AND window_start < %(b)s AND {in_scope} GROUP BY 1 ORDER BY 1",
        p,
    )
    by_type = {str(t): int(n) for t, n in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT coalesce(sum(extract(epoch FROM completed_at - arrived_at)), 0) / 3600.0,"
        " count(*) FROM work_orders o WHERE state = 'completed' AND arrived_at IS NOT NULL"
        f" AND completed_at >= %(a)s AND completed_at < %(b)s AND {in_scope}",
        p,
    )
    hours, visits = await cur.fetchone() or (0, 0)
    median = "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM {} - opened_at))"
    cur = await conn.execute(
        "WITH e AS (SELECT o.accepted_at, o.arrived_at, al.opened_at,"
        "  (SELECT min(t.at) FROM alert_transitions t WHERE t.alert_id = al.id"
        "    AND t.to_state IN ('acknowledged', 'dispatched')) AS ack_at"
        " FROM work_orders o JOIN alerts al ON al.id = o.alert_id"
        f" WHERE o.kind = 'emergency' AND al.opened_at >= %(a)s AND al.opened_at < %(b)s"
        f" AND {in_scope})"
        f" SELECT {median.format('ack_at')}, {median.format('accepted_at')},"
        f" {median.format('arrived_at')},"
        " count(*), count(*) FILTER (WHERE arrived_at - opened_at <= interval '15 minutes')"
        " FROM e",
        p,
    )
    ack, accept, arrival, emergencies, within = await cur.fetchone() or (None,) * 5
    cur = await conn.execute(
        "SELECT (SELECT coalesce(sum(extract(epoch FROM least(completed_at, %(b)s)"
        "   - greatest(arrived_at, %(a)s))), 0) FROM work_orders o"
        f"   WHERE arrived_at IS NOT NULL AND completed_at > %(a)s AND arrived_at < %(b)s"
        f"   AND {in_scope}),"
        " (SELECT sum(extract(epoch FROM least(s.ends_at, %(b)s) - greatest(s.starts_at, %(a)s)))"
        "   FROM worker_shifts s JOIN service_workers w USING (worker_id)"
        "   WHERE s.ends_at > %(a)s AND s.starts_at < %(b)s"
        "   AND (%(d)s::text IS NULL OR w.district = %(d)s))",
        p,
    )
    busy, shift = await cur.fetchone() or (0, None)
    await conn.commit()
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "district": district,
        "orders_by_type": by_type,
        "service_hours": round(float(hours), 2),
        "visits": int(visits),
        "response_times": {
            "ack_p50_s": _num(ack),
            "accept_p50_s": _num(accept),
            "arrival_p50_s": _num(arrival),
        },
        "emergencies": int(emergencies or 0),
        "within_15_min_share": round(int(within) / int(emergencies), 3) if emergencies else None,
        "utilisation": round(float(busy) / float(shift), 3) if shift else None,
    }
