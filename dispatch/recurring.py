"""Recurring orders (pure): which resident gets which service on a given day.

Rules live beside the catalogue (``recurring:`` in ``catalogue.yaml``): a weekly
welfare visit for everyone living alone, a daily meal delivery for the
residents listed, in the city's local time. Each resident's own standing services
(:class:`Subscription`: meals on weekdays at 11:00-12:30, a bath every Wednesday;
``POST /residents/{id}/services``, :mod:`dispatch.subscriptions`) are expanded the same
way. Each expanded order carries an idempotency key made of rule, resident and date,
so making a day's orders twice books nothing twice.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatch.model import CatalogueError, read_catalogue_yaml

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WHO: Final = frozenset({"living_alone", "all", "listed", "none"})
DEFAULT_TIMEZONE: Final = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class RecurringRule:
    name: str
    service: str
    every: str  # daily | weekly
    start: time
    end: time
    who: str = "living_alone"
    weekday: int | None = None  # 0 = Monday, for weekly rules
    residents: frozenset[int] = frozenset()  # who: listed (e.g. meal subscribers)

    def __post_init__(self) -> None:
        if self.every not in ("daily", "weekly"):
            raise CatalogueError(f"{self.name}: every must be daily or weekly")
        if self.every == "weekly" and self.weekday is None:
            raise CatalogueError(f"{self.name}: a weekly rule needs a weekday")
        if self.end <= self.start:
            raise CatalogueError(f"{self.name}: the window must end after it starts")
        if self.who not in WHO:
            raise CatalogueError(f"{self.name}: who must be one of {sorted(WHO)}")

    def applies(self, day: date) -> bool:
        return self.every == "daily" or day.weekday() == self.weekday


@dataclass(frozen=True, slots=True)
class Recurring:
    timezone: ZoneInfo
    rules: tuple[RecurringRule, ...]


@dataclass(frozen=True, slots=True)
class ResidentRef:
    resident_id: int
    living_alone: bool


@dataclass(frozen=True, slots=True)
class DueOrder:
    rule: str
    service: str
    resident_id: int
    window_start: datetime
    window_end: datetime

    @property
    def idempotency_key(self) -> str:
        return f"recurring:{self.rule}:{self.resident_id}:{self.window_start.date().isoformat()}"


def _rule(e: Any) -> RecurringRule:
    if not isinstance(e, Mapping):
        raise CatalogueError(f"bad recurring rule {e!r}")
    try:
        a, _, b = str(e["window"]).partition("-")
        weekday = e.get("weekday")
        return RecurringRule(
            name=str(e["name"]),
            service=str(e["service"]),
            every=str(e["every"]),
            start=time.fromisoformat(a.strip()),
            end=time.fromisoformat(b.strip()),
            who=str(e.get("who", "living_alone")),
            weekday=WEEKDAYS.index(str(weekday).lower()) if weekday is not None else None,
            residents=frozenset(int(r) for r in e.get("residents") or []),
        )
    except (KeyError, ValueError) as exc:
        raise CatalogueError(f"bad recurring rule {e!r}: {exc}") from exc


def _zone(data: Mapping[str, Any]) -> ZoneInfo:
    name = str(data.get("timezone", DEFAULT_TIMEZONE))
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise CatalogueError(f"unknown timezone {name!r}") from exc


def recurring_from_dict(data: Mapping[str, Any]) -> Recurring:
    return Recurring(_zone(data), tuple(_rule(e) for e in data.get("recurring") or []))


def load_recurring(path: str | Path | None = None) -> Recurring:
    return recurring_from_dict(read_catalogue_yaml(path))


@functools.cache
def local_zone(path: str | None = None) -> ZoneInfo:
    """The city's time zone as the catalogue at ``path`` names it: the zone day planning
    plans in, and so the one a "day" means when orders are listed by date. Read once per
    process (a city does not change its zone)."""
    return _zone(read_catalogue_yaml(path))


@dataclass(frozen=True, slots=True)
class Subscription:
    """A resident's standing service: ``service`` on ``weekdays`` (0 = Monday) between
    ``start`` and ``end`` local time, from ``starts_on`` to ``ends_on`` (inclusive; None:
    until ended)."""

    id: int
    resident_id: int
    service: str
    weekdays: frozenset[int]
    start: time
    end: time
    starts_on: date
    ends_on: date | None = None

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= set(range(7)):
            raise CatalogueError("weekdays must be some of mon..sun")
        if self.end <= self.start:
            raise CatalogueError("the window must end after it starts")

    @staticmethod
    def rule_of(subscription_id: int) -> str:
        """The ``recurrence`` of the orders it makes."""
        return f"subscription:{subscription_id}"

    @property
    def rule(self) -> str:
        return self.rule_of(self.id)

    def applies(self, day: date) -> bool:
        return (day.weekday() in self.weekdays and self.starts_on <= day
                and (self.ends_on is None or day <= self.ends_on))  # fmt: skip


def expand_subscriptions(
    subscriptions: Iterable[Subscription], day: date, tz: ZoneInfo
) -> list[DueOrder]:
    """The visits the residents' standing services make for ``day`` (local), in order."""
    out: list[DueOrder] = []
    for s in subscriptions:
        if s.applies(day):
            start, end = (datetime.combine(day, t, tzinfo=tz) for t in (s.start, s.end))
            out.append(DueOrder(s.rule, s.service, s.resident_id, start, end))
    return out


def expand(recurring: Recurring, residents: Iterable[ResidentRef], day: date) -> list[DueOrder]:
    """The orders the rules make for ``day``, in rule then resident order."""
    people: Sequence[ResidentRef] = list(residents)
    out: list[DueOrder] = []
    tz = recurring.timezone
    for r in recurring.rules:
        if not r.applies(day) or r.who == "none":
            continue
        start = datetime.combine(day, r.start, tzinfo=tz)
        end = datetime.combine(day, r.end, tzinfo=tz)
        out.extend(
            DueOrder(r.name, r.service, p.resident_id, start, end)
            for p in people
            if r.who == "all"
            or (r.who == "living_alone" and p.living_alone)
            or (r.who == "listed" and p.resident_id in r.residents)
        )
    return out
