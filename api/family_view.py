"""The family's one-call view of a resident (pure): OK or needs attention, and why.

Built from one database row (latest device state, open alerts, services) and
``now``. Vitals carry their NEWS2 sub-score; skin temperature is shown without
one (the band measures the skin, not the core temperature NEWS2 is defined on).
A family member sees the location rounded to ``location_decimals`` places.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final, TypeGuard
from zoneinfo import ZoneInfo

from alerts.detectors.news2 import HR_BANDS, SBP_BANDS, SPO2_SCALE_1, SPO2_SCALE_2, ParamBands

LOCAL_TZ: Final = ZoneInfo("Asia/Shanghai")
LOW_BATTERY_PCT: Final = 15
STALE_AFTER: Final = timedelta(minutes=15)  # no data for this long needs a look
ATTENTION_NEWS2: Final = 3  # any single parameter scoring 3 (RCP: urgent ward review)
# one degree of latitude is ~111 km; rounding to d places blurs by about this much
_BLUR_M: Final = {0: 111_000.0, 1: 11_100.0, 2: 1_110.0, 3: 111.0, 4: 11.1, 5: 1.1, 6: 0.11}


def coarsen(value: Any, decimals: int) -> Any:
    """A copy of ``value`` (an alert's detail, a live message) with every location in it
    (a mapping with numeric ``lat`` and ``lon``) rounded as the family's status view
    rounds it, its accuracy (``acc_m`` or ``accuracy_m``) widened to match. Before
    2026-12-03 an SOS's or a geofence alert's detail showed a family the exact fix
    that the status view coarsens."""
    if isinstance(value, list):
        return [coarsen(v, decimals) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: coarsen(v, decimals) for k, v in value.items()}
    lat, lon = out.get("lat"), out.get("lon")
    if _number(lat) and _number(lon):
        out["lat"], out["lon"] = round(lat, decimals), round(lon, decimals)
        key = "accuracy_m" if "accuracy_m" in out else "acc_m"
        acc = out.get(key)
        out[key] = max(float(acc) if _number(acc) else 0.0, _BLUR_M[decimals])
    return out


def _number(x: object) -> TypeGuard[float]:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _vital(value: float | None, at: datetime | None, bands: ParamBands | None) -> dict[str, Any]:
    news2 = bands.score(float(value))[0] if (value is not None and bands is not None) else None
    return {"value": value, "at": at, "news2": news2}


def build_status(
    row: dict[str, Any], *, now: datetime, full_precision: bool, location_decimals: int
) -> dict[str, Any]:
    hypercapnic = "copd_hypercapnic" in (row["conditions"] or ())
    vitals = {
        "heart_rate": _vital(row["hr"], row["vitals_at"], HR_BANDS),
        "spo2": _vital(
            row["spo2"], row["vitals_at"], SPO2_SCALE_2 if hypercapnic else SPO2_SCALE_1
        ),
        "systolic_bp": _vital(row["bp_sys"], row["vitals_at"], SBP_BANDS),
        "temperature": _vital(row["skin_temp_c"], row["vitals_at"], None),
    }
    steps_at = row["steps_at"]
    steps_today = None
    if steps_at is not None:  # the band's counter is per local day
        same_day = steps_at.astimezone(LOCAL_TZ).date() == now.astimezone(LOCAL_TZ).date()
        steps_today = row["steps"] if same_day else 0
    location = None
    if row["lat"] is not None and row["lon"] is not None:
        lat, lon, acc = float(row["lat"]), float(row["lon"]), row["loc_acc_m"]
        if not full_precision:
            lat, lon = round(lat, location_decimals), round(lon, location_decimals)
            acc = max(float(acc or 0.0), _BLUR_M[location_decimals])
        location = {"lat": lat, "lon": lon, "accuracy_m": acc, "at": row["loc_at"]}
    alerts = [
        {
            "id": a["id"],
            "type": a["type"],
            "severity": a["severity"],
            "state": a["state"],
            "opened_at": a["opened_at"],
            "progress": a.get("progress"),
        }
        for a in row["alerts"]
    ]
    reasons = attention_reasons(row, vitals=vitals, alerts=alerts, now=now)
    return {
        "resident_id": row["resident_id"],
        "name": row["name"],
        "state": "attention" if reasons else "ok",
        "reasons": reasons,
        "last_seen": row["last_seen"],
        "battery_pct": row["battery_pct"],
        "worn": row["worn"],
        "vitals": vitals,
        "steps_today": steps_today,
        "location": location,
        "alerts": alerts,
        "services": {"upcoming": row.get("upcoming") or [], "past": row.get("past") or []},
        "away": row.get("away"),  # away from home, as the centre recorded it
    }


def attention_reasons(
    row: dict[str, Any],
    *,
    vitals: dict[str, dict[str, Any]],
    alerts: list[dict[str, Any]],
    now: datetime,
) -> list[str]:
    """Why the view says "needs attention"; empty means OK."""
    reasons: list[str] = []
    if alerts:
        reasons.append("open_alert")
    if any((v["news2"] or 0) >= ATTENTION_NEWS2 for v in vitals.values()):
        reasons.append("vital_sign")
    if row["last_seen"] is None:
        reasons.append("no_wristband_data")
    elif now - row["last_seen"] > STALE_AFTER:
        reasons.append("not_seen_recently")
    if row["battery_pct"] is not None and row["battery_pct"] < LOW_BATTERY_PCT:
        reasons.append("battery_low")
    if row["worn"] is False:
        reasons.append("not_worn")
    return reasons
