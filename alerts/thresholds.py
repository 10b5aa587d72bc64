"""A clinician's per-resident alert thresholds: the JSON form, validation, storage.

Stored in ``resident_alert_thresholds`` (migration 008) as a JSON object of
overrides; anything left out keeps the default. Every key is optional:

```json
{"hr":   {"low": [[40, 3], [50, 1]], "high": [[131, 3], [111, 2], [91, 1]]},
 "spo2": {"low": [[85, 3], [87, 2], [89, 1]]},
 "sbp":  {"low": [[90, 3], [100, 2], [110, 1]], "high": [[220, 3], [180, 2]]},
 "dbp":  {"high": [[120, 2]]},
 "temp": {"low": [[35.0, 3], [36.0, 1]], "high": [[39.1, 2], [38.1, 1]]},
 "fever_rise_c": 1.1,
 "skin_temp_offset_c": 4.0,
 "min_alert_score": 2,
 "persistence_min_s": 300,
 "inactivity_after_s": 10800,
 "day_outside_allowed_s": 10800,
 "day_range_m": 3000}
```

Each parameter's bands are NEWS2-style (bound, score) pairs
(:class:`~alerts.detectors.news2.ParamBands`: ``low`` applies at or below
the bound, ``high`` at or above, most severe first); a side left out keeps
the default for that parameter. ``sbp.high`` includes the hypertensive-crisis
band (180, 2) by default; ``{"sbp": {"high": [[220, 3]]}, "dbp": {"high": []}}``
is NEWS2 alone. :func:`parse_overrides` (pure) validates and
raises :class:`ThresholdError` with the offending key. :func:`set_thresholds`
is the one write path (for the API): it validates, upserts the current row
and appends the change with who and when, in one transaction. The engine
loads the rows with the profiles (:mod:`alerts.profiles`), every 30 s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from alerts.detectors.news2 import ParamBands, VitalParam
from alerts.detectors.types import Profile

_PARAMS: Final = {"hr": VitalParam.HR, "spo2": VitalParam.SPO2, "sbp": VitalParam.SBP,
                  "temp": VitalParam.TEMP}  # fmt: skip
_SECONDS: Final = {
    "persistence_min_s": (60, 3600),
    "inactivity_after_s": (1800, 86400),
    "day_outside_allowed_s": (0, 86400),
}
# Bounds a clinician may set per parameter: beyond them a band is a typo, not a decision.
_PLAUSIBLE: Final = {"hr": (20.0, 250.0), "spo2": (50.0, 100.0), "sbp": (50.0, 300.0),
                     "dbp": (30.0, 200.0), "temp": (30.0, 45.0)}  # fmt: skip
# Temperature settings (degrees C): the fever rise over the personal baseline, and the
# wrist-to-core offset used without a baseline.
_CELSIUS: Final = {"fever_rise_c": (0.5, 3.0), "skin_temp_offset_c": (0.0, 8.0)}
KEYS: Final = frozenset({*_PARAMS, "dbp", "min_alert_score", "day_range_m", *_SECONDS, *_CELSIUS})


class ThresholdError(ValueError):
    """Overrides that cannot be used; ``key`` names the offending entry."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def _shown(number: float) -> str:
    """A number for a message: a huge int by its order of magnitude, not its 400 digits
    (and Python will not write an int of more than 4,300 digits as a string at all)."""
    if isinstance(number, int) and abs(number) > 10**15:
        sign = "-" if number < 0 else ""
        return f"{sign}~1e{int(abs(number).bit_length() * math.log10(2))}"
    return str(number)


def _pairs(raw: Any, key: str) -> tuple[tuple[float, int], ...]:
    if not isinstance(raw, list) or len(raw) > 3:
        raise ThresholdError("expected a list of at most 3 [bound, score] pairs", key=key)
    out: list[tuple[float, int]] = []
    for pair in raw:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or isinstance(pair[0], bool)
            or not isinstance(pair[0], int | float)
            or isinstance(pair[1], bool)
            or not isinstance(pair[1], int)
        ):
            raise ThresholdError("each band is [bound (number), score (1-3)]", key=key)
        lo, hi = _PLAUSIBLE[key.split(".", maxsplit=1)[0]]
        # compared as given, converted after: float() of an int past ~1e308 (JSON has no
        # limit) raised OverflowError, a 500 (found by fuzzing the API, 2026-12-04)
        if not lo <= pair[0] <= hi:
            raise ThresholdError(f"bound {_shown(pair[0])} outside {lo:g}-{hi:g}", key=key)
        out.append((float(pair[0]), int(pair[1])))
    return tuple(out)


