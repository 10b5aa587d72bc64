"""Local daily windows (waking hours, night) in the resident's time zone. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

# Every time zone changes its offset on a quarter hour, so within one quarter hour of
# UTC the offset is one value: looked up once, not per reading (the engine asks this
# for every reading of every resident; ``astimezone`` was a visible share of its time).
OFFSET_SLOT_S: Final = 900


@lru_cache(maxsize=8192)
def _offset(tz: str, slot: int) -> timedelta:
    offset = datetime.fromtimestamp(slot * OFFSET_SLOT_S, ZoneInfo(tz)).utcoffset()
    return offset if offset is not None else timedelta(0)


def local_datetime(now: datetime, tz: str) -> datetime:
    """The wall-clock date and time of the aware ``now`` in ``tz`` (its tzinfo stays UTC:
    read only ``.date()`` and ``.time()``)."""
    return now + _offset(tz, int(now.timestamp()) // OFFSET_SLOT_S)


def local_time(now: datetime, tz: str) -> time:
    """The wall-clock time of the aware ``now`` in ``tz``."""
    return local_datetime(now, tz).time()


def local_date(now: datetime, tz: str) -> date:
    """The calendar day of the aware ``now`` in ``tz``."""
    return local_datetime(now, tz).date()


def time_in_daily_window(local: time, start: time, end: time) -> bool:
    """Is the wall-clock ``local`` inside [start, end)? Windows may cross midnight."""
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def in_window(now: datetime, start: time, end: time, tz: str) -> bool:
    """Is ``now`` inside the local daily window [start, end)? Windows may cross midnight."""
    return time_in_daily_window(local_time(now, tz), start, end)


def _window_on(day: date, start: time, end: time, zone: ZoneInfo) -> tuple[datetime, datetime]:
    begin = datetime.combine(day, start, zone)
    finish = datetime.combine(day if start < end else day + timedelta(days=1), end, zone)
    return begin.astimezone(UTC), finish.astimezone(UTC)


def time_in_window(a: datetime, b: datetime, start: time, end: time, tz: str) -> timedelta:
    """How much of [a, b] falls inside the local daily window [start, end)."""
    if b <= a:
        return timedelta(0)
    zone = ZoneInfo(tz)
    day = a.astimezone(zone).date() - timedelta(days=1)
    last = b.astimezone(zone).date()
    total = timedelta(0)
    while day <= last:
        lo, hi = _window_on(day, start, end, zone)
        overlap = min(hi, b) - max(lo, a)
        if overlap > timedelta(0):
            total += overlap
        day += timedelta(days=1)
    return total
