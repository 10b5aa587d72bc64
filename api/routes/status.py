"""The family status view (one SQL round trip: the hot path) and telemetry over a time range."""

from __future__ import annotations

import csv
import functools
import io
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from psycopg.rows import dict_row

from api.deps import ApiContext, Ctx, Db, bearer, principal_for_token, require, utcnow
from api.family_view import build_status
from api.principal import Perm, Principal
from api.problems import Problem, forbidden, not_found
from api.schemas import ResidentId, StatusOut, TelemetryOut
from api.scoping import encode, ensure_resident, json_response

router = APIRouter(tags=["health"])
HealthReader = Annotated[Principal, Depends(require(Perm.READ_HEALTH))]

# Dispatch's orders (migration 006): each open alert's progress (who is coming, when,
# where they are in the job) and the resident's upcoming and past services. An alert's
# orders are its own and the one it joined (view alert_orders, dispatch/joins.py): until
# 2026-12-04 a fall that joined the SOS's order showed nobody coming.
_LIVE = "('offered', 'accepted', 'en_route')"
ALERT_PROGRESS_SQL = (
    "(SELECT json_build_object('order_id', o.id, 'worker_name', w.name, 'status', o.state,"
    f"  'eta_s', CASE WHEN o.state IN {_LIVE} AND o.booked_until IS NOT NULL THEN greatest(0,"
    "   extract(epoch FROM o.booked_until - make_interval(mins => o.duration_min) - now()))::int"
    "  END, 'outcome', o.outcome)"
    " FROM work_orders o LEFT JOIN service_workers w ON w.worker_id = o.worker_id"
    " WHERE o.id IN (SELECT ao.order_id FROM alert_orders ao WHERE ao.alert_id = a.id)"
    " ORDER BY o.id DESC LIMIT 1)"
)
_SERVICE = (
    "SELECT o.id, o.service_type, o.state, o.window_start, o.window_end, o.outcome,"
    " w.name AS worker_name FROM work_orders o"
    " LEFT JOIN service_workers w ON w.worker_id = o.worker_id WHERE o.resident_id = r.resident_id"
)
SERVICES_SQL = (
    "COALESCE((SELECT json_agg(x ORDER BY x.window_start) FROM ("
    f"{_SERVICE} AND o.kind <> 'emergency' AND o.window_end >= now()"
    "  AND o.state NOT IN ('completed', 'cancelled', 'failed')"
    "  ORDER BY o.window_start LIMIT 5) x), '[]') AS upcoming,"
    " COALESCE((SELECT json_agg(x ORDER BY x.window_start DESC) FROM ("
    f"{_SERVICE} AND (o.state IN ('completed', 'cancelled', 'failed') OR o.window_end < now())"
    "  ORDER BY o.window_start DESC LIMIT 5) x), '[]') AS past"
)


# an absence from home not over yet (eldercare/absence.py), as the resident's record and
# the family view show it
AWAY_SQL = (
    "CASE WHEN r.away_until > now() THEN json_build_object('starts_at', r.away_from,"
    " 'ends_at', r.away_until, 'reason', r.away_reason) END AS away"
)


@functools.lru_cache(maxsize=16)
def status_query(scope: str) -> str:
    return (
        "SELECT r.resident_id, r.name, r.conditions, d.last_seen, d.battery_pct, d.worn,"
        " d.hr, d.spo2, d.bp_sys, d.skin_temp_c, d.vitals_at, d.steps, d.steps_at,"
        f" d.lat, d.lon, d.loc_acc_m, d.loc_at, {AWAY_SQL},"
        " COALESCE((SELECT json_agg(json_build_object('id', a.id, 'type', a.type,"
        "   'severity', a.severity, 'state', a.state, 'opened_at', a.opened_at,"
        f"  'progress', {ALERT_PROGRESS_SQL}) ORDER BY a.opened_at)"
        "   FROM alerts a WHERE a.resident_id = r.resident_id AND a.closed_at IS NULL),"
        f"  '[]') AS alerts, {SERVICES_SQL}"
        " FROM residents r LEFT JOIN LATERAL (SELECT * FROM device_state ds"
        "   WHERE ds.resident_id = r.resident_id ORDER BY ds.last_seen DESC LIMIT 1) d ON TRUE"
        f" WHERE r.resident_id = %s AND {scope}"
    )


