"""Build the detectors' resident Profiles from the registry.

Conditions and living alone come from ``residents``; the home becomes a
:class:`SafeZone` of ``HOME_RADIUS_M`` around ``home_lat/home_lon``, and each
of the resident's geofences (``resident_geofences``, set through the API) one
more safe zone; the
expected telemetry interval is the shortest of the resident's active bands' (which
are listed too, so that a band paired to someone else is forgotten). An absence from
home (``away_from``/``away_until``, :mod:`eldercare.absence`) becomes ``Profile.away``.
A clinician's overrides (``resident_alert_thresholds``, :mod:`alerts.thresholds`)
are applied on top of the defaults (NEWS2); an override row that does not
validate is logged and ignored (the defaults apply), never a crash. Personal
baselines are added by the engine (:mod:`alerts.baselines`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow, class_row

from alerts.detectors.types import Away, Profile, SafeZone
from alerts.shard import EVERYONE, Shard
from alerts.thresholds import ThresholdError, parse_overrides
from eldercare.logs import get_logger

log = get_logger(__name__)

HOME_RADIUS_M: Final = 150.0

_QUERY = (
    "SELECT r.resident_id, r.conditions, r.living_alone, r.home_lat, r.home_lon,"
    " r.away_from, r.away_until, min(w.expected_interval_s) AS expected_interval_s, t.overrides,"
    " coalesce(array_agg(w.device_id) FILTER (WHERE w.device_id IS NOT NULL), '{}') AS bands,"
    " (SELECT json_agg(json_build_array(g.lat, g.lon, g.radius_m, g.name) ORDER BY g.id)"
    "  FROM resident_geofences g WHERE g.resident_id = r.resident_id) AS geofences"
    " FROM residents r LEFT JOIN wristbands w"
    " ON w.resident_id = r.resident_id AND w.revoked_at IS NULL"
    " LEFT JOIN resident_alert_thresholds t ON t.resident_id = r.resident_id"
)
_GROUP = " GROUP BY r.resident_id, t.overrides"


@dataclass(frozen=True, slots=True)
class ResidentRow:
    resident_id: int
    conditions: list[str]
    living_alone: bool
    home_lat: float | None
    home_lon: float | None
    expected_interval_s: int | None
    overrides: dict[str, Any] | None = None
    geofences: list[list[Any]] | None = None  # [lat, lon, radius_m, name] each
    bands: list[str] | None = None  # not revoked; None: not known
    away_from: datetime | None = None  # an absence from home (eldercare.absence)
    away_until: datetime | None = None


def profile_from_row(row: ResidentRow, *, home_radius_m: float = HOME_RADIUS_M) -> Profile:
    """Pure: one registry row to the detectors' Profile."""
    zones: tuple[SafeZone, ...] = ()
    if row.home_lat is not None and row.home_lon is not None:
        zones = (SafeZone(row.home_lat, row.home_lon, home_radius_m, "home"),)
    zones += tuple(
        SafeZone(float(lat), float(lon), float(radius), str(name))
        for lat, lon, radius, name in row.geofences or ()
    )
    profile = Profile(
        resident_id=row.resident_id,
        conditions=frozenset(row.conditions),
        lives_alone=row.living_alone,
        safe_zones=zones,
        expected_interval_s=row.expected_interval_s or 60,
        bands=None if row.bands is None else frozenset(row.bands),
        away=_away(row),
    )
    if row.overrides is None:
        return profile
    try:
        return parse_overrides(row.overrides, profile)
    except ThresholdError as exc:
        log.warning("alert_thresholds_invalid", resident_id=row.resident_id, key=exc.key)
        return profile


def _away(row: ResidentRow) -> Away | None:
    if row.away_from is None or row.away_until is None or row.away_until <= row.away_from:
        return None  # none recorded (the table's check keeps the rest out)
    return Away(row.away_from, row.away_until)


async def load_profiles(
    conn: psycopg.AsyncConnection[TupleRow], shard: Shard = EVERYONE
) -> dict[int, Profile]:
    """The Profile of every resident of ``shard``, by resident id. The rows become profiles
    in a worker thread, so a city's registry does not hold the event loop."""
    where = " WHERE r.resident_id %% %(n)s = %(k)s AND r.left_at IS NULL"  # eldercare.leaving
    async with conn.cursor(row_factory=class_row(ResidentRow)) as cur:
        await cur.execute(_QUERY + where + _GROUP, {"n": shard.count, "k": shard.index})
        rows = await cur.fetchall()
    return await asyncio.to_thread(lambda: {r.resident_id: profile_from_row(r) for r in rows})


async def load_profile(conn: psycopg.AsyncConnection[TupleRow], resident_id: int) -> Profile | None:
    """One resident's Profile (a resident registered after the engine started)."""
    async with conn.cursor(row_factory=class_row(ResidentRow)) as cur:
        await cur.execute(_QUERY + " WHERE r.resident_id = %s AND r.left_at IS NULL" + _GROUP,
                          (resident_id,))  # fmt: skip
        row = await cur.fetchone()
    return None if row is None else profile_from_row(row)
