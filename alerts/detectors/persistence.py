"""Persistence and hysteresis over a stream of readings, shared by vitals and baseline.

A :class:`GradedTrack` follows one parameter. Each reading says which side of
normal it is on and how bad (``level`` 1..3), and whether it is inside the
narrower "all clear" band. An alert becomes active at level L when readings at
level >= L on the same side have run without a break for ``min_readings`` AND
``min_duration`` (a silence longer than ``max_gap``, or than ``SPARSE_FACTOR``
times the track's last interval between readings if that is longer, up to
``SPARSE_MAX_GAP``, is a break:
a band that measures SpO2 or blood pressure every 30 min has runs too; before
2026-12-04 it never raised, however long the value stayed dangerous). While active,
the level only escalates; the alert clears when ``clear_readings`` consecutive
readings spanning ``clear_duration`` were all inside the all-clear band.
Readings at or before the last one seen are ignored (late or reordered).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.detectors.news2 import Direction
from alerts.detectors.types import Persistence

LEVELS = 3
SPARSE_FACTOR = 2.5  # a silence this many of the parameter's own intervals is a break
SPARSE_MAX_GAP = timedelta(hours=3)  # ...at most: a day-old reading joins no run of today's


@dataclass(frozen=True, slots=True)
class Run:
    start: datetime
    last: datetime
    count: int


def extend(run: Run | None, holds: bool, at: datetime, max_gap: timedelta) -> Run | None:
    if not holds:
        return None
    if run is None or at - run.last > max_gap:
        return Run(at, at, 1)
    return Run(run.start, at, run.count + 1)


def qualifies(run: Run | None, readings: int, duration: timedelta) -> bool:
    return run is not None and run.count >= readings and run.last - run.start >= duration


@dataclass(frozen=True, slots=True)
class GradedTrack:
    side: Direction | None = None  # the side the current runs are on
    runs: tuple[Run | None, ...] = (None,) * LEVELS  # runs[i]: readings at level >= i + 1
    clear: Run | None = None
    active: int = 0  # 0: no alert; else the level the alert holds
    active_side: Direction | None = None
    last_at: datetime | None = None
    interval: timedelta | None = None  # between the last two readings: the cadence


def _interval(track: GradedTrack, at: datetime) -> timedelta | None:
    return None if track.last_at is None else at - track.last_at


def observe_idle(track: GradedTrack, *, at: datetime, side: Direction | None) -> GradedTrack | None:
    """What :func:`observe` returns for a normal reading on an idle track (no run, no
    alert: most readings), or None when the reading needs :func:`observe`. Callers on
    the hot path try this first and skip computing ``observe``'s other arguments."""
    if side is not None or track.active or track.side is not None:
        return None
    if track.last_at is not None and at <= track.last_at:
        return track
    return GradedTrack(last_at=at, interval=_interval(track, at))


def observe(
    track: GradedTrack,
    *,
    at: datetime,
    side: Direction | None,
    level: int,
    clear_ok: bool,
    min_level: int,
    rules: Persistence,
) -> GradedTrack:
    """Fold one reading into the track. ``clear_ok`` is judged against ``track.active_side``."""
    idle = observe_idle(track, at=at, side=side)
    if idle is not None:
        return idle
    if track.last_at is not None and at <= track.last_at:
        return track
    gap = rules.max_gap
    if track.interval is not None and track.interval * SPARSE_FACTOR > gap:
        gap = max(gap, min(track.interval * SPARSE_FACTOR, SPARSE_MAX_GAP))
    held = track.runs if side is track.side else (None,) * LEVELS
    runs = tuple(
        extend(held[i], side is not None and level >= i + 1, at, gap) for i in range(LEVELS)
    )
    reached = max(
        (
            i + 1
            for i in range(min_level - 1, LEVELS)
            if qualifies(runs[i], rules.min_readings, rules.min_duration)
        ),
        default=0,
    )
    active, active_side, clear = track.active, track.active_side, track.clear
    if active and reached and side is not active_side:
        active, active_side, clear = reached, side, None  # swung to the other side
    elif active:
        if side is active_side and reached > active:
            active = reached
        clear = extend(clear, clear_ok, at, gap)
        if qualifies(clear, rules.clear_readings, rules.clear_duration):
            active, active_side, clear = 0, None, None
    elif reached:
        active, active_side, clear = reached, side, None
    return GradedTrack(side, runs, clear, active, active_side, at, _interval(track, at))