def _bands(raw: Any, key: str, default: ParamBands) -> ParamBands:
    if not isinstance(raw, Mapping) or not set(raw) <= {"low", "high"}:
        raise ThresholdError("expected an object with 'low' and/or 'high'", key=key)
    low = _pairs(raw["low"], f"{key}.low") if "low" in raw else default.low
    high = _pairs(raw["high"], f"{key}.high") if "high" in raw else default.high
    try:
        return ParamBands(low=low, high=high)
    except ValueError as exc:
        raise ThresholdError(str(exc), key=key) from exc


def parse_overrides(raw: Any, profile: Profile) -> Profile:
    """Pure: ``profile`` with the overrides applied; :class:`ThresholdError` if invalid."""
    if not isinstance(raw, Mapping):
        raise ThresholdError("expected a JSON object", key="overrides")
    unknown = set(raw) - KEYS
    if unknown:
        raise ThresholdError(f"unknown keys {sorted(unknown)}", key="overrides")
    th = profile.thresholds
    changes: dict[str, Any] = {}
    for key, param in _PARAMS.items():
        if key in raw:
            changes[key] = _bands(raw[key], key, th.bands(param, profile.conditions))
    if "dbp" in raw:
        changes["dbp"] = _bands(raw["dbp"], "dbp", th.dbp)
    for key, (lo, hi) in _CELSIUS.items():
        if key in raw:
            value = raw[key]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not lo <= value <= hi:
                raise ThresholdError(f"must be degrees C in [{lo}, {hi}]", key=key)
            changes[key] = float(value)
    if "min_alert_score" in raw:
        score = raw["min_alert_score"]
        if isinstance(score, float) and score.is_integer():
            score = int(score)  # JSON's 2.0: before 2026-12-04 kept a float, and the
            # persistence rule's range() raised on every abnormal reading of the resident
        if isinstance(score, bool) or not isinstance(score, int) or score not in (1, 2, 3):
            raise ThresholdError("must be 1, 2 or 3", key="min_alert_score")
        changes["min_alert_score"] = score
    seconds: dict[str, timedelta] = {}
    for key, (lo, hi) in _SECONDS.items():
        if key in raw:
            value = raw[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not lo <= value <= hi
            ):
                raise ThresholdError(f"must be a number of seconds in [{lo}, {hi}]", key=key)
            seconds[key] = timedelta(seconds=float(value))
    if "day_range_m" in raw:
        metres = raw["day_range_m"]
        number = isinstance(metres, int | float) and not isinstance(metres, bool)
        if not number or not 100 <= metres <= 50_000:
            raise ThresholdError("must be metres in [100, 50000]", key="day_range_m")
    if "persistence_min_s" in seconds:
        changes["persistence"] = replace(th.persistence, min_duration=seconds["persistence_min_s"])
    thresholds = replace(th, **changes) if changes else th
    out = replace(profile, thresholds=thresholds)
    if "inactivity_after_s" in seconds:
        out = replace(out, inactivity_after=seconds["inactivity_after_s"])
    if "day_outside_allowed_s" in seconds:
        out = replace(out, day_outside_allowed=seconds["day_outside_allowed_s"])
    if "day_range_m" in raw:
        out = replace(out, day_range_m=float(raw["day_range_m"]))
    return out


async def set_thresholds(
    conn: psycopg.AsyncConnection[TupleRow],
    resident_id: int,
    overrides: Mapping[str, Any] | None,
    *,
    set_by: str,
    at: datetime,
    reason: str = "",
) -> None:
    """Set (or with None remove) a resident's overrides, recording who and when.

    Validates first (:class:`ThresholdError`); the engine picks the change up
    with its next profile reload (30 s).
    """
    if not set_by or len(set_by) > 200:
        raise ThresholdError("1 to 200 characters", key="set_by")
    if overrides is not None:
        parse_overrides(overrides, Profile(resident_id))
    doc = None if overrides is None else Jsonb(json.loads(json.dumps(overrides)))
    async with conn.transaction():
        if overrides is None:
            await conn.execute(
                "DELETE FROM resident_alert_thresholds WHERE resident_id = %s", (resident_id,)
            )
        else:
            await conn.execute(
                "INSERT INTO resident_alert_thresholds"
                " (resident_id, overrides, set_by, set_at, reason) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (resident_id) DO UPDATE SET overrides = EXCLUDED.overrides,"
                " set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at, reason = EXCLUDED.reason",
                (resident_id, doc, set_by, at, reason),
            )
        await conn.execute(
            "INSERT INTO resident_alert_threshold_changes"
            " (resident_id, overrides, set_by, set_at, reason) VALUES (%s, %s, %s, %s, %s)",
            (resident_id, doc, set_by, at, reason),
        )
