"""Local daily windows (waking hours, night) in the resident's time zone. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def in_window(now: datetime, start: time, end: time, tz: str) -> bool:
    """Is ``now`` inside the local daily window [start, end)? Windows may cross midnight."""
    local = now.astimezone(ZoneInfo(tz)).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end


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