async def status_body(ctx: ApiContext, token: str, resident_id: int) -> bytes:
    """The family view as JSON bytes; raises :class:`Problem`. Shared by the route and the
    ASGI fast path (:mod:`api.fastpath`)."""
    me = await principal_for_token(ctx, token)
    if not me.can(Perm.READ_HEALTH):
        raise forbidden()
    scope, params = me.resident_scope("r.resident_id", "r.district")
    async with ctx.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(status_query(scope), [resident_id, *params])
        row = await cur.fetchone()
    if row is None:
        raise not_found(f"resident {resident_id}")
    now = utcnow()
    ctx.audit.record(me, "read_status", f"resident:{resident_id}", at=now, resident_id=resident_id)
    body = build_status(
        row,
        now=now,
        full_precision=me.full_precision,
        location_decimals=ctx.settings.api_family_location_decimals,
    )
    return encode(body)


@router.get(
    "/residents/{resident_id}/status",
    response_model=StatusOut,
    responses={404: {"description": "no such resident in your scope"}},
)
async def resident_status(resident_id: ResidentId, request: Request) -> Response:
    """The family view: OK or needs attention (and why), vitals with NEWS2, location,
    open alerts with progress, services. (Plain GETs are served by the fast path.)"""
    ctx: ApiContext = request.app.state.ctx
    body = await status_body(ctx, await bearer(request), resident_id)
    return Response(body, media_type="application/json")


_BUCKET = re.compile(r"^(\d{1,6})(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_BUCKETS = 5000
MAX_RANGE = timedelta(days=400)
_COLUMNS = [
    "bucket",
    "readings",
    "hr_avg",
    "hr_min",
    "hr_max",
    "spo2_avg",
    "spo2_min",
    "bp_sys_avg",
    "bp_dia_avg",
    "skin_temp_avg",
    "steps_max",
    "battery_min",
    "worn_share",
]


def parse_bucket(text: str) -> int:
    """``30s``, ``5m``, ``1h``, ``1d`` -> seconds; 400 otherwise."""
    m = _BUCKET.match(text)
    seconds = int(m.group(1)) * _UNIT_S[m.group(2)] if m else 0
    if not 1 <= seconds <= 31 * 86400:
        raise Problem(400, "bucket is a number and a unit (s, m, h, d) up to 31d, e.g. 5m")
    return seconds


@router.get(
    "/residents/{resident_id}/telemetry",
    response_model=TelemetryOut,
    responses={
        200: {"content": {"text/csv": {}}},
        404: {"description": "no such resident in your scope"},
    },
)
async def telemetry(
    *,
    resident_id: ResidentId,
    me: HealthReader,
    ctx: Ctx,
    db: Db,
    start: datetime | None = None,
    end: datetime | None = None,
    bucket: Annotated[str, Query(max_length=10)] = "5m",
    format: Literal["json", "csv"] = "json",
) -> Response:
    now = utcnow()
    end = end or now
    try:
        start = start or end - timedelta(hours=24)
    except OverflowError as exc:
        raise Problem(400, "end is too early for a default start; give start") from exc
    if start.tzinfo is None or end.tzinfo is None:
        raise Problem(400, "start and end need a time zone (e.g. 2026-01-01T00:00:00Z)")
    bucket_s = parse_bucket(bucket)
    if not start < end or end - start > MAX_RANGE:
        raise Problem(400, "start must be before end, at most 400 days apart")
    if (end - start).total_seconds() / bucket_s > MAX_BUCKETS:
        raise Problem(400, f"more than {MAX_BUCKETS} buckets: choose a wider bucket")
    await ensure_resident(db, me, resident_id)
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT date_bin(make_interval(secs => %s), time, %s) AS bucket,"
            " count(*)::int AS readings, avg(hr)::float8 AS hr_avg, min(hr)::int AS hr_min,"
            " max(hr)::int AS hr_max, avg(spo2)::float8 AS spo2_avg, min(spo2)::int AS spo2_min,"
            " avg(bp_sys)::float8 AS bp_sys_avg, avg(bp_dia)::float8 AS bp_dia_avg,"
            " avg(skin_temp_c)::float8 AS skin_temp_avg, max(steps) AS steps_max,"
            " min(battery_pct)::int AS battery_min, avg(worn::int)::float8 AS worn_share"
            " FROM telemetry WHERE resident_id = %s AND time >= %s AND time < %s"
            " GROUP BY 1 ORDER BY 1",
            (bucket_s, start, resident_id, start, end),
        )
        rows: list[dict[str, Any]] = await cur.fetchall()
    ctx.audit.record(
        me,
        "read_telemetry",
        f"resident:{resident_id}",
        at=now,
        resident_id=resident_id,
        start=start.isoformat(),
        end=end.isoformat(),
    )
    if format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "bucket": r["bucket"].isoformat()})
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="resident-{resident_id}.csv"'},
        )
    return json_response(
        {
            "resident_id": resident_id,
            "start": start,
            "end": end,
            "bucket_s": bucket_s,
            "items": rows,
        }
    )
