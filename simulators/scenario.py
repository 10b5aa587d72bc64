"""Scenarios (YAML) and the ground truth of what they inject.

A scenario lists injections: an episode type, when (``at`` seconds after the
start, or a ``rate_per_day`` per matching band), which bands (``bands``: a
count, ``all`` or a list of fleet indices; ``where``: conditions a resident
must have, and ``living_alone: true|false``), a duration and parameters.
Planning turns it into concrete, time-stamped ``Episode`` values,
deterministically from the seed; every episode the run reaches becomes one ground-truth JSON line.

    name: emergencies
    background: {adl_imu_per_day: 2, reconnects_per_day: 1}
    events:
      - {type: fall, at: 120, bands: 1, params: {long_lie: true}}
      - {type: tachycardia, rate_per_day: 0.2, duration_s: [600, 1800]}
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from simulators.motion import ADL_KINDS, FALL_DIRECTIONS, FALL_ORIGINS
from simulators.profiles import CONDITIONS, DAY_MS, LOCAL_OFFSET_MS, Profile
from simulators.scenario_params import params_problem

EPISODE_TYPES = frozenset({
    "fall", "sos", "tachycardia", "bradycardia", "hypoxaemia", "fever", "hypertensive_crisis",
    "wandering", "inactivity", "device_offline", "low_battery", "band_removed", "adl",
    "restless_night", "imu_misconfigured",
})  # fmt: skip
# Default (min, max) duration in seconds and the local hours an episode may start in.
_DURATION_S: dict[str, tuple[float, float]] = {
    "fall": (60, 180), "sos": (0, 0), "tachycardia": (600, 1800), "bradycardia": (600, 1800),
    "hypoxaemia": (600, 2400), "fever": (4 * 3600, 12 * 3600),
    "hypertensive_crisis": (1200, 3600), "wandering": (1800, 5400),
    "inactivity": (3 * 3600, 6 * 3600), "device_offline": (1800, 4 * 3600),
    "low_battery": (1800, 3 * 3600), "band_removed": (1800, 4 * 3600), "adl": (0, 0),
    "restless_night": (3600, 3 * 3600), "imu_misconfigured": (4 * 3600, 24 * 3600),
}  # fmt: skip
_LOCAL_HOURS: dict[str, tuple[float, float]] = {
    "wandering": (0.5, 4.5), "inactivity": (9.0, 14.0), "adl": (7.0, 21.0),
    "restless_night": (0.5, 3.5),
}  # fmt: skip


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``where`` says which entry."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


@dataclass(frozen=True, slots=True)
class Background:
    """Everyday device and life behaviour (not ground truth, see docs/simulators.md)."""

    adl_imu_per_day: float = 1.0  # ADL windows per band per day (these *are* ground truth)
    reconnects_per_day: float = 0.5  # short network losses (10 s - 5 min), store-and-forward
    duplicate_on_reconnect: float = 0.5  # chance the last message is resent with its seq
    dropout: float = 0.03  # a reading misses heart rate (motion, loose fit)


@dataclass(frozen=True, slots=True)
class Injection:
    type: str
    at_s: float | None = None
    rate_per_day: float | str | None = None  # a number, or "profile" (wandering risk)
    bands: int | str | tuple[int, ...] = 1
    where: tuple[str, ...] = ()  # conditions required
    living_alone: bool | None = None  # required living situation (None: any)
    duration_s: tuple[float, float] | None = None
    local_hours: tuple[float, float] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    where_given: str = field(default="", compare=False)  # "file.yaml: events[3]", for errors


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    injections: tuple[Injection, ...] = ()
    background: Background = Background()
    description: str = ""

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:  # the parser's message says where: line and column
            message = "not YAML: " + " ".join(str(exc).split())
            raise ScenarioError(message, where=str(path)) from None
        except (OSError, UnicodeDecodeError) as exc:  # missing, unreadable, not text
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ScenarioError(f"cannot read the scenario: {reason}", where=str(path)) from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "scenario") -> Scenario:
        if not isinstance(data, Mapping):
            raise ScenarioError("a scenario is a mapping", where=where)
        unknown = sorted(
            str(k) for k in set(data) - {"name", "description", "background", "events"}
        )
        if unknown:
            raise ScenarioError(f"unknown keys {unknown}", where=where)
        events = data.get("events") or []
        if not isinstance(events, list):
            raise ScenarioError("events is a list of events", where=where)
        return cls(
            name=str(data.get("name", Path(where).stem)),
            description=str(data.get("description", "")),
            background=_background(data.get("background"), where=f"{where}: background"),
            injections=tuple(
                _injection(e, where=f"{where}: events[{i}]") for i, e in enumerate(events)
            ),
        )

    def check_fleet(self, bands: int) -> None:
        """Refuse fleet indices a fleet of ``bands`` does not have (an episode would be
        dropped without a word); ``plan`` checks this too."""
        for inj in self.injections:
            if isinstance(inj.bands, tuple):
                missing = [b for b in inj.bands if b >= bands]
                if missing:
                    raise ScenarioError(
                        f"bands {missing}: the fleet has {bands} band(s), indices 0-{bands - 1}"
                        if bands
                        else f"bands {missing}: the fleet has no bands",
                        where=inj.where_given,
                    )


def _background(value: Any, where: str) -> Background:
    if value is None:
        return Background()
    if not isinstance(value, Mapping):
        raise ScenarioError("background is a mapping", where=where)
    try:
        background = Background(**value)
    except TypeError as exc:
        raise ScenarioError(str(exc), where=where) from exc
    for key, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise ScenarioError(f"{key}: {v!r} is not a number >= 0", where=where)
        if key in ("duplicate_on_reconnect", "dropout") and v > 1:
            raise ScenarioError(f"{key}: {v!r} is a probability, 0 to 1", where=where)
    return background


def _pair(value: Any, where: str) -> tuple[float, float]:
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and v >= 0

    if number(value):
        return float(value), float(value)
    if isinstance(value, Sequence) and len(value) == 2 and all(number(v) for v in value):
        lo, hi = float(value[0]), float(value[1])
        if lo <= hi:
            return lo, hi
    raise ScenarioError(f"expected a number >= 0 or [min, max], got {value!r}", where=where)


def _injection(e: Any, *, where: str) -> Injection:
    if not isinstance(e, Mapping):
        raise ScenarioError("an event is a mapping", where=where)
    unknown = set(e) - {"type", "at", "rate_per_day", "bands", "where", "duration_s",
                        "local_hours", "params"}  # fmt: skip
    if unknown:
        raise ScenarioError(f"unknown keys {sorted(unknown)}", where=where)
    kind = e.get("type")
    if kind not in EPISODE_TYPES:
        raise ScenarioError(f"type {kind!r} is not one of {sorted(EPISODE_TYPES)}", where=where)
    if (e.get("at") is None) == (e.get("rate_per_day") is None):
        raise ScenarioError("give exactly one of `at` and `rate_per_day`", where=where)
    rate = e.get("rate_per_day")
    if rate is not None and rate != "profile" and not (isinstance(rate, int | float) and rate >= 0):
        raise ScenarioError("rate_per_day is a number >= 0 or 'profile'", where=where)
    bands = e.get("bands", 1)
    if isinstance(bands, list):
        if not all(isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in bands):
            raise ScenarioError(f"bands {bands!r}: fleet indices are whole numbers >= 0",
                                where=where)  # fmt: skip
        bands = tuple(bands)
    elif not (bands == "all" or (isinstance(bands, int) and not isinstance(bands, bool)
                                 and bands >= 0)):  # fmt: skip
        raise ScenarioError("bands is a count, 'all' or a list of indices", where=where)
    conditions, alone = _where(e.get("where"), where)
    params = e.get("params") or {}
    if not isinstance(params, Mapping):
        raise ScenarioError(f"params is a mapping, got {params!r}", where=where)
    problem = params_problem(kind, params)
    if problem:
        raise ScenarioError(problem, where=where)
    local_hours = _pair(e["local_hours"], where) if "local_hours" in e else None
    if local_hours is not None and local_hours[1] > 24:
        raise ScenarioError("local_hours are hours of the day, 0 to 24", where=where)
    return Injection(
        type=kind,
        at_s=_offset_s(e["at"], where) if e.get("at") is not None else None,
        rate_per_day=rate,
        bands=bands,
        where=conditions,
        living_alone=alone,
        duration_s=_pair(e["duration_s"], where) if "duration_s" in e else None,
        local_hours=local_hours,
        params=dict(params),
        where_given=where,
    )


def _where(value: Any, where: str) -> tuple[tuple[str, ...], bool | None]:
    """``where: {conditions: [...], living_alone: true|false}``, checked."""
    if value is None:
        return (), None
    if not isinstance(value, Mapping):
        raise ScenarioError("where is a mapping (conditions, living_alone)", where=where)
    unknown = sorted(str(k) for k in set(value) - {"conditions", "living_alone"})
    if unknown:
        raise ScenarioError(f"where: unknown keys {unknown}", where=where)
    alone = value.get("living_alone")
    if alone is not None and not isinstance(alone, bool):
        raise ScenarioError("where.living_alone is true or false", where=where)
    conditions = value.get("conditions") or []
    if not isinstance(conditions, list):
        raise ScenarioError("where.conditions is a list", where=where)
    strange = [c for c in conditions if c not in CONDITIONS]
    if strange:
        raise ScenarioError(
            f"where.conditions {strange}: a simulated resident has only {list(CONDITIONS)}",
            where=where,
        )
    return tuple(conditions), alone


def _offset_s(value: Any, where: str) -> float:
    """Seconds after the start: a number, or ``HH:MM:SS``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0 or not math.isfinite(value):
            raise ScenarioError(f"`at` is seconds >= 0 after the start, got {value!r}", where=where)
        return float(value)
    parts = str(value).split(":")
    if len(parts) == 3 and all(p.replace(".", "", 1).isdigit() for p in parts):
        return float(parts[0]) * 3600 + float(parts[1]) * 60 + float(parts[2])
    raise ScenarioError(f"`at` is seconds or HH:MM:SS, got {value!r}", where=where)


