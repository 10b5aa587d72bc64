"""The latest state of each band in a batch (pure): what ``device_state`` gets.

Each group of fields (vitals, steps, battery, wear, location) keeps the newest
value the batch has for it, stamped with its device time; the upsert in
``ingest.sql`` only overwrites a group with a newer stamp, so late readings
(store-and-forward) and redeliveries never move the state backwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

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


@dataclass(slots=True)
class _Latest:
    """The newest values seen for one band; stamps are device times in epoch ms."""

    device_id: str
    resident_id: int | None
    last_seen: int = -1
    last_seq: int | None = None
    vitals_at: int | None = None
    vitals: tuple[int | float | None, ...] = (None,) * len(_VITALS)
    steps_at: int | None = None
    steps: int | None = None
    battery_at: int | None = None
    battery_pct: int | None = None
    worn_at: int | None = None
    worn: bool | None = None
    loc_at: int | None = None
    loc: tuple[float, float, float, str] | None = None

    def row(self, at: Callable[[int | None], datetime | None]) -> tuple[object, ...]:
        """The row in ``STATE_COLUMNS`` order, stamps as datetimes."""
        loc = self.loc if self.loc is not None else (None, None, None, None)
        return (
            self.device_id, self.resident_id, at(self.last_seen), self.last_seq,
            at(self.vitals_at), *self.vitals,
            at(self.steps_at), self.steps, at(self.battery_at), self.battery_pct,
            at(self.worn_at), self.worn,
            at(self.loc_at), *loc,
        )  # fmt: skip


def _stamper() -> Callable[[int | None], datetime | None]:
    """ms -> datetime, converting each distinct stamp once (a reading's groups share one)."""
    seen: dict[int, datetime] = {}

    def at(ms: int | None) -> datetime | None:
        if ms is None:
            return None
        value = seen.get(ms)
        if value is None:
            value = seen[ms] = ms_to_datetime(ms)
        return value

    return at


def latest_states(readings: Iterable[Accepted]) -> list[tuple[object, ...]]:
    """One row per device, ordered by device id (a stable lock order across processes)."""
    best: dict[str, _Latest] = {}
    for a in readings:
        t = a.message
        if not isinstance(t, Telemetry):
            continue
        state = best.get(t.device_id)
        if state is None:
            state = best[t.device_id] = _Latest(t.device_id, a.resident_id)
        ts = t.ts
        if ts >= state.last_seen:
            state.resident_id, state.last_seen, state.last_seq = a.resident_id, ts, t.seq
        if (
            t.hr is not None
            or t.spo2 is not None
            or t.bp_sys is not None
            or t.bp_dia is not None
            or t.skin_temp_c is not None
        ) and (state.vitals_at is None or ts >= state.vitals_at):
            vitals: tuple[int | float | None, ...] = (t.hr, t.spo2, t.bp_sys, t.bp_dia,
                                                      t.skin_temp_c)  # fmt: skip
            if state.vitals_at is not None:  # keep what this reading did not measure
                vitals = tuple(
                    v if v is not None else o for v, o in zip(vitals, state.vitals, strict=True)
                )
            state.vitals_at = ts
            state.vitals = vitals
        if t.steps is not None and (state.steps_at is None or ts >= state.steps_at):
            state.steps_at, state.steps = ts, t.steps
        if t.battery_pct is not None and (state.battery_at is None or ts >= state.battery_at):
            state.battery_at, state.battery_pct = ts, t.battery_pct
        if t.worn is not None and (state.worn_at is None or ts >= state.worn_at):
            state.worn_at, state.worn = ts, t.worn
        if t.loc is not None and (state.loc_at is None or ts >= state.loc_at):
            loc = t.loc
            state.loc_at, state.loc = ts, (loc.lat, loc.lon, loc.acc_m, loc.src.value)
    at = _stamper()
    return [best[device_id].row(at) for device_id in sorted(best)]
