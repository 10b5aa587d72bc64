"""The latest state of each band in a batch (pure): what ``device_state`` gets.

Each group of fields (vitals, steps, battery, wear, location) keeps the newest
value the batch has for it, stamped with its device time; the upsert in
``ingest.sql`` only overwrites a group with a newer stamp, so late readings
(store-and-forward) and redeliveries never move the state backwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from eldercare.protocol import Telemetry
from ingest.rows import Accepted, ms_to_datetime

STATE_COLUMNS = (
    "device_id", "resident_id", "last_seen", "last_seq",
    "vitals_at", "hr", "spo2", "bp_sys", "bp_dia", "skin_temp_c",
    "steps_at", "steps", "battery_at", "battery_pct", "worn_at", "worn",
    "loc_at", "lat", "lon", "loc_acc_m", "loc_src",
)  # fmt: skip
STATE_TYPES = (
    "text", "int8", "timestamptz", "int8",
    "timestamptz", "int2", "int2", "int2", "int2", "float4",
    "timestamptz", "int4", "timestamptz", "int2", "timestamptz", "bool",
    "timestamptz", "float8", "float8", "float4", "text",
)  # fmt: skip
_VITALS = ("hr", "spo2", "bp_sys", "bp_dia", "skin_temp_c")


def latest_states(readings: Iterable[Accepted]) -> list[tuple[object, ...]]:
    """One row per device, ordered by device id (a stable lock order across processes)."""
    best: dict[str, list[object]] = {}
    for a in readings:
        t = a.message
        if not isinstance(t, Telemetry):
            continue
        row = best.get(t.device_id)
        if row is None:
            row = [t.device_id, a.resident_id, -1, None] + [None] * 17
            best[t.device_id] = row
        ts = t.ts
        if ts >= row[2]:  # type: ignore[operator]
            row[1], row[2], row[3] = a.resident_id, ts, t.seq
        vitals = (t.hr, t.spo2, t.bp_sys, t.bp_dia, t.skin_temp_c)
        if any(v is not None for v in vitals) and (row[4] is None or ts >= row[4]):  # type: ignore[operator]
            old = row[5:10]
            row[4] = ts
            row[5:10] = [v if v is not None else o for v, o in zip(vitals, old, strict=True)]
        if t.steps is not None and (row[10] is None or ts >= row[10]):  # type: ignore[operator]
            row[10], row[11] = ts, t.steps
        if t.battery_pct is not None and (row[12] is None or ts >= row[12]):  # type: ignore[operator]
            row[12], row[13] = ts, t.battery_pct
        if t.worn is not None and (row[14] is None or ts >= row[14]):  # type: ignore[operator]
            row[14], row[15] = ts, t.worn
        if t.loc is not None and (row[16] is None or ts >= row[16]):  # type: ignore[operator]
            loc = t.loc
            row[16:21] = [ts, loc.lat, loc.lon, loc.acc_m, loc.src.value]
    out = []
    for device_id in sorted(best):
        row = best[device_id]
        for i in (2, 4, 10, 12, 14, 16):
            if row[i] is not None:
                row[i] = ms_to_datetime(row[i])  # type: ignore[arg-type]
        out.append(tuple(row))
    return out