@dataclass(frozen=True, slots=True)
class Episode:
    """One injected event on one band, in simulated UTC milliseconds."""

    id: int
    index: int  # the band's index in the fleet
    device_id: str
    resident_ref: str
    type: str
    start_ms: int
    end_ms: int
    params: Mapping[str, Any] = field(default_factory=dict)

    def active(self, t_ms: int) -> bool:
        return self.start_ms <= t_ms < self.end_ms


def _params(kind: str, given: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
    p = dict(given)
    if kind == "fall":
        p.setdefault("direction", rng.choice(FALL_DIRECTIONS))
        p.setdefault("origin", rng.choice(FALL_ORIGINS))
        p.setdefault("long_lie", rng.random() < 0.3)
    elif kind == "adl":
        p.setdefault("kind", rng.choice(ADL_KINDS))
    elif kind == "sos":
        p.setdefault("cancelled", rng.random() < float(p.pop("cancel", 0.15)))
    elif kind in ("tachycardia", "bradycardia"):
        lo, hi = (125, 165) if kind == "tachycardia" else (34, 44)
        p.setdefault("hr", rng.randint(lo, hi))
    elif kind == "hypoxaemia":
        p.setdefault("spo2", rng.randint(80, 87))
    elif kind == "fever":
        p.setdefault("skin_temp_rise_c", round(rng.uniform(1.4, 2.4), 1))
    elif kind == "hypertensive_crisis":
        p.setdefault("bp_sys", rng.randint(185, 215))
        p.setdefault("bp_dia", rng.randint(112, 128))
    elif kind == "wandering":
        p.setdefault("speed_m_per_h", rng.randint(1500, 3500))
        p.setdefault("bearing_deg", rng.randint(0, 359))
    elif kind == "low_battery":
        p.setdefault("battery_pct", rng.randint(5, 14))
    elif kind == "restless_night":  # up and about at home: pacing, pottering, back and forth
        p.setdefault("steps_per_min", rng.randint(8, 25))
    elif kind == "imu_misconfigured":  # firmware sending linear acceleration (gravity removed)
        p.setdefault("windows_per_hour", 4)  # everyday movements it uploads meanwhile
    return p


def _duration_ms(inj: Injection, params: Mapping[str, Any], rng: random.Random) -> int:
    lo, hi = inj.duration_s or _DURATION_S[inj.type]
    if inj.type == "fall" and params.get("long_lie") and inj.duration_s is None:
        lo, hi = 20 * 60, 90 * 60
    if inj.type == "sos" and params.get("cancelled"):
        lo, hi = max(lo, 5), max(hi, 30)
    return round(rng.uniform(lo, hi) * 1000)


def _start_in_hours(t_ms: int, hours: tuple[float, float], rng: random.Random) -> int:
    """Move a start time into the given local hours of its local day."""
    local = t_ms + LOCAL_OFFSET_MS
    day0 = local - local % DAY_MS
    return day0 + round(rng.uniform(*hours) * 3_600_000) - LOCAL_OFFSET_MS


def plan(
    scenario: Scenario,
    profiles: Sequence[Profile],
    *,
    start_ms: int,
    duration_ms: int,
    seed: int,
) -> list[Episode]:
    """Concrete episodes for a run (pure and deterministic)."""
    scenario.check_fleet(len(profiles))
    rng = random.Random(f"scenario:{seed}:{scenario.name}")
    episodes: list[Episode] = []
    end_ms = start_ms + duration_ms
    for inj in scenario.injections:
        matching = [
            p for p in profiles
            if all(p.has(c) for c in inj.where)
            and inj.living_alone in (None, p.living_alone)
        ]  # fmt: skip
        if isinstance(inj.bands, tuple):
            chosen = [p for p in matching if p.index in inj.bands]
        elif inj.bands == "all" or inj.rate_per_day is not None:
            chosen = matching
        else:
            chosen = sorted(rng.sample(matching, min(int(inj.bands), len(matching))),
                            key=lambda p: p.index)  # fmt: skip
        for p in chosen:
            for start in _starts(inj, p, start_ms=start_ms, end_ms=end_ms, rng=rng):
                params = _params(inj.type, inj.params, rng)
                episodes.append(Episode(
                    id=0, index=p.index, device_id=p.device_id, resident_ref=p.external_ref,
                    type=inj.type, start_ms=start,
                    end_ms=start + _duration_ms(inj, params, rng), params=params,
                ))  # fmt: skip
    episodes.sort(key=lambda e: (e.start_ms, e.index, e.type))
    return [
        Episode(id=i + 1, index=e.index, device_id=e.device_id, resident_ref=e.resident_ref,
                type=e.type, start_ms=e.start_ms, end_ms=e.end_ms, params=e.params)
        for i, e in enumerate(episodes)
    ]  # fmt: skip


def _starts(
    inj: Injection, p: Profile, *, start_ms: int, end_ms: int, rng: random.Random
) -> Iterable[int]:
    if inj.at_s is not None:
        yield start_ms + round(inj.at_s * 1000)
        return
    rate = p.wandering_risk if inj.rate_per_day == "profile" else float(inj.rate_per_day or 0)
    expected = rate * (end_ms - start_ms) / DAY_MS
    hours = inj.local_hours or _LOCAL_HOURS.get(inj.type)
    for _ in range(_poisson(expected, rng)):
        t = rng.randrange(start_ms, max(start_ms + 1, end_ms))
        if hours is not None:
            t = _start_in_hours(t, hours, rng)
            if t < start_ms:
                t += DAY_MS
        if t < end_ms:
            yield t


def _poisson(lam: float, rng: random.Random) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def truth_record(e: Episode, resident_id: int | None) -> dict[str, Any]:
    return {
        "episode": e.id,
        "resident_id": resident_id,
        "resident_ref": e.resident_ref,
        "device_id": e.device_id,
        "type": e.type,
        "start": iso(e.start_ms),
        "end": iso(e.end_ms),
        "params": dict(e.params),
    }


def write_truth(
    path: str | Path, episodes: Iterable[Episode], resident_ids: Mapping[str, int]
) -> int:
    """Write one JSON line per episode; returns how many."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as f:
        for e in episodes:
            f.write(json.dumps(truth_record(e, resident_ids.get(e.device_id)), ensure_ascii=False))
            f.write("\n")
            n += 1
    return n
