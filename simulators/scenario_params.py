"""What each episode type takes in a scenario's ``params``, and the check of it.

A scenario file is checked whole when it is loaded (simulators.scenario): an
unknown or misspelt parameter, or a value the band model cannot play, is a
``ScenarioError`` naming the event and the parameter. Until 2026-12-04
``{direction: upward}`` ended a run in a KeyError and ``{lond_lie: true}`` was
taken silently (the fall drew its own ``long_lie``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from simulators.motion import ADL_KINDS, FALL_DIRECTIONS, FALL_ORIGINS


@dataclass(frozen=True, slots=True)
class Param:
    accepts: Callable[[Any], bool]
    expected: str  # how the error message describes a good value


def _choice(options: tuple[str, ...]) -> Param:
    return Param(lambda v: v in options, f"one of {list(options)}")


def _number(lo: float, hi: float) -> Param:
    def accepts(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi

    return Param(accepts, f"a number from {lo:g} to {hi:g}")


_BOOL = Param(lambda v: isinstance(v, bool), "true or false")

# Every parameter a type's episode reads (scenario._params fills in what is left out).
PARAMS: dict[str, dict[str, Param]] = {
    "fall": {
        "direction": _choice(FALL_DIRECTIONS),
        "origin": _choice(FALL_ORIGINS),
        "long_lie": _BOOL,
    },
    "adl": {"kind": _choice(ADL_KINDS)},
    "sos": {"cancelled": _BOOL, "cancel": _number(0, 1)},  # cancel: the chance of cancelling
    "tachycardia": {"hr": _number(101, 250)},
    "bradycardia": {"hr": _number(20, 59)},
    "hypoxaemia": {"spo2": _number(50, 100)},
    "fever": {"skin_temp_rise_c": _number(0, 6)},
    "hypertensive_crisis": {"bp_sys": _number(60, 300), "bp_dia": _number(30, 200)},
    "wandering": {"speed_m_per_h": _number(0, 20_000), "bearing_deg": _number(0, 360)},
    "low_battery": {"battery_pct": _number(0, 100)},
    "restless_night": {"steps_per_min": _number(0, 200)},
    "imu_misconfigured": {"windows_per_hour": _number(0, 3600)},
    "inactivity": {},
    "device_offline": {},
    "band_removed": {},
}


def params_problem(kind: str, params: Mapping[str, Any]) -> str | None:
    """What is wrong with ``params`` for an episode of ``kind``, or None."""
    known = PARAMS.get(kind, {})
    unknown = sorted(str(k) for k in params if k not in known)
    if unknown:
        takes = f"takes {sorted(known)}" if known else "takes no params"
        return f"params: unknown {unknown} ({kind} {takes})"
    for key, value in params.items():
        spec = known[key]
        if not spec.accepts(value):
            return f"params.{key}: {value!r} is not {spec.expected}"
    return None
